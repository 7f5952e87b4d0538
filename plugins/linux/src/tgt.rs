//! Serving the export plan: the array's tgtd instance is started when it is not running and
//! brought to the array's [`ExportPlan`] (see [`sync`]).
//!
//! The array program runs once per request, so what tgtd was given is remembered in the state
//! directory (`tgt-state.json`, mode 0600, no secret in it): which tgtd instance it was (the
//! identity of its management socket, which tgtd re-creates whenever it starts), the target
//! ids (so a restarted tgtd gives every target its old tid back, and with it tgt's NAA-3
//! designator), the backing-file generation of every logical unit, which CHAP secret the
//! account was created with (the identity of the 0600 secret file, which `set-chap` replaces),
//! a fingerprint of the last plan applied cleanly, and the configuration in force (the one
//! of the latest request; [`latest_config`]).
//!
//! # When the settings change
//! A request whose configuration differs from the one in force makes it the one in force
//! first. A new portal moves tgtd: a running tgtd cannot change its portal, so one serving
//! only this array's targets is stopped and started again there, and reconciled
//! (`move_portal`); one that also serves other arrays is left alone, with an error naming
//! them. Another tgtd instance (`tgt_control`, `tgt_socket`) or target prefix takes the
//! array's targets out of the old instance, which stops when it then serves nothing
//! (`leave`).
//!
//! # One reconciler, next to the array's state
//! This is the only reconciler of tgtd in spindle; `spindle-tgt` supplies the typed
//! [`Tgtadm`] client, the parsed listings and [`spindle_tgt::lun_mismatch`], not a policy. The
//! rules (owned prefix only, revoke before grant, the ACL of a new target last, address rules
//! removed, never added) live here because what "correct" means depends on the array's
//! state, which only this module has:
//! - one element presented to several access groups is one logical unit in several targets,
//!   with the same `scsi_id`, `scsi_sn` and backing file (a host reaching it through two
//!   targets must see one device);
//! - a logical unit whose backing file was replaced (restore, split: a new
//!   `backing_generation`) is deleted and added again with the same LUN and identity, since
//!   tgtd keeps the old file open;
//! - a CHAP account this array created in this tgtd instance with the current secret is kept
//!   (tgtd never reveals secrets, and the array program runs once per request, so that
//!   knowledge has to come from the state directory); when the account has to be re-created,
//!   a placeholder account with a random secret stays bound meanwhile, so no target ever
//!   accepts a login without CHAP.
//!
//! # Modes
//! [`SyncMode::Full`] (after every request that changes exports or backing files, and
//! `export-sync`) reads tgtd's state and corrects everything. [`SyncMode::Check`] (every other
//! request) only makes sure tgtd listens (one `show sys` round trip on its management socket,
//! which a killed tgtd's leftover socket refuses; never a bare connect-and-close, see
//! [`spindle_tgt::Tgtadm::is_listening`]), is the instance
//! last configured (the identity of that socket), and that the plan has not changed since it
//! was last applied (its fingerprint); otherwise it does a full sync. So after tgtd dies (even
//! SIGKILL), any request brings back every target, ACL, account, LUN, identity and online
//! state. In the resident program, whose watch asks tgtd the same question every
//! [`crate::daemon::TGTD_WATCH_INTERVAL`] and brings a killed one back with nobody calling,
//! those requests sync in [`SyncMode::Recorded`], which checks all of that but the question.

use crate::config::{ArrayConfig, TgtSettings};
use crate::engine::Engine;
use crate::error::{Error, IoContext, Result};
use crate::export::{ExportPlan, LunPlan};
use crate::fsops;
use crate::model::ChapAccount;
use crate::names::{shown, shown_path};
use serde::{Deserialize, Serialize};
use spindle_tgt::{
    tgt_size_mb, BackingPath, CachePolicy, InitiatorAddress, Iqn, LunSpec, ProductId, ScsiId, ScsiSn, Secret,
    TargetInfo, TgtError, Tgtadm, UserName, VendorId,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs tgtd.
pub const TGTD: &str = "/usr/sbin/tgtd";
/// Where Debian installs tgtadm.
pub const TGTADM: &str = "/usr/sbin/tgtadm";
/// The record of what tgtd was given, in the state directory.
pub const RECORD_FILE: &str = "tgt-state.json";
/// How long a starting tgtd may take to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How thoroughly [`sync`] works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Read tgtd's state and correct everything.
    Full,
    /// Correct only when tgtd is not the instance last configured or the plan changed.
    Check,
    /// [`SyncMode::Check`] without asking tgtd whether it still listens, when the record says
    /// the plan was applied to the instance whose socket is there: for the resident program,
    /// whose watch asks every [`crate::daemon::TGTD_WATCH_INTERVAL`] and brings a killed tgtd
    /// back with nobody calling. The question is a round trip through tgtd's event loop, a
    /// quarter of a millisecond on the reference machine: a fifth of what a create through the
    /// plug-in added to the durable create itself. Anything else is checked as by `Check`.
    Recorded,
}

/// What a sync did. Never carries a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// tgtd's control port.
    pub control_port: u16,
    /// The portal.
    pub portal: String,
    /// tgtd was not running and this request started it (pid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u32>,
    /// tgtd's state was read and corrected.
    pub reconciled: bool,
    /// Changes made, in order.
    pub actions: Vec<String>,
    /// Changes that failed.
    pub failures: Vec<String>,
    /// The tid of every target of the plan that exists now.
    pub tids: BTreeMap<String, u32>,
}

impl SyncReport {
    /// Nothing failed.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }

    /// What a check found and corrected, for an administrator, when it found tgtd not serving
    /// the recorded exports (dead, or changed behind the array's back); `None` when tgtd
    /// served them as recorded.
    pub fn corrections(&self) -> Option<String> {
        if self.actions.is_empty() && self.started.is_none() {
            return None;
        }
        Some(format!(
            "tgtd on control port {} did not serve the array's exports as recorded{}; corrected: {}",
            self.control_port,
            self.started
                .map(|pid| format!(" (not running: started again, pid {pid})"))
                .unwrap_or_default(),
            if self.actions.is_empty() {
                "nothing else".to_string()
            } else {
                self.actions.join("; ")
            }
        ))
    }
}

/// The state of the export layer, for `getInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TgtStatus {
    /// tgtd's control port.
    pub control_port: u16,
    /// The portal.
    pub portal: String,
    /// tgtd answers.
    pub running: bool,
    /// The portals tgtd listens on, when it answers (a tgtd started with another portal keeps
    /// it until the next request moves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listening: Option<Vec<String>>,
    /// `tgtadm --version`, when it runs.
    pub version: Option<String>,
}

impl TgtStatus {
    /// tgtd answers but listens elsewhere than on the configured portal: what it listens on.
    pub fn elsewhere(&self) -> Option<String> {
        let l = self.listening.as_ref()?;
        (self.running && l != std::slice::from_ref(&self.portal)).then(|| listed(l))
    }
}

/// Portals as a message lists them ("nothing" for none).
fn listed(portals: &[String]) -> String {
    if portals.is_empty() {
        "nothing".to_string()
    } else {
        portals.join(", ")
    }
}

/// One logical unit as last applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AppliedLun {
    element: String,
    generation: u64,
}

/// What tgtd was given, kept between requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// The tgtd instance (identity of its management socket).
    #[serde(default)]
    instance: Option<String>,
    /// Fingerprint of the last plan applied without failures to that instance.
    #[serde(default)]
    fingerprint: Option<String>,
    /// Target ids by target name.
    #[serde(default)]
    tids: BTreeMap<String, u32>,
    /// Logical units by `"<target> <lun>"`.
    #[serde(default)]
    luns: BTreeMap<String, AppliedLun>,
    /// The CHAP account created in that instance: user name and secret-file identity.
    #[serde(default)]
    account: Option<(String, String)>,
    /// The tgtd this array started last.
    #[serde(default)]
    tgtd_pid: Option<u32>,
    /// [`quick_fingerprint`] when `fingerprint` was recorded: a check that finds it unchanged
    /// (and the same tgtd instance) needs no plan.
    #[serde(default)]
    quick: Option<String>,
    /// The configuration of the latest request that brought tgtd to the plan: the one in
    /// force. The resident program's background work (its tgtd watch, the restore after a
    /// restart) serves this one and never an older one it remembers, so a change made by any
    /// run (a new portal, say) is the one kept; see [`latest_config`].
    #[serde(default)]
    config: Option<ArrayConfig>,
    /// The registrations (ss_record uuids) that sent `config` since it was set, the one that
    /// set it first; at most [`REGISTRATIONS_KEPT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    registrations: Vec<String>,
    /// The registrations that sent the array's CHAP settings as they are: the one that set
    /// them, and the ones that sent them unchanged since; at most [`REGISTRATIONS_KEPT`].
    /// Kept across configuration changes (CHAP is not part of the configuration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    chap_registrations: Vec<String>,
}

/// How many registrations of one array's configuration in force are remembered (the first
/// one, which set it, always).
const REGISTRATIONS_KEPT: usize = 16;

/// Adds `registration` to a list of the registrations that sent settings, keeping at most
/// [`REGISTRATIONS_KEPT`]: the oldest but the first go. The first one set the settings and
/// stays: others sending the same (any registration may) must not take its right to change
/// them away.
fn remember(list: &mut Vec<String>, registration: &str) {
    list.push(registration.to_string());
    if list.len() > REGISTRATIONS_KEPT {
        list.remove(1);
    }
}

fn tgt_err(context: &str, e: TgtError) -> Error {
    // TgtError never carries a secret.
    Error::Failed(format!("{context}: {e}"))
}

/// The tgtadm client for the settings.
pub fn tgtadm(settings: &TgtSettings) -> Result<Tgtadm> {
    let mut adm = Tgtadm::new(settings.control_port)
        .map_err(|e| Error::InvalidArray(format!("config tgt_control: {e}")))?
        .with_program(program(TGTADM, "tgtadm"));
    if let Some(base) = &settings.socket {
        adm = adm.with_ipc_socket_base(base);
    }
    Ok(adm)
}

/// `default` if it exists, else `name` (found on PATH by the OS). A default found once is
/// not looked for again (every request asks for tgtadm); one missing is looked for each time,
/// since tgt may be installed while the resident program runs.
fn program(default: &'static str, name: &str) -> PathBuf {
    static FOUND: std::sync::Mutex<Vec<&str>> = std::sync::Mutex::new(Vec::new());
    let mut found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    if found.contains(&default) {
        return PathBuf::from(default);
    }
    if Path::new(default).is_file() {
        found.push(default);
        PathBuf::from(default)
    } else {
        PathBuf::from(name)
    }
}

/// The export layer's state, for `getInfo` (does not start tgtd).
pub fn status(settings: &TgtSettings) -> Result<TgtStatus> {
    let adm = tgtadm(settings)?;
    let version = Command::new(program(TGTADM, "tgtadm"))
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty());
    let running = adm.is_alive();
    Ok(TgtStatus {
        control_port: settings.control_port,
        portal: settings.portal.to_string(),
        running,
        listening: if running { adm.portals().ok() } else { None },
        version,
    })
}

fn record_path(state_dir: &Path) -> PathBuf {
    state_dir.join(RECORD_FILE)
}

fn load_record(state_dir: &Path) -> Record {
    // A missing or unreadable record only costs a full reconciliation.
    fs::read(record_path(state_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Refuses a request of `registration` (an ss_record uuid) whose configuration differs from
/// the one in force when other registrations sent that one: two registrations of one array
/// (the same state directory) with different portals, tgtd instances or prefixes would
/// otherwise move its exports back and forth, each request taking them from the other's
/// hosts. Equal configurations may come from any registration, and any registration that
/// sent the one in force may change it (`server set`; [`note_registration`] records them).
pub fn check_registration(cfg: &ArrayConfig, registration: &str) -> Result<()> {
    let state_dir = cfg.state_dir()?;
    let record = load_record(&state_dir);
    let Some(in_force) = record.config.as_ref() else {
        return Ok(());
    };
    if in_force == cfg
        || record.registrations.is_empty()
        || record.registrations.iter().any(|r| r == registration)
    {
        return Ok(());
    }
    Err(Error::InvalidArray(format!(
        "the array in {} is exported by another registration (storage server uuid {}) with other settings ({}, in force → this registration's): one array has one export configuration, so register it with the same settings (and change them with server set), or give this registration an array of its own (its own pool directories)",
        shown_path(&state_dir),
        record.registrations[0],
        config_differences(in_force, cfg)
    )))
}

/// Whether the array in `state_dir` never had tgtd serve anything of it: no configuration
/// in force (every request that tgtd served under its settings records one), no target id
/// and no tgtd of its own recorded.
pub fn never_served(state_dir: &Path) -> bool {
    let record = load_record(state_dir);
    record.config.is_none() && record.tids.is_empty() && record.tgtd_pid.is_none()
}

/// Records that `registration` sent the configuration in force, once a request of the
/// engine's configuration was served: the first after a change of it starts the list anew.
pub fn note_registration(engine: &Engine, registration: &str) -> Result<()> {
    update_record_unless(
        engine,
        |r| r.config.as_ref() != engine.config() || r.registrations.iter().any(|n| n == registration),
        |record| {
            // An array from before CHAP settings were tracked: its registrations so far are
            // the ones that may know them ([`check_chap_change`]); a newcomer must not join
            // them by sending a request (a refused CHAP change, then the same again).
            if record.chap_registrations.is_empty() {
                record.chap_registrations = record.registrations.clone();
            }
            remember(&mut record.registrations, registration);
        },
    )
}

/// Applies `change` to the array's record under its lock, unless `done` holds of the record:
/// checked first without the lock, so the usual case (every request notes what it sent,
/// mostly already noted) takes neither the lock nor a write.
fn update_record_unless(
    engine: &Engine,
    done: impl Fn(&Record) -> bool,
    change: impl FnOnce(&mut Record),
) -> Result<()> {
    if done(&load_record(engine.state_dir())) {
        return Ok(());
    }
    let _g = engine.lock()?;
    let mut record = load_record(engine.state_dir());
    if done(&record) {
        return Ok(());
    }
    change(&mut record);
    save_record(engine.state_dir(), &record)
}

/// Refuses a change of the array's CHAP account (`before` → `asked`: another account, or
/// none) by `registration` when other registrations sent the settings in force and this one
/// never did: the array has one
/// CHAP account, so a second registration of it with other credentials (another `server add`
/// of the same array, say) would lock out every host that logs in with the first one's. A
/// registration that sends the settings in force may change them later (`server set`), so
/// whoever knows the credentials can still rotate them.
pub fn check_chap_change(
    engine: &Engine,
    registration: &str,
    before: Option<&ChapAccount>,
    asked: Option<&ChapAccount>,
) -> Result<()> {
    let record = load_record(engine.state_dir());
    // Arrays from before CHAP settings were tracked: the registrations of the configuration.
    let knowing = if record.chap_registrations.is_empty() {
        &record.registrations
    } else {
        &record.chap_registrations
    };
    // Turning CHAP on where it was off takes no account from anyone (and a registration
    // added again after its old one was removed must be able to require CHAP).
    if before.is_none() || knowing.is_empty() || knowing.iter().any(|r| r == registration) {
        return Ok(());
    }
    let change = match (before, asked) {
        (Some(_), None) => "CHAP on → off".to_string(),
        (Some(b), Some(a)) if b.username != a.username => {
            format!("CHAP user {} → {}", shown(&b.username), shown(&a.username))
        }
        _ => "another CHAP secret".to_string(),
    };
    Err(Error::InvalidArray(format!(
        "the array's CHAP settings were sent by another registration (storage server uuid {}), and this one asks for {change}: the array has one CHAP account, so the other registration's hosts would be locked out; give this registration the same CHAP settings (then either may change them with server set; the secret in force is in {} on the array host, readable by root), or an array of its own",
        knowing[0],
        engine.state_dir().join("chap.secret").display()
    )))
}

/// Records that `registration` sent the array's CHAP settings, which it `changed` (then it
/// is the only one that knows them) or sent as they were.
pub fn note_chap(engine: &Engine, registration: &str, changed: bool) -> Result<()> {
    update_record_unless(
        engine,
        |r| !changed && r.chap_registrations.iter().any(|n| n == registration),
        |record| {
            if changed {
                record.chap_registrations.clear();
            }
            remember(&mut record.chap_registrations, registration);
        },
    )
}

/// What differs between the configuration in force and another, `setting in force → other`
/// each, for messages.
fn config_differences(in_force: &ArrayConfig, other: &ArrayConfig) -> String {
    let tgt = |c: &ArrayConfig| -> [(&'static str, String); 3] {
        let t = c.tgt.as_ref();
        [
            (
                "tgt_control",
                t.map_or("-".into(), |t| t.control_port.to_string()),
            ),
            ("portal", t.map_or("-".into(), |t| t.portal.to_string())),
            (
                "tgt_socket",
                t.and_then(|t| t.socket.as_ref())
                    .map_or("-".into(), |p| p.display().to_string()),
            ),
        ]
    };
    let rest = |c: &ArrayConfig| -> [(&'static str, String); 4] {
        let pools: Vec<String> = c
            .pools
            .iter()
            .map(|p| format!("{}:{}", p.name, p.path.display()))
            .collect();
        [
            ("iqn_prefix", c.iqn_prefix.clone().unwrap_or_else(|| "-".into())),
            ("pools", pools.join(",")),
            (
                "state",
                c.state.as_ref().map_or("-".into(), |p| p.display().to_string()),
            ),
            (
                "split_rate_mib",
                c.split_rate_mib.map_or("-".into(), |r| r.to_string()),
            ),
        ]
    };
    let a = tgt(in_force).into_iter().chain(rest(in_force));
    let b = tgt(other).into_iter().chain(rest(other));
    a.zip(b)
        .filter(|((_, x), (_, y))| x != y)
        .map(|((k, x), (_, y))| format!("{k} {x} → {y}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The configuration in force for the array whose state is in `state_dir`: the one of the
/// latest request that brought tgtd to the plan (`Record::config`), if any.
pub fn latest_config(state_dir: &Path) -> Option<ArrayConfig> {
    load_record(state_dir).config
}

fn save_record(state_dir: &Path, record: &Record) -> Result<()> {
    let text = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::Failed(format!("cannot encode the tgt record: {e}")))?;
    fsops::replace_file(&record_path(state_dir), &text)
}

/// The identity of the tgtd instance behind the management socket: tgtd unlinks and binds
/// the socket each time it starts, so a restarted tgtd has a new one.
fn instance_id(adm: &Tgtadm) -> Option<String> {
    let md = fs::metadata(adm.ipc_socket_path()).ok()?;
    Some(format!(
        "{}:{}:{}.{:09}",
        md.dev(),
        md.ino(),
        md.ctime(),
        md.ctime_nsec()
    ))
}

/// The identity of the secret file: `set-chap` writes a new file and renames it into place.
fn secret_id(path: &Path) -> Option<String> {
    let md = fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}.{:09}:{}",
        md.dev(),
        md.ino(),
        md.mtime(),
        md.mtime_nsec(),
        md.len()
    ))
}

fn lun_key(target: &str, lun: u64) -> String {
    format!("{target} {lun}")
}

/// One logical unit wanted.
#[derive(Debug)]
struct WantLun {
    spec: LunSpec,
    element: String,
    generation: u64,
}

/// One target wanted.
#[derive(Debug)]
struct WantTarget {
    name: Iqn,
    tid: Option<u32>,
    initiators: BTreeSet<Iqn>,
    luns: BTreeMap<u64, WantLun>,
}

/// The whole desired state.
#[derive(Debug)]
struct Want {
    owner: String,
    account: Option<(UserName, Secret, String)>,
    targets: Vec<WantTarget>,
}

fn checked<T>(what: &str, r: std::result::Result<T, TgtError>) -> Result<T> {
    r.map_err(|e| Error::Failed(format!("the export plan cannot be served by tgt: {what}: {e}")))
}

fn lun_spec(l: &LunPlan) -> Result<LunSpec> {
    let path = l
        .backing_path
        .to_str()
        .ok_or_else(|| Error::Failed(format!("backing file {} is not UTF-8", l.backing_path.display())))?;
    Ok(LunSpec {
        backing: checked("backing file", BackingPath::new(path))?,
        scsi_id: checked("scsi_id", ScsiId::new(l.scsi_id.clone()))?,
        scsi_sn: checked("scsi_sn", ScsiSn::new(l.scsi_sn.clone()))?,
        vendor_id: checked("vendor", VendorId::new(l.vendor.clone()))?,
        product_id: checked("product", ProductId::new(l.product.clone()))?,
        online: l.online,
        cache: if l.write_cache {
            CachePolicy::WriteBack
        } else {
            CachePolicy::WriteThrough
        },
        thin_provisioning: l.thin,
    })
}

/// What tgtd must serve for `plan`, and what of the plan cannot be served (a target, an
/// initiator or a logical unit tgt would refuse, e.g. one stored by an older version with a
/// name tgt rejects). Those are left out and reported, so that one bad record never keeps the
/// array's other targets from being served; a CHAP account that cannot be made fails the whole
/// plan instead, since serving targets without the CHAP they require would open them.
fn want(plan: &ExportPlan, tids: &BTreeMap<String, u32>) -> Result<(Want, Vec<String>)> {
    let owner = format!("{}:", plan.iqn_prefix);
    let account = match &plan.chap {
        None => None,
        Some(c) => {
            let user = checked("CHAP user name", UserName::new(c.username.clone()))?;
            let secret = c
                .read_secret()
                .map_err(|e| Error::io("cannot read the CHAP secret", &c.secret_file, e))?;
            let secret = checked("CHAP secret", Secret::new(secret))?;
            let id = secret_id(&c.secret_file).unwrap_or_default();
            Some((user, secret, id))
        }
    };
    let mut left_out = Vec::new();
    let mut targets = Vec::new();
    for t in &plan.targets {
        let name = match Iqn::new(t.iqn.clone()) {
            Ok(n) if n.as_str().starts_with(&owner) => n,
            Ok(_) => {
                left_out.push(format!(
                    "group {}: target {} is outside the array's prefix {owner}; not served",
                    t.group, t.iqn
                ));
                continue;
            }
            Err(e) => {
                left_out.push(format!(
                    "group {}: {}; not served (rename or remove the group)",
                    t.group,
                    tgt_err("target name", e)
                ));
                continue;
            }
        };
        let mut initiators = BTreeSet::new();
        for i in &t.initiators {
            match Iqn::new(i.clone()) {
                Ok(i) => {
                    initiators.insert(i);
                }
                Err(e) => left_out.push(format!(
                    "group {}: {}; that initiator is not allowed in",
                    t.group,
                    tgt_err("initiator name", e)
                )),
            }
        }
        let mut luns = BTreeMap::new();
        for l in &t.luns {
            match lun_spec(l) {
                Ok(spec) => {
                    luns.insert(
                        u64::from(l.lun),
                        WantLun {
                            spec,
                            element: l.element.clone(),
                            generation: l.backing_generation,
                        },
                    );
                }
                Err(e) => left_out.push(format!("group {} LUN {}: {e}; not served", t.group, l.lun)),
            }
        }
        targets.push(WantTarget {
            tid: tids.get(name.as_str()).copied(),
            name,
            initiators,
            luns,
        });
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((
        Want {
            owner,
            account,
            targets,
        },
        left_out,
    ))
}

/// What the export plan is made from, cheaply: the export generation (which every change of
/// the plan's tables moves), the pools that cannot be used now (their LUNs leave the plan
/// and come back with them, which no table records), the IQN prefix, the settings and the
/// CHAP secret file's identity.
/// The version of what an [`ExportPlan`] asks of tgtd, in the quick fingerprint: a program
/// that serves more of the plan (2: thin provisioning) must not take an older program's clean
/// sync for its own, so its first check after an upgrade computes the plan.
const PLAN_FORMAT: u32 = 2;

fn quick_fingerprint(engine: &Engine, settings: &TgtSettings) -> Result<String> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    PLAN_FORMAT.hash(&mut h);
    engine.export_gen()?.hash(&mut h);
    engine.unavailable_pools().keys().for_each(|p| p.hash(&mut h));
    engine.iqn_prefix().hash(&mut h);
    serde_json::to_string(settings).unwrap_or_default().hash(&mut h);
    secret_id(&engine.chap_secret_path()).hash(&mut h);
    Ok(format!("{:016x}", h.finish()))
}

fn fingerprint(plan: &ExportPlan, settings: &TgtSettings) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(plan).unwrap_or_default().hash(&mut h);
    serde_json::to_string(settings).unwrap_or_default().hash(&mut h);
    if let Some(c) = &plan.chap {
        secret_id(&c.secret_file).hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// Starts tgtd for `settings`, detached (its own process group, standard streams on a log
/// file in the state directory), so that it outlives the request; waits until it answers and
/// checks that it listens on exactly the configured portal (tgtd that cannot bind its portal
/// silently falls back to `0.0.0.0:3260`: such an instance is shut down again).
fn start_tgtd(adm: &Tgtadm, settings: &TgtSettings, state_dir: &Path) -> Result<u32> {
    // tgtd that cannot bind its portal listens on every address instead, if only for the
    // moment until it is shut down again: a portal that cannot be had is refused first.
    portal_available(settings)?;
    let tgtd = program(TGTD, "tgtd");
    // tgtd does not create the directory of its management socket.
    if let Some(dir) = adm.ipc_socket_base().parent() {
        fs::create_dir_all(dir).ctx("cannot create the tgtd socket directory", dir)?;
    }
    let log = state_dir.join(format!("tgtd-{}.log", settings.control_port));
    let out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&log)
        .ctx("cannot open the tgtd log", &log)?;
    let err = out.try_clone().ctx("cannot open the tgtd log", &log)?;
    let mut cmd = Command::new(&tgtd);
    cmd.arg("-f")
        .arg("-C")
        .arg(settings.control_port.to_string())
        .arg("--iscsi")
        .arg(format!("portal={}", settings.portal))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    match &settings.socket {
        Some(base) => cmd.env("TGT_IPC_SOCKET", base),
        None => cmd.env_remove("TGT_IPC_SOCKET"),
    };
    let mut child = cmd.spawn().map_err(|e| {
        Error::Failed(format!(
            "cannot start {} (is tgt installed?): {e}",
            tgtd.display()
        ))
    })?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::Failed(format!(
                "tgtd for control port {} exited at once ({status}){}",
                settings.control_port,
                spindle_tgt::log_tail(&log)
            )));
        }
        if adm.is_alive() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Failed(format!(
                "tgtd for control port {} did not answer within {} s{}",
                settings.control_port,
                START_TIMEOUT.as_secs(),
                spindle_tgt::log_tail(&log)
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Reap it should it end while this process still runs; otherwise init does.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    if let Err(e) = check_portal(adm, settings) {
        let _ = adm.shutdown_daemon();
        return Err(e);
    }
    Ok(pid)
}

/// Whether tgtd could listen on the configured portal: an address of this host that no other
/// program listens on.
fn portal_available(settings: &TgtSettings) -> Result<()> {
    match std::net::TcpListener::bind(settings.portal) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Failed(format!(
            "tgtd for control port {} cannot listen on the configured portal {}: {}",
            settings.control_port,
            settings.portal,
            match e.kind() {
                std::io::ErrorKind::AddrInUse => "another program listens there".to_string(),
                std::io::ErrorKind::AddrNotAvailable => "the address is not one of this host's".to_string(),
                _ => e.to_string(),
            }
        ))),
    }
}

fn check_portal(adm: &Tgtadm, settings: &TgtSettings) -> Result<()> {
    let wanted = settings.portal.to_string();
    let actual = adm
        .portals()
        .map_err(|e| tgt_err("cannot read tgtd's portals", e))?;
    if actual != [wanted.clone()] {
        return Err(Error::Failed(format!(
            "tgtd on control port {} listens on {} instead of the configured portal {wanted} (is the address local and the port free?)",
            settings.control_port,
            listed(&actual)
        )));
    }
    Ok(())
}

/// Moves tgtd to the configured portal when it listens on `actual` instead (the portal was
/// changed; a running tgtd cannot change its portal): when it serves no target outside the
/// array's prefix, it is stopped and started again on the configured portal, and the
/// reconciliation that follows makes every target, ACL, account and logical unit again, with
/// the same LUN numbers and page 83 ids. Sessions on the old portal end; initiators log in to
/// the new one. A tgtd that also serves other arrays' targets is left as it is, with an
/// error that says why. Returns the new tgtd's pid.
fn move_portal(
    adm: &Tgtadm,
    settings: &TgtSettings,
    state_dir: &Path,
    plan: &ExportPlan,
    actual: &[String],
    ours: &BTreeMap<String, u32>,
    report: &mut SyncReport,
) -> Result<u32> {
    let listening = listed(actual);
    refuse_shared_move(&read_targets(adm)?, settings, &plan.iqn_prefix, actual, ours)?;
    // Checked before the running tgtd is stopped: a portal that cannot be had must not take
    // the array's exports down.
    portal_available(settings).map_err(|e| Error::Failed(format!("{e}; tgtd stays on {listening}")))?;
    stop_tgtd(adm).map_err(|e| {
        Error::Failed(format!(
            "tgtd on control port {} listens on {listening}, not on the configured portal {}, and could not be stopped to move it: {e}",
            settings.control_port, settings.portal
        ))
    })?;
    let pid = match start_tgtd(adm, settings, state_dir) {
        Ok(pid) => pid,
        Err(e) => {
            // Back where it was, so that the array keeps serving (the reconciliation that
            // follows a failed request's check brings the targets back).
            let back = match actual {
                [one] => one
                    .parse::<std::net::SocketAddr>()
                    .ok()
                    .map(|portal| TgtSettings {
                        portal,
                        ..settings.clone()
                    }),
                _ => None,
            };
            let restarted = back.and_then(|b| start_tgtd(adm, &b, state_dir).ok());
            return Err(Error::Failed(format!(
                "{e}{}",
                if restarted.is_some() {
                    format!("; tgtd was started again on {listening}")
                } else {
                    String::new()
                }
            )));
        }
    };
    report.started = Some(pid);
    report.actions.push(format!(
        "moved tgtd on control port {} from {listening} to {} (stopped and started again; its targets are made again)",
        settings.control_port, settings.portal
    ));
    Ok(pid)
}

/// tgtd's targets.
fn read_targets(adm: &Tgtadm) -> Result<Vec<TargetInfo>> {
    adm.targets()
        .map_err(|e| tgt_err("cannot read tgtd's targets", e))
}

/// Refuses to move a tgtd that listens on `actual` rather than on the configured portal when
/// it also serves targets outside this array's prefix (another array's, which would lose
/// their sessions).
fn refuse_shared_move(
    targets: &[TargetInfo],
    settings: &TgtSettings,
    prefix: &str,
    actual: &[String],
    ours: &BTreeMap<String, u32>,
) -> Result<()> {
    let owner = format!("{prefix}:");
    let foreign: Vec<&str> = targets
        .iter()
        .filter(|t| !owns(&owner, &t.name, ours) && !ours.contains_key(&t.name))
        .map(|t| t.name.as_str())
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "tgtd on control port {} listens on {}, not on the configured portal {}, and it also serves targets outside this array's prefix {owner} ({}); it is left as it is: give every array that uses control port {} the same portal, or give this array a tgtd of its own (tgt_control)",
        settings.control_port,
        listed(actual),
        settings.portal,
        foreign.join(", "),
        settings.control_port
    )))
}

/// Whether target `name` is the array's, for an array whose targets are `owner` (its
/// prefix and `:`) followed by a group name: a group name holds no `:` (one made before that
/// rule is known from the targets the array recorded), so `<prefix>:x:y` belongs to another
/// array whose prefix is `<prefix>:x`, and is neither changed nor deleted.
fn owns(owner: &str, name: &str, recorded: &BTreeMap<String, u32>) -> bool {
    name.strip_prefix(owner)
        .is_some_and(|group| !group.contains(':') || recorded.contains_key(name))
}

/// Refuses to join a tgtd that serves another array's targets under this array's prefix, or
/// under a prefix that contains it or that it contains (targets are named
/// `<prefix>:<group>`, and each array takes every target under its prefix for its own: it
/// would take over or delete the other's). `ours` are the array's own targets.
fn refuse_prefix_clash(
    targets: &[TargetInfo],
    settings: &TgtSettings,
    prefix: &str,
    ours: &BTreeMap<String, u32>,
) -> Result<()> {
    let clash = targets.iter().find(|t| {
        let Some((theirs, _)) = t.name.rsplit_once(':') else {
            return false;
        };
        !ours.contains_key(&t.name)
            && (theirs == prefix
                || theirs.starts_with(&format!("{prefix}:"))
                || prefix.starts_with(&format!("{theirs}:")))
    });
    match clash {
        None => Ok(()),
        Some(t) => Err(Error::Failed(format!(
            "tgtd on control port {} serves target {} of another array, whose prefix {} clashes with this array's iqn_prefix {prefix}: arrays on one tgtd need prefixes that do not contain each other (each takes every target under its prefix for its own); give this array another iqn_prefix or a tgtd of its own",
            settings.control_port,
            t.name,
            t.name.rsplit_once(':').map_or("", |(p, _)| p)
        ))),
    }
}

/// Refuses a new configuration whose tgtd cannot serve the array, before the array leaves
/// the tgtd it has (`old`, the configuration in force): the new tgtd runs, listens elsewhere
/// and serves other arrays too, so it cannot be moved to the configured portal; or it does
/// not run and its portal is taken — unless by the array's own tgtd of `old`, which leaving
/// it stops (it serves nothing else). (One of this array alone is moved later.)
fn refuse_unservable(
    adm: &Tgtadm,
    settings: &TgtSettings,
    prefix: &str,
    old: Option<(&TgtSettings, String)>,
    ours: &BTreeMap<String, u32>,
) -> Result<()> {
    if adm.is_alive() {
        let targets = read_targets(adm)?;
        refuse_prefix_clash(&targets, settings, prefix, ours)?;
        let actual = adm
            .portals()
            .map_err(|e| tgt_err("cannot read tgtd's portals", e))?;
        if actual == [settings.portal.to_string()] {
            return Ok(());
        }
        return refuse_shared_move(&targets, settings, prefix, &actual, ours);
    }
    // tgtd does not create the directory of its management socket: one that cannot be made
    // would fail its start after the array left its tgtd.
    if let Some(dir) = adm.ipc_socket_base().parent() {
        fs::create_dir_all(dir).ctx("cannot create the tgtd socket directory", dir)?;
    }
    let Err(taken) = portal_available(settings) else {
        return Ok(());
    };
    let moving = old.is_some();
    let freed_by_leaving = old.is_some_and(|(old, old_prefix)| {
        let same_instance = old.control_port == settings.control_port && old.socket == settings.socket;
        let Ok(old_adm) = tgtadm(old) else { return false };
        !same_instance
            && old_adm.is_alive()
            && old_adm
                .portals()
                .is_ok_and(|p| p == [settings.portal.to_string()])
            && read_targets(&old_adm)
                .is_ok_and(|t| refuse_shared_move(&t, old, &old_prefix, &[], ours).is_ok())
    });
    match (freed_by_leaving, moving) {
        (true, _) => Ok(()),
        (false, true) => Err(Error::Failed(format!("{taken}; the array stays where it is"))),
        (false, false) => Err(taken),
    }
}

/// Stops a tgtd instance: deletes its targets (`--force`), then the system, waits until it
/// no longer listens, so that a new instance can take its portal, and removes the socket
/// files it leaves behind.
fn stop_tgtd(adm: &Tgtadm) -> Result<()> {
    adm.shutdown_daemon()
        .map_err(|e| tgt_err("cannot stop tgtd", e))?;
    let deadline = Instant::now() + START_TIMEOUT;
    while adm.is_listening() {
        if Instant::now() >= deadline {
            return Err(Error::Failed(format!(
                "tgtd on control port {} still runs {} s after it was told to stop",
                adm.control_port(),
                START_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    adm.remove_stale_socket();
    Ok(())
}

/// Takes the array's targets out of the tgtd instance of the configuration that was in force
/// (`old`) when `new` gives it another instance (control port or socket) or another target
/// prefix: nothing else would ever remove them, and an initiator must not keep reaching LUNs
/// through targets the array no longer serves. The old instance is stopped when it then
/// serves nothing (it may hold the portal the new one needs); one that serves other arrays
/// keeps running, without this array's CHAP account. A new portal alone is [`move_portal`]'s
/// work. Failures are reported, not returned: the new configuration is served regardless.
fn leave(engine: &Engine, old: &ArrayConfig, new: &ArrayConfig, record: &Record, report: &mut SyncReport) {
    let Some(old_tgt) = &old.tgt else { return };
    let prefix = |c: &ArrayConfig| engine.iqn_prefix_of(c);
    let same_instance = new
        .tgt
        .as_ref()
        .is_some_and(|t| t.control_port == old_tgt.control_port && t.socket == old_tgt.socket);
    if same_instance && prefix(old) == prefix(new) {
        return;
    }
    let Ok(adm) = tgtadm(old_tgt) else { return };
    if !adm.is_alive() {
        return;
    }
    let port = old_tgt.control_port;
    let owner = format!("{}:", prefix(old));
    let mut log = Log { report };
    let targets = match adm.targets() {
        Ok(t) => t,
        Err(e) => {
            log.report.failures.push(format!(
                "tgtd on control port {port}, which the array used before: cannot read its targets to remove the array's: {e}"
            ));
            return;
        }
    };
    for t in targets.iter().filter(|t| owns(&owner, &t.name, &record.tids)) {
        let (tid, name) = (t.tid, t.name.clone());
        log.apply(
            format!("tgtd on control port {port}, which the array used before: delete target {tid} {name}"),
            || adm.delete_target(tid, true),
        );
    }
    if same_instance {
        return;
    }
    let left: Vec<TargetInfo> = adm.targets().unwrap_or_default();
    if left.is_empty() {
        let what = format!(
            "stop tgtd on control port {port}, which the array used before and which serves nothing now"
        );
        match stop_tgtd(&adm) {
            Ok(()) => log.report.actions.push(what),
            Err(e) => log.report.failures.push(format!("{what}: {e}")),
        }
    } else if let Some((user, _)) = &record.account {
        if !left.iter().any(|t| t.accounts.iter().any(|a| a == user)) {
            let u = user.clone();
            log.apply(
                format!("tgtd on control port {port}, which the array used before: delete account {u}"),
                || adm.delete_account(&u),
            );
        }
    }
}

/// Collects what was done.
struct Log<'a> {
    report: &'a mut SyncReport,
}

impl Log<'_> {
    fn apply(&mut self, what: String, op: impl FnOnce() -> std::result::Result<(), TgtError>) -> bool {
        match op() {
            Ok(()) => {
                self.report.actions.push(what);
                true
            }
            Err(e) => {
                self.report.failures.push(format!("{what}: {e}"));
                false
            }
        }
    }
}

fn placeholder_account() -> Result<(UserName, Secret)> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    Ok((
        checked(
            "placeholder account",
            UserName::new(format!("spindle-hold-{}", &id[..16])),
        )?,
        checked("placeholder secret", Secret::new(secret))?,
    ))
}

/// What [`apply`] leaves for the record: the account entry (user, secret-file identity) and
/// the logical units whose change failed.
type Applied = (Option<(String, String)>, BTreeSet<String>);

/// Applies `want` to tgtd; returns the new record's account entry.
fn apply(
    adm: &Tgtadm,
    want: &Want,
    record: &Record,
    same_instance: bool,
    report: &mut SyncReport,
) -> Result<Applied> {
    let targets = read_targets(adm)?;
    let accounts = adm
        .accounts()
        .map_err(|e| tgt_err("cannot read tgtd's accounts", e))?;
    let (owned, foreign): (Vec<TargetInfo>, Vec<TargetInfo>) = targets
        .into_iter()
        .partition(|t| owns(&want.owner, &t.name, &record.tids));
    let mut log = Log { report };
    // Logical units whose application failed keep their old record entry.
    let mut failed_luns: BTreeSet<String> = BTreeSet::new();

    // 1. Owned targets that are not wanted.
    let mut live: Vec<TargetInfo> = Vec::new();
    for t in owned {
        if want.targets.iter().any(|w| w.name.as_str() == t.name) {
            live.push(t);
            continue;
        }
        let (tid, name) = (t.tid, t.name.clone());
        if !log.apply(format!("delete target {tid} {name}"), || {
            adm.delete_target(tid, true)
        }) {
            live.push(t);
        }
    }

    // 2. The account.
    let recorded_ours = |user: &str| record.account.as_ref().is_some_and(|(u, _)| u == user);
    let mut account_entry = None;
    let mut account_ok = true;
    if let Some((user, secret, sid)) = &want.account {
        let exists = accounts.iter().any(|a| a == user.as_str());
        let vouched = same_instance && record.account.as_ref() == Some(&(user.to_string(), sid.clone()));
        if !exists {
            account_ok = log.apply(format!("create account {user}"), || adm.new_account(user, secret));
        } else if !vouched {
            let foreign_users: Vec<&str> = foreign
                .iter()
                .filter(|t| t.accounts.iter().any(|a| a == user.as_str()))
                .map(|t| t.name.as_str())
                .collect();
            if foreign_users.is_empty() {
                account_ok = recreate_account(adm, &mut log, user, secret, &live)?;
            } else {
                log.report.failures.push(format!(
                    "re-create account {user}: it is also bound to {}, outside {}; its secret is left alone",
                    foreign_users.join(", "),
                    want.owner
                ));
                account_ok = false;
            }
        }
        if account_ok {
            account_entry = Some((user.to_string(), sid.clone()));
        }
    }
    for user in &accounts {
        if want.account.as_ref().is_some_and(|(u, _, _)| u.as_str() == user) {
            continue;
        }
        let on = |ts: &[TargetInfo]| ts.iter().any(|t| t.accounts.iter().any(|a| a == user));
        if on(&foreign) {
            continue;
        }
        if on(&live) || (same_instance && recorded_ours(user)) {
            let u = user.clone();
            log.apply(format!("delete account {u}"), || adm.delete_account(&u));
        }
    }
    let live_accounts: Vec<String> = adm.accounts().unwrap_or_default();

    // 3. Wanted targets, in name order.
    let mut used: BTreeSet<u32> = foreign.iter().chain(&live).map(|t| t.tid).collect();
    let reserved: BTreeSet<u32> = want.targets.iter().filter_map(|t| t.tid).collect();
    for w in &want.targets {
        let name = w.name.as_str();
        let have = live.iter().find(|t| t.name == name);
        let tid = match have {
            Some(t) => {
                correct_target(
                    adm,
                    &mut log,
                    t,
                    w,
                    want,
                    record,
                    same_instance,
                    account_ok,
                    &live_accounts,
                    &mut failed_luns,
                );
                t.tid
            }
            None => {
                let tid = match w.tid {
                    Some(pin) if !used.contains(&pin) => pin,
                    pin => {
                        let Some(t) = (1..=i32::MAX as u32)
                            .find(|t| !used.contains(t) && (Some(*t) == pin || !reserved.contains(t)))
                        else {
                            log.report
                                .failures
                                .push(format!("create target {name}: no free target id"));
                            continue;
                        };
                        t
                    }
                };
                if !log.apply(format!("create target {tid} {name}"), || {
                    adm.new_target(tid, &w.name)
                }) {
                    failed_luns.extend(w.luns.keys().map(|l| lun_key(name, *l)));
                    continue;
                }
                used.insert(tid);
                if let (Some((user, _, _)), true) = (&want.account, account_ok) {
                    log.apply(format!("target {tid}: bind account {user}"), || {
                        adm.bind_account(tid, user)
                    });
                }
                for (lun, l) in &w.luns {
                    if !log.apply(format!("target {tid}: add LUN {lun}"), || {
                        adm.add_lun(tid, *lun, &l.spec)
                    }) {
                        failed_luns.insert(lun_key(name, *lun));
                    }
                }
                for i in &w.initiators {
                    log.apply(format!("target {tid}: allow {i}"), || adm.bind_initiator(tid, i));
                }
                tid
            }
        };
        log.report.tids.insert(name.to_string(), tid);
    }
    Ok((account_entry, failed_luns))
}

/// Re-creates `user` with `secret` (tgtd never shows secrets, so an account this array cannot
/// vouch for is re-created). While it is gone, a placeholder account with a random secret is
/// bound to every owned target that uses it, so those targets keep requiring CHAP.
fn recreate_account(
    adm: &Tgtadm,
    log: &mut Log<'_>,
    user: &UserName,
    secret: &Secret,
    live: &[TargetInfo],
) -> Result<bool> {
    let bound: Vec<u32> = live
        .iter()
        .filter(|t| t.accounts.iter().any(|a| a == user.as_str()))
        .map(|t| t.tid)
        .collect();
    let (hold, hold_secret) = placeholder_account()?;
    let mut held = Vec::new();
    if !bound.is_empty()
        && log.apply(format!("create placeholder account {hold}"), || {
            adm.new_account(&hold, &hold_secret)
        })
    {
        for tid in &bound {
            if log.apply(format!("target {tid}: bind placeholder account {hold}"), || {
                adm.bind_account(*tid, &hold)
            }) {
                held.push(*tid);
            }
        }
    }
    if held.len() != bound.len() {
        // Without the placeholder on every target, re-creating would open a target.
        let _ = adm.delete_account(hold.as_str());
        log.report.failures.push(format!(
            "re-create account {user}: the placeholder could not be bound everywhere; the account is left as it is"
        ));
        return Ok(false);
    }
    let ok = log.apply(format!("re-create account {user}"), || {
        adm.delete_account(user.as_str())?;
        adm.new_account(user, secret)?;
        for tid in &bound {
            adm.bind_account(*tid, user)?;
        }
        Ok(())
    });
    if !bound.is_empty() {
        if ok {
            let h = hold.clone();
            log.apply(format!("delete placeholder account {h}"), || {
                adm.delete_account(h.as_str())
            });
        } else {
            log.report.failures.push(format!(
                "placeholder account {hold} stays bound so that no target accepts logins without CHAP"
            ));
        }
    }
    Ok(ok)
}

#[allow(clippy::too_many_arguments)]
fn correct_target(
    adm: &Tgtadm,
    log: &mut Log<'_>,
    have: &TargetInfo,
    w: &WantTarget,
    want: &Want,
    record: &Record,
    same_instance: bool,
    account_ok: bool,
    live_accounts: &[String],
    failed_luns: &mut BTreeSet<String>,
) {
    let tid = have.tid;
    let name = w.name.as_str();
    // Revoke first.
    for address in &have.acl_addresses {
        let a = address.clone();
        log.apply(format!("target {tid}: remove address rule {a}"), || {
            adm.unbind_address(tid, &InitiatorAddress::new(a.as_str())?)
        });
    }
    for i in &have.acl_initiators {
        if !w.initiators.iter().any(|x| x.as_str() == i) {
            log.apply(format!("target {tid}: disallow {i}"), || {
                adm.unbind_initiator(tid, i)
            });
        }
    }
    for user in &have.accounts {
        let wanted = want.account.as_ref().is_some_and(|(u, _, _)| u.as_str() == user);
        // Accounts deleted above are unbound already; placeholders of a failed re-creation stay.
        let placeholder = user.starts_with("spindle-hold-") && want.account.is_some() && !account_ok;
        if !wanted && !placeholder && live_accounts.iter().any(|a| a == user) {
            log.apply(format!("target {tid}: unbind account {user}"), || {
                adm.unbind_account(tid, user)
            });
        }
    }
    // Logical units.
    for lu in &have.luns {
        if lu.lun != 0 && !w.luns.contains_key(&lu.lun) {
            let lun = lu.lun;
            log.apply(format!("target {tid}: delete LUN {lun}"), || {
                adm.delete_lu(tid, lun)
            });
        }
    }
    for (lun, l) in &w.luns {
        let lun = *lun;
        let key = lun_key(name, lun);
        let Some(lu) = have.lun(lun) else {
            if !log.apply(format!("target {tid}: add LUN {lun}"), || {
                adm.add_lun(tid, lun, &l.spec)
            }) {
                failed_luns.insert(key);
            }
            continue;
        };
        let stale = same_instance
            && record
                .luns
                .get(&key)
                .is_some_and(|a| a.element == l.element && a.generation != l.generation);
        let reason = match spindle_tgt::lun_mismatch(lu, &l.spec) {
            Some(r) => Some(r),
            None if stale => Some(format!("backing file replaced (generation {})", l.generation)),
            None => None,
        };
        if let Some(reason) = reason {
            if !log.apply(format!("target {tid}: re-create LUN {lun} ({reason})"), || {
                adm.delete_lu(tid, lun)?;
                adm.add_lun(tid, lun, &l.spec)
            }) {
                failed_luns.insert(key);
            }
            continue;
        }
        let mut served = match fs::metadata(l.spec.backing.as_path()).map(|m| m.len()) {
            Ok(len) if tgt_size_mb(len) != lu.size_mb => log
                .apply(format!("target {tid}: refresh size of LUN {lun}"), || {
                    adm.refresh_lu_size(tid, lun, &l.spec.backing, l.spec.online)
                }),
            Err(e) => {
                log.report
                    .failures
                    .push(format!("target {tid}: LUN {lun}: {}: {e}", l.spec.backing));
                false
            }
            Ok(_) if lu.online != l.spec.online => {
                let online = l.spec.online;
                log.apply(
                    format!(
                        "target {tid}: LUN {lun} {}",
                        if online { "online" } else { "offline" }
                    ),
                    || adm.set_lu_online(tid, lun, online),
                )
            }
            Ok(_) => true,
        };
        // Changed in place: re-creating the unit would drop the initiators' sessions to it.
        if served && lu.thin_provisioning != l.spec.thin_provisioning {
            let on = l.spec.thin_provisioning;
            served = log.apply(
                format!(
                    "target {tid}: LUN {lun} thin provisioning {}",
                    if on { "on" } else { "off" }
                ),
                || adm.set_thin_provisioning(tid, lun, on),
            );
        }
        if !served {
            failed_luns.insert(key);
        }
    }
    // Then grant.
    if let (Some((user, _, _)), true) = (&want.account, account_ok) {
        if !have.accounts.iter().any(|a| a == user.as_str()) {
            log.apply(format!("target {tid}: bind account {user}"), || {
                adm.bind_account(tid, user)
            });
        }
    }
    for i in &w.initiators {
        if !have.acl_initiators.iter().any(|a| a == i.as_str()) {
            log.apply(format!("target {tid}: allow {i}"), || adm.bind_initiator(tid, i));
        }
    }
}

/// Makes tgtd serve the engine's export plan (see the module docs). Takes the array's lock
/// for its duration. Errors are returned when tgtd cannot be started or read, or the plan
/// cannot be expressed; failures of single changes are in [`SyncReport::failures`].
///
/// The engine's configuration becomes the one in force ([`latest_config`]). When it gives the
/// array another tgtd instance or target prefix than the one in force did, the array's
/// targets are first taken out of the old instance (`leave`); when tgtd listens on another
/// portal than the configured one, it is moved (`move_portal`).
pub fn sync(engine: &Engine, settings: &TgtSettings, mode: SyncMode) -> Result<SyncReport> {
    let _g = engine.lock()?;
    let record = load_record(engine.state_dir());
    sync_locked(engine, settings, mode, record)
}

/// How long the question whether tgtd answers waits: `show sys` is a few hundred bytes from
/// tgtd's event loop, answered in well under a millisecond even while it serves I/O, so a
/// tgtd silent this long is stopped or hung. tgtadm's own timeout (30 s) is kept for the
/// changes themselves; a request that changes exports while tgtd is stopped then fails in
/// seconds, its change recorded and applied once tgtd answers again.
const LIVENESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What [`watch`] did.
#[derive(Debug)]
pub enum Watched {
    /// The engine's configuration is the one in force: tgtd was brought to its plan.
    Synced(SyncReport),
    /// Another configuration is in force (a later request's): nothing was done, and the watch
    /// is to serve the array with this one instead, so that an older configuration it
    /// remembers never moves tgtd back.
    InForce(ArrayConfig),
    /// The configuration exports nothing (no tgt settings).
    NotExported,
}

/// Why the tgtd of `settings` does not answer, if it listens but does not (a stopped or
/// overloaded tgtd: the question waits [`LIVENESS_TIMEOUT`]); `None` when it answers or when
/// nothing listens (a killed tgtd, which a sync starts again). Asked without any lock, so
/// that the resident program's watch never holds an array's lock, nor one of its engines,
/// while it waits for a tgtd that may never answer.
pub fn unresponsive(settings: &TgtSettings) -> Option<String> {
    match tgtadm(settings) {
        Ok(adm) => adm
            .with_timeout(LIVENESS_TIMEOUT)
            .liveness()
            .err()
            .map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// The resident program's tgtd watch for an engine it holds: a sync in `mode`, but only when
/// the engine's configuration is the one in force.
pub fn watch(engine: &Engine, mode: SyncMode) -> Result<Watched> {
    let Some(settings) = engine.tgt_settings() else {
        return Ok(Watched::NotExported);
    };
    let _g = engine.lock()?;
    let mut record = load_record(engine.state_dir());
    if let Some(cfg) = record.config.take_if(|c| Some(&*c) != engine.config()) {
        return Ok(Watched::InForce(cfg));
    }
    sync_locked(engine, settings, mode, record).map(Watched::Synced)
}

fn sync_locked(
    engine: &Engine,
    settings: &TgtSettings,
    mut mode: SyncMode,
    mut record: Record,
) -> Result<SyncReport> {
    let state_dir = engine.state_dir().to_path_buf();
    let quick = quick_fingerprint(engine, settings)?;
    let applied = |r: &Record| r.fingerprint.is_some() && r.quick.as_deref() == Some(quick.as_str());
    let adm = tgtadm(settings)?;
    let mut report = SyncReport {
        control_port: settings.control_port,
        portal: settings.portal.to_string(),
        ..SyncReport::default()
    };
    // A new configuration becomes the one in force only once tgtd serves the array under it
    // (below): until then the old one stays in force, so that a change that fails leaves
    // the resident program's watch and restore, and the next request, bringing the array
    // back where it was, never where it was refused.
    let changing = engine.config().filter(|c| record.config.as_ref() != Some(*c));
    if changing.is_some() {
        // Refused before anything moves: the array keeps the tgtd and the configuration it
        // has.
        let old = record
            .config
            .as_ref()
            .and_then(|c| c.tgt.as_ref().map(|t| (t, engine.iqn_prefix_of(c))));
        refuse_unservable(&adm, settings, &engine.iqn_prefix(), old, &record.tids)?;
        if let (Some(old), Some(cfg)) = (record.config.clone(), changing) {
            leave(engine, &old, cfg, &record, &mut report);
        }
        // Whatever tgtd holds now is not what was recorded as applied: the next check of
        // either configuration reconciles fully.
        record.fingerprint = None;
        record.quick = None;
        save_record(&state_dir, &record)?;
    }
    if mode == SyncMode::Recorded {
        let instance = instance_id(&adm);
        if changing.is_none() && instance.is_some() && record.instance == instance && applied(&record) {
            report.tids = record.tids;
            return Ok(report);
        }
        mode = SyncMode::Check;
    }
    // A check only needs to know that a tgtd still listens (a killed one does not); a full
    // sync reads tgtd's state next anyway, so it asks it to answer. One that listens but
    // does not answer (stopped, say) is not dead: another started beside it would find its
    // portal taken, or, were the first gone from it, serve the array twice.
    let asked = adm.clone().with_timeout(LIVENESS_TIMEOUT);
    let alive = match mode {
        // (A `Recorded` sync that gets here was made a `Check` above.)
        SyncMode::Check | SyncMode::Recorded => asked.is_listening(),
        SyncMode::Full => asked.liveness().map_err(|e| {
            tgt_err(
                &format!(
                    "tgtd on control port {} does not answer (is it stopped or overloaded?)",
                    settings.control_port
                ),
                e,
            )
        })?,
    };
    if !alive {
        let pid = start_tgtd(&adm, settings, &state_dir)?;
        report.started = Some(pid);
        record.tgtd_pid = Some(pid);
    }
    let instance = instance_id(&adm);
    let mut same_instance = instance.is_some() && record.instance == instance;
    if mode == SyncMode::Check && same_instance && applied(&record) {
        report.tids = record.tids;
        return Ok(report);
    }
    let plan = engine.export_plan()?;
    let fp = fingerprint(&plan, settings);
    if mode == SyncMode::Check && same_instance && record.fingerprint.as_deref() == Some(fp.as_str()) {
        // The plan is the one applied, under a generation not recorded yet.
        record.quick = Some(quick);
        save_record(&state_dir, &record)?;
        report.tids = record.tids;
        return Ok(report);
    }
    if report.started.is_none() {
        let actual = adm
            .portals()
            .map_err(|e| tgt_err("cannot read tgtd's portals", e))?;
        if actual != [settings.portal.to_string()] {
            match move_portal(
                &adm,
                settings,
                &state_dir,
                &plan,
                &actual,
                &record.tids,
                &mut report,
            ) {
                Ok(pid) => record.tgtd_pid = Some(pid),
                // Not moved: the array keeps being served where tgtd listens, and the
                // request says why (a strict one fails).
                Err(e) => report.failures.push(e.to_string()),
            }
            let now = instance_id(&adm);
            same_instance = now.is_some() && record.instance == now;
        }
    }
    let (w, left_out) = want(&plan, &record.tids)?;
    report.failures.extend(left_out);
    report.reconciled = true;
    let (account, failed_luns) = apply(&adm, &w, &record, same_instance, &mut report)?;

    let mut luns = BTreeMap::new();
    for t in &w.targets {
        for (lun, l) in &t.luns {
            let key = lun_key(t.name.as_str(), *lun);
            if failed_luns.contains(&key) {
                if let Some(old) = record.luns.get(&key).filter(|_| same_instance) {
                    luns.insert(key, old.clone());
                }
            } else {
                luns.insert(
                    key,
                    AppliedLun {
                        element: l.element.clone(),
                        generation: l.generation,
                    },
                );
            }
        }
    }
    let mut tids = record.tids.clone();
    tids.retain(|name, _| w.targets.iter().any(|t| t.name.as_str() == name));
    tids.extend(report.tids.clone());
    let mut fingerprint = report.is_clean().then_some(fp);
    if let Some(cfg) = changing {
        if adm.portals().is_ok_and(|p| p == [settings.portal.to_string()]) {
            record.config = Some(cfg.clone());
            // Whoever sent the new configuration is recorded next (note_registration).
            record.registrations.clear();
        } else {
            // Not served under the new configuration (tgtd could not be moved): the old one
            // stays in force, and nothing counts as applied.
            fingerprint = None;
        }
    }
    let new = Record {
        instance: instance_id(&adm),
        quick: fingerprint.is_some().then_some(quick),
        fingerprint,
        tids,
        luns,
        account,
        tgtd_pid: record.tgtd_pid,
        config: record.config,
        registrations: record.registrations,
        chap_registrations: record.chap_registrations,
    };
    save_record(&state_dir, &new)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{ChapPlan, TargetPlan};

    fn plan() -> ExportPlan {
        ExportPlan {
            array_id: "a".into(),
            iqn_prefix: "iqn.2025-01.org.example:arr".into(),
            chap: None,
            targets: vec![TargetPlan {
                group: "g".into(),
                iqn: "iqn.2025-01.org.example:arr:g".into(),
                initiators: vec!["iqn.2025-01.org.example:host".into()],
                luns: vec![LunPlan {
                    lun: 1,
                    element: "e".into(),
                    name: "n".into(),
                    backing_path: PathBuf::from("/srv/p/e.img"),
                    size: 1 << 20,
                    scsi_id: "6aabbcc0123456789000000000000001".into(),
                    scsi_sn: "0123456789abcdef000000001".into(),
                    vendor: "SPINDLE".into(),
                    product: "LINUX-ARRAY".into(),
                    online: true,
                    write_cache: false,
                    read_only: false,
                    thin: true,
                    backing_generation: 0,
                }],
            }],
        }
    }

    #[test]
    fn one_element_in_two_targets_is_allowed() {
        let mut p = plan();
        let mut second = p.targets[0].clone();
        second.group = "h".into();
        second.iqn = "iqn.2025-01.org.example:arr:h".into();
        p.targets.push(second);
        let (w, left_out) = want(&p, &BTreeMap::new()).expect("valid");
        assert!(left_out.is_empty(), "{left_out:?}");
        assert_eq!(w.owner, "iqn.2025-01.org.example:arr:");
        assert_eq!(w.targets.len(), 2);
        assert_eq!(w.targets[0].luns[&1].spec.cache, CachePolicy::WriteThrough);
    }

    #[test]
    fn bad_names_are_refused_without_secrets() {
        let dir = tempfile::tempdir().expect("tmp");
        let secret_file = dir.path().join("s");
        fs::write(&secret_file, "short").expect("write");
        let mut p = plan();
        p.chap = Some(ChapPlan {
            username: "user".into(),
            secret_file,
        });
        let e = want(&p, &BTreeMap::new()).expect_err("short secret").to_string();
        assert!(
            e.contains("CHAP secret") && !e.contains("'short'") && !e.contains("\"short\""),
            "{e}"
        );
        // A bad name leaves out what it names, and only that.
        let mut p = plan();
        p.targets[0].initiators = vec!["not an iqn".into(), "iqn.2025-01.org.example:ok".into()];
        let mut bad = p.targets[0].clone();
        bad.group = "Bad_Group".into();
        bad.iqn = "iqn.2025-01.org.example:arr:bad_group".into();
        p.targets.push(bad);
        let (w, left_out) = want(&p, &BTreeMap::new()).expect("served in part");
        assert_eq!(w.targets.len(), 1);
        assert_eq!(w.targets[0].initiators.len(), 1);
        assert_eq!(left_out.len(), 2, "{left_out:?}");
        assert!(left_out
            .iter()
            .any(|m| m.contains("Bad_Group") && m.contains("not served")));
    }

    #[test]
    fn fingerprint_follows_the_plan() {
        let s = TgtSettings::new(3);
        let a = fingerprint(&plan(), &s);
        assert_eq!(a, fingerprint(&plan(), &s));
        let mut p = plan();
        p.targets[0].luns[0].backing_generation = 1;
        assert_ne!(a, fingerprint(&p, &s));
        assert_ne!(a, fingerprint(&plan(), &TgtSettings::new(4)));
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut r = Record {
            instance: Some("1:2:3.4".into()),
            ..Record::default()
        };
        r.luns.insert(
            lun_key("t", 1),
            AppliedLun {
                element: "e".into(),
                generation: 2,
            },
        );
        save_record(dir.path(), &r).expect("save");
        assert_eq!(load_record(dir.path()), r);
        let mode = fs::metadata(record_path(dir.path())).expect("md").mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
