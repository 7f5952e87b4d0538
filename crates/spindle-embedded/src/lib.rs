//! spindle's **embedded default**: on a fresh machine `spindle serve` starts with a local Linux
//! array in its data directory, with no hand set-up.
//!
//! [`prepare`] gets everything ready up to the first request to the array:
//!
//! 1. **Programs**: tgtd, tgtadm, and for an image pool mkfs.xfs, mount and losetup. Missing
//!    ones are installed with `apt-get update` + `apt-get install -y --no-install-recommends
//!    tgt xfsprogs` when [`EmbeddedConfig::install`] is set and spindle runs as root (argument
//!    vectors, output captured); otherwise the error names them and the command.
//! 2. **Pool**: when `<data_dir>` is on a file system that can reflink (a real FICLONE of one
//!    small temporary file into another says so: btrfs, XFS with reflink), the pool is the
//!    plain directory `<data_dir>/pool`. Otherwise it is the sparse image `<data_dir>/pool.img`
//!    (made once, `mkfs.xfs -m reflink=1` only when new, never reformatted) loop-mounted at
//!    `<data_dir>/pool`. A mount already there is reused, so `prepare` is idempotent across
//!    restarts; an existing image always wins over the plain directory, so its LUNs are never
//!    hidden.
//! 3. **The array program** `spindle-array`: [`EmbeddedConfig::array_program`], else beside the
//!    current executable, else on PATH.
//! 4. **The ss_record** of the built-in plug-in `spindle.linux.LinuxArray`, checked with the
//!    plug-in's own parser. It carries no name or uuid: the server sets them.
//!
//! The array program starts tgtd itself (detached) and brings it to its export state on every
//! request, so keeping tgtd serving is a matter of calling the array regularly; LUNs stay
//! exported when spindle stops. [`release`] unmounts and detaches the pool image (for tests and
//! uninstalling; `serve` never calls it).

mod error;
mod mounts;
mod tools;

pub use error::EmbeddedError;

use serde_json::{json, Value};
use spindle_plugin_linux::fsops;
use std::ffi::OsStr;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use tools::args;

/// The plug-in class the embedded array is served by.
pub const PLUGIN: &str = "spindle.linux.LinuxArray";
/// The default iSCSI portal.
pub const DEFAULT_PORTAL: &str = "127.0.0.1:3260";
/// The default control port of the embedded array's tgtd (`tgtd -C 1`): not tgt's own default 0,
/// so a tgtd started by the distribution's service is never mistaken for the embedded one.
pub const DEFAULT_TGT_CONTROL: u16 = 1;
/// The default nominal size of the pool image (sparse: space is used as LUNs are written).
pub const DEFAULT_POOL_SIZE: u64 = 64 << 30;
/// The smallest pool image: mkfs.xfs refuses file systems under 300 MiB.
pub const MIN_POOL_SIZE: u64 = 300 << 20;
/// The name of the embedded array's pool (its `vol_group`).
pub const POOL_NAME: &str = "default";
/// The extra_info setting that identifies the embedded array across restarts: its state
/// directory, `<data-dir>/array`, which no flag of `spindle serve` changes.
pub const IDENTITY_SETTING: &str = "state";
/// Target names are `<IQN_BASE>:<host>:<access group>`.
pub const IQN_BASE: &str = "iqn.2026-11.localhost.spindle";
/// The array program's name.
pub const ARRAY_PROGRAM: &str = "spindle-array";
/// The largest tgtd control port (tgtadm keeps it in a C short).
pub const MAX_TGT_CONTROL: u16 = 32767;

/// Where the embedded array lives and how it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// spindle's data directory; the pool, its image and the array's state live here.
    pub data_dir: PathBuf,
    /// Nominal size in bytes of the pool image, when one is made (it is sparse; an existing
    /// image is never resized).
    pub pool_size: u64,
    /// `ADDRESS:PORT` tgtd listens on for initiators (IPv6 as `[::1]:3260`).
    pub portal: String,
    /// The control port N of the array's tgtd (`tgtd -C N`), 0..=32767.
    pub tgt_control: u16,
    /// Install missing programs with apt-get (as root).
    pub install: bool,
    /// The array program; `None`: `spindle-array` beside the current executable, else on PATH.
    pub array_program: Option<PathBuf>,
}

impl EmbeddedConfig {
    /// The defaults for `data_dir`: [`DEFAULT_POOL_SIZE`], [`DEFAULT_PORTAL`],
    /// [`DEFAULT_TGT_CONTROL`], installing what is missing, the array program discovered.
    pub fn new(data_dir: impl Into<PathBuf>) -> EmbeddedConfig {
        EmbeddedConfig {
            data_dir: data_dir.into(),
            pool_size: DEFAULT_POOL_SIZE,
            portal: DEFAULT_PORTAL.to_string(),
            tgt_control: DEFAULT_TGT_CONTROL,
            install: true,
            array_program: None,
        }
    }
}

/// The prepared embedded array.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedArray {
    /// The `ss_record` for the plug-in (no `name` or `uuid`: the server sets them).
    pub ss_record: Value,
    /// The plug-in class, [`PLUGIN`].
    pub plugin: &'static str,
    /// The pool directory, `<data_dir>/pool`.
    pub pool_dir: PathBuf,
    /// Whether this call mounted the pool image (false when it was already mounted, or the
    /// pool is a plain directory).
    pub mounted_here: bool,
    /// What `prepare` found and did, for the log.
    pub notes: Vec<String>,
    /// The data directory, absolute and without symbolic links.
    pub data_dir: PathBuf,
    /// The pool image when the pool is spindle's loop-mounted image, else `None`.
    pub image: Option<PathBuf>,
    /// The array program the ss_record names.
    pub array_program: PathBuf,
    /// The socket of the resident array program the ss_record names (`array_socket=`,
    /// `<data_dir>/array.sock`); `None` when that path is too long for a Unix socket, and the
    /// plug-in then runs the array program once per request. [`start_resident`] starts it.
    pub array_socket: Option<PathBuf>,
}

/// Longest Unix socket path (`sun_path` holds 108 bytes with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Starts the resident array program of `array` (see `spindle_plugin_linux::daemon`): the
/// plug-in then reaches the array over its socket instead of running the program for every
/// request. `None` when the array has no socket. Dropping the returned value stops it. It
/// remembers the array in `array.served.json` beside its socket, in the data directory, and
/// serves it again (tgtd included) as soon as it starts.
pub fn start_resident(
    array: &EmbeddedArray,
) -> Result<Option<spindle_plugin_linux::daemon::Resident>, EmbeddedError> {
    let Some(socket) = &array.array_socket else {
        return Ok(None);
    };
    let served = socket.with_file_name("array.served.json");
    spindle_plugin_linux::daemon::Resident::start(&array.array_program, socket, &served)
        .map(Some)
        .map_err(|e| EmbeddedError::Resident(e.to_string()))
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> EmbeddedError + 'a {
    move |e| EmbeddedError::io(what, path, e)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Parses and checks the portal.
pub fn parse_portal(text: &str) -> Result<SocketAddr, EmbeddedError> {
    let bad = |reason: &str| EmbeddedError::InvalidPortal {
        portal: text.to_string(),
        reason: reason.to_string(),
    };
    let addr: SocketAddr = text
        .trim()
        .parse()
        .map_err(|_| bad("it is not ADDRESS:PORT with an IP address"))?;
    if addr.port() == 0 {
        return Err(bad("port 0 is not a port initiators can connect to"));
    }
    if addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return Err(bad(
            "it is not an address initiators can connect to (the portal is also the record's access_host)",
        ));
    }
    Ok(addr)
}

/// `hostname` made fit for the unique part of an iSCSI name: lower case letters, digits, '-'
/// and '.', no runs of separators, at most 63 characters; `localhost` when nothing is left.
pub fn sanitise_hostname(hostname: &str) -> String {
    let mut out = String::new();
    for c in hostname.trim().chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
            c
        } else {
            '-'
        };
        match (out.chars().last(), c) {
            (Some('-' | '.'), '-' | '.') | (None, '-' | '.') => {}
            _ => out.push(c),
        }
    }
    out.truncate(63);
    let out = out.trim_end_matches(['-', '.']).to_string();
    if out.is_empty() {
        "localhost".into()
    } else {
        out
    }
}

/// The target name prefix for `hostname`: `<IQN_BASE>:<sanitised hostname>`, checked against
/// the iSCSI name rules and leaving room for access-group names.
pub fn iqn_prefix_for(hostname: &str) -> Result<String, EmbeddedError> {
    use spindle_api::names::{normalize_iscsi_name, MAX_ISCSI_NAME, MAX_NAME_LEN};
    let prefix = format!("{IQN_BASE}:{}", sanitise_hostname(hostname));
    let bad = |reason: &str| EmbeddedError::InvalidIqnPrefix {
        prefix: prefix.clone(),
        reason: reason.to_string(),
    };
    match normalize_iscsi_name(&prefix) {
        Some(n) if n == prefix => {}
        _ => return Err(bad("it is not a lower-case iqn. name")),
    }
    if prefix.len() > MAX_ISCSI_NAME - MAX_NAME_LEN - 1 {
        return Err(bad("it leaves no room for access-group names"));
    }
    Ok(prefix)
}

/// This host's name.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().filter(|s| !s.trim().is_empty()))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether `path` (absolute) has only components tgt and the plug-in accept: letters, digits and
/// `._+@-`.
fn plain_path(path: &Path) -> bool {
    path.is_absolute()
        && path.components().all(|c| match c {
            Component::RootDir => true,
            Component::Normal(s) => s.to_str().is_some_and(|s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'@'))
            }),
            _ => false,
        })
        && path.as_os_str().len() <= 900
}

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    std::path::absolute(path).map_err(io("make absolute", path))
}

/// Where the array program is: `configured`, else `spindle-array` in `exe_dir`, else on
/// `path_env`.
fn locate_array_program(
    configured: Option<&Path>,
    exe_dir: Option<&Path>,
    path_env: Option<&OsStr>,
) -> Result<PathBuf, EmbeddedError> {
    let found = if let Some(p) = configured {
        let p = absolute(p)?;
        if !tools::is_executable(&p) {
            return Err(EmbeddedError::ArrayProgramMissing {
                looked: format!(
                    "the configured array program {} is not an executable file",
                    p.display()
                ),
            });
        }
        p
    } else {
        let beside = exe_dir.map(|d| d.join(ARRAY_PROGRAM));
        match beside.clone().filter(|b| tools::is_executable(b)) {
            Some(b) => b,
            None => std::env::split_paths(path_env.unwrap_or_default())
                .filter(|d| d.is_absolute())
                .map(|d| d.join(ARRAY_PROGRAM))
                .find(|p| tools::is_executable(p))
                .ok_or_else(|| EmbeddedError::ArrayProgramMissing {
                    looked: format!(
                        "not beside this program{} nor on PATH",
                        beside.map(|b| format!(" ({})", b.display())).unwrap_or_default()
                    ),
                })?,
        }
    };
    if !plain_path(&found) {
        return Err(EmbeddedError::ArrayProgramInvalid {
            path: found,
            reason: "the Linux plug-in takes only absolute paths of letters, digits and '/._+@-'; install or link it under such a path".into(),
        });
    }
    Ok(found)
}

/// Whether the file system of directory `dir` can reflink: a real FICLONE of one small
/// temporary file into another (both removed).
pub fn reflink_capable(dir: &Path) -> Result<bool, EmbeddedError> {
    fsops::probe_reflink(dir).map_err(|e| {
        EmbeddedError::io(
            "probe reflink support in",
            dir,
            std::io::Error::other(e.to_string()),
        )
    })
}

fn fs_name(dir: &Path) -> String {
    fsops::fs_magic(dir).map_or_else(|_| "an unknown file system".into(), fsops::fs_name)
}

/// Creates `dir` (mode 0700) and its parents when absent.
fn make_dir(dir: &Path) -> Result<(), EmbeddedError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create directory", dir))
}

/// An exclusive lock on the data directory for as long as the file is open, so two prepares
/// (or a prepare and a release) never interleave.
fn lock(data_dir: &Path) -> Result<std::fs::File, EmbeddedError> {
    let path = data_dir.join(".embedded.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open", &path))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| EmbeddedError::io("lock", &path, e.into()))?;
    Ok(f)
}

/// How the pool will be had.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Something is mounted at the pool directory already; `ours` when it is the pool image.
    Mounted {
        fstype: String,
        source: String,
        ours: bool,
    },
    /// The data directory can reflink: the pool is a plain directory.
    Plain,
    /// The pool image, to be made when `new`, and mounted.
    Image { new: bool },
}

fn plan(data_dir: &Path, pool: &Path, image: &Path) -> Result<Plan, EmbeddedError> {
    if let Some(m) = mounts::mount_at(pool).map_err(io("read the mount table for", pool))? {
        let ours = mounts::loop_backing_file(m.dev).is_some_and(|b| b == image);
        return Ok(Plan::Mounted {
            fstype: m.fstype,
            source: m.source,
            ours,
        });
    }
    if image.exists() {
        return Ok(Plan::Image { new: false });
    }
    if reflink_capable(data_dir)? {
        return Ok(Plan::Plain);
    }
    Ok(Plan::Image { new: true })
}

/// Whether `image` starts with XFS's superblock magic.
fn is_xfs_image(image: &Path) -> Result<bool, EmbeddedError> {
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(image).map_err(io("open", image))?;
    match f.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == b"XFSB"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(EmbeddedError::io("read", image, e)),
    }
}

/// Makes the pool image: a sparse file of `size` under a temporary name, formatted XFS with
/// reflink, then renamed into place, so `image` existing always means a formatted image.
fn make_image(image: &Path, size: u64, mkfs: &Path, notes: &mut Vec<String>) -> Result<(), EmbeddedError> {
    let partial = image.with_extension("img.partial");
    match std::fs::remove_file(&partial) {
        Ok(()) => notes.push(format!("removed the unfinished image {}", partial.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(EmbeddedError::io("remove", &partial, e)),
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .map_err(io("create", &partial))?;
    f.set_len(size).map_err(io("size", &partial))?;
    drop(f);
    let result = tools::run(
        mkfs,
        &[
            args(["-q", "-m", "reflink=1"]),
            vec![partial.clone().into_os_string()],
        ]
        .concat(),
        &[],
        "formatting the pool image",
        "check that xfsprogs supports reflink (xfsprogs 5.1 or later) and the pool size",
    )
    .and_then(|_| {
        let f = std::fs::File::open(&partial).map_err(io("open", &partial))?;
        f.sync_all().map_err(io("fsync", &partial))?;
        std::fs::rename(&partial, image).map_err(io("rename into place", image))?;
        let parent = image.parent().unwrap_or(Path::new("/"));
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync", parent))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result?;
    let free = fsops::space(image.parent().unwrap_or(Path::new("/")))
        .map(|(_, free)| free)
        .unwrap_or(u64::MAX);
    notes.push(format!(
        "made the pool image {} ({} MiB, sparse, XFS with reflink)",
        image.display(),
        size >> 20
    ));
    if free < size {
        notes.push(format!(
            "the file system of {} has {} MiB free, less than the pool's {} MiB: the pool fails when it fills",
            image.display(),
            free >> 20,
            size >> 20
        ));
    }
    Ok(())
}

/// Whether `dir` holds nothing.
fn is_empty_dir(dir: &Path) -> Result<bool, EmbeddedError> {
    Ok(std::fs::read_dir(dir).map_err(io("list", dir))?.next().is_none())
}

/// Why a portal on another host's address is refused, and what to do.
const NOT_LOCAL: &str =
    "the address is not one of this host's; choose one of its addresses (127.0.0.1 for this host only)";

/// The portals tgtd of control port `control` listens on, if it runs.
fn tgtd_portals(control: u16) -> Option<Vec<String>> {
    let program = tools::find("tgtadm")?;
    spindle_tgt::Tgtadm::new(control)
        .ok()?
        .with_program(program)
        .portals()
        .ok()
}

/// Checks that the portal can be served: its address is this host's, and a tgtd of the array
/// already listens there (the one of `control`, or the one the array used until now, which
/// the registration then leaves for `control`), or nothing listens there (a running tgtd of
/// the array is then moved to it). The array's state directory `state_dir` says which tgtd
/// it used until now.
fn check_portal(
    portal: SocketAddr,
    control: u16,
    state_dir: &Path,
    notes: &mut Vec<String>,
) -> Result<(), EmbeddedError> {
    let unavailable = |reason: String| EmbeddedError::PortalUnavailable {
        portal: portal.to_string(),
        reason,
    };
    // Whatever runs: an address of another host is never served (tgtd would fall back to
    // every address).
    if let Err(e) = TcpListener::bind((portal.ip(), 0)) {
        if e.kind() == std::io::ErrorKind::AddrNotAvailable {
            return Err(unavailable(NOT_LOCAL.into()));
        }
    }
    let wanted = [portal.to_string()];
    let current = tgtd_portals(control);
    if current.as_ref().is_some_and(|p| *p == wanted) {
        notes.push(format!(
            "tgtd -C {control} already runs there; the array keeps it serving"
        ));
        return Ok(());
    }
    let previous = spindle_plugin_linux::tgt::latest_config(state_dir)
        .and_then(|c| c.tgt)
        .map(|t| t.control_port)
        .filter(|c| *c != control);
    if let Some(old) = previous.filter(|old| tgtd_portals(*old).is_some_and(|p| p == wanted)) {
        notes.push(format!(
            "tgtd -C {old}, the array's until now, runs there; the array moves to tgtd -C {control}"
        ));
        return Ok(());
    }
    match TcpListener::bind(portal) {
        Ok(_) => {
            if let Some(elsewhere) = current {
                notes.push(format!(
                    "tgtd -C {control} runs on {}; the array moves it to {portal}",
                    elsewhere.join(", ")
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(unavailable(format!(
            "another program listens there and it is not the array's tgtd (tgtd -C {control} does not listen there); stop the program that holds it (a system tgtd: `systemctl disable --now tgt`) or choose another portal"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            Err(unavailable(NOT_LOCAL.into()))
        }
        Err(e) => {
            notes.push(format!("could not check that portal {portal} is free: {e}"));
            Ok(())
        }
    }
}

/// Prepares the embedded array (see the crate documentation). Idempotent: a second call finds
/// the same pool (mounted or not) and never reformats or loses data. Blocking (it runs
/// programs, apt-get among them): call it from `spawn_blocking` in async code.
pub fn prepare(cfg: &EmbeddedConfig) -> Result<EmbeddedArray, EmbeddedError> {
    // Everything that can be checked without touching the machine first.
    let portal = parse_portal(&cfg.portal)?;
    if cfg.tgt_control > MAX_TGT_CONTROL {
        return Err(EmbeddedError::InvalidSetting {
            setting: "tgt_control",
            reason: format!(
                "{} is above {MAX_TGT_CONTROL} (tgtadm keeps the control port in a C short)",
                cfg.tgt_control
            ),
        });
    }
    if cfg.pool_size < MIN_POOL_SIZE {
        return Err(EmbeddedError::InvalidSetting {
            setting: "pool_size",
            reason: format!(
                "{} bytes is below {} MiB, the smallest XFS file system mkfs.xfs makes",
                cfg.pool_size,
                MIN_POOL_SIZE >> 20
            ),
        });
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let array_program = locate_array_program(
        cfg.array_program.as_deref(),
        exe_dir.as_deref(),
        std::env::var_os("PATH").as_deref(),
    )?;
    let iqn_prefix = iqn_prefix_for(&hostname())?;
    let given = absolute(&cfg.data_dir)?;
    if !plain_path(&given) {
        return Err(EmbeddedError::InvalidDataDir {
            path: given,
            reason: "tgt and the Linux plug-in take only paths whose components are letters, digits and '._+@-'; choose another data directory".into(),
        });
    }

    let mut notes = Vec::new();
    let root = is_root();
    make_dir(&given)?;
    let data_dir = std::fs::canonicalize(&given).map_err(io("resolve", &given))?;
    if !plain_path(&data_dir) {
        return Err(EmbeddedError::InvalidDataDir {
            path: data_dir,
            reason: "its real path (after symbolic links) has components other than letters, digits and '._+@-'; choose another data directory".into(),
        });
    }
    let _lock = lock(&data_dir)?;
    let pool = data_dir.join("pool");
    let image = data_dir.join("pool.img");
    if std::fs::symlink_metadata(&pool).is_ok_and(|m| !m.is_dir()) {
        return Err(EmbeddedError::InvalidDataDir {
            path: data_dir,
            reason: format!("{} exists and is not a directory; move it away", pool.display()),
        });
    }

    let plan = plan(&data_dir, &pool, &image)?;
    let mut needed = vec!["tgtd", "tgtadm"];
    match plan {
        Plan::Image { new: true } => needed.extend(["mkfs.xfs", "mount", "umount", "losetup"]),
        Plan::Image { new: false } => needed.extend(["mount", "umount", "losetup"]),
        _ => {}
    }
    notes.extend(tools::ensure(&needed, cfg.install, root)?);
    check_portal(portal, cfg.tgt_control, &data_dir.join("array"), &mut notes)?;
    if !root {
        notes.push(
            "spindle does not run as root: the array's tgtd (which needs root) may fail to start".into(),
        );
    }

    let mut mounted_here = false;
    let mut ours = false;
    match &plan {
        Plan::Mounted {
            fstype,
            source,
            ours: is_ours,
        } => {
            ours = *is_ours;
            if !reflink_capable(&pool)? {
                return Err(EmbeddedError::PoolNotReflink {
                    path: pool,
                    fs: fstype.clone(),
                });
            }
            notes.push(if ours {
                format!(
                    "the pool image {} is already mounted at {} ({source}); reusing it",
                    image.display(),
                    pool.display()
                )
            } else {
                format!(
                    "{} is already a mount of {source} ({fstype}, reflink-capable); using it as the pool",
                    pool.display()
                )
            });
        }
        Plan::Plain => {
            make_dir(&pool)?;
            notes.push(format!(
                "{} is on {}, which can reflink: the pool is the directory {}",
                data_dir.display(),
                fs_name(&data_dir),
                pool.display()
            ));
        }
        Plan::Image { new } => {
            if !root {
                return Err(EmbeddedError::NotRoot {
                    what: format!(
                        "loop-mount the pool image {} ({} is on {}, which cannot reflink)",
                        image.display(),
                        data_dir.display(),
                        fs_name(&data_dir)
                    ),
                });
            }
            make_dir(&pool)?;
            if !is_empty_dir(&pool)? {
                return Err(EmbeddedError::PoolDirNotEmpty { path: pool });
            }
            if *new {
                let mkfs = tools::find("mkfs.xfs").unwrap_or_else(|| PathBuf::from("mkfs.xfs"));
                notes.push(format!(
                    "{} is on {}, which cannot reflink: the pool is an XFS image",
                    data_dir.display(),
                    fs_name(&data_dir)
                ));
                make_image(&image, cfg.pool_size, &mkfs, &mut notes)?;
            } else {
                if !is_xfs_image(&image)? {
                    return Err(EmbeddedError::ImageNotXfs { path: image });
                }
                let len = std::fs::metadata(&image).map_err(io("stat", &image))?.len();
                if len != cfg.pool_size {
                    notes.push(format!(
                        "the existing pool image is {} MiB; pool_size {} MiB is not applied (images are never resized)",
                        len >> 20,
                        cfg.pool_size >> 20
                    ));
                }
            }
            let mount = tools::find("mount").unwrap_or_else(|| PathBuf::from("mount"));
            tools::run(
                &mount,
                &[
                    args(["-t", "xfs", "-o", "loop"]),
                    vec![image.clone().into_os_string(), pool.clone().into_os_string()],
                ]
                .concat(),
                &[],
                "mounting the pool image",
                "check that loop devices are available (modprobe loop) and the image is intact (xfs_repair)",
            )?;
            mounted_here = true;
            ours = true;
            notes.push(format!("mounted {} at {}", image.display(), pool.display()));
            if !reflink_capable(&pool)? {
                return Err(EmbeddedError::PoolNotReflink {
                    path: pool,
                    fs: "an XFS image made without reflink=1".into(),
                });
            }
        }
    }

    let socket = data_dir.join("array.sock");
    let array_socket = (socket.as_os_str().len() <= MAX_SOCKET_PATH).then_some(socket);
    if array_socket.is_none() {
        notes.push(format!(
            "{} is too long for a Unix socket: the array program runs once per request",
            data_dir.join("array.sock").display()
        ));
    }
    let ss_record = ss_record(
        &data_dir,
        &pool,
        portal,
        cfg.tgt_control,
        &iqn_prefix,
        &array_program,
        array_socket.as_deref(),
    )?;
    for n in &notes {
        tracing::info!(target: "spindle::embedded", "{n}");
    }
    Ok(EmbeddedArray {
        ss_record,
        plugin: PLUGIN,
        pool_dir: pool,
        mounted_here,
        notes,
        data_dir,
        image: ours.then_some(image),
        array_program,
        array_socket,
    })
}

/// The `ss_record` of the Linux plug-in for this array, checked with the plug-in's parsers.
fn ss_record(
    data_dir: &Path,
    pool: &Path,
    portal: SocketAddr,
    control: u16,
    iqn_prefix: &str,
    array_program: &Path,
    array_socket: Option<&Path>,
) -> Result<Value, EmbeddedError> {
    let mut extra_info = format!(
        "pools={POOL_NAME}:{};tgt_control={control};portal={portal};state={};iqn_prefix={iqn_prefix};array_program={}",
        pool.display(),
        data_dir.join("array").display(),
        array_program.display()
    );
    if let Some(socket) = array_socket {
        extra_info.push_str(&format!(";array_socket={}", socket.display()));
    }
    let rejected = |message: String| EmbeddedError::Rejected {
        extra_info: extra_info.clone(),
        message,
    };
    spindle_plugin_linux::ArrayConfig::from_extra_info(
        Some(&extra_info),
        spindle_plugin_linux::config::CLIENT_KEYS,
    )
    .map_err(|e| rejected(e.to_string()))?;
    let client = spindle_plugin_linux::client::ClientSettings::from_extra_info(Some(&extra_info))
        .map_err(|e| rejected(e.to_string()))?;
    if client.array_program.as_deref() != array_program.to_str() {
        return Err(rejected("the array program does not survive parsing".into()));
    }
    Ok(json!({
        "storage_type": "iSCSIStorage",
        "admin_host": "localhost",
        "admin_user": "root",
        "admin_passwd": "",
        "access_host": portal.ip().to_string(),
        "access_port": portal.port().to_string(),
        "extra_info": extra_info,
    }))
}

/// Unmounts the pool image and detaches its loop device, for tests and uninstalling (`serve`
/// never calls it: LUNs stay exported when spindle stops). Does nothing for a plain-directory
/// pool or a mount that is not spindle's image. Fails with [`EmbeddedError::PoolBusy`] while
/// tgtd still holds LUN files open.
pub fn release(array: &EmbeddedArray) -> Result<(), EmbeddedError> {
    let Some(image) = &array.image else {
        return Ok(());
    };
    let _lock = lock(&array.data_dir)?;
    let pool = &array.pool_dir;
    let umount = tools::find("umount").unwrap_or_else(|| PathBuf::from("umount"));
    while let Some(m) = mounts::mount_at(pool).map_err(io("read the mount table for", pool))? {
        if mounts::loop_backing_file(m.dev).as_deref() != Some(image.as_path()) {
            break;
        }
        let mut last = None;
        for _ in 0..30 {
            match tools::run(
                &umount,
                &[pool.clone().into_os_string()],
                &[],
                "unmounting the pool",
                "",
            ) {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(EmbeddedError::CommandFailed { tail, .. }) => last = Some(tail),
                Err(e) => return Err(e),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(reason) = last {
            return Err(EmbeddedError::PoolBusy {
                path: pool.clone(),
                reason,
            });
        }
    }
    // `mount -o loop` sets autoclear, so the device normally goes with the mount.
    let losetup = tools::find("losetup").unwrap_or_else(|| PathBuf::from("losetup"));
    for dev in mounts::loop_devices_of(image) {
        if let Err(e) = tools::run(
            &losetup,
            &[args(["-d"]), vec![dev.clone().into_os_string()]].concat(),
            &[],
            "detaching the pool image's loop device",
            "check what still uses it (losetup -l)",
        ) {
            // It may have gone by itself (autoclear) meanwhile.
            if mounts::loop_devices_of(image).contains(&dev) {
                return Err(e);
            }
        }
    }
    tracing::info!(target: "spindle::embedded", "released the pool {}", pool.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_plugin_is_the_linux_array() {
        assert_eq!(PLUGIN, spindle_plugin_linux::CLASS_NAME);
        assert_eq!(ARRAY_PROGRAM, spindle_plugin_linux::client::ARRAY_PROGRAM);
    }

    #[test]
    fn hostnames_are_sanitised() {
        assert_eq!(sanitise_hostname("vm"), "vm");
        assert_eq!(sanitise_hostname("My_Host.Example.COM"), "my-host.example.com");
        assert_eq!(sanitise_hostname("--a..b__c--"), "a.b-c");
        assert_eq!(sanitise_hostname("ünïcode"), "n-code");
        assert_eq!(sanitise_hostname(""), "localhost");
        assert_eq!(sanitise_hostname("___"), "localhost");
        assert_eq!(sanitise_hostname(&"x".repeat(300)).len(), 63);
        for h in [
            "vm",
            "My_Host.Example.COM",
            "a b;c$(rm)",
            "",
            "ä",
            &"y-".repeat(200),
        ] {
            let p = iqn_prefix_for(h).expect(h);
            assert!(p.starts_with("iqn.2026-11.localhost.spindle:"), "{p}");
            assert_eq!(
                spindle_api::names::normalize_iscsi_name(&p).as_deref(),
                Some(p.as_str())
            );
        }
        assert_eq!(
            iqn_prefix_for("VM").ok().as_deref(),
            Some("iqn.2026-11.localhost.spindle:vm")
        );
    }

    #[test]
    fn portals_are_checked() {
        assert_eq!(
            parse_portal("127.0.0.1:3260").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 3260)))
        );
        assert!(parse_portal("[::1]:3260").is_ok());
        for bad in [
            "localhost:3260",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "0.0.0.0:3260",
            "",
        ] {
            let e = parse_portal(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn plain_paths() {
        assert!(plain_path(Path::new("/var/lib/spindle")));
        assert!(plain_path(Path::new("/tmp/.tmpAbC123/x+y@z")));
        assert!(!plain_path(Path::new("relative")));
        assert!(!plain_path(Path::new("/a b")));
        assert!(!plain_path(Path::new("/a/../b")));
        assert!(!plain_path(Path::new("/a;b")));
        assert!(!plain_path(Path::new("/a:b")));
    }

    #[test]
    fn the_array_program_is_found_beside_then_on_path() {
        let beside = tempfile::tempdir().expect("tempdir");
        let on_path = tempfile::tempdir().expect("tempdir");
        let empty = tempfile::tempdir().expect("tempdir");
        for d in [beside.path(), on_path.path()] {
            let p = d.join(ARRAY_PROGRAM);
            std::fs::write(&p, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let path_env = on_path.path().as_os_str();
        assert_eq!(
            locate_array_program(None, Some(beside.path()), Some(path_env)).ok(),
            Some(beside.path().join(ARRAY_PROGRAM))
        );
        assert_eq!(
            locate_array_program(None, Some(empty.path()), Some(path_env)).ok(),
            Some(on_path.path().join(ARRAY_PROGRAM))
        );
        let e = locate_array_program(None, Some(empty.path()), Some(empty.path().as_os_str()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("cargo build --release --workspace --bins"), "{e}");
        assert!(e.contains(&empty.path().display().to_string()), "{e}");
        let configured = on_path.path().join(ARRAY_PROGRAM);
        assert_eq!(
            locate_array_program(Some(&configured), Some(beside.path()), None).ok(),
            Some(configured)
        );
        let e = locate_array_program(
            Some(Path::new("/no/such/spindle-array")),
            Some(beside.path()),
            None,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("/no/such/spindle-array") && e.contains("cargo build"),
            "{e}"
        );
    }

    #[test]
    fn the_record_passes_the_plugins_parsers() {
        let portal = parse_portal("127.0.0.1:3299").expect("portal");
        let v = ss_record(
            Path::new("/var/lib/spindle"),
            Path::new("/var/lib/spindle/pool"),
            portal,
            29,
            "iqn.2026-11.localhost.spindle:vm",
            Path::new("/usr/local/bin/spindle-array"),
            Some(Path::new("/var/lib/spindle/array.sock")),
        )
        .expect("record");
        assert_eq!(v["access_host"], "127.0.0.1");
        assert_eq!(v["access_port"], "3299");
        assert_eq!(
            v["extra_info"],
            "pools=default:/var/lib/spindle/pool;tgt_control=29;portal=127.0.0.1:3299;state=/var/lib/spindle/array;iqn_prefix=iqn.2026-11.localhost.spindle:vm;array_program=/usr/local/bin/spindle-array;array_socket=/var/lib/spindle/array.sock"
        );
        assert!(v.get("name").is_none() && v.get("uuid").is_none());
        let v6 = ss_record(
            Path::new("/d"),
            Path::new("/d/pool"),
            parse_portal("[::1]:3260").expect("portal"),
            1,
            "iqn.2026-11.localhost.spindle:vm",
            Path::new("/p/spindle-array"),
            None,
        )
        .expect("record");
        assert_eq!(v6["access_host"], "::1");
    }
}
