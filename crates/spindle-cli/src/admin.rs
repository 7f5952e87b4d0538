//! The administrator's commands: each one is one or two calls of `spindle-client` and a
//! printout. Names, not uuids, wherever a person types (a LUN or snapshot may also be given
//! by its uuid); the server resolves them.

use crate::client_opts::{pick_server, token_hint, ClientArgs, TokenSource};
use crate::exit::{self, Failure};
use crate::jobs;
use crate::output::Output;
use crate::sizes::{format_size, parse_size, SIZE_HELP};
use crate::views;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use spindle_client::{Client, Job, JobState, NewLun, NewServer, Reply, ServerSettings};
use std::io::{IsTerminal, Read};

/// The administrator's commands (talk to `spindle serve`).
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Storage servers: register, list, show, refresh, forget.
    #[command(subcommand)]
    Server(ServerCommand),
    /// LUNs: create, list, show, resize, remove, online, offline.
    #[command(subcommand)]
    Lun(LunCommand),
    /// Snapshots: create (one LUN or several at once), list, restore, remove.
    #[command(subcommand)]
    Snap(SnapCommand),
    /// Clones: of a LUN, of a snapshot; split a clone from its parent.
    #[command(subcommand, name = "clone")]
    CloneCmd(CloneCommand),
    /// Access groups (initiators or WWNs allowed to see presented LUNs).
    #[command(subcommand)]
    Group(GroupCommand),
    /// Present a LUN to access groups (startPresent).
    Present(PresentArgs),
    /// Stop presenting a LUN to access groups (stopPresent).
    Unpresent(PresentArgs),
    /// Quality-of-service values: list them, set one on a LUN.
    #[command(subcommand)]
    Qos(QosCommand),
    /// Jobs (asynchronous operations): list, show, watch.
    #[command(subcommand)]
    Job(JobCommand),
    /// The audit log, newest first: every change, who, when, outcome.
    Audit {
        /// How many entries (server default: 100).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StorageTypeArg {
    #[value(name = "iSCSIStorage", alias = "iscsi")]
    Iscsi,
    #[value(name = "SANStorage", alias = "san")]
    San,
}

/// The settings flags `server add` and `server set` share: how to reach and log in to the
/// array (secrets only from stdin).
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// The array's management address.
    #[arg(long, value_name = "HOST")]
    pub admin_host: Option<String>,
    /// The array's management user.
    #[arg(long, value_name = "USER")]
    pub admin_user: Option<String>,
    /// Read the management user's password from stdin (never from an argument).
    #[arg(long, conflicts_with = "password_stdin")]
    pub admin_password_stdin: bool,
    /// The array's data (iSCSI portal) address.
    #[arg(long, value_name = "HOST")]
    pub access_host: Option<String>,
    /// The array's data (iSCSI portal) port.
    #[arg(long, value_name = "PORT")]
    pub access_port: Option<u16>,
    /// The plug-in's settings, all of them (`key=value;...`; see `spindle plugin show CLASS`).
    #[arg(long, value_name = "STR")]
    pub extra_info: Option<String>,
    /// Use CHAP on the data path (with --username and --password-stdin; how a secret is
    /// rotated with `server set`).
    #[arg(long, requires_all = ["username", "password_stdin"])]
    pub chap: bool,
    /// CHAP user name.
    #[arg(long, value_name = "USER", requires = "chap")]
    pub username: Option<String>,
    /// Read the CHAP password from stdin (never from an argument; never printed).
    #[arg(long, requires = "chap")]
    pub password_stdin: bool,
}

impl SettingsArgs {
    /// The settings given, secrets read from stdin; `chap` is `--chap`, else `no_chap`'s
    /// `false`, else not given.
    fn read(self, no_chap: bool) -> Result<ServerSettings, Failure> {
        let secret = |wanted: bool, what: &str| wanted.then(|| read_secret_stdin(what)).transpose();
        Ok(ServerSettings {
            admin_passwd: secret(self.admin_password_stdin, "admin password")?,
            passwd: secret(self.password_stdin, "CHAP password")?,
            admin_host: self.admin_host,
            admin_user: self.admin_user,
            access_host: self.access_host,
            access_port: self.access_port.map(i64::from),
            username: self.username,
            chap: if self.chap {
                Some(true)
            } else {
                no_chap.then_some(false)
            },
            extra_info: self.extra_info,
        })
    }
}

/// `spindle server add`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["embedded", "plugin"])))]
pub struct ServerAdd {
    /// Name of the storage server in spindle.
    pub name: String,
    /// Register the server's embedded local array (every setting but CHAP comes from it).
    #[arg(long, conflicts_with_all = ["admin_host", "admin_user", "access_host", "access_port",
        "extra_info", "storage_type", "admin_password_stdin"])]
    pub embedded: bool,
    /// Plug-in class (CLASS or CLASS@VERSION), e.g. spindle.sim.SimArray.
    #[arg(long, value_name = "CLASS", requires = "admin_host")]
    pub plugin: Option<String>,
    /// Storage type, when the plug-in supports both.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub storage_type: Option<StorageTypeArg>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// `spindle server set`.
#[derive(Debug, Args)]
pub struct ServerSet {
    /// Name of the storage server in spindle.
    pub name: String,
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Stop requiring CHAP on the data path.
    #[arg(long, conflicts_with = "chap")]
    pub no_chap: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Register a storage server: validate, read its info, elements and groups.
    Add(Box<ServerAdd>),
    /// The registered storage servers.
    List,
    /// One storage server with its pools and access groups.
    Show {
        /// Its name (default: -S, or the only one registered).
        name: Option<String>,
    },
    /// Change a storage server's settings (CHAP and its secret, credentials, addresses,
    /// extra_info): the plug-in validates the new record before it is kept.
    Set(Box<ServerSet>),
    /// Re-read a storage server from its plug-in.
    Refresh {
        /// Its name (default: -S, or the only one registered).
        name: Option<String>,
    },
    /// Forget a storage server (nothing on the array changes).
    Remove {
        /// Its name.
        name: String,
    },
    /// What the array can do now (getCapabilities).
    Capabilities,
}

#[derive(Debug, Subcommand)]
pub enum LunCommand {
    /// Create a LUN.
    Create {
        /// Name of the new LUN.
        name: String,
        #[arg(long, value_parser = parse_size, allow_hyphen_values = true, value_name = "SIZE",
              help = SIZE_HELP)]
        size: i64,
        /// Pool (vol_group) to create it in (default: the only pool).
        #[arg(long, value_name = "POOL")]
        pool: Option<String>,
        /// Reserve the space now (default: thin).
        #[arg(long)]
        thick: bool,
        /// Quality-of-service value (see `spindle qos list`).
        #[arg(long, value_name = "VALUE")]
        qos: Option<String>,
    },
    /// LUNs and clones.
    List {
        /// Re-read them from the plug-in first.
        #[arg(long)]
        refresh: bool,
    },
    /// One LUN or clone, every field.
    Show {
        /// Name or uuid.
        name: String,
        /// Ask the plug-in first (getInfo).
        #[arg(long)]
        refresh: bool,
    },
    /// Grow or shrink a LUN.
    Resize {
        /// Name or uuid.
        name: String,
        #[arg(value_parser = parse_size, allow_hyphen_values = true, value_name = "SIZE",
              help = SIZE_HELP)]
        size: i64,
        /// Allow a smaller size: the data past it is lost (the array refuses it anyway while
        /// the LUN is presented and online). Without it spindle refuses a shrink.
        #[arg(long)]
        allow_shrink: bool,
    },
    /// Remove a LUN or clone (refused while presented or in use).
    Remove {
        /// Name or uuid.
        name: String,
    },
    /// Bring a LUN online.
    Online {
        /// Name or uuid.
        name: String,
    },
    /// Take a LUN offline.
    Offline {
        /// Name or uuid.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapCommand {
    /// Snapshot one LUN.
    Create {
        /// The LUN (name or uuid).
        lun: String,
        /// Name of the snapshot.
        name: String,
    },
    /// One consistent snapshot of several LUNs at once.
    Multi {
        /// Name of the snapshots.
        name: String,
        /// The LUNs (names or uuids).
        #[arg(required = true, num_args = 1..)]
        luns: Vec<String>,
    },
    /// Snapshots (all, or of one LUN).
    List {
        /// Only this LUN's snapshots.
        #[arg(long, value_name = "LUN")]
        lun: Option<String>,
    },
    /// Roll a LUN back to a snapshot.
    Restore {
        /// The snapshot (name or uuid).
        snap: String,
        /// Restore into this LUN (default: the snapshot's own LUN).
        #[arg(long, value_name = "LUN")]
        lun: Option<String>,
    },
    /// Remove a snapshot.
    Remove {
        /// The snapshot (name or uuid).
        snap: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CloneCommand {
    /// Clone a LUN (thin: shares blocks with it until split).
    Create {
        /// The LUN (name or uuid).
        lun: String,
        /// Name of the clone.
        name: String,
        /// Quality-of-service value.
        #[arg(long, value_name = "VALUE")]
        qos: Option<String>,
    },
    /// Clone a snapshot.
    FromSnap {
        /// The snapshot (name or uuid).
        snap: String,
        /// Name of the clone.
        name: String,
        /// Quality-of-service value.
        #[arg(long, value_name = "VALUE")]
        qos: Option<String>,
        /// Which of the snapshot's LUNs to clone (required when it covers several: `snap multi`).
        #[arg(long, value_name = "LUN")]
        lun: Option<String>,
    },
    /// Split a clone from its parent (a deep copy; always a job: followed unless --no-wait).
    Split {
        /// The clone (name or uuid).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create an access group.
    Create {
        /// Its name.
        name: String,
        /// Initiator names (iqn..., eui..., naa...) or WWNs (0x...).
        entries: Vec<String>,
    },
    /// Rename an access group.
    Rename {
        /// Current name.
        old: String,
        /// New name.
        new: String,
    },
    /// Add entries to an access group.
    Add {
        /// The group.
        name: String,
        /// Initiator names or WWNs.
        #[arg(required = true, num_args = 1..)]
        entries: Vec<String>,
    },
    /// Remove entries from an access group.
    RemoveEntries {
        /// The group.
        name: String,
        /// Initiator names or WWNs.
        #[arg(required = true, num_args = 1..)]
        entries: Vec<String>,
    },
    /// Remove an access group.
    Remove {
        /// The group.
        name: String,
    },
    /// The access groups.
    List,
}

/// `spindle present` / `spindle unpresent`.
#[derive(Debug, Args)]
pub struct PresentArgs {
    /// The LUN (name or uuid).
    pub lun: String,
    /// Access group names.
    #[arg(required = true, num_args = 1..)]
    pub groups: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum QosCommand {
    /// The array's quality-of-service values.
    List,
    /// Set a LUN's quality of service.
    Set {
        /// The LUN (name or uuid).
        lun: String,
        /// One of the values `spindle qos list` shows.
        value: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Jobs, newest first.
    List {
        /// Only those still running.
        #[arg(long)]
        running: bool,
    },
    /// One job.
    Show {
        /// Job id.
        id: String,
    },
    /// Follow a job until it has finished (exit code: the job's outcome).
    Watch {
        /// Job id.
        id: String,
    },
}

/// Reads a secret from stdin: one line, the trailing newline dropped.
fn read_secret_stdin(what: &str) -> Result<String, Failure> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading the {what} from stdin (it will be shown as you type; end with Enter and Ctrl-D)");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("cannot read the {what} from stdin: {e}")))?;
    let secret = text
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&text);
    if secret.is_empty() {
        return Err(Failure::usage(format!("the {what} read from stdin is empty")));
    }
    if secret.contains('\n') {
        return Err(Failure::usage(format!(
            "the {what} read from stdin has more than one line"
        )));
    }
    Ok(secret.to_string())
}

/// One administrator's command being carried out.
struct Ctx<'a> {
    client: Client,
    opts: &'a ClientArgs,
    output: Output,
}

/// Runs one administrator's command; prints its result on stdout.
pub fn run(cmd: AdminCommand, opts: &ClientArgs, output: Output) -> Result<(), Failure> {
    let (client, source): (Client, TokenSource) = opts.connect()?;
    let ctx = Ctx { client, opts, output };
    ctx.dispatch(cmd).map_err(|f| {
        if f.code == exit::UNAUTHORIZED && f.hint.is_none() {
            f.with_hint(token_hint(&source))
        } else {
            f
        }
    })
}

impl Ctx<'_> {
    fn server(&self) -> Result<String, Failure> {
        pick_server(&self.client, None, self.opts.server.as_deref())
    }

    /// Prints a view: the exact JSON, or `render` for people.
    fn show(&self, v: &Value, render: fn(&Value) -> String) {
        match self.output {
            Output::Json => println!("{v}"),
            Output::Table => print!("{}", render(v)),
        }
    }

    /// Prints what a mutating route answered, following a job unless --no-wait.
    fn reply(&self, reply: Reply, render: fn(&Value) -> String, done: &str) -> Result<(), Failure> {
        match reply {
            Reply::Value(v) => {
                self.show(&v, render);
                Ok(())
            }
            Reply::Empty => {
                if self.output == Output::Table {
                    println!("{done}");
                }
                Ok(())
            }
            Reply::Job(job) if self.opts.no_wait => {
                match self.output {
                    Output::Json => println!("{}", json!({ "job": job.raw })),
                    Output::Table => {
                        println!("{}", job.id);
                        eprintln!(
                            "job {} {}; follow it with `spindle job watch {}`",
                            job.id,
                            job.state.as_str(),
                            job.id
                        );
                    }
                }
                Ok(())
            }
            Reply::Job(job) => self.follow(*job, render),
        }
    }

    /// Follows a job to its end and prints the outcome.
    fn follow(&self, job: Job, render: fn(&Value) -> String) -> Result<(), Failure> {
        let job = jobs::follow(&self.client, job)?;
        match job.state {
            JobState::Failed => {
                let mut body = job.error.clone().unwrap_or_else(|| spindle_client::ErrorBody {
                    code: "internal".into(),
                    exception: None,
                    message: "the job failed without saying why".into(),
                    key: None,
                    call_id: job.call_id.clone(),
                });
                body.message = format!("job {} failed: {}", job.id, body.message);
                if body.call_id.is_none() {
                    body.call_id = job.call_id.clone();
                }
                Err(Failure::from_body(body))
            }
            _ => {
                match (self.output, &job.result) {
                    (Output::Json, _) => println!("{}", job.raw),
                    (Output::Table, Some(result)) if !result.is_null() => print!("{}", render(result)),
                    (Output::Table, _) => print!("{}", views::job_detail(&job.raw)),
                }
                Ok(())
            }
        }
    }

    fn dispatch(&self, cmd: AdminCommand) -> Result<(), Failure> {
        let c = &self.client;
        match cmd {
            AdminCommand::Server(cmd) => self.server_cmd(cmd),
            AdminCommand::Lun(cmd) => self.lun_cmd(cmd),
            AdminCommand::Snap(cmd) => self.snap_cmd(cmd),
            AdminCommand::CloneCmd(cmd) => self.clone_cmd(cmd),
            AdminCommand::Group(cmd) => self.group_cmd(cmd),
            AdminCommand::Present(a) => {
                let s = self.server()?;
                self.reply(c.present(&s, &a.lun, &a.groups)?, views::elements, "")
            }
            AdminCommand::Unpresent(a) => {
                let s = self.server()?;
                self.reply(c.unpresent(&s, &a.lun, &a.groups)?, views::elements, "")
            }
            AdminCommand::Qos(QosCommand::List) => {
                let s = self.server()?;
                self.show(&c.qos_list(&s)?, views::qos);
                Ok(())
            }
            AdminCommand::Qos(QosCommand::Set { lun, value }) => {
                let s = self.server()?;
                self.reply(c.set_qos(&s, &lun, &value)?, views::elements, "")
            }
            AdminCommand::Job(JobCommand::List { running }) => {
                self.show(&c.jobs(running)?, views::jobs);
                Ok(())
            }
            AdminCommand::Job(JobCommand::Show { id }) => {
                self.show(&c.job(&id)?.raw, views::job_detail);
                Ok(())
            }
            AdminCommand::Job(JobCommand::Watch { id }) => {
                let job = c.job(&id)?;
                self.follow(job, views::elements)
            }
            AdminCommand::Audit { limit } => {
                self.show(&c.audit(limit)?, views::audit);
                Ok(())
            }
        }
    }

    fn server_cmd(&self, cmd: ServerCommand) -> Result<(), Failure> {
        let c = &self.client;
        let option = self.opts.server.as_deref();
        match cmd {
            ServerCommand::Add(a) => {
                let a = *a;
                let new = NewServer {
                    name: a.name,
                    plugin: a.plugin,
                    storage_type: a.storage_type.map(|t| {
                        match t {
                            StorageTypeArg::Iscsi => "iSCSIStorage",
                            StorageTypeArg::San => "SANStorage",
                        }
                        .to_string()
                    }),
                    settings: a.settings.read(false)?,
                    embedded: a.embedded,
                };
                self.reply(c.add_server(&new)?, views::server_detail, "")
            }
            ServerCommand::List => {
                self.show(&c.servers()?, views::servers);
                Ok(())
            }
            ServerCommand::Show { name } => {
                let s = pick_server(c, name.as_deref(), option)?;
                self.show(&c.server(&s)?, views::server_detail);
                Ok(())
            }
            ServerCommand::Set(a) => {
                let a = *a;
                let settings = a.settings.read(a.no_chap)?;
                self.reply(c.update_server(&a.name, &settings)?, views::server_detail, "")
            }
            ServerCommand::Refresh { name } => {
                let s = pick_server(c, name.as_deref(), option)?;
                self.reply(c.refresh_server(&s)?, views::server_detail, "")
            }
            ServerCommand::Remove { name } => self.reply(
                c.remove_server(&name)?,
                views::server_detail,
                &format!("storage server '{name}' forgotten (nothing on the array was changed)"),
            ),
            ServerCommand::Capabilities => {
                let s = self.server()?;
                self.show(&c.capabilities(&s)?, views::abilities);
                Ok(())
            }
        }
    }

    fn lun_cmd(&self, cmd: LunCommand) -> Result<(), Failure> {
        let c = &self.client;
        let s = self.server()?;
        match cmd {
            LunCommand::Create {
                name,
                size,
                pool,
                thick,
                qos,
            } => {
                let lun = NewLun {
                    name,
                    size,
                    vol_group: pool,
                    thin: !thick,
                    qos,
                };
                let thin = lun.thin;
                let reply = c.create_lun(&s, &lun)?;
                note_size_given(&reply, size);
                if thin {
                    note_overcommitted(c, &s, &reply);
                }
                self.reply(reply, views::elements, "")
            }
            LunCommand::List { refresh } => {
                self.show(&c.luns(&s, refresh)?, views::elements);
                Ok(())
            }
            LunCommand::Show { name, refresh } => {
                self.show(&c.lun(&s, &name, refresh)?, views::element_detail);
                Ok(())
            }
            LunCommand::Resize {
                name,
                size,
                allow_shrink,
            } => {
                // The server decides what is a shrink (under its lock, with the arrays'
                // rounding); the CLI only says, on its refusal, what would be lost and how to
                // ask for it.
                let reply = match c.resize_lun(&s, &name, size, allow_shrink) {
                    Ok(reply) => reply,
                    Err(e) if is_shrink_refusal(&e) => {
                        let now = lun_size(c, &s, &name);
                        return Err(Failure::from(e).reworded(shrink_refusal(&name, now, size)));
                    }
                    Err(e) => return Err(e.into()),
                };
                note_size_given(&reply, size);
                self.reply(reply, views::elements, "")
            }
            LunCommand::Remove { name } => self.reply(
                c.remove_lun(&s, &name)?,
                views::elements,
                // `lun` commands take clones too: the element is named, not its kind.
                &format!("'{}' removed", views::terminal_safe(&name)),
            ),
            LunCommand::Online { name } => self.reply(c.online(&s, &name)?, views::elements, ""),
            LunCommand::Offline { name } => self.reply(c.offline(&s, &name)?, views::elements, ""),
        }
    }

    fn snap_cmd(&self, cmd: SnapCommand) -> Result<(), Failure> {
        let c = &self.client;
        let s = self.server()?;
        match cmd {
            SnapCommand::Create { lun, name } => {
                self.reply(c.create_snapshot(&s, &lun, &name)?, views::snapshots, "")
            }
            SnapCommand::Multi { name, luns } => {
                self.reply(c.create_multi_snapshot(&s, &luns, &name)?, views::snapshots, "")
            }
            SnapCommand::List { lun } => {
                self.show(&c.snapshots(&s, lun.as_deref())?, views::snapshots);
                Ok(())
            }
            SnapCommand::Restore { snap, lun } => {
                // A restore brings the LUN back to the snapshot's size too: said, since it
                // may differ from the size the LUN has now (a LUN grown since).
                let before = restored_lun(c, &s, &snap, lun.as_deref())
                    .and_then(|l| lun_size(c, &s, &l).map(|size| (l, size)));
                let reply = c.restore_snapshot(&s, &snap, lun.as_deref())?;
                if let Some((name, was)) = before {
                    note_size_restored(&reply, &name, was);
                }
                self.reply(reply, views::elements, &format!("snapshot '{snap}' restored"))
            }
            SnapCommand::Remove { snap } => self.reply(
                c.remove_snapshot(&s, &snap)?,
                views::snapshots,
                &format!("snapshot '{snap}' removed"),
            ),
        }
    }

    fn clone_cmd(&self, cmd: CloneCommand) -> Result<(), Failure> {
        let c = &self.client;
        let s = self.server()?;
        match cmd {
            CloneCommand::Create { lun, name, qos } => {
                self.reply(c.clone_lun(&s, &lun, &name, qos.as_deref())?, views::elements, "")
            }
            CloneCommand::FromSnap { snap, name, qos, lun } => self.reply(
                c.clone_snapshot(&s, &snap, &name, qos.as_deref(), lun.as_deref())?,
                views::elements,
                "",
            ),
            CloneCommand::Split { name } => self.reply(
                c.split(&s, &name)?,
                views::elements,
                &format!("clone '{name}' split"),
            ),
        }
    }

    fn group_cmd(&self, cmd: GroupCommand) -> Result<(), Failure> {
        let c = &self.client;
        let s = self.server()?;
        match cmd {
            GroupCommand::Create { name, entries } => {
                let reply = c.create_group(&s, &name, &entries)?;
                note_entries_kept_as(&reply, &entries);
                self.reply(reply, views::groups, "")
            }
            GroupCommand::Rename { old, new } => {
                self.reply(c.rename_group(&s, &old, &new)?, views::groups, "")
            }
            GroupCommand::Add { name, entries } => {
                let reply = c.add_group_entries(&s, &name, &entries)?;
                note_entries_kept_as(&reply, &entries);
                self.reply(reply, views::groups, "")
            }
            GroupCommand::RemoveEntries { name, entries } => {
                self.reply(c.remove_group_entries(&s, &name, &entries)?, views::groups, "")
            }
            GroupCommand::Remove { name } => self.reply(
                c.remove_group(&s, &name)?,
                views::groups,
                &format!("access group '{name}' removed"),
            ),
            GroupCommand::List => {
                self.show(&c.groups(&s)?, views::groups);
                Ok(())
            }
        }
    }
}

/// Whether the server refused a resize because it shrinks the LUN and the shrink was not
/// allowed (its refusal names the missing decision, key `allow_shrink`).
fn is_shrink_refusal(e: &spindle_client::Error) -> bool {
    matches!(e, spindle_client::Error::Api { body, .. } if body.key.as_deref() == Some("allow_shrink"))
}

/// A refused shrink in the command's terms: the sizes from and to (`now` when it could be
/// read), in bytes when rounded they look the same (the array rounds sizes up to its unit), and
/// the flag that does it on purpose.
fn shrink_refusal(name: &str, now: Option<i64>, size: i64) -> String {
    let name = views::terminal_safe(name);
    match now {
        Some(now) if format_size(now) == format_size(size) => format!(
            "resizing '{name}' from {now} to {size} bytes would drop the data past byte {size} (arrays round sizes up to their allocation unit); add --allow-shrink to do it on purpose"
        ),
        Some(now) => format!(
            "resizing '{name}' from {} to {} would drop the data past {}; add --allow-shrink to do it on purpose",
            format_size(now),
            format_size(size),
            format_size(size)
        ),
        None => format!(
            "resizing '{name}' to {} would drop the data past it; add --allow-shrink to do it on purpose",
            format_size(size)
        ),
    }
}

/// Says on standard error when a thin LUN is larger than its whole pool: allowed (thin LUNs
/// take blocks as they are written), but writes fail once the pool is full, and an
/// administrator who typed `100T` for `100G` should hear of it at once.
fn note_overcommitted(c: &Client, server: &str, reply: &Reply) {
    let Reply::Value(v) = reply else { return };
    let (Some(size), Some(pool)) = (
        v.get("size").and_then(Value::as_i64),
        v.get("vol_group_name").and_then(Value::as_str),
    ) else {
        return;
    };
    let Ok(srv) = c.server(server) else { return };
    let total = srv
        .get("vol_groups")
        .and_then(Value::as_array)
        .and_then(|pools| {
            pools
                .iter()
                .find(|p| p.get("vol_name").and_then(Value::as_str) == Some(pool))
        })
        .and_then(|p| p.get("vol_total_sz"))
        .and_then(Value::as_i64);
    if let Some(total) = total.filter(|t| *t > 0 && size > *t) {
        eprintln!(
            "note: thin LUN '{}' ({}) is larger than its whole pool '{}' ({}): writes fail once the pool is full",
            views::terminal_safe(v.get("name").and_then(Value::as_str).unwrap_or_default()),
            format_size(size),
            views::terminal_safe(pool),
            format_size(total)
        );
    }
}

/// Says on standard error which initiator names the array keeps in another spelling than the
/// one given (iSCSI names are not case-sensitive: `IQN.…:HOST-A` is kept as `iqn.…:host-a`),
/// so that nobody looks for the one typed.
fn note_entries_kept_as(reply: &Reply, given: &[String]) {
    let Reply::Value(v) = reply else { return };
    let groups: Vec<&Value> = match v {
        Value::Array(all) => all.iter().collect(),
        one => vec![one],
    };
    let kept: Vec<&str> = groups
        .iter()
        .filter_map(|g| g.get("grp_entries").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for entry in given {
        if kept.contains(&entry.as_str()) {
            continue;
        }
        if let Some(k) = kept.iter().find(|k| k.eq_ignore_ascii_case(entry)) {
            eprintln!(
                "note: initiator '{}' is kept as '{}' (iSCSI names are not case-sensitive)",
                views::terminal_safe(entry),
                views::terminal_safe(k)
            );
        }
    }
}

/// The size of `lun` as the server last read it, if it can be had.
fn lun_size(c: &Client, server: &str, lun: &str) -> Option<i64> {
    c.lun(server, lun, false).ok()?.get("size")?.as_i64()
}

/// Says on standard error when a restore brought `name` back to another size than the one
/// it had (`was`): the snapshot's.
fn note_size_restored(reply: &Reply, name: &str, was: i64) {
    let Reply::Value(v) = reply else { return };
    if let Some(now) = v.get("size").and_then(Value::as_i64).filter(|now| *now != was) {
        eprintln!(
            "note: '{}' is back to the snapshot's size, {} (it was {})",
            views::terminal_safe(name),
            format_size(now),
            format_size(was)
        );
    }
}

/// The LUN a restore of `snap` brings back: `lun` when given, else the snapshot's one parent
/// (`None` when it covers several, or cannot be read).
fn restored_lun(c: &Client, server: &str, snap: &str, lun: Option<&str>) -> Option<String> {
    if let Some(l) = lun {
        return Some(l.to_string());
    }
    let all = c.snapshots(server, None).ok()?;
    let found = all.as_array()?.iter().find(|v| {
        v.get("name").and_then(Value::as_str) == Some(snap)
            || v.get("uuid").and_then(Value::as_str) == Some(snap)
    })?;
    match found.get("parents")?.as_array()?.as_slice() {
        [one] => one.as_str().map(str::to_string),
        _ => None,
    }
}

/// Says so on standard error when the array gave a LUN another size than the one asked for
/// (arrays allocate in whole units: the Linux array in MiB), so that nobody is surprised by
/// the size an initiator reads.
fn note_size_given(reply: &Reply, asked: i64) {
    let Reply::Value(v) = reply else { return };
    let Some(given) = v.get("size").and_then(Value::as_i64) else {
        return;
    };
    if given != asked {
        eprintln!(
            "note: the array made it {} ({given} bytes), not the {asked} bytes asked for (it allocates in whole units)",
            format_size(given)
        );
    }
}
