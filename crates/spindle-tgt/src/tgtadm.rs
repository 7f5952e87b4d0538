//! A typed client for `tgtadm`, bound to one tgtd instance (control port N).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{AdmError, TgtError};
use crate::ipc;
use crate::names::{
    BackingPath, InitiatorAddress, Iqn, ProductId, ScsiId, ScsiSn, Secret, UserName, VendorId,
};
use crate::show::{self, LunInfo, SystemInfo, TargetInfo};

/// Where tgtadm lives on Debian.
pub const DEFAULT_TGTADM: &str = "/usr/sbin/tgtadm";
/// tgtd's default management socket base (`TGT_IPC_SOCKET` overrides it); the socket of
/// instance N is `BASE.N`, its lock file `BASE.N.lock`.
pub const DEFAULT_IPC_SOCKET_BASE: &str = "/var/run/tgtd/socket";
/// tgtadm keeps the control port in a C `short`.
pub const MAX_CONTROL_PORT: u16 = i16::MAX as u16;
/// Highest LUN this crate hands to tgt (SAM flat space addressing).
pub const MAX_LUN: u64 = 16383;

/// tgt's default caching mode page (SBC page 8) with WCE cleared: byte 2 of the page goes
/// from 0x14 (DISC|WCE) to 0x10. Set with `--params mode_page=...`.
const CACHING_PAGE_WCE_OFF: &str = "8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0";
/// tgt's default caching mode page (WCE set).
const CACHING_PAGE_WCE_ON: &str = "8:0:18:0x14:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0";

/// How a CHAP secret travels to tgtd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretChannel {
    /// Over tgtd's management Unix socket, as tgtadm itself would send it, but from this
    /// process: the secret is never on a command line (default).
    #[default]
    ManagementSocket,
    /// As `tgtadm --password SECRET`: the secret is readable in `/proc/PID/cmdline` by every
    /// local user (unless /proc is mounted with `hidepid`) for the few milliseconds that the
    /// tgtadm process lives. tgtadm offers no other way (no stdin, file or environment input).
    CommandLine,
}

/// How writes reach the backing file. tgt's knobs: `--bsoflags sync|direct|sync:direct` at
/// logical-unit creation (shown by `tgtadm --op show` as "Backing store flags"), and the
/// caching mode page's WCE bit (`--params mode_page=8:0:18:...`; not shown by tgtadm).
/// With WCE clear, tgt's rdwr backing store calls `fdatasync` after every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CachePolicy {
    /// Writes land in the host page cache (WCE=1). SYNCHRONIZE CACHE and FUA writes
    /// `fdatasync`. Initiators may switch WCE off themselves with MODE SELECT.
    #[default]
    WriteBack,
    /// The backing file is opened `O_SYNC` and initiators see WCE=0 (fixed: tgt drops the
    /// page's changeable mask when the page is replaced). Every write is durable when acknowledged.
    WriteThrough,
    /// `O_DIRECT`: writes bypass the host page cache (WCE=1; flushes still `fdatasync`).
    Direct,
    /// `O_SYNC|O_DIRECT` and WCE=0.
    DirectWriteThrough,
}

impl CachePolicy {
    /// The `--bsoflags` value, if any.
    pub fn bsoflags(self) -> Option<&'static str> {
        match self {
            CachePolicy::WriteBack => None,
            CachePolicy::WriteThrough => Some("sync"),
            CachePolicy::Direct => Some("direct"),
            CachePolicy::DirectWriteThrough => Some("sync:direct"),
        }
    }

    /// Whether initiators see a volatile write cache (WCE).
    pub fn write_cache(self) -> bool {
        matches!(self, CachePolicy::WriteBack | CachePolicy::Direct)
    }

    /// The policy whose open flags tgtd reports (the observable part of a policy).
    pub fn from_oflags(sync: bool, direct: bool) -> CachePolicy {
        match (sync, direct) {
            (false, false) => CachePolicy::WriteBack,
            (true, false) => CachePolicy::WriteThrough,
            (false, true) => CachePolicy::Direct,
            (true, true) => CachePolicy::DirectWriteThrough,
        }
    }
}

fn default_online() -> bool {
    true
}

/// Everything about one logical unit that spindle decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunSpec {
    /// The backing file (a regular, typically sparse, file).
    pub backing: BackingPath,
    /// VPD page 0x83 identity (the NAA-6 designator).
    pub scsi_id: ScsiId,
    /// VPD page 0x80 serial number.
    pub scsi_sn: ScsiSn,
    /// INQUIRY vendor.
    #[serde(default)]
    pub vendor_id: VendorId,
    /// INQUIRY product.
    #[serde(default)]
    pub product_id: ProductId,
    /// Whether initiators may use the unit (offline units answer NOT READY and are left out
    /// of iscsi-ls listings, but keep their LUN).
    #[serde(default = "default_online")]
    pub online: bool,
    /// Write caching.
    #[serde(default)]
    pub cache: CachePolicy,
    /// Thin provisioning offered to initiators (`--params thin_provisioning=1`): READ
    /// CAPACITY(16) sets LBPME and LBPRZ, VPD page 0xB2 offers UNMAP and WRITE SAME with
    /// UNMAP, and the rdwr store punches a hole in the backing file for each unmapped range.
    /// Changeable in place ([`Tgtadm::set_thin_provisioning`]), so not a reason to re-create
    /// a unit.
    #[serde(default)]
    pub thin_provisioning: bool,
}

/// Why the existing logical unit `lu` must be re-created to become `spec`, if it must:
/// device and backing-store type, backing file, identity (scsi_id, scsi_sn), cache policy.
/// (Vendor and product ids are not shown by tgtadm, so they cannot be compared.)
pub fn lun_mismatch(lu: &LunInfo, spec: &LunSpec) -> Option<String> {
    let mut why = Vec::new();
    if lu.device_type != "disk" {
        why.push(format!("type {} instead of disk", lu.device_type));
    }
    if lu.backing_store_type != "rdwr" {
        why.push(format!("backing store {} instead of rdwr", lu.backing_store_type));
    }
    if lu.backing_path.as_deref() != Some(spec.backing.as_str()) {
        why.push(format!(
            "backing file {} instead of {}",
            lu.backing_path.as_deref().unwrap_or("none"),
            spec.backing
        ));
    }
    if lu.scsi_id != spec.scsi_id.as_str() {
        why.push(format!("scsi_id {} instead of {}", lu.scsi_id, spec.scsi_id));
    }
    if lu.scsi_sn != spec.scsi_sn.as_str() {
        why.push(format!("scsi_sn {} instead of {}", lu.scsi_sn, spec.scsi_sn));
    }
    let cache = CachePolicy::from_oflags(lu.oflag_sync, lu.oflag_direct);
    if cache != spec.cache {
        why.push(format!("cache policy {cache:?} instead of {:?}", spec.cache));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

enum Arg<'a> {
    Plain(String),
    Secret(&'a Secret),
}

impl Arg<'_> {
    fn value(&self) -> &str {
        match self {
            Arg::Plain(s) => s,
            Arg::Secret(s) => s.expose_secret(),
        }
    }
}

fn plain(s: impl Into<String>) -> Arg<'static> {
    Arg::Plain(s.into())
}

/// A `tgtadm` client for tgtd instance N. Cheap to clone.
#[derive(Clone)]
pub struct Tgtadm {
    control_port: u16,
    program: PathBuf,
    ipc_socket_base: Option<PathBuf>,
    secret_channel: SecretChannel,
    timeout: Duration,
}

impl fmt::Debug for Tgtadm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tgtadm")
            .field("control_port", &self.control_port)
            .field("program", &self.program)
            .field("ipc_socket_base", &self.ipc_socket_base)
            .field("secret_channel", &self.secret_channel)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Checks a value that came from tgtd (a foreign initiator or account name) before handing
/// it back to tgtadm: non-empty, no leading '-', no ',' or '=', no whitespace or controls.
fn check_token(kind: &'static str, value: &str) -> Result<(), TgtError> {
    let reason = if value.is_empty() {
        Some("is empty")
    } else if value.starts_with('-') {
        Some("must not start with '-'")
    } else if value.len() > 255 {
        Some("is longer than 255 bytes")
    } else if value
        .chars()
        .any(|c| c == ',' || c == '=' || c.is_whitespace() || c.is_control())
    {
        Some("must not hold ',', '=', spaces or control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(TgtError::InvalidName {
            kind,
            value: value.chars().take(80).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

fn check_tid(tid: u32) -> Result<(), TgtError> {
    if tid == 0 || tid > i32::MAX as u32 {
        return Err(TgtError::InvalidName {
            kind: "target id",
            value: tid.to_string(),
            reason: "must be between 1 and 2147483647",
        });
    }
    Ok(())
}

fn check_lun(lun: u64) -> Result<(), TgtError> {
    if lun == 0 || lun > MAX_LUN {
        return Err(TgtError::InvalidName {
            kind: "LUN",
            value: lun.to_string(),
            reason: "must be between 1 and 16383 (LUN 0 is tgt's controller)",
        });
    }
    Ok(())
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

impl Tgtadm {
    /// A client for instance `control_port` (0..=32767), using `/usr/sbin/tgtadm`, the
    /// default socket location and a 30 s time limit per command.
    pub fn new(control_port: u16) -> Result<Tgtadm, TgtError> {
        if control_port > MAX_CONTROL_PORT {
            return Err(TgtError::Config(format!(
                "control port {control_port} is above {MAX_CONTROL_PORT} (tgtadm keeps it in a C short)"
            )));
        }
        Ok(Tgtadm {
            control_port,
            program: PathBuf::from(DEFAULT_TGTADM),
            ipc_socket_base: None,
            secret_channel: SecretChannel::default(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Uses another tgtadm binary.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Tgtadm {
        self.program = program.into();
        self
    }

    /// Uses `TGT_IPC_SOCKET=base` (the instance's socket is then `base.N`). Must match the
    /// tgtd instance's.
    pub fn with_ipc_socket_base(mut self, base: impl Into<PathBuf>) -> Tgtadm {
        self.ipc_socket_base = Some(base.into());
        self
    }

    /// Chooses how CHAP secrets reach tgtd.
    pub fn with_secret_channel(mut self, channel: SecretChannel) -> Tgtadm {
        self.secret_channel = channel;
        self
    }

    /// Sets the time limit for one tgtadm command.
    pub fn with_timeout(mut self, timeout: Duration) -> Tgtadm {
        self.timeout = timeout;
        self
    }

    /// The instance's control port.
    pub fn control_port(&self) -> u16 {
        self.control_port
    }

    /// The socket base in use (`TGT_IPC_SOCKET` or the default).
    pub fn ipc_socket_base(&self) -> &Path {
        self.ipc_socket_base
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_IPC_SOCKET_BASE))
    }

    /// The instance's management socket, `BASE.N`.
    pub fn ipc_socket_path(&self) -> PathBuf {
        let mut s = self.ipc_socket_base().as_os_str().to_os_string();
        s.push(format!(".{}", self.control_port));
        PathBuf::from(s)
    }

    fn base_args(&self, mode: &str, op: &str) -> Vec<Arg<'static>> {
        let mut v = vec![plain("-C"), plain(self.control_port.to_string())];
        if mode != "sys" {
            v.push(plain("--lld"));
            v.push(plain("iscsi"));
        }
        v.extend([plain("--op"), plain(op), plain("--mode"), plain(mode)]);
        v
    }

    fn render(&self, args: &[Arg<'_>]) -> String {
        let mut s = self.program.display().to_string();
        for a in args {
            s.push(' ');
            match a {
                Arg::Plain(p) => s.push_str(p),
                Arg::Secret(_) => s.push_str("<redacted>"),
            }
        }
        s
    }

    fn run(&self, args: Vec<Arg<'_>>) -> Result<String, TgtError> {
        let shown = self.render(&args);
        tracing::debug!(command = %shown, "tgtadm");
        let mut cmd = Command::new(&self.program);
        cmd.args(args.iter().map(Arg::value))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &self.ipc_socket_base {
            Some(base) => cmd.env("TGT_IPC_SOCKET", base),
            None => cmd.env_remove("TGT_IPC_SOCKET"),
        };
        let mut child = cmd.spawn().map_err(|source| TgtError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let out = child.stdout.take().map(read_all);
        let err = child.stderr.take().map(read_all);
        let status = wait_until(&mut child, self.timeout).map_err(|source| TgtError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
        let Some(status) = status else {
            return Err(TgtError::Timeout {
                command: shown,
                seconds: self.timeout.as_secs(),
            });
        };
        if status.success() {
            return Ok(String::from_utf8_lossy(&stdout).into_owned());
        }
        let mut message = String::from_utf8_lossy(&stderr).into_owned();
        for a in &args {
            if let Arg::Secret(s) = a {
                message = message.replace(s.expose_secret(), "<redacted>");
            }
        }
        let message = message
            .lines()
            .map(|l| l.trim().trim_start_matches("tgtadm: "))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        if message.contains("tgt daemon") {
            return Err(TgtError::NotRunning {
                control_port: self.control_port,
                detail: message,
            });
        }
        Err(TgtError::Tgtadm {
            command: shown,
            status: status.to_string(),
            code: AdmError::from_message(&message),
            message,
        })
    }

    // ----- system ---------------------------------------------------------------------

    /// `--op show --mode sys`, asked over tgtd's management socket the way tgtadm asks it
    /// (the answer is the text tgtadm would print), so it costs one round trip and starts no
    /// process: this is what every liveness check runs.
    pub fn system(&self) -> Result<SystemInfo, TgtError> {
        show::parse_system(&self.show(ipc::Mode::System, "showing the system state")?)
    }

    /// `--op show --mode MODE` with no parameters, asked over the management socket the way
    /// tgtadm asks it (tid and lun unset); the answer is the text tgtadm would print.
    fn show(&self, mode: ipc::Mode, label: &str) -> Result<String, TgtError> {
        tracing::debug!(
            control_port = self.control_port,
            request = label,
            "tgtd management socket"
        );
        ipc::request(
            &self.ipc_socket_path(),
            self.control_port,
            &ipc::Request {
                mode,
                op: ipc::Op::Show,
                tid: -1,
                lun: u64::MAX,
                body: None,
                label,
            },
            self.timeout,
        )
    }

    /// Whether tgtd answers (`--op show --mode sys` over its management socket succeeds).
    pub fn is_alive(&self) -> bool {
        matches!(self.liveness(), Ok(true))
    }

    /// What `--op show --mode sys` over the management socket finds: `Ok(true)` tgtd
    /// answers, `Ok(false)` nothing listens (a killed tgtd: connecting is refused), `Err`
    /// something listens but does not answer as tgtd does (stopped, overloaded: the question
    /// waits for the timeout), which is not a dead tgtd.
    pub fn liveness(&self) -> Result<bool, TgtError> {
        match self.system() {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_running() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether a process listens on tgtd's management socket: a `--op show --mode sys` is
    /// sent and its answer read, and any answer but "cannot connect" counts (a tgtd that
    /// listens but does not answer in time passes; only [`Tgtadm::is_alive`] tells those
    /// apart). A killed tgtd leaves its socket file behind, and connecting to it is refused.
    ///
    /// Never a bare connect-and-close: tgtd (up to 1.0.9x) takes a connection closed before
    /// a whole request arrived for "try again" whenever its errno was left at EAGAIN (as it
    /// is once it has served iSCSI I/O), keeps the socket and polls it forever — a leaked
    /// descriptor per check and a CPU spinning (usr/mgmt.c, `mtask_recv_send_handler`).
    pub fn is_listening(&self) -> bool {
        !matches!(self.liveness(), Ok(false))
    }

    /// The portals tgtd listens on (`ADDRESS:PORT`).
    pub fn portals(&self) -> Result<Vec<String>, TgtError> {
        show::parse_portals(&self.show(ipc::Mode::Portal, "showing the portals")?)
    }

    /// Stops the daemon the way tgtd allows (it ignores SIGTERM): deletes every target with
    /// `--force`, then `--op delete --mode system` (tgtadm waits until the socket is gone).
    pub fn shutdown_daemon(&self) -> Result<(), TgtError> {
        for t in self.targets()? {
            match self.delete_target(t.tid, true) {
                Ok(()) => {}
                Err(e) if e.adm_error() == Some(AdmError::NoTarget) => {}
                Err(e) => return Err(e),
            }
        }
        self.run(self.base_args("sys", "delete")).map(drop)
    }

    /// Removes the management socket files a stopped tgtd leaves behind (`BASE.N` and
    /// `BASE.N.lock`; tgtd does not remove them when it exits). Does nothing while a process
    /// still listens on the socket. Returns whether nothing listens there.
    pub fn remove_stale_socket(&self) -> bool {
        if self.is_listening() {
            return false;
        }
        let socket = self.ipc_socket_path();
        let mut lock = socket.clone().into_os_string();
        lock.push(".lock");
        for f in [socket, PathBuf::from(lock)] {
            let _ = std::fs::remove_file(f);
        }
        true
    }

    // ----- targets --------------------------------------------------------------------

    /// `--op show --mode target` (over the management socket), parsed.
    pub fn targets(&self) -> Result<Vec<TargetInfo>, TgtError> {
        show::parse_targets(&self.show(ipc::Mode::Target, "showing the targets")?)
    }

    /// The target named `name`, if tgtd has it.
    pub fn target_by_name(&self, name: &str) -> Result<Option<TargetInfo>, TgtError> {
        Ok(self.targets()?.into_iter().find(|t| t.name == name))
    }

    /// `--op new --mode target --tid T --targetname NAME`. A new target has no ACL entry, so
    /// no initiator can log in until one is bound.
    pub fn new_target(&self, tid: u32, name: &Iqn) -> Result<(), TgtError> {
        check_tid(tid)?;
        let mut a = self.base_args("target", "new");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--targetname"),
            plain(name.as_str()),
        ]);
        self.run(a).map(drop)
    }

    /// `--op delete --mode target --tid T [--force]` (`force` also ends open sessions).
    pub fn delete_target(&self, tid: u32, force: bool) -> Result<(), TgtError> {
        check_tid(tid)?;
        let mut a = self.base_args("target", "delete");
        if force {
            a.push(plain("--force"));
        }
        a.extend([plain("--tid"), plain(tid.to_string())]);
        self.run(a).map(drop)
    }

    /// Adds `initiator` to the target's ACL (`--op bind --initiator-name`).
    pub fn bind_initiator(&self, tid: u32, initiator: &Iqn) -> Result<(), TgtError> {
        check_tid(tid)?;
        let mut a = self.base_args("target", "bind");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--initiator-name"),
            plain(initiator.as_str()),
        ]);
        self.run(a).map(drop)
    }

    /// Removes an initiator name from the target's ACL. Takes a plain string because the
    /// entry may be one spindle did not put there; it is still checked.
    pub fn unbind_initiator(&self, tid: u32, initiator: &str) -> Result<(), TgtError> {
        check_tid(tid)?;
        check_token("initiator name", initiator)?;
        let mut a = self.base_args("target", "unbind");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--initiator-name"),
            plain(initiator),
        ]);
        self.run(a).map(drop)
    }

    /// Removes an initiator-address rule (such as `ALL`) from the target's ACL. There is
    /// deliberately no way to add one.
    pub fn unbind_address(&self, tid: u32, address: &InitiatorAddress) -> Result<(), TgtError> {
        check_tid(tid)?;
        let mut a = self.base_args("target", "unbind");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--initiator-address"),
            plain(address.as_str()),
        ]);
        self.run(a).map(drop)
    }

    // ----- logical units --------------------------------------------------------------

    /// `--op new --mode logicalunit --tid T --lun L --backing-store PATH --bstype rdwr
    /// [--bsoflags ...]`. The unit starts online with tgt's default identity; prefer
    /// [`Tgtadm::add_lun`], which configures it at once.
    pub fn new_lu(
        &self,
        tid: u32,
        lun: u64,
        backing: &BackingPath,
        cache: CachePolicy,
    ) -> Result<(), TgtError> {
        check_tid(tid)?;
        check_lun(lun)?;
        let mut a = self.base_args("logicalunit", "new");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--lun"),
            plain(lun.to_string()),
            plain("--backing-store"),
            plain(backing.as_str()),
            plain("--bstype"),
            plain("rdwr"),
        ]);
        if let Some(flags) = cache.bsoflags() {
            a.extend([plain("--bsoflags"), plain(flags)]);
        }
        self.run(a).map(drop)
    }

    fn update_lu(&self, tid: u32, lun: u64, params: &[String]) -> Result<(), TgtError> {
        check_tid(tid)?;
        check_lun(lun)?;
        let mut a = self.base_args("logicalunit", "update");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--lun"),
            plain(lun.to_string()),
            plain("--params"),
            plain(params.join(",")),
        ]);
        self.run(a).map(drop)
    }

    /// Sets identity, caching page, thin provisioning and online state in one
    /// `--op update --mode logicalunit --params scsi_id=..,scsi_sn=..,vendor_id=..,product_id=..[,mode_page=8:...][,thin_provisioning=1][,online=0]`.
    pub fn configure_lu(&self, tid: u32, lun: u64, spec: &LunSpec) -> Result<(), TgtError> {
        let mut params = vec![
            format!("scsi_id={}", spec.scsi_id),
            format!("scsi_sn={}", spec.scsi_sn),
            format!("vendor_id={}", spec.vendor_id),
            format!("product_id={}", spec.product_id),
        ];
        if !spec.cache.write_cache() {
            params.push(format!("mode_page={CACHING_PAGE_WCE_OFF}"));
        }
        if spec.thin_provisioning {
            params.push("thin_provisioning=1".to_string());
        }
        if !spec.online {
            params.push("online=0".to_string());
        }
        self.update_lu(tid, lun, &params)
    }

    /// Creates and configures a logical unit ([`Tgtadm::new_lu`] then
    /// [`Tgtadm::configure_lu`]); if configuring fails the unit is deleted again, so no unit
    /// with tgt's default identity is left behind. The backing file must be a regular file.
    pub fn add_lun(&self, tid: u32, lun: u64, spec: &LunSpec) -> Result<(), TgtError> {
        let meta = std::fs::metadata(spec.backing.as_path()).map_err(|source| TgtError::Io {
            path: spec.backing.as_path().to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(TgtError::Io {
                path: spec.backing.as_path().to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        self.new_lu(tid, lun, &spec.backing, spec.cache)?;
        if let Err(e) = self.configure_lu(tid, lun, spec) {
            let _ = self.delete_lu(tid, lun);
            return Err(e);
        }
        Ok(())
    }

    /// `--params online=1` / `online=0`. Offline units answer NOT READY (ASC 0x04/0x01)
    /// and keep their LUN, identity and data.
    pub fn set_lu_online(&self, tid: u32, lun: u64, online: bool) -> Result<(), TgtError> {
        self.update_lu(tid, lun, &[format!("online={}", u8::from(online))])
    }

    /// `--params thin_provisioning=1` / `=0`, in place: the unit keeps its LUN, identity and
    /// sessions (initiators see the change at their next READ CAPACITY(16) or VPD 0xB2 read).
    pub fn set_thin_provisioning(&self, tid: u32, lun: u64, enabled: bool) -> Result<(), TgtError> {
        self.update_lu(tid, lun, &[format!("thin_provisioning={}", u8::from(enabled))])
    }

    /// Sets the caching mode page's WCE bit (`--params mode_page=8:0:18:...`). tgtd does not
    /// report it back. After this the bit is no longer changeable by initiators.
    pub fn set_write_cache(&self, tid: u32, lun: u64, enabled: bool) -> Result<(), TgtError> {
        let page = if enabled {
            CACHING_PAGE_WCE_ON
        } else {
            CACHING_PAGE_WCE_OFF
        };
        self.update_lu(tid, lun, &[format!("mode_page={page}")])
    }

    /// Makes a changed backing-file size visible (tgt reads the size only when it opens the
    /// file): `--params online=0`, then `--params path=PATH` (tgt closes and reopens the file,
    /// re-reads its size, and brings the unit online; it refuses while online), then
    /// `online=0` again if `online` is false. If the file cannot be reopened the unit is left
    /// offline without a backing store. The unit keeps its LUN, scsi_id, scsi_sn,
    /// inquiry data and caching settings; in-flight commands see NOT READY for the moment
    /// it is offline.
    pub fn refresh_lu_size(
        &self,
        tid: u32,
        lun: u64,
        backing: &BackingPath,
        online: bool,
    ) -> Result<(), TgtError> {
        self.set_lu_online(tid, lun, false)?;
        // If reopening fails, tgt has already closed the old file: the unit stays offline
        // without a backing store (`lun_mismatch` then reports "backing file none").
        self.update_lu(tid, lun, &[format!("path={}", backing.as_str())])?;
        if !online {
            self.set_lu_online(tid, lun, false)?;
        }
        Ok(())
    }

    /// `--op delete --mode logicalunit --tid T --lun L` (fails while commands are in flight).
    pub fn delete_lu(&self, tid: u32, lun: u64) -> Result<(), TgtError> {
        check_tid(tid)?;
        check_lun(lun)?;
        let mut a = self.base_args("logicalunit", "delete");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--lun"),
            plain(lun.to_string()),
        ]);
        self.run(a).map(drop)
    }

    // ----- accounts -------------------------------------------------------------------

    /// `--op show --mode account`: the account names (tgtd never shows secrets).
    pub fn accounts(&self) -> Result<Vec<String>, TgtError> {
        show::parse_accounts(&self.show(ipc::Mode::Account, "showing the accounts")?)
    }

    /// Creates CHAP account `user` with `secret`, through the configured [`SecretChannel`].
    /// tgt's accounts are global to the instance; a target uses one once it is bound.
    pub fn new_account(&self, user: &UserName, secret: &Secret) -> Result<(), TgtError> {
        match self.secret_channel {
            SecretChannel::ManagementSocket => {
                let mut body =
                    format!("user={},password={}", user.as_str(), secret.expose_secret()).into_bytes();
                let label = format!("creating account {user}");
                let result = ipc::request(
                    &self.ipc_socket_path(),
                    self.control_port,
                    &ipc::Request {
                        mode: ipc::Mode::Account,
                        op: ipc::Op::New,
                        tid: -1,
                        lun: u64::MAX,
                        body: Some(&body),
                        label: &label,
                    },
                    self.timeout,
                );
                body.iter_mut().for_each(|b| *b = 0);
                std::hint::black_box(&body);
                result?;
            }
            SecretChannel::CommandLine => {
                let mut a = self.base_args("account", "new");
                a.extend([plain("--user"), plain(user.as_str()), plain("--password")]);
                a.push(Arg::Secret(secret));
                self.run(a)?;
            }
        }
        Ok(())
    }

    /// Deletes an account (tgtd also unbinds it from every target). Takes a plain string
    /// because the account may be one spindle did not create; it is still checked.
    pub fn delete_account(&self, user: &str) -> Result<(), TgtError> {
        check_token("CHAP account name", user)?;
        let mut a = self.base_args("account", "delete");
        a.extend([plain("--user"), plain(user)]);
        self.run(a).map(drop)
    }

    /// Binds an account to a target as an incoming (initiator-authenticating) account. A
    /// target with at least one incoming account requires CHAP at login.
    pub fn bind_account(&self, tid: u32, user: &UserName) -> Result<(), TgtError> {
        check_tid(tid)?;
        let mut a = self.base_args("account", "bind");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--user"),
            plain(user.as_str()),
        ]);
        self.run(a).map(drop)
    }

    /// Unbinds an incoming account from a target.
    pub fn unbind_account(&self, tid: u32, user: &str) -> Result<(), TgtError> {
        check_tid(tid)?;
        check_token("CHAP account name", user)?;
        let mut a = self.base_args("account", "unbind");
        a.extend([
            plain("--tid"),
            plain(tid.to_string()),
            plain("--user"),
            plain(user),
        ]);
        self.run(a).map(drop)
    }
}

/// Waits for `child` up to `timeout`; kills it and returns `None` when the time is up.
fn wait_until(child: &mut std::process::Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let start = Instant::now();
    // tgtadm lives about a millisecond: poll finely at first (a coarse first pause would
    // double the cost of every command), then back off.
    let mut pause = Duration::from_micros(50);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(pause);
        let cap = if elapsed < Duration::from_millis(50) {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(20)
        };
        pause = (pause * 2).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_rendered_commands() {
        let adm = Tgtadm::new(7).expect("valid");
        let secret = Secret::new("super-secret-value").expect("valid");
        let args = vec![plain("--password"), Arg::Secret(&secret)];
        let shown = adm.render(&args);
        assert!(!shown.contains("super-secret-value"));
        assert!(shown.ends_with("--password <redacted>"));
        assert!(!format!("{adm:?}").contains("super"));
    }

    /// tgtd keeps (and spins on) a management connection closed before a whole request
    /// arrived, once its errno was left at EAGAIN: the liveness check must send a whole
    /// request and read the answer. Here a stand-in for tgtd's socket records what arrives.
    #[test]
    fn the_liveness_check_sends_a_whole_request() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().expect("tmp");
        let adm = Tgtadm::new(77)
            .expect("valid")
            .with_ipc_socket_base(dir.path().join("sock"))
            .with_timeout(Duration::from_secs(5));
        let listener = std::os::unix::net::UnixListener::bind(adm.ipc_socket_path()).expect("bind");
        let tgtd = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
            let (mut c, _) = listener.accept()?;
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut req = vec![0u8; 120];
            c.read_exact(&mut req)?;
            let text = b"System:\n    State: ready\n    debug: off\n";
            let mut rsp = 0u32.to_ne_bytes().to_vec();
            rsp.extend_from_slice(&(8 + text.len() as u32).to_ne_bytes());
            rsp.extend_from_slice(text);
            c.write_all(&rsp)?;
            Ok(req)
        });
        assert!(adm.is_listening());
        let req = tgtd
            .join()
            .expect("thread")
            .expect("a whole request header arrived");
        assert_eq!(&req[0..4], &0u32.to_ne_bytes(), "mode system");
        assert_eq!(&req[4..8], &2u32.to_ne_bytes(), "op show");
        // Nothing listens any more: refused, not listening.
        std::fs::remove_file(adm.ipc_socket_path()).expect("rm");
        assert!(!adm.is_listening());
    }

    #[test]
    fn limits() {
        assert!(Tgtadm::new(32768).is_err());
        assert!(check_tid(0).is_err());
        assert!(check_lun(0).is_err());
        assert!(check_lun(16384).is_err());
        assert!(check_token("x", "-x").is_err());
        assert!(check_token("x", "a,b").is_err());
        assert!(check_token("x", "ok.name").is_ok());
    }

    #[test]
    fn cache_policies_round_trip_through_oflags() {
        for p in [
            CachePolicy::WriteBack,
            CachePolicy::WriteThrough,
            CachePolicy::Direct,
            CachePolicy::DirectWriteThrough,
        ] {
            let flags = p.bsoflags().unwrap_or("");
            assert_eq!(
                CachePolicy::from_oflags(flags.contains("sync"), flags.contains("direct")),
                p
            );
        }
    }

    #[test]
    fn socket_path() {
        let adm = Tgtadm::new(7).expect("valid").with_ipc_socket_base("/tmp/x/sock");
        assert_eq!(adm.ipc_socket_path(), PathBuf::from("/tmp/x/sock.7"));
        assert_eq!(
            Tgtadm::new(77).expect("valid").ipc_socket_path(),
            PathBuf::from("/var/run/tgtd/socket.77")
        );
    }

    fn spec() -> LunSpec {
        LunSpec {
            backing: BackingPath::new("/srv/a.img").expect("valid"),
            scsi_id: ScsiId::new("6001405abcdef0123456789abcdef012").expect("valid"),
            scsi_sn: ScsiSn::new("SN1").expect("valid"),
            vendor_id: Default::default(),
            product_id: Default::default(),
            online: true,
            cache: CachePolicy::WriteThrough,
            thin_provisioning: false,
        }
    }

    fn info() -> LunInfo {
        LunInfo {
            lun: 1,
            device_type: "disk".into(),
            scsi_id: "6001405abcdef0123456789abcdef012".into(),
            scsi_sn: "SN1".into(),
            backing_store_type: "rdwr".into(),
            backing_path: Some("/srv/a.img".into()),
            oflag_sync: true,
            online: true,
            ..LunInfo::default()
        }
    }

    #[test]
    fn mismatches() {
        assert_eq!(lun_mismatch(&info(), &spec()), None);
        let mut lu = info();
        lu.scsi_id = "IET     00010001".into();
        assert!(lun_mismatch(&lu, &spec()).expect("valid").contains("scsi_id"));
        let mut lu = info();
        lu.oflag_sync = false;
        assert!(lun_mismatch(&lu, &spec())
            .expect("valid")
            .contains("cache policy"));
        let mut lu = info();
        lu.backing_path = None;
        assert!(lun_mismatch(&lu, &spec())
            .expect("valid")
            .contains("backing file none"));
        let mut lu = info();
        lu.online = false;
        assert_eq!(
            lun_mismatch(&lu, &spec()),
            None,
            "online is fixed in place, not by re-creating"
        );
    }
}
