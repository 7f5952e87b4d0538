//! The one request vocabulary of spindle's management core. Every transport (HTTP, and any
//! future one) turns a request into one [`Action`] and hands it to
//! [`Service::handle`](crate::Service::handle); the core answers with one [`Reply`] or one
//! [`ServiceError`]. Nothing here knows about HTTP.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an administrator asks for. Names, not uuids: `server` is a storage server's name;
/// `lun` / `snap` are an element's name or uuid; `group` an access group's name.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    // ---- plug-ins and storage servers ----
    /// The installed plug-ins.
    ListPlugins,
    /// The registered storage servers.
    ListServers,
    /// Register a storage server: validate, getInfo, then read elements and groups.
    AddServer(AddServer),
    /// One storage server.
    ShowServer { server: String },
    /// Change a storage server's settings (CHAP, credentials, addresses, extra_info): the new
    /// ss_record is validated by the plug-in before it is kept, then the server is re-read.
    UpdateServer(UpdateServer),
    /// Re-read a storage server from its plug-in.
    RefreshServer { server: String },
    /// Forget a storage server (nothing on the array changes).
    RemoveServer { server: String },
    /// getCapabilities.
    Capabilities { server: String },

    // ---- LUNs and clones ----
    /// LUNs and clones (from the stored records; `refresh` re-reads first).
    ListLuns { server: String, refresh: bool },
    /// create.
    CreateLun(CreateLun),
    /// One LUN or clone (`refresh`: getInfo(se) first).
    ShowLun {
        server: String,
        lun: String,
        refresh: bool,
    },
    /// remove.
    RemoveLun { server: String, lun: String },
    /// resize. A `size` below the LUN's current size drops the data past it, so it is refused
    /// unless `allow_shrink` says the shrink is meant.
    ResizeLun {
        server: String,
        lun: String,
        size: i64,
        allow_shrink: bool,
    },
    /// online.
    Online { server: String, lun: String },
    /// offline.
    Offline { server: String, lun: String },
    /// startPresent.
    Present {
        server: String,
        lun: String,
        groups: Vec<String>,
    },
    /// stopPresent.
    Unpresent {
        server: String,
        lun: String,
        groups: Vec<String>,
    },
    /// setQoS.
    SetQos { server: String, lun: String, qos: Value },
    /// clone (a LUN or clone).
    Clone {
        server: String,
        lun: String,
        name: String,
        qos: Option<Value>,
    },
    /// splitClone: always a job.
    Split { server: String, lun: String },

    // ---- snapshots ----
    /// Snapshots (all, or of one LUN).
    ListSnapshots { server: String, lun: Option<String> },
    /// createSnap.
    CreateSnapshot {
        server: String,
        lun: String,
        name: String,
    },
    /// createMultiSnap.
    CreateMultiSnapshot {
        server: String,
        luns: Vec<String>,
        name: String,
    },
    /// snapRemove.
    RemoveSnapshot { server: String, snap: String },
    /// snapRestore (`lun`: restore into that element).
    RestoreSnapshot {
        server: String,
        snap: String,
        lun: Option<String>,
    },
    /// cloneFromSnap. `lun`: which of the snapshot's LUNs to clone (required when it covers
    /// several, a createMultiSnap snapshot).
    CloneSnapshot {
        server: String,
        snap: String,
        name: String,
        qos: Option<Value>,
        lun: Option<String>,
    },

    // ---- access groups ----
    /// The access groups.
    ListGroups { server: String },
    /// createAccessGroups (one group).
    CreateGroup {
        server: String,
        name: String,
        entries: Vec<String>,
    },
    /// removeAccessGroups (one group).
    RemoveGroup { server: String, group: String },
    /// renameAccessGroup.
    RenameGroup {
        server: String,
        group: String,
        new_name: String,
    },
    /// addToAccessGroup.
    AddGroupEntries {
        server: String,
        group: String,
        entries: Vec<String>,
    },
    /// removeFromAccessGroup.
    RemoveGroupEntries {
        server: String,
        group: String,
        entries: Vec<String>,
    },

    // ---- QoS, jobs, audit ----
    /// getQoSList.
    ListQos { server: String },
    /// Jobs, newest first (`running_only`: only those still running).
    ListJobs { running_only: bool },
    /// One job.
    ShowJob { id: String },
    /// The audit log, newest first.
    ListAudit { limit: u32 },
}

impl Action {
    /// Whether the action changes anything (such actions are audited and serialised per server).
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            Action::ListPlugins
                | Action::ListServers
                | Action::ShowServer { .. }
                | Action::Capabilities { .. }
                | Action::ListLuns { .. }
                | Action::ShowLun { .. }
                | Action::ListSnapshots { .. }
                | Action::ListGroups { .. }
                | Action::ListQos { .. }
                | Action::ListJobs { .. }
                | Action::ShowJob { .. }
                | Action::ListAudit { .. }
        )
    }

    /// Whether the action, when it succeeds, changes the space the array uses or has free
    /// (its totals are then re-read).
    pub fn changes_space(&self) -> bool {
        matches!(
            self,
            Action::CreateLun(_)
                | Action::RemoveLun { .. }
                | Action::ResizeLun { .. }
                | Action::Clone { .. }
                | Action::Split { .. }
                | Action::CreateSnapshot { .. }
                | Action::CreateMultiSnapshot { .. }
                | Action::RemoveSnapshot { .. }
                | Action::RestoreSnapshot { .. }
                | Action::CloneSnapshot { .. }
        )
    }

    /// Whether the action hands the plug-in records spindle stored (an element's or a
    /// group's): a value the array then refuses may be one spindle's records are behind on.
    pub fn sends_stored_records(&self) -> bool {
        matches!(
            self,
            Action::RemoveLun { .. }
                | Action::ResizeLun { .. }
                | Action::Online { .. }
                | Action::Offline { .. }
                | Action::Present { .. }
                | Action::Unpresent { .. }
                | Action::SetQos { .. }
                | Action::Clone { .. }
                | Action::Split { .. }
                | Action::CreateSnapshot { .. }
                | Action::CreateMultiSnapshot { .. }
                | Action::RemoveSnapshot { .. }
                | Action::RestoreSnapshot { .. }
                | Action::CloneSnapshot { .. }
                | Action::RemoveGroup { .. }
                | Action::RenameGroup { .. }
                | Action::AddGroupEntries { .. }
                | Action::RemoveGroupEntries { .. }
        )
    }

    /// A short dotted name for audit entries, logs and metrics (`lun.create`).
    pub fn name(&self) -> &'static str {
        match self {
            Action::ListPlugins => "plugin.list",
            Action::ListServers => "server.list",
            Action::AddServer(_) => "server.add",
            Action::UpdateServer(_) => "server.update",
            Action::ShowServer { .. } => "server.show",
            Action::RefreshServer { .. } => "server.refresh",
            Action::RemoveServer { .. } => "server.remove",
            Action::Capabilities { .. } => "server.capabilities",
            Action::ListLuns { .. } => "lun.list",
            Action::CreateLun(_) => "lun.create",
            Action::ShowLun { .. } => "lun.show",
            Action::RemoveLun { .. } => "lun.remove",
            Action::ResizeLun { .. } => "lun.resize",
            Action::Online { .. } => "lun.online",
            Action::Offline { .. } => "lun.offline",
            Action::Present { .. } => "lun.present",
            Action::Unpresent { .. } => "lun.unpresent",
            Action::SetQos { .. } => "lun.qos",
            Action::Clone { .. } => "clone.create",
            Action::Split { .. } => "clone.split",
            Action::ListSnapshots { .. } => "snapshot.list",
            Action::CreateSnapshot { .. } => "snapshot.create",
            Action::CreateMultiSnapshot { .. } => "snapshot.multi",
            Action::RemoveSnapshot { .. } => "snapshot.remove",
            Action::RestoreSnapshot { .. } => "snapshot.restore",
            Action::CloneSnapshot { .. } => "clone.from_snapshot",
            Action::ListGroups { .. } => "group.list",
            Action::CreateGroup { .. } => "group.create",
            Action::RemoveGroup { .. } => "group.remove",
            Action::RenameGroup { .. } => "group.rename",
            Action::AddGroupEntries { .. } => "group.add_entries",
            Action::RemoveGroupEntries { .. } => "group.remove_entries",
            Action::ListQos { .. } => "qos.list",
            Action::ListJobs { .. } => "job.list",
            Action::ShowJob { .. } => "job.show",
            Action::ListAudit { .. } => "audit.list",
        }
    }

    /// The storage server the action concerns, if any.
    pub fn server(&self) -> Option<&str> {
        match self {
            Action::ListPlugins
            | Action::ListServers
            | Action::ListJobs { .. }
            | Action::ShowJob { .. }
            | Action::ListAudit { .. } => None,
            Action::AddServer(a) => Some(&a.name),
            Action::UpdateServer(u) => Some(&u.server),
            Action::CreateLun(c) => Some(&c.server),
            Action::ShowServer { server }
            | Action::RefreshServer { server }
            | Action::RemoveServer { server }
            | Action::Capabilities { server }
            | Action::ListLuns { server, .. }
            | Action::ShowLun { server, .. }
            | Action::RemoveLun { server, .. }
            | Action::ResizeLun { server, .. }
            | Action::Online { server, .. }
            | Action::Offline { server, .. }
            | Action::Present { server, .. }
            | Action::Unpresent { server, .. }
            | Action::SetQos { server, .. }
            | Action::Clone { server, .. }
            | Action::Split { server, .. }
            | Action::ListSnapshots { server, .. }
            | Action::CreateSnapshot { server, .. }
            | Action::CreateMultiSnapshot { server, .. }
            | Action::RemoveSnapshot { server, .. }
            | Action::RestoreSnapshot { server, .. }
            | Action::CloneSnapshot { server, .. }
            | Action::ListGroups { server }
            | Action::CreateGroup { server, .. }
            | Action::RemoveGroup { server, .. }
            | Action::RenameGroup { server, .. }
            | Action::AddGroupEntries { server, .. }
            | Action::RemoveGroupEntries { server, .. }
            | Action::ListQos { server } => Some(server),
        }
    }
}

/// The settings of a storage server an administrator gives (`None`: not given): the fields of
/// its ss_record that say how to reach and log in to the array.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    #[serde(default)]
    pub admin_host: Option<String>,
    #[serde(default)]
    pub admin_user: Option<String>,
    #[serde(default)]
    pub admin_passwd: Option<String>,
    #[serde(default)]
    pub access_host: Option<String>,
    #[serde(default)]
    pub access_port: Option<i64>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub passwd: Option<String>,
    #[serde(default)]
    pub chap: Option<bool>,
    #[serde(default)]
    pub extra_info: Option<String>,
}

impl ServerSettings {
    /// The settings given, as ss_record entries (`access_port` as the string the guides use).
    pub fn entries(&self) -> Vec<(&'static str, Value)> {
        let text = |v: &Option<String>| v.clone().map(Value::String);
        [
            ("admin_host", text(&self.admin_host)),
            ("admin_user", text(&self.admin_user)),
            ("admin_passwd", text(&self.admin_passwd)),
            ("access_host", text(&self.access_host)),
            (
                "access_port",
                self.access_port.map(|p| Value::String(p.to_string())),
            ),
            ("username", text(&self.username)),
            ("passwd", text(&self.passwd)),
            ("chap", self.chap.map(Value::Bool)),
            ("extra_info", text(&self.extra_info)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }
}

/// Register a storage server (`POST /v1/servers`). With `embedded`, every field but `name`
/// and the data path's CHAP (`chap`, `username`, `passwd`) comes from the embedded local
/// array the service was started with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddServer {
    pub name: String,
    #[serde(default)]
    pub plugin: Option<String>,
    #[serde(default)]
    pub storage_type: Option<String>,
    #[serde(default)]
    pub settings: ServerSettings,
    #[serde(default)]
    pub embedded: bool,
}

/// Change a storage server's settings (`POST /v1/servers/{server}/settings`): each field given
/// replaces the stored one; the rest are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateServer {
    pub server: String,
    #[serde(default)]
    pub settings: ServerSettings,
    /// Set only by `spindle serve` bringing a registration of the embedded array to its
    /// flags ([`crate::Service::adopt_embedded`]): those settings may be changed only that way.
    #[serde(skip)]
    pub from_embedded_flags: bool,
}

/// Create a LUN (`POST /v1/servers/{server}/luns`).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateLun {
    pub server: String,
    pub name: String,
    pub size: i64,
    /// Defaults to the server's only pool.
    pub vol_group: Option<String>,
    /// Default true.
    pub thin: bool,
    pub qos: Option<Value>,
}

/// What the core answers. Each variant is already the JSON view the documentation describes
/// (`docs/http-api.md`); the transport only chooses the status code.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Something was created (201).
    Created(Value),
    /// A view or a list (200).
    Done(Value),
    /// Nothing to return (204).
    Nothing,
    /// An asynchronous operation became a job (202): the JobView.
    Job(Value),
}

/// Who asks, and under which call id: carried from the transport into logs, the plug-in's
/// call, the audit entry and the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub call_id: String,
    /// Token name (`admin`).
    pub who: String,
    /// Peer address, as the transport saw it.
    pub remote: String,
}
