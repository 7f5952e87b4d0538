//! The storage engine: every array operation, crash-safe.
//!
//! Every mutation that touches files follows one of two protocols.
//!
//! Plans that change or remove existing files (resize, remove, restore, split):
//! 1. allocate ids, then commit an intent row holding the whole [`Plan`] (step `started`);
//! 2. build the new files, fsynced, as temporaries `.<op>.partial` in the pool;
//! 3. mark the intent `prepared` (committed);
//! 4. rename the temporaries into place (or apply the in-place change), fsync the directory;
//! 5. in one transaction, apply the plan to the tables and delete the intent.
//!
//! Each of these commits is durable (`synchronous=FULL`: the WAL is flushed before the next
//! step). Recovery ([`Engine::open`]) rolls a `started` intent back (temporaries removed,
//! nothing else was touched) and a `prepared` one forward (every step after 3 is idempotent).
//!
//! Plans that only add new files under new names ([`Plan::Insert`]: create, snapshot,
//! multi-snapshot, clone, clone of a snapshot) are answered after the same two flushes as the
//! bare operation (the new file, its directory) and none of their own
//! (`Engine::execute_insert`):
//! 1. the in-flight marker at the start of the lock file names the operation (written to the
//!    page cache only);
//! 2. each new file is built under its final name, then given the operation's whole intent
//!    (id, kind and plan: [`fsops::RECORD_XATTR`]) and marked complete
//!    ([`fsops::COMPLETE_XATTR`] = the operation's id), after its content;
//! 3. the files and their directories are fsynced: the operation is durable, and the answer
//!    waits for nothing more;
//! 4. one commit, not waiting for the disk, records the intent (step `applied`), takes the
//!    serial and inserts the rows; the marker is cleared. The resident program makes this
//!    commit after it has given the answer ([`Engine::commit_after_answer`]), still holding
//!    the array's lock, so that every other reader (each request takes the lock first)
//!    finds it in.
//!
//! An intent left `applied` is a finished operation once the marker is clear, and the next
//! operation's commit deletes it (unless it touches a pool that cannot be used now: it waits
//! for the pool, whose files alone can tell whether it finished). After every crash, recovery removes orphan files that match
//! this array's naming patterns.
//!
//! # Durability
//! Every commit is visible to every later run and survives the program's death (a kill, an
//! abort, a panic) at any point; so does the in-flight marker. A program that died in an
//! insert leaves the marker naming it: the next run that takes the lock (a resident engine in
//! [`Engine::resume`] and before its own insert, any engine in [`Engine::open`]) recovers
//! fully: an `applied` intent whose files all carry their mark is finished (its files are
//! fsynced again), one with a file unmarked or missing is rolled back (rows and files
//! removed), and marked files no row names are adopted as below.
//!
//! Nothing answered is lost on a power failure, because every state the disk can then hold
//! recovers consistently (a power cut loses a suffix of the commits: a later flush makes every
//! earlier commit durable; after it every engine is opened anew, and [`Engine::open`]
//! recovers fully, whatever the marker says):
//! - a new file unmarked or missing: the power went before the answer; the `applied` commit,
//!   if it reached the disk (it follows the files' flush, so only a disk that reorders
//!   writes holds it), is rolled back, and the files are removed as orphans;
//! - the `applied` commit on disk and every new file marked: finished;
//! - no commit on disk and every new file marked: the files' own copy of the intent rolls the
//!   operation forward (recovery's orphan scan adopts it, in serial order, after checking that
//!   it fits the recovered state), and the serial it took stays used up.
//!
//! A plan whose intent is too long to carry (a multi-LUN snapshot of many LUNs, over
//! [`fsops::MAX_RECORD`] bytes) or that leaves a btrfs subvolume to delete goes through the
//! first protocol, with its `started` intent flushed by a second thread while its files are
//! made; a file system without user extended attributes gets the first protocol's durable
//! commits after its files are made. In both, the final commit is issued only after the
//! directory holding the new or renamed files is fsynced, so a result never names a file
//! whose name is not durable.

use crate::config::ArrayConfig;
use crate::crash;
use crate::db::{self, Cached, Db, ElementRow, GroupRow, Kind, MemberRow, PoolRow};
use crate::error::{DbContext, Error, IoContext, Result};
use crate::export::{ChapPlan, ExportPlan, LunPlan, TargetPlan, PRODUCT, VENDOR};
use crate::fsops::{self, ReflinkFailure, Stamp};
use crate::model::{
    ArrayInfo, ChapAccount, Element, Group, GroupSpec, Limits, MemberView, PoolInfo, QosLevel, SplitStatus,
};
use crate::names::{self, shown, shown_path};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use spindle_api::{make_mp_page83_from_raw_page83, Abilities, Flag, MaxEntries, OpAbility, SeState, SeType};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes of the in-flight marker at the start of the lock file (see
/// `Engine::execute_insert`).
const MARKER_LEN: usize = 64;

/// Sizes are rounded up to whole MiB.
pub const EXTENT: u64 = 1 << 20;
/// Largest LUN: 1 PiB (thin LUNs are not bounded by free space; thick ones are).
pub const MAX_SIZE: u64 = 1 << 50;
/// Snapshots one LUN may have. Neither file system has a small hard cap (XFS counts extent
/// sharers in 32 bits, btrfs in its extent tree), but every snapshot adds a sharer to each
/// extent of the LUN, and FICLONE, copy-on-write overwrites and splits slow down as the
/// sharer count and the refcount metadata grow; 256 keeps those costs bounded.
pub const MAX_SNAPS_PER_ELEMENT: i64 = 256;
/// Unsplit clones one element (LUN or snapshot) may have; same bound as snapshots.
pub const MAX_CLONES_PER_ELEMENT: i64 = 256;
/// Initiators one group (target ACL) may hold: tgt has no cap of its own, but each entry is one
/// tgtadm bind to reconcile on every change.
pub const MAX_ACCESS_ENTRIES: u32 = 256;
/// LUNs one target may carry: numbers 1..=255 (tgt reserves LUN 0 for its controller; 255 is
/// the most that single-level peripheral LUN addressing reaches on every initiator).
pub const MAX_LUNS_PER_TARGET: u32 = 255;
/// The QoS given to elements created without one.
pub const DEFAULT_QOS: &str = "writethrough";
/// Split copy chunk.
const CHUNK: usize = 4 << 20;

/// How to open the engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The `spindle-array` executable that runs split workers; default: this executable.
    pub worker_exe: Option<PathBuf>,
    /// The host's state home, where the registrations are kept
    /// ([`crate::registry::Registry::of`]); default: [`crate::registry::host_state_home`]
    /// (`SPINDLE_ARRAY_STATE_HOME`, else `/var/lib/spindle-array` for root). A field, not only
    /// the variable, so that a process serving requests itself (a test, the resident program)
    /// can choose it without changing its own environment.
    pub state_home: Option<PathBuf>,
}

impl EngineOptions {
    /// The state home these options name, else the host's
    /// ([`crate::registry::host_state_home`], refused as that refuses it).
    pub fn home(&self) -> Result<PathBuf> {
        match &self.state_home {
            Some(home) => Ok(home.clone()),
            None => crate::registry::host_state_home(),
        }
    }

    /// These options with the state home decided ([`EngineOptions::home`]). Decided once, so
    /// that every registration check and note of one request (or of one resident program)
    /// uses the same directory.
    pub fn resolved(mut self) -> Result<EngineOptions> {
        self.state_home = Some(self.home()?);
        Ok(self)
    }
}

/// A file move of a plan: a finished temporary and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Where the file is built: a temporary `.<op>.partial` for a file that replaces another,
    /// the final name itself for a new element's file (see the module documentation).
    pub partial: PathBuf,
    /// The final file.
    pub dest: PathBuf,
}

/// What an intent will do, complete enough to be rolled forward from the journal alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "plan", rename_all = "snake_case")]
pub enum Plan {
    /// New elements (create, snapshot, multi-snapshot, clone, clone of a snapshot).
    Insert {
        /// Rows to insert.
        elements: Vec<ElementRow>,
        /// Snapshot images to insert.
        members: Vec<MemberRow>,
        /// Temporaries to rename.
        moves: Vec<Move>,
        /// A btrfs subvolume snapshot to delete at the end.
        subvol: Option<PathBuf>,
    },
    /// Resize a file in place.
    Resize {
        /// Element.
        uuid: String,
        /// Its file.
        path: PathBuf,
        /// New size.
        size: u64,
        /// Thin (set_len) or thick (fallocate the growth).
        thin: bool,
    },
    /// Remove elements (a LUN, or a snapshot) and their files.
    Remove {
        /// Rows to delete.
        uuids: Vec<String>,
        /// Files to unlink.
        files: Vec<PathBuf>,
    },
    /// Roll elements back to snapshot images.
    Restore {
        /// (element, size after the roll-back).
        updates: Vec<(String, u64)>,
        /// Temporaries (reflinks of the images) to rename over the elements' files.
        moves: Vec<Move>,
    },
    /// Split a clone: replace its file with a full copy.
    Split {
        /// The clone.
        uuid: String,
        /// Its file.
        source: PathBuf,
        /// The copy's temporary and the clone's file.
        moves: Vec<Move>,
        /// Thick clones get an allocated copy.
        thin: bool,
        /// The clone's file as it was when the split started; any write changes it.
        stamp: Stamp,
        /// Bandwidth limit, MiB/s (0 = none).
        rate_mib: u64,
    },
}

impl Plan {
    /// Whether the journal entries before the final commit (the intent, the `prepared` mark)
    /// may be committed without waiting for the disk: true for plans that only add new files
    /// under new names ([`Plan::Insert`]). See the module docs, "Durability".
    fn lazy_journal(&self) -> bool {
        matches!(self, Plan::Insert { .. })
    }

    /// Every file or directory the plan touches.
    fn paths(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = self
            .moves()
            .iter()
            .flat_map(|m| [m.partial.as_path(), m.dest.as_path()])
            .collect();
        match self {
            Plan::Insert { subvol: Some(v), .. } => out.push(v),
            Plan::Resize { path, .. } => out.push(path),
            Plan::Remove { files, .. } => out.extend(files.iter().map(PathBuf::as_path)),
            Plan::Split { source, .. } => out.push(source),
            _ => {}
        }
        out
    }

    fn moves(&self) -> &[Move] {
        match self {
            Plan::Insert { moves, .. } | Plan::Restore { moves, .. } | Plan::Split { moves, .. } => moves,
            Plan::Resize { .. } | Plan::Remove { .. } => &[],
        }
    }
}

/// The engine over one array's state directory. Each public method takes the array's lock
/// for its duration, so several processes (requests, split workers) can share an array.
#[derive(Debug)]
pub struct Engine {
    state_dir: PathBuf,
    db: Db,
    opts: EngineOptions,
    cfg: Option<ArrayConfig>,
    array_id: String,
    company_id: u32,
    vendor_id: u64,
    /// The database file opened (device, inode): a resident engine whose file was replaced
    /// or removed since is not used again ([`Engine::resume`]).
    db_file: Option<(u64, u64)>,
    /// The lock file, opened for the in-flight marker (its own open file, so that closing
    /// it never releases a lock).
    marker: File,
    /// Pools of the array that cannot be used now (name → why): their directory is missing,
    /// or lacks the owner file (a file system not mounted). The array is degraded, not down:
    /// their elements stay listed, are not exported, and refuse what needs their files.
    unavailable: BTreeMap<String, String>,
    /// The QoS levels, read once: they are fixed by the schema (its first migration), and
    /// checking a create's or clone's against them was one more database read per request.
    qos_levels: std::sync::OnceLock<Vec<QosLevel>>,
    /// The lock this engine holds, if any: a guard asked for while it is held shares it.
    held: std::sync::Mutex<std::sync::Weak<File>>,
    /// Whether an insert's commit may wait until its answer is given
    /// ([`Engine::commit_after_answer`]).
    commit_after_answer: bool,
    /// An insert's commit not made yet ([`Engine::finish_pending`]).
    pending: Option<PendingCommit>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Left undone, the next run's recovery would make the same commit from the files.
        let _ = self.finish_pending();
    }
}

fn db_file_id(state_dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(state_dir.join("array.db"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn round_up(size: u64) -> u64 {
    size.div_ceil(EXTENT).saturating_mul(EXTENT)
}

impl Plan {
    /// The plan of an operation that adds one element backed by one new file `file` in
    /// `pool`, built directly under its final name (see the module documentation); also
    /// returns that move.
    fn insert_one(row: &ElementRow, members: Vec<MemberRow>, pool: &Path, file: &str) -> (Plan, Move) {
        let mv = Move {
            partial: image(pool, file),
            dest: image(pool, file),
        };
        let plan = Plan::Insert {
            elements: vec![row.clone()],
            members,
            moves: vec![mv.clone()],
            subvol: None,
        };
        (plan, mv)
    }
}

/// An operation's intent as each new file of a plan that adds elements carries it
/// ([`fsops::RECORD_XATTR`]): enough to roll the operation forward when a power cut lost every
/// commit of it after its answer was given (module docs, "Durability").
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CarriedIntent {
    op: String,
    kind: String,
    plan: Plan,
}

impl CarriedIntent {
    /// The record to carry, made from the plan's JSON as the journal's intent row holds it
    /// (so the plan is encoded once), or `None` when it is longer than [`fsops::MAX_RECORD`].
    fn text(op: &str, kind: &str, plan_json: &str) -> Option<String> {
        let (op, kind) = (serde_json::to_string(op).ok()?, serde_json::to_string(kind).ok()?);
        let text = format!(r#"{{"op":{op},"kind":{kind},"plan":{plan_json}}}"#);
        (text.len() <= fsops::MAX_RECORD).then_some(text)
    }

    /// The record `path` carries, if it is complete: marked by the same operation, whose
    /// plan adds elements and names `path` among its new files.
    fn read(path: &Path) -> Option<CarriedIntent> {
        let c: CarriedIntent = serde_json::from_str(&fsops::carried_record(path)?).ok()?;
        let ours = fsops::completed_by(path).as_deref() == Some(c.op.as_str())
            && matches!(&c.plan, Plan::Insert { moves, .. } if moves.iter().any(|m| m.dest == path));
        ours.then_some(c)
    }

    /// The smallest serial the plan hands out: operations are adopted in the order they ran,
    /// so a snapshot's or clone's parent comes before it.
    fn first_serial(&self) -> u64 {
        match &self.plan {
            Plan::Insert { elements, .. } => elements.iter().map(|e| e.serial).min().unwrap_or(0),
            _ => 0,
        }
    }
}

/// The file in a pool directory that names the array owning it (its array id and a newline).
pub const POOL_OWNER_FILE: &str = ".spindle-array-owner";

/// The `meta` key recording that the array claimed the pool directory `pool` (wrote its
/// owner file there): such a directory without the owner file is never claimed again.
fn claimed_key(pool: &Path) -> String {
    format!("claimed_pool:{}", pool.to_string_lossy())
}

/// Why the directory of `label` ("pool 'p1'") at `path` cannot be used, if it cannot: it is
/// missing (a file system not mounted, most likely) or not a directory.
fn dir_fault(label: &str, path: &Path) -> Option<String> {
    let at = shown_path(path);
    match fs::metadata(path) {
        Err(e) => Some(format!(
            "{label} directory {at} is not usable: {e}{}",
            if e.kind() == std::io::ErrorKind::NotFound {
                " (is its file system mounted?)"
            } else {
                ""
            }
        )),
        Ok(md) if !md.is_dir() => Some(format!("{label} path {at} is not a directory")),
        Ok(_) => None,
    }
}

/// Why the directory of `label` at `path`, a pool the array claimed, is not that pool now:
/// it lacks the owner file the claim wrote (most likely the mount point of a file system
/// not mounted).
fn owner_file_lost(label: &str, path: &Path) -> String {
    format!(
        "{label} directory {} lacks the array's owner file ({POOL_OWNER_FILE}), written when the array claimed it (is its file system mounted?)",
        shown_path(path)
    )
}

/// The array id `pool` names as its owner; `None` when it names none.
fn pool_owner(pool: &Path) -> Result<Option<String>> {
    let path = pool.join(POOL_OWNER_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Unavailable(format!(
            "cannot read {}: {e}",
            shown_path(&path)
        ))),
    }
}

/// Names `array_id` as `pool`'s owner, durably and atomically: the name appears complete or
/// not at all, and of two arrays claiming at once exactly one wins (a hard link is not
/// made over an existing file); the loser finds the winner's id.
fn claim_pool(pool: &Path, array_id: &str) -> Result<()> {
    let owner = pool.join(POOL_OWNER_FILE);
    if pool_owner(pool)?.as_deref() == Some(array_id) {
        return Ok(());
    }
    let tmp = pool.join(format!("{POOL_OWNER_FILE}.{array_id}.tmp"));
    let made = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        std::io::Write::write_all(&mut f, format!("{array_id}\n").as_bytes())?;
        f.sync_all()?;
        // An empty or torn file left by a claim that died is replaced.
        if pool_owner(pool).ok().flatten().is_none() {
            let _ = fs::remove_file(&owner);
        }
        fs::hard_link(&tmp, &owner)
    })();
    let _ = fs::remove_file(&tmp);
    match made {
        Ok(()) => fsops::fsync_dir(pool),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match pool_owner(pool)? {
            Some(id) if id == array_id => Ok(()),
            Some(id) => Err(Error::InvalidArray(format!(
                "pool directory {} was claimed by another array (array id {id}) at the same time",
                shown_path(pool)
            ))),
            None => Err(Error::Failed(format!(
                "cannot claim pool directory {}",
                pool.display()
            ))),
        },
        Err(e) => Err(Error::Unavailable(format!(
            "cannot write {}: {e}",
            shown_path(&owner)
        ))),
    }
}

/// The image files of this array's naming patterns (`<uuid>.img`, `.<uuid>.partial`) in
/// `pool`, by name.
fn foreign_files(pool: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(pool) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            n.strip_suffix(".img").is_some_and(is_uuid)
                || n.strip_prefix('.')
                    .and_then(|r| r.strip_suffix(".partial"))
                    .is_some_and(|r| is_uuid(r.split('.').next().unwrap_or("")))
        })
        .collect();
    names.sort();
    names
}

fn image(pool: &Path, file: &str) -> PathBuf {
    pool.join(format!("{file}.img"))
}

fn partial(pool: &Path, op: &str, n: usize) -> PathBuf {
    if n == 0 {
        pool.join(format!(".{op}.partial"))
    } else {
        pool.join(format!(".{op}.{n}.partial"))
    }
}

fn parent_dir(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// The array's identity (id, company id, vendor id), if it was made.
fn stored_identity(conn: &rusqlite::Connection) -> Result<Option<(String, u32, u64)>> {
    let get = |k: &str| -> Result<Option<String>> {
        conn.row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .dbx("read identity")
    };
    match (get("array_id")?, get("company_id")?, get("vendor_id")?) {
        (Some(a), Some(c), Some(v)) => Ok(Some((
            a,
            u32::from_str_radix(&c, 16).map_err(|_| Error::Failed("corrupt company_id".into()))?,
            u64::from_str_radix(&v, 16).map_err(|_| Error::Failed("corrupt vendor_id".into()))?,
        ))),
        _ => Ok(None),
    }
}

/// The lock guard: the array's lock is held while this lives, and while any guard that the
/// same engine gave out under it lives ([`Engine::lock`]).
#[derive(Debug)]
pub struct LockGuard(#[allow(dead_code)] std::sync::Arc<File>);

/// The end of an insert whose answer did not wait for it ([`Engine::commit_after_answer`]):
/// its files are durable and carry its intent, and this commit records it. Holds the array's
/// lock, so that no other engine reads the state before the commit is in.
#[derive(Debug)]
struct PendingCommit {
    _lock: LockGuard,
    op: String,
    kind: String,
    plan_json: String,
    plan: Plan,
    serial: Option<u64>,
}

impl Engine {
    /// Opens the array described by `cfg`: checks the configuration, creates the state
    /// directory (mode 0700) and database if needed, makes the array's identity once,
    /// registers new pools, and runs recovery.
    pub fn open(cfg: &ArrayConfig, opts: EngineOptions) -> Result<Engine> {
        cfg.check()?;
        let unusable = Engine::unusable_pools(cfg, false);
        let state_dir = cfg.state_dir()?;
        if !state_dir.join("array.db").exists() {
            // A new array makes nothing, not even its state directory (which may lie in a
            // pool), unless every pool is usable and may be its own.
            if let Some(why) = unusable.into_values().next() {
                return Err(Error::Unavailable(why));
            }
            for p in &cfg.pools {
                Engine::check_claim(p, None, false)?;
            }
            return Engine::open_checked(cfg, opts, &state_dir, BTreeMap::new());
        }
        Engine::open_checked(cfg, opts, &state_dir, unusable)
    }

    /// [`Engine::open`] once a new array's pools were checked; `unusable` are the pools whose
    /// directories cannot be used now.
    fn open_checked(
        cfg: &ArrayConfig,
        opts: EngineOptions,
        state_dir: &Path,
        unusable: BTreeMap<String, String>,
    ) -> Result<Engine> {
        fsops::ensure_private_dir(state_dir)?;
        let mut engine = Engine::open_state_dir(state_dir, opts, Some(cfg.clone()))?;
        let _g = engine.lock()?;
        // Before anything is registered or recovered: recovery removes image files it does not
        // know, which in another array's pool would be that array's LUNs.
        engine.check_pools_registrable(cfg)?;
        // A pool the array has that cannot be used now (its disk gone, its file system not
        // mounted) leaves the array degraded rather than down, so that the hosts of its
        // other pools keep their LUNs; a pool new to the array must be usable.
        let known = engine.db.pools()?;
        for (name, why) in unusable {
            if !known.iter().any(|k| k.name == name) {
                return Err(Error::Unavailable(why));
            }
            engine.unavailable.insert(name, why);
        }
        engine.claim_pools(cfg)?;
        engine.register_pools(cfg)?;
        let outside = engine.unusable_outside(cfg)?;
        engine.unavailable.extend(outside);
        engine.recover()?;
        Ok(engine)
    }

    /// The pools the array has that `cfg` leaves out and that cannot be used now, with why.
    /// Their elements are still the array's (requests name them, and new ones may be made
    /// there), so a configuration that leaves out a pool whose file system is not mounted
    /// must not let its empty mount point be written, nor its pending intents take the whole
    /// array down: such a pool degrades the array as one in the configuration does. A pool
    /// registered before claims were recorded, without an owner file, is used as it is.
    fn unusable_outside(&self, cfg: &ArrayConfig) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for p in self.db.pools()? {
            if cfg.pools.iter().any(|c| c.name == p.name || c.path == p.path) {
                continue;
            }
            let label = format!("pool {} (not in the configuration)", shown(&p.name));
            let why = match dir_fault(&label, &p.path) {
                Some(why) => why,
                None => match pool_owner(&p.path) {
                    Ok(Some(owner)) if owner == self.array_id => continue,
                    Ok(Some(_)) => format!(
                        "{label} directory {} belongs to another array",
                        shown_path(&p.path)
                    ),
                    Ok(None) if self.db.meta(&claimed_key(&p.path))?.is_some() => {
                        owner_file_lost(&label, &p.path)
                    }
                    Ok(None) => continue,
                    Err(e) => e.to_string(),
                },
            };
            out.insert(p.name.clone(), why);
        }
        Ok(out)
    }
    /// Makes sure every pool of `cfg` belongs to this array, claiming the ones that belong to
    /// none: a pool directory names its array in [`POOL_OWNER_FILE`], written once, when
    /// the array first opens it. A pool of another array is refused, and so is a directory
    /// that holds image files while it is new to this array (another array's, from before
    /// pools were claimed, or an array whose state directory was lost): this array would
    /// take them for leftovers of its own and remove them, or adopt them under a second page
    /// 83 id. A pool this array registered before pools were claimed is claimed as it is.
    /// A pool it claimed once (recorded in its database, [`claimed_key`]) whose directory
    /// lacks the owner file is never claimed again: that directory is not the pool (most
    /// likely its mount point, the file system not mounted), even when it holds none of the
    /// pool's LUNs because the pool has none.
    fn claim_pools(&mut self, cfg: &ArrayConfig) -> Result<()> {
        let known = self.db.pools()?;
        // Every pool is checked before any is claimed: a refused array claims nothing.
        for p in &cfg.pools {
            if self.unavailable.contains_key(&p.name) {
                continue;
            }
            let registered = known.iter().find(|k| k.path == p.path);
            Engine::check_claim(p, Some(&self.array_id), registered.is_some())?;
            if let Some(k) = registered.filter(|_| matches!(pool_owner(&p.path), Ok(None))) {
                let why = if self.db.meta(&claimed_key(&k.path))?.is_some() {
                    Some(owner_file_lost(&format!("pool {}", shown(&k.name)), &k.path))
                } else {
                    self.check_unclaimed_pool(k).err().map(|e| e.to_string())
                };
                if let Some(why) = why {
                    self.unavailable.insert(k.name.clone(), why);
                }
            }
        }
        for p in cfg
            .pools
            .iter()
            .filter(|p| !self.unavailable.contains_key(&p.name))
        {
            claim_pool(&p.path, &self.array_id)?;
            let key = claimed_key(&p.path);
            if self.db.meta(&key)?.is_none() {
                self.db
                    .conn
                    .run("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, '1')", [&key])
                    .dbx("record pool claim")?;
            }
        }
        Ok(())
    }

    /// Refuses a registered pool whose directory lacks the array's owner file, unless it is
    /// the pool as the array left it before pools were claimed: the same file system, with
    /// the image of every LUN and clone the array has there. Otherwise it is most likely the
    /// directory under the pool's mount point, its file system not mounted: claimed, it would
    /// take the array's new LUNs onto the wrong file system, and its LUNs would be missing.
    fn check_unclaimed_pool(&self, k: &PoolRow) -> Result<()> {
        let fs = fsops::fs_magic(&k.path).map(fsops::fs_name)?;
        let missing = self
            .db
            .elements_where("pool = ?1 AND kind != 'snap'", &[&k.name])?
            .into_iter()
            .filter(|e| !image(&k.path, &e.uuid).exists())
            .count();
        let other_fs = k.fs.as_ref().filter(|recorded| **recorded != fs);
        if other_fs.is_none() && missing == 0 {
            return Ok(());
        }
        let mut why = Vec::new();
        if let Some(recorded) = other_fs {
            why.push(format!("it is on {fs}, the pool was on {recorded}"));
        }
        if missing > 0 {
            why.push(format!("{missing} of its LUN files are not there"));
        }
        Err(Error::Unavailable(format!(
            "pool {} directory {} is not this array's pool: it lacks the array's owner file ({POOL_OWNER_FILE}) and {} (is its file system mounted?)",
            shown(&k.name),
            shown_path(&k.path),
            why.join(", and ")
        )))
    }

    /// Whether pool `p` may be claimed by the array `ours` (`None`: an array not made yet),
    /// for which it is `registered` or new: see [`Engine::claim_pools`].
    fn check_claim(p: &crate::config::PoolConfig, ours: Option<&str>, registered: bool) -> Result<()> {
        match pool_owner(&p.path)? {
            Some(owner) if Some(owner.as_str()) == ours => return Ok(()),
            Some(owner) => {
                return Err(Error::InvalidArray(format!(
                    "pool {} directory {} belongs to another array (array id {owner}, in {}); two arrays never share a pool directory, since each would take the other's files for its own or remove them: give this array a directory of its own",
                    shown(&p.name),
                    shown_path(&p.path),
                    p.path.join(POOL_OWNER_FILE).display()
                )))
            }
            None => {}
        }
        if registered {
            return Ok(());
        }
        let foreign = foreign_files(&p.path);
        match foreign.first() {
            None => Ok(()),
            Some(first) => Err(Error::InvalidArray(format!(
                "pool {} directory {} holds {} image file(s) this array did not make ({}{}): another array's, or one whose state directory was lost; this array does not take them over (it would remove them): give it an empty directory",
                shown(&p.name),
                shown_path(&p.path),
                foreign.len(),
                shown(first),
                if foreign.len() > 1 { ", ..." } else { "" }
            ))),
        }
    }

    /// Makes an engine that stayed open since an earlier request (the resident program,
    /// [`crate::daemon`]) current for the next request of the same configuration: the pools
    /// are still directories, and whatever another run left pending (a one-shot program or a
    /// split worker killed mid-operation) is recovered first, as [`Engine::open`] would. The
    /// orphan scan of a full recovery is only needed after such a death or a power cut, which
    /// the resident program itself does not survive; so it runs only when an intent is
    /// pending or the in-flight marker names an operation. An engine whose database file was replaced or removed meanwhile is refused
    /// (the resident program then opens the array afresh).
    pub fn resume(&mut self) -> Result<()> {
        // A commit still owed to an answered insert comes first: recovery would otherwise
        // take its operation for one whose program died.
        self.finish_pending()?;
        if self.db_file.is_none() || db_file_id(&self.state_dir) != self.db_file {
            return Err(Error::Unavailable(format!(
                "the state database in {} was replaced or removed since it was opened",
                shown_path(&self.state_dir)
            )));
        }
        if let Some(cfg) = &self.cfg {
            // A pool that went away or came back since (a file system unmounted or mounted):
            // the array is opened afresh, which degrades it, or claims and recovers the pool.
            let mut now = Engine::unusable_pools(cfg, true);
            now.extend(self.unusable_outside(cfg)?);
            if !now.keys().eq(self.unavailable.keys()) {
                return Err(Error::Unavailable(
                    "the pools that can be used changed since the array was opened".into(),
                ));
            }
        }
        let _g = self.lock()?;
        // Intents left `applied` belong to operations that finished, unless the marker still
        // names one (its program died).
        if self.marker()?.is_some() || self.db.has_unfinished_intent()? {
            self.recover()?;
        }
        Ok(())
    }

    /// The pools of `cfg` that cannot be used now, with why: a directory that is missing or
    /// not a directory, and (`claimed`: for an array whose pools were claimed when it
    /// opened) one without the array's owner file, most likely the directory under a mount
    /// point whose file system is not mounted.
    fn unusable_pools(cfg: &ArrayConfig, claimed: bool) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for p in &cfg.pools {
            let label = format!("pool {}", shown(&p.name));
            let why = match dir_fault(&label, &p.path) {
                Some(why) => why,
                None if claimed && !p.path.join(POOL_OWNER_FILE).exists() => owner_file_lost(&label, &p.path),
                None => continue,
            };
            out.insert(p.name.clone(), why);
        }
        out
    }
    /// Removes an array that a refused request made (a validate of settings that cannot be
    /// served, say): its owner files, and its state directory when the request made that too
    /// (`made_state_dir`). Kept instead when it holds anything (an element, a group, an
    /// intent) or tgtd ever served it: then it is an array in use, whoever made it.
    pub fn discard_new(self, made_state_dir: bool) -> Result<()> {
        let _g = self.lock()?;
        let empty = self.count("SELECT count(*) FROM elements", &[])? == 0
            && self.db.groups()?.is_empty()
            && self.db.intents()?.is_empty()
            && crate::tgt::never_served(&self.state_dir);
        if !empty {
            return Ok(());
        }
        for p in self.db.pools()? {
            if pool_owner(&p.path).ok().flatten().as_deref() == Some(self.array_id.as_str()) {
                let owner = p.path.join(POOL_OWNER_FILE);
                fs::remove_file(&owner).ctx("cannot remove", &owner)?;
            }
        }
        if made_state_dir {
            let dir = self.state_dir.clone();
            drop(_g);
            drop(self);
            fs::remove_dir_all(&dir).ctx("cannot remove", &dir)?;
        }
        Ok(())
    }

    /// The pools that cannot be used now (name → why); empty unless the array is degraded.
    pub fn unavailable_pools(&self) -> &BTreeMap<String, String> {
        &self.unavailable
    }

    /// Opens an existing state directory without a configuration (the split worker).
    pub fn open_state(state_dir: &Path, opts: EngineOptions) -> Result<Engine> {
        if !state_dir.join("array.db").exists() {
            return Err(Error::Unavailable(format!(
                "{} holds no array state",
                shown_path(state_dir)
            )));
        }
        Engine::open_state_dir(state_dir, opts, None)
    }

    fn open_state_dir(state_dir: &Path, opts: EngineOptions, cfg: Option<ArrayConfig>) -> Result<Engine> {
        let lock = Engine::lock_at(state_dir)?;
        let mut db = Db::open(state_dir)?;
        // SQLite creates the WAL and its index with the database's mode, which is the umask's
        // until this first chmod; they now outlive the run, so all three are made private.
        for name in ["array.db", "array.db-wal", "array.db-shm"] {
            let _ = fs::set_permissions(
                state_dir.join(name),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            );
        }
        // The identity is made once: the common case only reads it, without the write lock.
        let (array_id, company_id, vendor_id) = match stored_identity(&db.conn)? {
            Some(id) => id,
            None => {
                let tx = db.tx()?;
                let id = match stored_identity(&tx)? {
                    Some(id) => id,
                    None => {
                        let a = new_id();
                        let b = uuid::Uuid::new_v4().into_bytes();
                        // A locally administered company id (U/L bit set, not a group address)
                        // and a random 36-bit vendor id, made once per array.
                        let company =
                            (u32::from(b[0] & 0xfc | 0x02) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                        let vendor = (u64::from(b[3] & 0x0f) << 32)
                            | (u64::from(b[4]) << 24)
                            | (u64::from(b[5]) << 16)
                            | (u64::from(b[6]) << 8)
                            | u64::from(b[7]);
                        for (k, v) in [
                            ("array_id", a.clone()),
                            ("company_id", format!("{company:06x}")),
                            ("vendor_id", format!("{vendor:09x}")),
                            ("next_serial", "1".into()),
                            ("created", db::now().to_string()),
                        ] {
                            tx.run(
                                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                                params![k, v],
                            )
                            .dbx("write identity")?;
                        }
                        (a, company, vendor)
                    }
                };
                tx.commit().dbx("commit identity")?;
                id
            }
        };
        drop(lock);
        let lock_path = state_dir.join("lock");
        let marker = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lock_path)
            .ctx("cannot open", &lock_path)?;
        Ok(Engine {
            marker,
            state_dir: state_dir.to_path_buf(),
            db,
            opts,
            cfg,
            array_id,
            company_id,
            vendor_id,
            db_file: db_file_id(state_dir),
            unavailable: BTreeMap::new(),
            qos_levels: std::sync::OnceLock::new(),
            held: std::sync::Mutex::new(std::sync::Weak::new()),
            commit_after_answer: false,
            pending: None,
        })
    }

    fn lock_at(state_dir: &Path) -> Result<LockGuard> {
        fsops::lock_file(&state_dir.join("lock")).map(|f| LockGuard(std::sync::Arc::new(f)))
    }

    /// Takes the array's lock (blocking) until the guard is dropped. While this engine holds
    /// it (a guard of it lives), the new guard shares it: a second lock of the same file
    /// would wait for the first forever. An engine is used by one thread at a time.
    pub fn lock(&self) -> Result<LockGuard> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = held.upgrade() {
            return Ok(LockGuard(file));
        }
        let guard = Engine::lock_at(&self.state_dir)?;
        *held = std::sync::Arc::downgrade(&guard.0);
        Ok(guard)
    }

    /// Lets an insert (create, snapshot, clone...) answer once its files are durable, before
    /// its commit, which [`Engine::finish_pending`] makes after the answer is given (the
    /// resident program). Until then the engine holds the array's lock, so other engines
    /// and programs wait for the commit; the rest of the same request must read only what
    /// an insert does not change (the export state: a new element is presented nowhere).
    pub fn commit_after_answer(&mut self, on: bool) {
        self.commit_after_answer = on;
    }

    /// Makes the commit of an insert that was answered first, then releases the lock it
    /// held. A commit that fails leaves the in-flight marker naming the operation, and the
    /// next engine to take the lock rolls it forward from its files (module docs).
    pub fn finish_pending(&mut self) -> Result<()> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        self.commit_insert(&p.op, &p.kind, &p.plan_json, &p.plan, p.serial)
    }

    /// Takes the array's CHAP lock (blocking) until the guard is dropped: a request that
    /// sends CHAP settings holds it from reading the account in force to recording who sent
    /// the new one, so that two registrations' requests (a rotation and a re-send of the old
    /// settings) cannot both pass the takeover check against the same account and leave the
    /// older one in force. Its own file: the array's lock is taken and released inside.
    pub fn chap_lock(&self) -> Result<LockGuard> {
        fsops::lock_file(&self.state_dir.join("chap.lock")).map(|f| LockGuard(std::sync::Arc::new(f)))
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The id of the array whose state directory is `state_dir`, read without opening (or
    /// locking) it; `None` when it holds no array, or none that can be read.
    pub fn stored_array_id(state_dir: &Path) -> Option<String> {
        let path = state_dir.join("array.db");
        if !path.is_file() {
            return None;
        }
        let conn =
            rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).ok()?;
        stored_identity(&conn).ok().flatten().map(|(id, _, _)| id)
    }

    /// The array's id.
    pub fn array_id(&self) -> &str {
        &self.array_id
    }

    /// The tgtd this array is exported by (`None`: the configuration names none).
    pub fn tgt_settings(&self) -> Option<&crate::config::TgtSettings> {
        self.cfg.as_ref().and_then(|c| c.tgt.as_ref())
    }

    /// The prefix of target names.
    pub fn iqn_prefix(&self) -> String {
        self.cfg
            .as_ref()
            .map_or_else(|| self.default_iqn_prefix(), |c| self.iqn_prefix_of(c))
    }

    /// The prefix of target names of this array under configuration `cfg` (another than
    /// the engine's, e.g. the one in force before a change).
    pub fn iqn_prefix_of(&self, cfg: &ArrayConfig) -> String {
        cfg.iqn_prefix
            .clone()
            .unwrap_or_else(|| self.default_iqn_prefix())
    }

    /// The prefix of target names when the configuration gives none.
    pub fn default_iqn_prefix(&self) -> String {
        format!("iqn.2025-01.invalid.spindle:{}", &self.array_id[..8])
    }

    /// The configuration the engine was opened with (`None`: the split worker's).
    pub fn config(&self) -> Option<&ArrayConfig> {
        self.cfg.as_ref()
    }

    /// Every table as JSON (tests compare dumps to prove bad input changed nothing).
    pub fn dump(&self) -> Result<serde_json::Value> {
        self.db.dump()
    }

    /// Refuses a configuration whose pools contradict the registered ones (a registered name
    /// at another directory, or a registered directory under another name). Writes nothing.
    fn check_pools_registrable(&self, cfg: &ArrayConfig) -> Result<()> {
        let known = self.db.pools()?;
        for p in &cfg.pools {
            let path = p.path.to_string_lossy();
            if let Some(k) = known.iter().find(|k| k.name == p.name && k.path != p.path) {
                return Err(Error::InvalidArray(format!(
                    "pool {} is registered at {}; the configuration gives {}",
                    shown(&p.name),
                    shown_path(&k.path),
                    shown(&path)
                )));
            }
            if let Some(k) = known.iter().find(|k| k.path == p.path && k.name != p.name) {
                return Err(Error::InvalidArray(format!(
                    "directory {} is registered as pool {}; the configuration calls it {}",
                    shown(&path),
                    shown(&k.name),
                    shown(&p.name)
                )));
            }
        }
        Ok(())
    }

    /// Registers the configuration's new pools (after [`Engine::check_pools_registrable`]).
    fn register_pools(&mut self, cfg: &ArrayConfig) -> Result<()> {
        let known = self.db.pools()?;
        let registered =
            |p: &crate::config::PoolConfig| known.iter().any(|k| k.name == p.name && k.path == p.path);
        if cfg.pools.iter().all(registered) {
            // The usual case: nothing to write, so no write transaction.
            return Ok(());
        }
        let tx = self.db.tx()?;
        for p in cfg.pools.iter().filter(|p| !registered(p)) {
            tx.run(
                "INSERT INTO pools (name, path) VALUES (?1, ?2)",
                params![p.name, p.path.to_string_lossy()],
            )
            .dbx("register pool")?;
        }
        tx.commit().dbx("register pools")
    }

    fn pool(&self, name: &str) -> Result<PoolRow> {
        if let Some(why) = self.unavailable.get(name) {
            return Err(Error::Unavailable(format!(
                "{why}; the pool's elements are kept and come back when it does"
            )));
        }
        self.db
            .pools()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                Error::InvalidValue(format!(
                    "vol_group_name {} names no pool of this array",
                    shown(name)
                ))
            })
    }

    fn pool_path(&self, name: &str) -> Result<PathBuf> {
        Ok(self.pool(name)?.path)
    }

    /// Probes a pool's file system (type, reflink, subvolume) and records it.
    fn probe_pool(&mut self, p: &PoolRow) -> Result<PoolRow> {
        let magic = fsops::fs_magic(&p.path)?;
        let reflink = fsops::probe_reflink(&p.path)?;
        let subvolume = fsops::is_btrfs_subvolume(&p.path)?;
        let fs = fsops::fs_name(magic);
        self.db
            .conn
            .run(
                "UPDATE pools SET fs = ?1, reflink = ?2, subvolume = ?3 WHERE name = ?4",
                params![fs, reflink, subvolume, p.name],
            )
            .dbx("record pool probe")?;
        Ok(PoolRow {
            fs: Some(fs),
            reflink: Some(reflink),
            subvolume: Some(subvolume),
            ..p.clone()
        })
    }

    fn probed_pools(&mut self, force: bool) -> Result<Vec<PoolRow>> {
        let pools = self.db.pools()?;
        let mut out = Vec::with_capacity(pools.len());
        let pools: Vec<PoolRow> = pools
            .into_iter()
            .filter(|p| !self.unavailable.contains_key(&p.name))
            .collect();
        for p in pools {
            if force || p.reflink.is_none() {
                out.push(self.probe_pool(&p)?);
            } else {
                out.push(p);
            }
        }
        Ok(out)
    }

    fn pool_reflinks(&mut self, name: &str) -> Result<bool> {
        let p = self.pool(name)?;
        match p.reflink {
            Some(r) => Ok(r),
            None => Ok(self.probe_pool(&p)?.reflink.unwrap_or(false)),
        }
    }

    fn require_reflink(&mut self, pool: &str, what: &str) -> Result<()> {
        if self.pool_reflinks(pool)? {
            Ok(())
        } else {
            Err(Error::NoSuchOperation(format!(
                "{what} is unsupported in pool {}: its file system cannot share extents (reflink), and this array never makes a full copy in place of a thin one",
                shown(pool)
            )))
        }
    }

    // ----- identity -----

    fn scsi_id(&self, serial: u64) -> String {
        format!("6{:06x}{:09x}{:016x}", self.company_id, self.vendor_id, serial)
    }

    /// The serial the next new element gets. It is taken (the counter advanced) by the
    /// commit of the intent that records the element ([`Engine::execute`] with
    /// `Some(serial)`), so one commit does both; the array's lock is held from here to there.
    fn next_serial(&self) -> Result<u64> {
        let n: String = self
            .db
            .conn
            .row("SELECT value FROM meta WHERE key = 'next_serial'", [], |r| {
                r.get(0)
            })
            .dbx("read serial")?;
        n.parse().map_err(|_| Error::Failed("corrupt next_serial".into()))
    }

    // ----- views -----

    fn presentation_map(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (e, g, _) in self.db.presentations()? {
            map.entry(e).or_default().push(g);
        }
        Ok(map)
    }

    /// The names a query of one parameter finds (the elements that keep another in use).
    fn names_of(&self, sql: &str, param: &str) -> Result<Vec<String>> {
        let mut st = self.db.conn.prepare_cached(sql).dbx("list names")?;
        let names = st
            .query_map([param], |r| r.get(0))
            .dbx("list names")?
            .collect::<rusqlite::Result<Vec<String>>>()
            .dbx("list names")?;
        Ok(names)
    }

    /// The names of the unsplit clones made from the element or snapshot `uuid`.
    fn clone_names(&self, uuid: &str) -> Result<Vec<String>> {
        self.names_of("SELECT name FROM elements WHERE parent = ?1 ORDER BY name", uuid)
    }

    fn running_splits(&self) -> Result<HashMap<String, String>> {
        let mut st = self
            .db
            .conn
            .prepare_cached("SELECT element, op FROM splits WHERE status = 'running'")
            .dbx("list splits")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .dbx("list splits")?
            .collect::<rusqlite::Result<HashMap<String, String>>>()
            .dbx("list splits")?;
        Ok(rows)
    }

    fn view(
        &self,
        row: &ElementRow,
        pools: &[PoolRow],
        pres: &HashMap<String, Vec<String>>,
        splits: &HashMap<String, String>,
    ) -> Result<Element> {
        let pool = pools.iter().find(|p| p.name == row.pool).map(|p| p.path.clone());
        let scsi_id = self.scsi_id(row.serial);
        let page83_id = make_mp_page83_from_raw_page83(&scsi_id).map_err(|e| Error::Failed(e.to_string()))?;
        let members = if row.kind == Kind::Snap {
            self.db
                .members(&row.uuid)?
                .into_iter()
                .map(|m| MemberView {
                    element: m.element,
                    path: pool.as_deref().map(|p| image(p, &m.file)).unwrap_or_default(),
                    size: m.size,
                })
                .collect()
        } else {
            Vec::new()
        };
        let state = SeState::parse(&row.state).unwrap_or(SeState::Unknown);
        let status = match state {
            _ if self.unavailable.contains_key(&row.pool) => "UNAVAILABLE".to_string(),
            SeState::BusyCopy => "SPLITTING".to_string(),
            s => s.as_str().to_string(),
        };
        Ok(Element {
            uuid: row.uuid.clone(),
            name: row.name.clone(),
            kind: row.kind,
            se_type: match row.kind {
                Kind::Lun => SeType::Lun,
                Kind::Snap => SeType::Snap,
                Kind::Clone => SeType::SnapClone,
            },
            pool: row.pool.clone(),
            size: row.size,
            thin: row.thin,
            parent: row.parent.clone(),
            parent_member: row.parent_member.clone(),
            members,
            read_only: row.read_only,
            state,
            status,
            qos: row.qos.clone(),
            online: row.online,
            serial: row.serial,
            scsi_id,
            page83_id,
            path: if row.kind == Kind::Snap {
                None
            } else {
                pool.as_deref().map(|p| image(p, &row.uuid))
            },
            groups: pres.get(&row.uuid).cloned().unwrap_or_default(),
            backing_generation: row.backing_gen,
            split: splits.get(&row.uuid).cloned(),
        })
    }

    fn view_one(&self, row: &ElementRow) -> Result<Element> {
        let pools = self.db.pools()?;
        let pres = self.presentation_map()?;
        let splits = self.running_splits()?;
        self.view(row, &pools, &pres, &splits)
    }

    /// The view of an element this operation just made in `pool`, its pool's row as the
    /// operation read it: nothing presents it and no split of it runs, so neither is looked
    /// up, and nor is the pool again.
    fn view_new(&self, row: &ElementRow, pool: &PoolRow) -> Result<Element> {
        self.view(row, std::slice::from_ref(pool), &HashMap::new(), &HashMap::new())
    }

    fn views(&self, rows: &[ElementRow]) -> Result<Vec<Element>> {
        let pools = self.db.pools()?;
        let pres = self.presentation_map()?;
        let splits = self.running_splits()?;
        rows.iter()
            .map(|r| self.view(r, &pools, &pres, &splits))
            .collect()
    }

    fn row(&self, key: &str, uuid: &str) -> Result<ElementRow> {
        let uuid = names::check_uuid(key, uuid)?;
        self.db.element(&uuid)?.ok_or_else(|| {
            Error::InvalidValue(format!("{key} {} names no element of this array", shown(&uuid)))
        })
    }

    /// Refuses element records that name one element by uuid and another by name or page 83
    /// id (`names`, `page83s`: uuid → what the record gives). Both are fixed once given, so a
    /// mismatch is a record of another element (or of another array) with this one's uuid.
    pub fn check_identities(
        &self,
        names: &BTreeMap<String, String>,
        page83s: &BTreeMap<String, String>,
    ) -> Result<()> {
        for (uuid, name) in names {
            let r = self.row("uuid", uuid)?;
            if &r.name != name {
                return Err(Error::InvalidValue(format!(
                    "name {} is not the name of element {} (its name is {}): the record names two elements",
                    shown(name),
                    shown(uuid),
                    shown(&r.name)
                )));
            }
        }
        for (uuid, page83) in page83s {
            let r = self.row("uuid", uuid)?;
            let ours = make_mp_page83_from_raw_page83(&self.scsi_id(r.serial))
                .map_err(|e| Error::Failed(e.to_string()))?;
            if !page83.eq_ignore_ascii_case(&ours) {
                return Err(Error::InvalidValue(format!(
                    "page83_id {} is not the page 83 id of element {} ({}, {}): the record names two elements",
                    shown(page83),
                    shown(uuid),
                    shown(&r.name),
                    ours
                )));
            }
        }
        Ok(())
    }

    fn volume_row(&self, key: &str, uuid: &str) -> Result<ElementRow> {
        let r = self.row(key, uuid)?;
        if r.kind == Kind::Snap {
            return Err(Error::InvalidValue(format!(
                "{key} {} is a snapshot, not a LUN or clone",
                shown(uuid)
            )));
        }
        Ok(r)
    }

    fn snap_row(&self, key: &str, uuid: &str) -> Result<ElementRow> {
        let r = self.row(key, uuid)?;
        if r.kind != Kind::Snap {
            return Err(Error::InvalidValue(format!(
                "{key} {} is not a snapshot",
                shown(uuid)
            )));
        }
        Ok(r)
    }

    fn is_presented(&self, uuid: &str) -> Result<bool> {
        self.db
            .conn
            .row(
                "SELECT count(*) > 0 FROM presentations WHERE element = ?1",
                [uuid],
                |r| r.get(0),
            )
            .dbx("read presentations")
    }

    fn count(&self, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<i64> {
        self.db.conn.row(sql, p, |r| r.get(0)).dbx("count")
    }

    fn check_not_splitting(&self, r: &ElementRow) -> Result<()> {
        if r.state == SeState::BusyCopy.as_str() {
            return Err(Error::Busy(format!(
                "element {} ({}) is being split; wait for the split to finish",
                shown(&r.name),
                r.uuid
            )));
        }
        Ok(())
    }

    fn check_new_name(&self, key: &str, name: &str) -> Result<()> {
        names::check_name(key, name)?;
        if let Some(e) = self.db.element_by_name(name)? {
            return Err(Error::InvalidValue(format!(
                "{key} {} is already the name of element {}",
                shown(name),
                e.uuid
            )));
        }
        Ok(())
    }

    /// A generated name `<base>-<what>-<serial>` (cut to fit), made unique if a user already
    /// took it: every name is checked before the intent, so the final insert cannot fail.
    fn auto_name(&self, base: &str, what: &str, serial: u64) -> Result<String> {
        for n in 0u32.. {
            let suffix = if n == 0 {
                format!("-{what}-{serial}")
            } else {
                format!("-{what}-{serial}-{n}")
            };
            let keep = names::MAX_NAME_LEN.saturating_sub(suffix.chars().count());
            let base: String = base.chars().take(keep).collect();
            let name = format!("{base}{suffix}");
            if self.db.element_by_name(&name)?.is_none() {
                return Ok(name);
            }
        }
        Err(Error::Failed("no free generated name".into()))
    }

    fn check_qos(&self, qos: Option<&str>) -> Result<String> {
        let q = qos.unwrap_or(DEFAULT_QOS);
        if self.qos_list()?.iter().any(|l| l.value == q) {
            Ok(q.to_string())
        } else {
            Err(Error::InvalidValue(format!(
                "qos {} is not a QoS value of this array (writeback, writethrough)",
                shown(q)
            )))
        }
    }

    // ----- the protocol: intents, roll forward, roll back -----

    /// Commits the intent row of `op` at `step` (`started`, or `prepared` when its files are
    /// already complete), with what `extra` writes in the same transaction (the serial an
    /// operation takes, [`take_serial`]: a serial is used up once an operation that carries
    /// it is recorded, even if it is then rolled back).
    fn begin(
        &mut self,
        op: &str,
        kind: &str,
        plan_json: &str,
        step: &str,
        durable: bool,
        extra: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<()>,
    ) -> Result<()> {
        // Intents left `applied` are of finished operations once no other operation is in
        // flight (a dead one is recovered first), and are deleted in this commit.
        if self.marker()?.is_some_and(|m| m != op) {
            self.recover()?;
        }
        let waiting = self.waiting_intents()?;
        self.db.committing(durable, |db| {
            let tx = db.tx()?;
            delete_finished_intents(&tx, &waiting)?;
            tx.run(
                "INSERT INTO intents (op, kind, plan, step, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![op, kind, plan_json, step, db::now()],
            )
            .dbx("record intent")?;
            extra(&tx)?;
            tx.commit().dbx("commit intent")
        })?;
        crash::point(&format!(
            "{kind}.{}",
            if step == "started" { "intent" } else { step }
        ));
        Ok(())
    }

    fn prepare(&mut self, op: &str, kind: &str, plan: &Plan) -> Result<()> {
        self.db.committing(!plan.lazy_journal(), |db| {
            db.conn
                .run("UPDATE intents SET step = 'prepared' WHERE op = ?1", [op])
                .dbx("mark intent prepared")
        })?;
        crash::point(&format!("{kind}.prepared"));
        Ok(())
    }

    /// Runs a plan whose files `work` builds (module docs): plans that only add new files go
    /// through [`Engine::execute_insert`]; the others commit their intent, build their
    /// temporaries, mark the intent prepared and roll forward. `work` gets the mark to give
    /// each new file of a plan that adds elements; a file it marks is left for the engine to
    /// fsync.
    fn execute(
        &mut self,
        kind: &str,
        op: &str,
        plan: &Plan,
        serial: Option<u64>,
        work: impl FnOnce(&mut Self, Option<&fsops::Mark<'_>>) -> Result<()>,
    ) -> Result<()> {
        let plan_json =
            serde_json::to_string(plan).map_err(|e| Error::Failed(format!("cannot encode plan: {e}")))?;
        if let Plan::Insert { subvol: None, .. } = plan {
            if let Some(record) = CarriedIntent::text(op, kind, &plan_json) {
                return self.execute_insert(kind, op, plan, &plan_json, &record, serial, work);
            }
        }
        // A plan that adds files but cannot carry its intent (too long, or a btrfs subvolume
        // to clean up) has its intent flushed by a second thread while its files are made, so
        // that the flush costs no time of its own.
        let lazy = plan.lazy_journal();
        self.begin(op, kind, &plan_json, "started", !lazy, |tx| {
            take_serial(tx, serial)
        })?;
        let mark = lazy.then_some(fsops::Mark { op, record: None });
        let flusher = lazy.then(|| {
            let wal = self.state_dir.join("array.db-wal");
            std::thread::spawn(move || File::open(&wal).and_then(|f| f.sync_data()))
        });
        let worked = work(self, mark.as_ref()).and_then(|()| sync_new_files(plan));
        let flushed = match flusher.map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(Error::Failed(format!("cannot flush the state journal: {e}"))),
            Some(Err(_)) => Err(Error::Failed("the state journal flush panicked".into())),
        };
        if let Err(e) = worked.and(flushed) {
            self.roll_back(op, plan, &e.to_string());
            return Err(e);
        }
        if !plan.moves().is_empty() {
            crash::point(&format!("{kind}.partial"));
        }
        // New files marked complete make the result recoverable from the flushed intent, so
        // neither the `prepared` mark, which recovery would not need, nor the result's commit
        // waits for the disk (module docs, "Durability").
        let marked = lazy && Engine::marked_complete(op, plan);
        if marked {
            crash::point(&format!("{kind}.prepared"));
        } else if let Err(e) = self.prepare(op, kind, plan) {
            self.roll_back(op, plan, &e.to_string());
            return Err(e);
        }
        self.roll_forward(op, kind, plan, !marked)
    }

    /// Runs a plan that only adds new files, each carrying the operation's whole intent
    /// (module docs, "Durability"):
    /// 1. the in-flight marker names `op` (an operation found there is recovered first);
    /// 2. `work` builds the files, each marked complete and carrying `record`, not fsynced;
    /// 3. the files and their directories are fsynced;
    /// 4. one commit, which does not wait for the disk, records the intent (step `applied`),
    ///    takes the serial and inserts the new rows, and the marker is cleared
    ///    ([`Engine::commit_insert`]); left pending for [`Engine::finish_pending`] when the
    ///    engine commits after the answer.
    ///
    /// A file system that does not keep the marks gets the durable protocol instead: files
    /// fsynced, intent committed `prepared` and flushed, rolled forward with a flushed commit.
    #[allow(clippy::too_many_arguments)]
    fn execute_insert(
        &mut self,
        kind: &str,
        op: &str,
        plan: &Plan,
        plan_json: &str,
        record: &str,
        serial: Option<u64>,
        work: impl FnOnce(&mut Self, Option<&fsops::Mark<'_>>) -> Result<()>,
    ) -> Result<()> {
        if self.marker()?.is_some() {
            self.recover()?;
        }
        self.set_marker(Some(op))?;
        crash::point(&format!("{kind}.intent"));
        let mark = fsops::Mark {
            op,
            record: Some(record),
        };
        if let Err(e) = work(self, Some(&mark)) {
            self.undo_insert(op, plan, &e.to_string());
            return Err(e);
        }
        if !Engine::marked_complete(op, plan) {
            let done = sync_new_files(plan)
                .and_then(|()| {
                    self.begin(op, kind, plan_json, "prepared", true, |tx| {
                        take_serial(tx, serial)
                    })
                })
                .and_then(|()| self.roll_forward(op, kind, plan, true));
            return match done {
                Ok(()) => {
                    let _ = self.set_marker(None);
                    Ok(())
                }
                Err(e) => {
                    self.undo_insert(op, plan, &e.to_string());
                    Err(e)
                }
            };
        }
        crash::point(&format!("{kind}.partial"));
        // The flushes of the bare operation, then one commit that does not wait for the disk:
        // the files carry the intent, so the answer needs nothing more, and the commit can
        // follow it (the resident program). Overlapping the commit with the flush measured
        // slower: the flush needs the machine's other core for the loop device's own work.
        if let Err(e) = sync_new_files(plan).and_then(|()| Engine::do_moves(plan.moves())) {
            self.undo_insert(op, plan, &e.to_string());
            return Err(e);
        }
        crash::point(&format!("{kind}.renamed"));
        if self.commit_after_answer {
            self.pending = Some(PendingCommit {
                _lock: self.lock()?,
                op: op.to_string(),
                kind: kind.to_string(),
                plan_json: plan_json.to_string(),
                plan: plan.clone(),
                serial,
            });
            return Ok(());
        }
        if let Err(e) = self.commit_insert(op, kind, plan_json, plan, serial) {
            self.undo_insert(op, plan, &e.to_string());
            return Err(e);
        }
        Ok(())
    }

    /// The one commit of an insert whose files are durable: records the intent (step
    /// `applied`), takes the serial and inserts the rows; then clears the in-flight marker.
    /// Failing, it leaves the marker naming the operation.
    fn commit_insert(
        &mut self,
        op: &str,
        kind: &str,
        plan_json: &str,
        plan: &Plan,
        serial: Option<u64>,
    ) -> Result<()> {
        let waiting = self.waiting_intents()?;
        commit_applied(&mut self.db, op, kind, plan_json, plan, serial, &waiting)?;
        crash::point(&format!("{kind}.prepared"));
        // Cleared only now: an operation that stops before this is recovered by the next run.
        let _ = self.set_marker(None);
        Ok(())
    }

    /// Rolls back an insert that failed in this run, and clears the marker when nothing of it
    /// is left (otherwise the next run's recovery finishes the clean-up).
    fn undo_insert(&mut self, op: &str, plan: &Plan, why: &str) {
        if self.roll_back(op, plan, why) {
            let _ = self.set_marker(None);
        }
    }

    /// The operation named by the in-flight marker, if any (see [`Engine::execute_insert`]).
    fn marker(&self) -> Result<Option<String>> {
        let mut buf = [0u8; MARKER_LEN];
        let n = self
            .marker
            .read_at(&mut buf, 0)
            .ctx("cannot read the in-flight marker", &self.state_dir.join("lock"))?;
        let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
        Ok(text.strip_prefix("busy ").map(|rest| rest.trim_end().to_string()))
    }

    /// Names `op` in the in-flight marker, or clears it. The marker is written to the page
    /// cache only: it has to outlive a process, not the power (after a power cut every
    /// engine is opened anew, and [`Engine::open`] recovers fully).
    fn set_marker(&self, op: Option<&str>) -> Result<()> {
        let mut buf = [b' '; MARKER_LEN];
        let text = match op {
            Some(op) => format!("busy {op}"),
            None => "idle".to_string(),
        };
        let n = text.len().min(MARKER_LEN - 1);
        buf[..n].copy_from_slice(&text.as_bytes()[..n]);
        buf[MARKER_LEN - 1] = b'\n';
        self.marker
            .write_all_at(&buf, 0)
            .ctx("cannot write the in-flight marker", &self.state_dir.join("lock"))
    }

    /// Whether every new file of `plan` carries the completion mark of `op`.
    fn marked_complete(op: &str, plan: &Plan) -> bool {
        plan.moves()
            .iter()
            .all(|m| fsops::completed_by(&m.dest).as_deref() == Some(op))
    }

    fn do_moves(moves: &[Move]) -> Result<()> {
        let mut dirs = BTreeSet::new();
        for m in moves {
            if m.partial == m.dest {
                // A new file built under its final name: nothing to move.
                if !m.dest.exists() {
                    return Err(Error::Failed(format!("{} does not exist", m.dest.display())));
                }
            } else if m.partial.exists() {
                fs::rename(&m.partial, &m.dest).ctx("cannot rename into place", &m.dest)?;
            } else if !m.dest.exists() {
                return Err(Error::Failed(format!(
                    "neither {} nor {} exists",
                    m.partial.display(),
                    m.dest.display()
                )));
            }
            dirs.insert(parent_dir(&m.dest).to_path_buf());
        }
        for d in dirs {
            fsops::fsync_dir(&d)?;
        }
        Ok(())
    }

    /// Finishes a prepared plan whose files are durable; every step is idempotent, so
    /// recovery can repeat it (an `applied` intent, whose rows are in, never comes here). The
    /// final commit waits for the disk when `durable`.
    fn roll_forward(&mut self, op: &str, kind: &str, plan: &Plan, durable: bool) -> Result<()> {
        match plan {
            Plan::Insert {
                elements,
                members,
                moves,
                subvol,
            } => {
                Engine::do_moves(moves)?;
                if let Some(s) = subvol {
                    if s.exists() {
                        fsops::btrfs_delete(s)?;
                    }
                }
                crash::point(&format!("{kind}.renamed"));
                self.db.committing(durable, |db| {
                    let tx = db.tx()?;
                    for e in elements {
                        db::insert_element(&tx, e)?;
                    }
                    // The serials are used up (already so when the intent's commit survived;
                    // not when the operation is adopted from its files).
                    if let Some(last) = elements.iter().map(|e| e.serial).max() {
                        tx.run(
                            "UPDATE meta SET value = ?1 WHERE key = 'next_serial' AND CAST(value AS INTEGER) <= ?2",
                            params![(last + 1).to_string(), last as i64],
                        )
                        .dbx("advance serial")?;
                    }
                    for m in members {
                        db::insert_member(&tx, m)?;
                    }
                    tx.run("DELETE FROM intents WHERE op = ?1", [op])
                        .dbx("delete intent")?;
                    tx.commit().dbx("commit")
                })?;
            }
            Plan::Resize {
                uuid,
                path,
                size,
                thin,
            } => {
                fsops::resize_image(path, *size, *thin)?;
                crash::point(&format!("{kind}.applied"));
                let tx = self.db.tx()?;
                tx.run(
                    "UPDATE elements SET size = ?1 WHERE uuid = ?2",
                    params![*size as i64, uuid],
                )
                .dbx("record size")?;
                tx.run("DELETE FROM intents WHERE op = ?1", [op])
                    .dbx("delete intent")?;
                tx.commit().dbx("commit")?;
            }
            Plan::Remove { uuids, files } => {
                let mut dirs = BTreeSet::new();
                for f in files {
                    fsops::remove_if_exists(f)?;
                    dirs.insert(parent_dir(f).to_path_buf());
                }
                for d in dirs {
                    fsops::fsync_dir(&d)?;
                }
                crash::point(&format!("{kind}.applied"));
                let tx = self.db.tx()?;
                for u in uuids {
                    tx.run("DELETE FROM members WHERE snap = ?1", [u])
                        .dbx("delete members")?;
                    tx.run("DELETE FROM elements WHERE uuid = ?1", [u])
                        .dbx("delete element")?;
                }
                tx.run("DELETE FROM intents WHERE op = ?1", [op])
                    .dbx("delete intent")?;
                tx.commit().dbx("commit")?;
            }
            Plan::Restore { updates, moves } => {
                Engine::do_moves(moves)?;
                crash::point(&format!("{kind}.renamed"));
                let tx = self.db.tx()?;
                for (u, size) in updates {
                    tx.run(
                        "UPDATE elements SET size = ?1, backing_gen = backing_gen + 1 WHERE uuid = ?2",
                        params![*size as i64, u],
                    )
                    .dbx("record restore")?;
                }
                tx.run("DELETE FROM intents WHERE op = ?1", [op])
                    .dbx("delete intent")?;
                tx.commit().dbx("commit")?;
            }
            Plan::Split { uuid, moves, .. } => {
                Engine::do_moves(moves)?;
                crash::point(&format!("{kind}.renamed"));
                let tx = self.db.tx()?;
                tx.run(
                    "UPDATE elements SET kind = 'lun', parent = NULL, parent_member = NULL, \
                     state = CASE WHEN online THEN 'ONLINE' ELSE 'OFFLINE' END, \
                     backing_gen = backing_gen + 1 WHERE uuid = ?1",
                    [uuid],
                )
                .dbx("record split")?;
                tx.run(
                    "UPDATE splits SET status = 'done', done = total, finished = ?1 WHERE op = ?2",
                    params![db::now(), op],
                )
                .dbx("record split")?;
                tx.run("DELETE FROM intents WHERE op = ?1", [op])
                    .dbx("delete intent")?;
                tx.commit().dbx("commit")?;
                let _ = fs::remove_file(self.split_lock_path(op));
            }
        }
        Ok(())
    }

    /// Undoes a started plan: its temporaries go, the rows an `applied` one inserted go, the
    /// journal entry goes. Best effort: what it cannot undo now stays in the journal for
    /// recovery. Says whether everything was undone.
    fn roll_back(&mut self, op: &str, plan: &Plan, why: &str) -> bool {
        let mut clean = true;
        for m in plan.moves() {
            clean &= fsops::remove_if_exists(&m.partial).is_ok();
        }
        if let Plan::Insert { subvol: Some(s), .. } = plan {
            if s.exists() {
                clean &= fsops::btrfs_delete(s).is_ok();
            }
        }
        if !clean {
            return false;
        }
        let res = (|| -> Result<()> {
            let tx = self.db.tx()?;
            if let Plan::Insert { elements, .. } = plan {
                for e in elements {
                    tx.run("DELETE FROM members WHERE snap = ?1", [&e.uuid])
                        .dbx("delete members")?;
                    tx.run("DELETE FROM elements WHERE uuid = ?1", [&e.uuid])
                        .dbx("delete element")?;
                }
            }
            if let Plan::Split { uuid, .. } = plan {
                tx.run(
                    "UPDATE elements SET state = CASE WHEN online THEN 'ONLINE' ELSE 'OFFLINE' END WHERE uuid = ?1",
                    [uuid],
                )
                .dbx("restore state")?;
                tx.run(
                    "UPDATE splits SET status = 'failed', message = ?1, finished = ?2 WHERE op = ?3",
                    params![
                        format!("the split did not finish and was rolled back; the clone is unchanged and still shares blocks: {why}"),
                        db::now(),
                        op
                    ],
                )
                .dbx("record split failure")?;
            }
            tx.run("DELETE FROM intents WHERE op = ?1", [op])
                .dbx("delete intent")?;
            tx.commit().dbx("commit roll-back")
        })();
        if res.is_ok() {
            if let Plan::Split { .. } = plan {
                let _ = fs::remove_file(self.split_lock_path(op));
            }
        }
        res.is_ok()
    }

    fn split_lock_path(&self, op: &str) -> PathBuf {
        self.state_dir.join(format!("split.{op}.lock"))
    }

    /// True while the worker of split `op` runs (it holds the split's lock).
    fn split_alive(&self, op: &str) -> bool {
        let path = self.split_lock_path(op);
        let Ok(f) = OpenOptions::new().write(true).open(&path) else {
            return false;
        };
        match f.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        }
    }

    fn recover_intent(&mut self, it: &db::IntentRow) -> Result<()> {
        let plan: Plan = serde_json::from_str(&it.plan)
            .map_err(|e| Error::Failed(format!("intent {} has an unreadable plan: {e}", it.op)))?;
        if matches!(plan, Plan::Split { .. }) && self.split_alive(&it.op) {
            return Ok(());
        }
        // A plan that adds files is also rolled forward when every new file carries its
        // completion mark: the `prepared` mark and the final commit may have been lost with
        // the power, after the answer was given.
        let marked = plan.lazy_journal() && Engine::marked_complete(&it.op, &plan);
        if it.step == "applied" && marked {
            // Its rows are in; only the flush of its files may be missing (its program died
            // in it). The row goes with the next operation's commit.
            sync_new_files(&plan)?;
            return Engine::do_moves(plan.moves());
        }
        if it.step == "prepared" || marked {
            // Marked files may not have been flushed by the run that died.
            sync_new_files(&plan)?;
            self.roll_forward(&it.op, &it.kind, &plan, true)
        } else {
            self.roll_back(
                &it.op,
                &plan,
                "the program stopped before the operation was complete",
            );
            Ok(())
        }
    }

    /// Recovery: finishes or undoes every pending operation (except splits whose worker still
    /// runs), then removes orphan files of this array's naming patterns from the pools. Runs
    /// under the lock, at every [`Engine::open`].
    pub fn recover(&mut self) -> Result<()> {
        let waiting = self.waiting_intents()?;
        for it in self.db.intents()? {
            if waiting.contains(&it.op) {
                continue;
            }
            self.recover_intent(&it)?;
        }
        self.remove_orphans()?;
        self.set_marker(None)
    }

    /// The intents that touch a pool that cannot be used now: they stay pending until it
    /// can be, since whether they finished cannot be told while its files cannot be seen.
    /// That holds for an `applied` one too (its program may have died before its files were
    /// durable, and the marker that said so is cleared by the recovery that skipped it), so
    /// the next operation's commit keeps it rather than taking it for finished.
    fn waiting_intents(&self) -> Result<BTreeSet<String>> {
        if self.unavailable.is_empty() {
            return Ok(BTreeSet::new());
        }
        let away: Vec<PathBuf> = self
            .db
            .pools()?
            .into_iter()
            .filter(|p| self.unavailable.contains_key(&p.name))
            .map(|p| p.path)
            .collect();
        Ok(self
            .db
            .intents()?
            .into_iter()
            .filter(|it| {
                serde_json::from_str::<Plan>(&it.plan)
                    .is_ok_and(|plan| plan.paths().iter().any(|f| away.iter().any(|a| f.starts_with(a))))
            })
            .map(|it| it.op)
            .collect())
    }

    fn remove_orphans(&mut self) -> Result<()> {
        let intents: BTreeSet<String> = self.db.intents()?.into_iter().map(|i| i.op).collect();
        let mut files: BTreeSet<String> = self
            .db
            .elements_where("kind != 'snap'", &[])?
            .into_iter()
            .map(|e| e.uuid)
            .collect();
        files.extend(self.db.members_where("1", &[])?.into_iter().map(|m| m.file));
        let pools = self.db.pools()?;
        // Image files no element names: either left by an operation that did not finish, or
        // made by one that finished but whose every commit a power cut lost. The latter carry
        // their intent and are rolled forward, in the order the operations ran.
        let mut stray = Vec::new();
        let mut carried = BTreeMap::new();
        // Only pools this array owns: what is in another array's directory is not this array's
        // to adopt or remove (Engine::claim_pools refuses such a pool when the array opens).
        let pools: Vec<PoolRow> = pools
            .into_iter()
            .filter(|p| pool_owner(&p.path).ok().flatten().as_deref() == Some(self.array_id.as_str()))
            .collect();
        for p in &pools {
            let Ok(rd) = fs::read_dir(&p.path) else { continue };
            for ent in rd.flatten() {
                let path = ent.path();
                let stem = ent
                    .file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".img"))
                    .map(str::to_string);
                if let Some(u) = stem.filter(|u| is_uuid(u) && !files.contains(u)) {
                    if let Some(c) = CarriedIntent::read(&path).filter(|c| !intents.contains(&c.op)) {
                        carried.insert(c.op.clone(), c);
                    }
                    stray.push((u, path));
                }
            }
        }
        let mut carried: Vec<CarriedIntent> = carried.into_values().collect();
        carried.sort_by_key(CarriedIntent::first_serial);
        for c in carried {
            // A dead run may have marked its files without flushing them.
            let adopted = self.adoptable(&c, &pools)
                && sync_new_files(&c.plan).is_ok()
                && self.roll_forward(&c.op, &c.kind, &c.plan, true).is_ok();
            if adopted {
                for m in c.plan.moves() {
                    if let Some(f) = m.dest.file_stem().and_then(|f| f.to_str()) {
                        files.insert(f.to_string());
                    }
                }
            }
        }
        for p in &pools {
            let mut removed = false;
            for (u, path) in stray
                .iter()
                .filter(|(_, path)| path.parent() == Some(p.path.as_path()))
            {
                if !files.contains(u) {
                    // Best effort: what cannot be removed now is reported by fsck.
                    removed |= fsops::remove_if_exists(path).unwrap_or(false);
                }
            }
            let Ok(rd) = fs::read_dir(&p.path) else { continue };
            for ent in rd.flatten() {
                let name = ent.file_name();
                let Some(name) = name.to_str() else { continue };
                let path = ent.path();
                if name.ends_with(".img") {
                    // Image files were dealt with above.
                } else if let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".partial")) {
                    let op = rest.split('.').next().unwrap_or("");
                    if is_uuid(op) && !intents.contains(op) {
                        removed |= fsops::remove_if_exists(&path).unwrap_or(false);
                    }
                } else if let Some(op) = name.strip_prefix(".spindle-msnap.") {
                    if is_uuid(op) && !intents.contains(op) {
                        let _ = fsops::btrfs_delete(&path);
                    }
                } else if name.starts_with(".spindle-probe.")
                    && (name.ends_with(".a") || name.ends_with(".b"))
                {
                    let _ = fsops::remove_if_exists(&path);
                }
            }
            if removed {
                let _ = fsops::fsync_dir(&p.path);
            }
        }
        // Split lock files of splits that are over.
        if let Ok(rd) = fs::read_dir(&self.state_dir) {
            for ent in rd.flatten() {
                let name = ent.file_name();
                let Some(op) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("split."))
                    .and_then(|n| n.strip_suffix(".lock"))
                else {
                    continue;
                };
                if is_uuid(op) && !intents.contains(op) {
                    let _ = fs::remove_file(ent.path());
                }
            }
        }
        Ok(())
    }

    /// Whether an operation found only in the intent its files carry ([`CarriedIntent`]) fits
    /// the array as recovered: its new files are exactly `<pool>/<uuid>.img` of the elements
    /// and snapshot images it adds, all present and marked by it; its elements are new, in
    /// known pools, under free names and serials, and their parents exist. The database's
    /// own constraints check the rest when it is applied. Anything else is a stray file.
    fn adoptable(&self, c: &CarriedIntent, pools: &[PoolRow]) -> bool {
        let Plan::Insert {
            elements,
            members,
            moves,
            subvol,
        } = &c.plan
        else {
            return false;
        };
        let pool_path = |name: &str| pools.iter().find(|p| p.name == name).map(|p| p.path.clone());
        let mut expected = BTreeSet::new();
        for e in elements {
            let Some(dir) = pool_path(&e.pool) else {
                return false;
            };
            let fresh = is_uuid(&e.uuid)
                && self.db.element(&e.uuid).ok().flatten().is_none()
                && names::check_name("name", &e.name).is_ok()
                && self
                    .count(
                        "SELECT COUNT(*) FROM elements WHERE name = ?1 OR serial = ?2",
                        &[&e.name, &(e.serial as i64)],
                    )
                    .ok()
                    == Some(0)
                && e.parent
                    .as_ref()
                    .is_none_or(|p| self.db.element(p).ok().flatten().is_some());
            if !fresh {
                return false;
            }
            if e.kind != Kind::Snap {
                expected.insert(image(&dir, &e.uuid));
            }
        }
        for m in members {
            let Some(snap) = elements.iter().find(|e| e.uuid == m.snap) else {
                return false;
            };
            let Some(dir) = pool_path(&snap.pool) else {
                return false;
            };
            if !is_uuid(&m.file) {
                return false;
            }
            expected.insert(image(&dir, &m.file));
        }
        let files_ok = moves.len() == expected.len()
            && moves.iter().all(|m| {
                m.partial == m.dest
                    && expected.contains(&m.dest)
                    && fsops::completed_by(&m.dest).as_deref() == Some(c.op.as_str())
            });
        let subvol_ok = subvol.as_ref().is_none_or(|s| {
            s.file_name().and_then(|n| n.to_str()) == Some(&format!(".spindle-msnap.{}", c.op))
                && pools.iter().any(|p| s.parent() == Some(p.path.as_path()))
        });
        files_ok && subvol_ok
    }

    /// Problems found in the state: pending intents, missing or wrongly sized files, orphan
    /// files. Empty when consistent.
    pub fn check_consistency(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for it in self.db.intents()? {
            // An `applied` intent whose files are all marked is a finished operation whose
            // row the next one deletes.
            let finished = it.step == "applied"
                && serde_json::from_str::<Plan>(&it.plan).is_ok_and(|p| Engine::marked_complete(&it.op, &p));
            if !finished {
                problems.push(format!("pending intent {} ({}, {})", it.op, it.kind, it.step));
            }
        }
        let pools = self.db.pools()?;
        let mut known = BTreeSet::new();
        for e in self.db.elements_where("1", &[])? {
            let Some(pool) = pools.iter().find(|p| p.name == e.pool) else {
                problems.push(format!("element {} is in unknown pool {}", e.uuid, e.pool));
                continue;
            };
            let mut check = |file: &str, size: u64| {
                let path = image(&pool.path, file);
                known.insert(path.clone());
                match fs::metadata(&path) {
                    Ok(m) if m.len() == size => {}
                    Ok(m) => problems.push(format!(
                        "{} has {} bytes, expected {size}",
                        path.display(),
                        m.len()
                    )),
                    Err(e) => problems.push(format!("{} is missing: {e}", path.display())),
                }
            };
            if e.kind == Kind::Snap {
                for m in self.db.members(&e.uuid)? {
                    check(&m.file, m.size);
                }
            } else {
                check(&e.uuid, e.size);
            }
        }
        for p in &pools {
            let Ok(rd) = fs::read_dir(&p.path) else { continue };
            for ent in rd.flatten() {
                let name = ent.file_name().to_string_lossy().into_owned();
                let ours = name.ends_with(".img") && is_uuid(name.trim_end_matches(".img"))
                    || name.ends_with(".partial")
                    || name.starts_with(".spindle-msnap.")
                    || name.starts_with(".spindle-probe.");
                if ours && !known.contains(&ent.path()) {
                    problems.push(format!("orphan file {}", ent.path().display()));
                }
            }
        }
        Ok(problems)
    }

    // ----- array -----

    /// `validate`: the pools exist and are usable, the state is writable; probes every pool's
    /// file system; stores the CHAP account when one is given.
    pub fn validate(&mut self, chap: Option<&ChapAccount>) -> Result<ArrayInfo> {
        let _g = self.lock()?;
        let pools: Vec<PoolRow> = self
            .db
            .pools()?
            .into_iter()
            .filter(|p| !self.unavailable.contains_key(&p.name))
            .collect();
        for p in pools {
            let probed = self
                .probe_pool(&p)
                .map_err(|e| Error::InvalidArray(format!("pool {} cannot be used: {e}", shown(&p.name))))?;
            let _ = probed;
        }
        if let Some(c) = chap {
            self.store_chap(Some(c))?;
        }
        drop(_g);
        self.info()
    }

    /// `getInfo` of the array.
    pub fn info(&mut self) -> Result<ArrayInfo> {
        let _g = self.lock()?;
        let pools = self.probed_pools(false)?;
        let mut out = Vec::new();
        for p in &pools {
            let (total, free) = fsops::space(&p.path)?;
            let alloc: i64 = self.count(
                "SELECT coalesce(sum(size), 0) FROM elements WHERE pool = ?1 AND kind != 'snap'",
                &[&p.name],
            )?;
            let fs = p.fs.clone().unwrap_or_else(|| "unknown".into());
            let reflink = p.reflink.unwrap_or(false);
            let subvolume = p.subvolume.unwrap_or(false);
            let desc = if reflink {
                format!(
                    "{fs} at {}: reflink works, snapshots and clones share extents{}",
                    p.path.display(),
                    if subvolume {
                        "; a btrfs subvolume, so multi-LUN snapshots are atomic"
                    } else {
                        "; multi-LUN snapshots unsupported (not a btrfs subvolume)"
                    }
                )
            } else {
                format!(
                    "{fs} at {}: no reflink; snapshots, clones and splits are UNSUPPORTED in this pool (a clone is never a silent full copy)",
                    p.path.display()
                )
            };
            out.push(PoolInfo {
                name: p.name.clone(),
                path: p.path.clone(),
                fs,
                reflink,
                subvolume,
                total,
                used: total.saturating_sub(free),
                free,
                alloc: alloc as u64,
                desc,
            });
        }
        // Pools that share a file system share its space: each file system counted once.
        let paths: Vec<&Path> = out.iter().map(|p| p.path.as_path()).collect();
        let mut seen = BTreeSet::new();
        let (mut total, mut used, mut free) = (0, 0, 0);
        for (p, id) in out.iter().zip(fsops::fs_identities(&paths)?) {
            if seen.insert(id) {
                (total, used, free) = (total + p.total, used + p.used, free + p.free);
            }
        }
        // Pools that cannot be used now are listed, with why, and no space.
        for p in self.db.pools()? {
            let Some(why) = self.unavailable.get(&p.name) else {
                continue;
            };
            let alloc: i64 = self.count(
                "SELECT coalesce(sum(size), 0) FROM elements WHERE pool = ?1 AND kind != 'snap'",
                &[&p.name],
            )?;
            out.push(PoolInfo {
                name: p.name.clone(),
                path: p.path.clone(),
                fs: "unavailable".into(),
                reflink: false,
                subvolume: false,
                total: 0,
                used: 0,
                free: 0,
                alloc: alloc as u64,
                desc: format!(
                    "UNAVAILABLE: {why}; its LUNs are kept (listed, not exported) and come back when it does"
                ),
            });
        }
        let prefix = self.iqn_prefix();
        let targets = self
            .db
            .groups()?
            .iter()
            .map(|g| format!("{prefix}:{}", g.target))
            .collect();
        let chap_user = self.db.chap_user()?;
        Ok(ArrayInfo {
            array_id: self.array_id.clone(),
            desc: format!(
                "spindle Linux software array {} (reflink image files exported by tgt), {} pool(s): {}",
                self.array_id,
                out.len(),
                out.iter()
                    .map(|p| format!("{} ({})", p.name, p.fs))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            status: self.array_status(),
            total,
            used,
            free,
            alloc: out.iter().map(|p| p.alloc).sum(),
            pools: out,
            targets,
            iqn_prefix: prefix,
            chap_user,
            tgt: None,
        })
    }

    /// `getCapabilities`: what the array can do now (probes the pools again).
    pub fn capabilities(&mut self) -> Result<Abilities> {
        let _g = self.lock()?;
        let pools = self.probed_pools(true)?;
        let reflink = pools.iter().any(|p| p.reflink == Some(true));
        let op = if reflink {
            OpAbility::Online
        } else {
            OpAbility::Unsupported
        };
        Ok(Abilities {
            snapshot: op,
            custom_snap_name: Flag::Yes,
            snap_is_sync: Flag::Yes,
            clone: op,
            custom_clone_name: Flag::Yes,
            clone_is_sync: Flag::Yes,
            resize: OpAbility::Online,
            resize_is_sync: Flag::Yes,
            splitclone: if reflink {
                OpAbility::Offline
            } else {
                OpAbility::Unsupported
            },
            splitclone_is_sync: Flag::No,
            splitclone_while_open: Flag::No,
            snapclone: op,
            snapclone_is_sync: Flag::Yes,
            require_storage_name: Flag::No,
            access_control: Flag::Yes,
            max_access_entries: MaxEntries::Limited(MAX_ACCESS_ENTRIES),
        })
    }

    /// The limits; they are the same for every element.
    pub fn limits(&self) -> Limits {
        Limits {
            snapshots: MAX_SNAPS_PER_ELEMENT,
            clones: MAX_CLONES_PER_ELEMENT,
            entries_per_group: i64::from(MAX_ACCESS_ENTRIES),
            luns_per_target: i64::from(MAX_LUNS_PER_TARGET),
        }
    }

    /// `getStatus`.
    pub fn status(&self, uuid: Option<&str>) -> Result<String> {
        match uuid {
            None => Ok(self.array_status()),
            Some(u) => Ok(self.view_one(&self.row("uuid", u)?)?.status),
        }
    }

    /// The array's status: `DEGRADED` while a pool cannot be used.
    fn array_status(&self) -> String {
        if self.unavailable.is_empty() {
            "ONLINE".into()
        } else {
            "DEGRADED".into()
        }
    }

    // ----- elements -----

    /// `list`: elements of the given types (snapshots are never listed here).
    pub fn list(&self, types: &[SeType]) -> Result<Vec<Element>> {
        let mut kinds = Vec::new();
        if types.contains(&SeType::Lun) {
            kinds.push("'lun'");
        }
        if types.contains(&SeType::SnapClone) {
            kinds.push("'clone'");
        }
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .db
            .elements_where(&format!("kind IN ({})", kinds.join(", ")), &[])?;
        self.views(&rows)
    }

    /// One element by uuid.
    pub fn get(&self, uuid: &str) -> Result<Element> {
        self.view_one(&self.row("uuid", uuid)?)
    }

    /// One element (of any kind) by `page83_id` or by name, for records that carry no uuid.
    /// When both are given they must designate the same element.
    pub fn resolve(&self, page83_id: Option<&str>, name: Option<&str>) -> Result<Element> {
        let by_page83 = match page83_id.filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => {
                let prefix = format!("3{}", &self.scsi_id(0)[..16]);
                let serial = p
                    .strip_prefix(&prefix)
                    .filter(|s| s.len() == 16)
                    .and_then(|s| u64::from_str_radix(s, 16).ok());
                let row = match serial {
                    Some(serial) => self
                        .db
                        .elements_where("serial = ?1", &[&(serial as i64)])?
                        .into_iter()
                        .next(),
                    None => None,
                };
                Some(row.ok_or_else(|| {
                    Error::InvalidValue(format!("page83_id {} names no element of this array", shown(p)))
                })?)
            }
        };
        let row = match (by_page83, name.filter(|n| !n.is_empty())) {
            (Some(r), Some(n)) if r.name != n => {
                return Err(Error::InvalidValue(format!(
                    "name {} does not match the element page83_id designates, {}",
                    shown(n),
                    shown(&r.name)
                )))
            }
            (Some(r), _) => r,
            (None, Some(n)) => self.db.element_by_name(n)?.ok_or_else(|| {
                Error::InvalidValue(format!("name {} names no element of this array", shown(n)))
            })?,
            (None, None) => {
                return Err(Error::missing(
                    "uuid",
                    "the record carries neither uuid, page83_id nor name",
                ))
            }
        };
        self.view_one(&row)
    }

    /// `create`: a new LUN of `size` bytes (rounded up to whole MiB) in `pool`.
    pub fn create(
        &mut self,
        name: &str,
        pool: &str,
        size: i64,
        thin: bool,
        qos: Option<&str>,
    ) -> Result<Element> {
        let _g = self.lock()?;
        self.check_new_name("name", name)?;
        names::check_name("vol_group_name", pool)?;
        let pool_row = self.pool(pool)?;
        let path = pool_row.path.clone();
        let asked = size;
        let size = round_up(names::check_size("size", size)?);
        if size > MAX_SIZE {
            return Err(Error::InvalidValue(format!(
                "size {asked} is larger than the 1 PiB this array allows"
            )));
        }
        if !thin {
            let (_, free) = fsops::space(&path)?;
            if size > free {
                return Err(Error::InvalidValue(format!(
                    "size {size} is more than the {free} bytes free in pool {} (thin_provision is False, so the whole size is allocated)",
                    shown(pool)
                )));
            }
        }
        let qos = self.check_qos(qos)?;
        let serial = self.next_serial()?;
        let uuid = new_id();
        let op = new_id();
        let row = ElementRow {
            uuid: uuid.clone(),
            name: name.to_string(),
            kind: Kind::Lun,
            pool: pool.to_string(),
            size,
            thin,
            parent: None,
            parent_member: None,
            read_only: false,
            state: SeState::Online.as_str().into(),
            qos,
            online: true,
            serial,
            backing_gen: 0,
            created: db::now(),
        };
        let (plan, mv) = Plan::insert_one(&row, vec![], &path, &uuid);
        self.execute("create", &op, &plan, Some(serial), |_, mark| {
            fsops::create_image(&mv.partial, size, thin, mark)
        })?;
        self.view_new(&row, &pool_row)
    }

    /// `resize`: grows or shrinks a LUN or clone (rounded up to whole MiB). Shrinking an
    /// element that is presented and online is refused (a host could be using the blocks).
    pub fn resize(&mut self, uuid: &str, new_size: i64) -> Result<Element> {
        let _g = self.lock()?;
        let r = self.volume_row("uuid", uuid)?;
        self.check_not_splitting(&r)?;
        let size = round_up(names::check_size("new_size", new_size)?);
        if size > MAX_SIZE {
            return Err(Error::InvalidValue(format!(
                "new_size {new_size} is larger than the 1 PiB this array allows"
            )));
        }
        let path = self.pool_path(&r.pool)?;
        if size < r.size && r.online && self.is_presented(&r.uuid)? {
            return Err(Error::Busy(format!(
                "element {} is presented and online; shrinking it could cut off blocks a host uses: take it offline first",
                shown(&r.name)
            )));
        }
        if size > r.size && !r.thin {
            let (_, free) = fsops::space(&path)?;
            if size - r.size > free {
                return Err(Error::InvalidValue(format!(
                    "new_size {size} needs {} more bytes; pool {} has {free} free",
                    size - r.size,
                    shown(&r.pool)
                )));
            }
        }
        if size != r.size {
            let op = new_id();
            let plan = Plan::Resize {
                uuid: r.uuid.clone(),
                path: image(&path, &r.uuid),
                size,
                thin: r.thin,
            };
            self.execute("resize", &op, &plan, None, |_, _| Ok(()))?;
        }
        self.view_one(&self.row("uuid", uuid)?)
    }

    /// `remove`: deletes a LUN or clone. Refused while it is presented (never unpresented on
    /// its own), being split, covered by snapshots, or the source of unsplit clones.
    pub fn remove(&mut self, uuid: &str) -> Result<()> {
        let _g = self.lock()?;
        let r = self.volume_row("uuid", uuid)?;
        self.check_not_splitting(&r)?;
        if self.is_presented(&r.uuid)? {
            return Err(Error::Busy(format!(
                "element {} is still presented to {}; stop presenting it first",
                shown(&r.name),
                self.presentation_map()?
                    .get(&r.uuid)
                    .cloned()
                    .unwrap_or_default()
                    .join(", ")
            )));
        }
        let snaps = self.names_of(
            "SELECT s.name FROM members m JOIN elements s ON s.uuid = m.snap WHERE m.element = ?1 ORDER BY s.name",
            &r.uuid,
        )?;
        if !snaps.is_empty() {
            return Err(Error::Busy(format!(
                "element {} has {}; remove them first",
                shown(&r.name),
                counted(&snaps, "snapshot", "snapshots")
            )));
        }
        let clones = self.clone_names(&r.uuid)?;
        if !clones.is_empty() {
            return Err(Error::Busy(format!(
                "element {} has {}; split or remove them first",
                shown(&r.name),
                counted(&clones, "unsplit clone", "unsplit clones")
            )));
        }
        let path = self.pool_path(&r.pool)?;
        let plan = Plan::Remove {
            uuids: vec![r.uuid.clone()],
            files: vec![image(&path, &r.uuid)],
        };
        self.execute("remove", &new_id(), &plan, None, |_, _| Ok(()))
    }

    // ----- snapshots -----

    fn snap_limit_ok(&self, uuid: &str) -> Result<bool> {
        Ok(self.count("SELECT count(*) FROM members WHERE element = ?1", &[&uuid])? < MAX_SNAPS_PER_ELEMENT)
    }

    fn clone_limit_ok(&self, uuid: &str) -> Result<bool> {
        Ok(self.count("SELECT count(*) FROM elements WHERE parent = ?1", &[&uuid])? < MAX_CLONES_PER_ELEMENT)
    }

    /// The snapshot's name: the one asked for (which the caller has checked already, before
    /// any other work), or a generated one.
    fn snap_name(&self, name: Option<&str>, base: &str, serial: u64) -> Result<String> {
        match name {
            Some(n) => Ok(n.to_string()),
            None => self.auto_name(base, "snap", serial),
        }
    }

    /// `createSnap`: a read-only reflink copy (mode 0400) of a LUN or clone.
    pub fn snapshot(&mut self, uuid: &str, name: Option<&str>) -> Result<Element> {
        let _g = self.lock()?;
        let r = self.volume_row("uuid", uuid)?;
        self.check_not_splitting(&r)?;
        if let Some(n) = name {
            self.check_new_name("name", n)?;
        }
        self.require_reflink(&r.pool, "snapshot")?;
        if !self.snap_limit_ok(&r.uuid)? {
            return Err(Error::Failed(format!(
                "element {} already has {MAX_SNAPS_PER_ELEMENT} snapshots, the most this array allows",
                shown(&r.name)
            )));
        }
        let pool_row = self.pool(&r.pool)?;
        let path = pool_row.path.clone();
        let serial = self.next_serial()?;
        let snap = new_id();
        let op = new_id();
        let name = self.snap_name(name, &r.name, serial)?;
        let row = ElementRow {
            uuid: snap.clone(),
            name,
            kind: Kind::Snap,
            pool: r.pool.clone(),
            size: r.size,
            thin: true,
            parent: None,
            parent_member: None,
            read_only: true,
            state: SeState::Online.as_str().into(),
            qos: r.qos.clone(),
            online: true,
            serial,
            backing_gen: 0,
            created: db::now(),
        };
        let member = MemberRow {
            snap: snap.clone(),
            element: r.uuid.clone(),
            file: snap.clone(),
            size: r.size,
        };
        let src = image(&path, &r.uuid);
        let (plan, mv) = Plan::insert_one(&row, vec![member], &path, &snap);
        self.execute("snapshot", &op, &plan, Some(serial), |_, mark| {
            reflink_or(&src, &mv.partial, 0o400, "snapshot", mark)
        })?;
        self.view_new(&row, &pool_row)
    }

    /// `createMultiSnap`: one snapshot of several LUNs at one point in time. Only where that is
    /// true: every LUN in one pool that is a btrfs subvolume, snapshotted atomically
    /// (`btrfs subvolume snapshot -r`), the per-LUN images reflinked from that snapshot, which
    /// is then deleted. A single LUN is an ordinary snapshot. Anything else is
    /// `NoSuchOperationEx`.
    pub fn multi_snapshot(&mut self, uuids: &[String], name: Option<&str>) -> Result<Element> {
        if uuids.len() == 1 {
            return self.snapshot(&uuids[0], name);
        }
        let _g = self.lock()?;
        if uuids.is_empty() {
            return Err(Error::missing(
                "se_records",
                "se_records is empty; name at least one element",
            ));
        }
        let mut rows: Vec<ElementRow> = Vec::new();
        for u in uuids {
            let r = self.volume_row("se_records", u)?;
            if rows.iter().any(|x| x.uuid == r.uuid) {
                return Err(Error::InvalidValue(format!(
                    "se_records names element {} twice",
                    r.uuid
                )));
            }
            self.check_not_splitting(&r)?;
            if !self.snap_limit_ok(&r.uuid)? {
                return Err(Error::Failed(format!(
                    "element {} already has {MAX_SNAPS_PER_ELEMENT} snapshots, the most this array allows",
                    shown(&r.name)
                )));
            }
            rows.push(r);
        }
        if let Some(n) = name {
            self.check_new_name("name", n)?;
        }
        let pool = rows[0].pool.clone();
        if rows.iter().any(|r| r.pool != pool) {
            return Err(Error::NoSuchOperation(
                "the elements are in different pools; this array can take one point-in-time snapshot of several LUNs only inside one btrfs-subvolume pool".into(),
            ));
        }
        let p = self.pool(&pool)?;
        let p = if p.subvolume.is_none() {
            self.probe_pool(&p)?
        } else {
            p
        };
        if p.subvolume != Some(true) || p.reflink != Some(true) {
            return Err(Error::NoSuchOperation(format!(
                "pool {} is on {}, not a btrfs subvolume; this array cannot snapshot several LUNs at one point in time there",
                shown(&pool),
                p.fs.as_deref().unwrap_or("an unknown file system")
            )));
        }
        let serial = self.next_serial()?;
        let snap = new_id();
        let op = new_id();
        let name = self.snap_name(name, "multi", serial)?;
        let subvol = p.path.join(format!(".spindle-msnap.{op}"));
        let mut members = Vec::new();
        let mut moves = Vec::new();
        let mut sources = Vec::new();
        for r in &rows {
            let file = new_id();
            // New files are built under their final names (see the module documentation).
            moves.push(Move {
                partial: image(&p.path, &file),
                dest: image(&p.path, &file),
            });
            sources.push(subvol.join(format!("{}.img", r.uuid)));
            members.push(MemberRow {
                snap: snap.clone(),
                element: r.uuid.clone(),
                file,
                size: r.size,
            });
        }
        let row = ElementRow {
            uuid: snap.clone(),
            name,
            kind: Kind::Snap,
            pool: pool.clone(),
            size: rows.iter().map(|r| r.size).sum(),
            thin: true,
            parent: None,
            parent_member: None,
            read_only: true,
            state: SeState::Online.as_str().into(),
            qos: rows[0].qos.clone(),
            online: true,
            serial,
            backing_gen: 0,
            created: db::now(),
        };
        let plan = Plan::Insert {
            elements: vec![row.clone()],
            members,
            moves: moves.clone(),
            subvol: Some(subvol.clone()),
        };
        let pool_path = p.path.clone();
        self.execute("multisnap", &op, &plan, Some(serial), |_, mark| {
            fsops::btrfs_snapshot(&pool_path, &subvol)?;
            crash::point("multisnap.subvol");
            for (src, mv) in sources.iter().zip(&moves) {
                reflink_or(src, &mv.partial, 0o400, "snapshot", mark)?;
            }
            Ok(())
        })?;
        self.view_new(&row, &p)
    }

    /// `getCurrentSnaps`: every snapshot, or those covering one element.
    pub fn snapshots(&self, uuid: Option<&str>) -> Result<Vec<Element>> {
        let rows = match uuid {
            None => self.db.elements_where("kind = 'snap'", &[])?,
            Some(u) => {
                let r = self.row("uuid", u)?;
                self.db.elements_where(
                    "kind = 'snap' AND uuid IN (SELECT snap FROM members WHERE element = ?1)",
                    &[&r.uuid],
                )?
            }
        };
        self.views(&rows)
    }

    /// `snapRemove`: deletes a snapshot and its images; refused while unsplit clones were made
    /// from it.
    pub fn snap_remove(&mut self, snap: &str) -> Result<()> {
        let _g = self.lock()?;
        let s = self.snap_row("snap_se_record", snap)?;
        let clones = self.clone_names(&s.uuid)?;
        if !clones.is_empty() {
            return Err(Error::Busy(format!(
                "snapshot {} has {}; split or remove them first",
                shown(&s.name),
                counted(&clones, "unsplit clone", "unsplit clones")
            )));
        }
        let path = self.pool_path(&s.pool)?;
        let files = self
            .db
            .members(&s.uuid)?
            .iter()
            .map(|m| image(&path, &m.file))
            .collect();
        let plan = Plan::Remove {
            uuids: vec![s.uuid.clone()],
            files,
        };
        self.execute("snapremove", &new_id(), &plan, None, |_, _| Ok(()))
    }

    // ----- clones -----

    #[allow(clippy::too_many_arguments)]
    fn new_clone(
        &mut self,
        kind: &str,
        src_file: &Path,
        origin: &ElementRow,
        parent: &str,
        parent_member: Option<&str>,
        size: u64,
        name: Option<&str>,
        qos: Option<&str>,
    ) -> Result<Element> {
        let qos = match qos {
            Some(q) => self.check_qos(Some(q))?,
            None => origin.qos.clone(),
        };
        let pool_row = self.pool(&origin.pool)?;
        let path = pool_row.path.clone();
        let serial = self.next_serial()?;
        let uuid = new_id();
        let op = new_id();
        let name = match name {
            Some(n) => n.to_string(),
            None => self.auto_name(&origin.name, "clone", serial)?,
        };
        let row = ElementRow {
            uuid: uuid.clone(),
            name,
            kind: Kind::Clone,
            pool: origin.pool.clone(),
            size,
            thin: origin.thin,
            parent: Some(parent.to_string()),
            parent_member: parent_member.map(str::to_string),
            read_only: false,
            state: SeState::Online.as_str().into(),
            qos,
            online: true,
            serial,
            backing_gen: 0,
            created: db::now(),
        };
        let (plan, mv) = Plan::insert_one(&row, vec![], &path, &uuid);
        self.execute(kind, &op, &plan, Some(serial), |_, mark| {
            reflink_or(src_file, &mv.partial, 0o600, "clone", mark)
        })?;
        self.view_new(&row, &pool_row)
    }

    /// What every new clone needs: a free name, a known QoS, a pool that reflinks (`purpose`
    /// names the operation in the refusal) and room under the source's clone limit.
    fn check_new_clone(
        &mut self,
        name: Option<&str>,
        qos: Option<&str>,
        (pool, purpose): (&str, &str),
        (source, what, source_name): (&str, &str, &str),
    ) -> Result<()> {
        if let Some(n) = name {
            self.check_new_name("name", n)?;
        }
        if let Some(q) = qos {
            self.check_qos(Some(q))?;
        }
        self.require_reflink(pool, purpose)?;
        if !self.clone_limit_ok(source)? {
            return Err(Error::Failed(format!(
                "{what} {} already has {MAX_CLONES_PER_ELEMENT} unsplit clones, the most this array allows",
                shown(source_name)
            )));
        }
        Ok(())
    }

    /// `clone`: a writable reflink copy of a LUN or clone.
    pub fn clone_element(&mut self, uuid: &str, name: Option<&str>, qos: Option<&str>) -> Result<Element> {
        let _g = self.lock()?;
        let r = self.volume_row("uuid", uuid)?;
        self.check_not_splitting(&r)?;
        self.check_new_clone(name, qos, (&r.pool, "clone"), (&r.uuid, "element", &r.name))?;
        let src = image(&self.pool_path(&r.pool)?, &r.uuid);
        let (parent, size) = (r.uuid.clone(), r.size);
        self.new_clone("clone", &src, &r, &parent, None, size, name, qos)
    }

    /// `cloneFromSnap`: a writable reflink copy of the image of `uuid` in snapshot `snap`.
    pub fn clone_from_snap(
        &mut self,
        uuid: &str,
        snap: &str,
        name: Option<&str>,
        qos: Option<&str>,
    ) -> Result<Element> {
        let _g = self.lock()?;
        let r = self.row("uuid", uuid)?;
        let s = self.snap_row("snap_se_record", snap)?;
        let m = self
            .db
            .members(&s.uuid)?
            .into_iter()
            .find(|m| m.element == r.uuid)
            .ok_or_else(|| {
                Error::InvalidValue(format!(
                    "snapshot {} holds no image of element {}",
                    shown(&s.name),
                    shown(&r.name)
                ))
            })?;
        self.check_new_clone(
            name,
            qos,
            (&s.pool, "clone from snapshot"),
            (&s.uuid, "snapshot", &s.name),
        )?;
        let src = image(&self.pool_path(&s.pool)?, &m.file);
        let mut origin = r.clone();
        origin.pool = s.pool.clone();
        self.new_clone(
            "snapclone",
            &src,
            &origin,
            &s.uuid,
            Some(&r.uuid),
            m.size,
            name,
            qos,
        )
    }

    /// `getCurrentClones`: every unsplit clone, or those of one element (made from it
    /// directly or from one of its snapshots' images of it) or of one snapshot.
    pub fn clones(&self, uuid: Option<&str>) -> Result<Vec<Element>> {
        let rows = match uuid {
            None => self.db.elements_where("kind = 'clone'", &[])?,
            Some(u) => {
                let r = self.row("uuid", u)?;
                self.db.elements_where(
                    "kind = 'clone' AND (parent = ?1 OR parent_member = ?1)",
                    &[&r.uuid],
                )?
            }
        };
        self.views(&rows)
    }

    /// `isCloneable`.
    pub fn is_cloneable(&mut self, uuid: &str) -> Result<bool> {
        let r = self.row("uuid", uuid)?;
        // A snapshot is cloned by cloneFromSnap; clone refuses it.
        Ok(r.kind != Kind::Snap
            && r.state != SeState::BusyCopy.as_str()
            && self.pool_reflinks(&r.pool)?
            && self.clone_limit_ok(&r.uuid)?)
    }

    /// `isSnapable`: with an element, whether it can be snapshotted now; without, whether any
    /// pool can.
    pub fn is_snapable(&mut self, uuid: Option<&str>) -> Result<bool> {
        match uuid {
            None => Ok(self.probed_pools(false)?.iter().any(|p| p.reflink == Some(true))),
            Some(u) => {
                // A snapshot of a snapshot is refused by createSnap.
                let r = self.row("uuid", u)?;
                Ok(r.kind != Kind::Snap
                    && r.state != SeState::BusyCopy.as_str()
                    && self.pool_reflinks(&r.pool)?
                    && self.snap_limit_ok(&r.uuid)?)
            }
        }
    }

    /// `isSplittable`: an unsplit clone, not being split, not presented-and-online. The split
    /// is permanent: neither XFS nor btrfs deduplicates on its own.
    pub fn is_splittable(&mut self, uuid: &str) -> Result<bool> {
        let r = self.row("uuid", uuid)?;
        Ok(r.kind == Kind::Clone
            && r.state != SeState::BusyCopy.as_str()
            && !(r.online && self.is_presented(&r.uuid)?)
            && self.pool_reflinks(&r.pool)?)
    }

    // ----- split -----

    /// `splitClone`: starts an asynchronous split of a clone and returns its handle.
    ///
    /// A detached worker (`spindle-array split-worker`, its own session) copies the clone's
    /// data, hole by hole, into a new file with real writes, then atomically renames it over
    /// the clone's file, so no extent is shared afterwards.
    ///
    /// `splitclone_while_open` is NO: tgtd writes to the clone's file directly, and a write
    /// that lands after the copy passed its block would be lost when the copy replaces the
    /// file. So a clone that is presented and online is refused (StorageElementBusyEx), and
    /// while the split runs the clone cannot be put online or presented. A presented but
    /// offline clone may be split: its backing generation grows when the copy is swapped in,
    /// which tells the export layer to re-open the file (same scsi_id). As a last guard the
    /// worker compares the clone file's inode, size, mtime and ctime before the swap with
    /// those taken at the start, and abandons the split, changing nothing, if anything wrote
    /// to it.
    pub fn split_start(&mut self, uuid: &str) -> Result<SplitStatus> {
        let _g = self.lock()?;
        let r = self.row("uuid", uuid)?;
        if r.kind != Kind::Clone {
            return Err(Error::InvalidValue(format!(
                "element {} is not an unsplit clone; there is nothing to split",
                shown(&r.name)
            )));
        }
        self.check_not_splitting(&r)?;
        if r.online && self.is_presented(&r.uuid)? {
            return Err(Error::Busy(format!(
                "clone {} is presented and online; this array splits clones only while they are not in use: take it offline or stop presenting it",
                shown(&r.name)
            )));
        }
        self.require_reflink(&r.pool, "split")?;
        let path = self.pool_path(&r.pool)?;
        let source = image(&path, &r.uuid);
        let f = File::open(&source).ctx("cannot open", &source)?;
        let data: u64 = fsops::data_segments(&f, &source)?.iter().map(|s| s.1).sum();
        let need = if r.thin { data } else { r.size };
        let (_, free) = fsops::space(&path)?;
        if need > free {
            return Err(Error::PreReq(format!(
                "splitting clone {} needs {need} bytes (it writes a whole new copy of the clone's data, the blocks it already owns too, before the old file goes); pool {} has {free} free",
                shown(&r.name),
                shown(&r.pool)
            )));
        }
        let op = new_id();
        let lock_path = self.split_lock_path(&op);
        let lock = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .ctx("cannot create", &lock_path)?;
        lock.lock().ctx("cannot lock", &lock_path)?;
        let plan = Plan::Split {
            uuid: r.uuid.clone(),
            source: source.clone(),
            moves: vec![Move {
                partial: partial(&path, &op, 0),
                dest: source.clone(),
            }],
            thin: r.thin,
            stamp: fsops::stamp(&source)?,
            rate_mib: self.cfg.as_ref().and_then(|c| c.split_rate_mib).unwrap_or(0),
        };
        let (opc, uuidc) = (op.clone(), r.uuid.clone());
        let plan_json =
            serde_json::to_string(&plan).map_err(|e| Error::Failed(format!("cannot encode plan: {e}")))?;
        self.begin(&op, "split", &plan_json, "started", true, move |tx| {
            tx.run("UPDATE elements SET state = 'BUSY_COPY' WHERE uuid = ?1", [&uuidc])
                .dbx("mark splitting")?;
            tx.run(
                "INSERT INTO splits (op, element, total, done, status, started) VALUES (?1, ?2, ?3, 0, 'running', ?4)",
                params![opc, uuidc, data as i64, db::now()],
            )
            .dbx("record split")?;
            Ok(())
        })?;
        let exe = match &self.opts.worker_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe()
                .map_err(|e| Error::Failed(format!("cannot find this program: {e}")))?,
        };
        let spawned = Command::new(&exe)
            .arg("split-worker")
            .arg("--state")
            .arg(&self.state_dir)
            .arg("--op")
            .arg(&op)
            .stdin(Stdio::from(lock))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                // Reap the worker if this process outlives it (library use); a program that
                // exits first leaves it to init.
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
            }
            Err(e) => {
                let err = Error::Failed(format!("cannot start the split worker {}: {e}", exe.display()));
                self.roll_back(&op, &plan, &err.to_string());
                return Err(err);
            }
        }
        crash::point("split.spawned");
        Ok(SplitStatus {
            handle: op,
            progress: Some(0),
            element: self.view_one(&self.row("uuid", uuid)?)?,
        })
    }

    /// `getAsyncProgress` of a split: 0..=99 while copying, `None` when done; a split that
    /// failed or was interrupted raises, naming why (the clone is then unchanged).
    pub fn split_progress(&mut self, handle: &str) -> Result<SplitStatus> {
        let _g = self.lock()?;
        let op = names::check_uuid("async_handle", handle)?;
        let mut s = self.db.split(&op)?.ok_or_else(|| {
            Error::InvalidValue(format!(
                "async_handle {} names no split of this array",
                shown(handle)
            ))
        })?;
        if s.status == "running" && !self.split_alive(&op) {
            if let Some(it) = self.db.intents()?.into_iter().find(|i| i.op == op) {
                self.recover_intent(&it)?;
            }
            s = self.db.split(&op)?.unwrap_or(s);
        }
        let element = self.view_one(&self.row("uuid", &s.element)?)?;
        match s.status.as_str() {
            "running" => Ok(SplitStatus {
                handle: op,
                progress: Some(
                    s.done
                        .saturating_mul(100)
                        .checked_div(s.total)
                        .unwrap_or(0)
                        .min(99) as i64,
                ),
                element,
            }),
            "done" => Ok(SplitStatus {
                handle: op,
                progress: None,
                element,
            }),
            _ => {
                Err(Error::Failed(s.message.unwrap_or_else(|| {
                    "the split failed; the clone is unchanged".into()
                })))
            }
        }
    }

    /// The split worker's body: copies, then swaps under the lock. The caller has called
    /// `setsid` and holds the split's lock on its standard input.
    pub fn run_split_worker(&mut self, op: &str) -> Result<()> {
        let op = names::check_uuid("op", op)?;
        let it = self
            .db
            .intents()?
            .into_iter()
            .find(|i| i.op == op)
            .ok_or_else(|| Error::InvalidValue(format!("no pending split {op}")))?;
        let plan: Plan =
            serde_json::from_str(&it.plan).map_err(|e| Error::Failed(format!("bad split plan: {e}")))?;
        let Plan::Split {
            source,
            moves,
            thin,
            stamp,
            rate_mib,
            ..
        } = &plan
        else {
            return Err(Error::Failed(format!("intent {op} is not a split")));
        };
        let dest = moves
            .first()
            .map(|m| m.partial.clone())
            .ok_or_else(|| Error::Failed("empty split plan".into()))?;
        let copied = if it.step == "prepared" {
            Ok(())
        } else {
            // Progress rows need no durability: write them without syncing, then go back to
            // full durability for the swap.
            self.db
                .conn
                .pragma_update(None, "synchronous", "OFF")
                .dbx("relax sync")?;
            let r = self.split_copy(&op, source, &dest, *thin, *rate_mib);
            self.db
                .conn
                .pragma_update(None, "synchronous", "FULL")
                .dbx("restore sync")?;
            r
        };
        match copied {
            Ok(()) => {
                crash::point("split.copied");
                let _g = self.lock()?;
                if !self.db.intents()?.iter().any(|i| i.op == op) {
                    return Ok(());
                }
                let now = fsops::stamp(source)?;
                if now != *stamp {
                    let why = "the clone's file changed while it was being copied (something wrote to it), so the copy was discarded";
                    self.roll_back(&op, &plan, why);
                    return Err(Error::Failed(why.into()));
                }
                self.prepare(&op, "split", &plan)?;
                self.roll_forward(&op, "split", &plan, true)
            }
            Err(e) => {
                let _g = self.lock()?;
                self.roll_back(&op, &plan, &e.to_string());
                Err(e)
            }
        }
    }

    fn split_copy(&self, op: &str, source: &Path, dest: &Path, thin: bool, rate_mib: u64) -> Result<()> {
        let src = File::open(source).ctx("cannot open", source)?;
        let size = src.metadata().ctx("cannot stat", source)?.len();
        let segments = fsops::data_segments(&src, source)?;
        let total: u64 = segments.iter().map(|s| s.1).sum();
        self.db
            .conn
            .run(
                "UPDATE splits SET total = ?1, done = 0 WHERE op = ?2",
                params![total as i64, op],
            )
            .dbx("record split size")?;
        let _ = fs::remove_file(dest);
        let out = fsops::create_new(dest, 0o600)?;
        if thin {
            out.set_len(size).ctx("cannot size", dest)?;
        } else {
            rustix::fs::fallocate(&out, rustix::fs::FallocateFlags::empty(), 0, size.max(1))
                .ctx("cannot allocate", dest)?;
            out.set_len(size).ctx("cannot size", dest)?;
        }
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        let started = Instant::now();
        let mut last_report = Instant::now();
        for (start, len) in segments {
            let mut off = start;
            let end = start + len;
            while off < end {
                let n = ((end - off) as usize).min(CHUNK);
                let chunk = &mut buf[..n];
                src.read_exact_at(chunk, off).ctx("cannot read", source)?;
                // Zero blocks stay holes (or stay allocated in a thick copy): skip writing them.
                for (i, block) in chunk.chunks(64 << 10).enumerate() {
                    if block.iter().any(|&b| b != 0) {
                        out.write_all_at(block, off + (i as u64) * (64 << 10))
                            .ctx("cannot write", dest)?;
                    }
                }
                off += n as u64;
                done += n as u64;
                if rate_mib > 0 {
                    let due = Duration::from_secs_f64(done as f64 / (rate_mib as f64 * 1048576.0));
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                if last_report.elapsed() >= Duration::from_millis(100) {
                    self.db
                        .conn
                        .run(
                            "UPDATE splits SET done = ?1 WHERE op = ?2",
                            params![done as i64, op],
                        )
                        .dbx("record split progress")?;
                    last_report = Instant::now();
                }
            }
        }
        out.sync_all().ctx("cannot fsync", dest)?;
        self.db
            .conn
            .run(
                "UPDATE splits SET done = ?1 WHERE op = ?2",
                params![done as i64, op],
            )
            .dbx("record split progress")?;
        Ok(())
    }

    // ----- restore -----

    fn restore_targets(
        &self,
        snap: &str,
        uuid: Option<&str>,
    ) -> Result<(ElementRow, Vec<(MemberRow, ElementRow)>)> {
        let s = self.snap_row("snap_se_record", snap)?;
        let members = self.db.members(&s.uuid)?;
        let chosen: Vec<MemberRow> = match uuid {
            None => members,
            Some(u) => {
                let r = self.row("se_record", u)?;
                let m = members
                    .into_iter()
                    .filter(|m| m.element == r.uuid)
                    .collect::<Vec<_>>();
                if m.is_empty() {
                    return Err(Error::InvalidValue(format!(
                        "snapshot {} holds no image of element {}",
                        shown(&s.name),
                        shown(&r.name)
                    )));
                }
                m
            }
        };
        let mut out = Vec::new();
        for m in chosen {
            let e = self
                .db
                .element(&m.element)?
                .ok_or_else(|| Error::Failed(format!("snapshot image of missing element {}", m.element)))?;
            out.push((m, e));
        }
        Ok((s, out))
    }

    /// Why a roll-back of these elements would not be safe, if it would not.
    fn restore_blocker(&self, targets: &[(MemberRow, ElementRow)]) -> Result<Option<String>> {
        for (_, e) in targets {
            if e.state == SeState::BusyCopy.as_str() {
                return Ok(Some(format!("element {} is being split", shown(&e.name))));
            }
            if e.online && self.is_presented(&e.uuid)? {
                return Ok(Some(format!(
                    "element {} is presented and online: hosts using it would see its data change under them (and the target keeps the old file open); take it offline or stop presenting it first",
                    shown(&e.name)
                )));
            }
        }
        Ok(None)
    }

    /// `isRestorable`: whether [`Engine::restore`] would succeed now.
    pub fn is_restorable(&mut self, snap: &str, uuid: Option<&str>) -> Result<bool> {
        let (s, targets) = match self.restore_targets(snap, uuid) {
            Ok(t) => t,
            Err(Error::InvalidValue(_)) if uuid.is_some() => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(self.restore_blocker(&targets)?.is_none() && self.pool_reflinks(&s.pool)?)
    }

    /// `snapRestore`: rolls the element (or, without one, every element the snapshot covers)
    /// back to the snapshot: each image is reflinked into a temporary that is renamed over the
    /// element's file. Other elements are never touched: clones and other snapshots are
    /// separate files whose extents the roll-back does not change. Refused
    /// (SnapRestoreNotSafeEx) when an element is presented and online, or being split.
    pub fn restore(&mut self, snap: &str, uuid: Option<&str>) -> Result<()> {
        let _g = self.lock()?;
        let (s, targets) = self.restore_targets(snap, uuid)?;
        if let Some(why) = self.restore_blocker(&targets)? {
            return Err(Error::RestoreNotSafe(format!(
                "cannot roll back to snapshot {}: {why}",
                shown(&s.name)
            )));
        }
        self.require_reflink(&s.pool, "restore")?;
        let path = self.pool_path(&s.pool)?;
        let op = new_id();
        let mut moves = Vec::new();
        let mut sources = Vec::new();
        let mut updates = Vec::new();
        for (i, (m, e)) in targets.iter().enumerate() {
            let epath = self.pool_path(&e.pool)?;
            moves.push(Move {
                partial: partial(&epath, &op, i),
                dest: image(&epath, &e.uuid),
            });
            sources.push(image(&path, &m.file));
            updates.push((e.uuid.clone(), m.size));
        }
        let plan = Plan::Restore {
            updates,
            moves: moves.clone(),
        };
        self.execute("restore", &op, &plan, None, |_, _| {
            for (src, mv) in sources.iter().zip(&moves) {
                reflink_or(src, &mv.partial, 0o600, "restore", None)?;
            }
            Ok(())
        })
    }

    // ----- groups and presentation -----

    fn group_view(&self, g: &GroupRow) -> Group {
        Group {
            name: g.name.clone(),
            entries: g.entries.clone(),
            modes: g.modes.clone(),
            target: format!("{}:{}", self.iqn_prefix(), g.target),
        }
    }

    fn group_row(&self, key: &str, name: &str) -> Result<GroupRow> {
        names::check_group_name(key, name)?;
        self.db.group(name)?.ok_or_else(|| {
            Error::InvalidValue(format!(
                "{key} {} names no access group of this array",
                shown(name)
            ))
        })
    }

    fn normalize_entries(entries: &[String]) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for e in entries {
            let n = names::normalize_iscsi_name("grp_entries", e)?;
            if !out.contains(&n) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// `getAccessGroups`: every group, or those an element is presented to.
    pub fn groups(&self, uuid: Option<&str>) -> Result<Vec<Group>> {
        let all = self.db.groups()?;
        let chosen: Vec<&GroupRow> = match uuid {
            None => all.iter().collect(),
            Some(u) => {
                let r = self.row("uuid", u)?;
                let names = self.presentation_map()?.remove(&r.uuid).unwrap_or_default();
                all.iter().filter(|g| names.contains(&g.name)).collect()
            }
        };
        Ok(chosen.into_iter().map(|g| self.group_view(g)).collect())
    }

    /// `createAccessGroups`: all or nothing; returns every group.
    pub fn create_groups(&mut self, specs: &[GroupSpec]) -> Result<Vec<Group>> {
        let _g = self.lock()?;
        let existing = self.db.groups()?;
        let mut checked: Vec<(String, Vec<String>, Option<Vec<String>>)> = Vec::new();
        for s in specs {
            names::check_new_group_name("grp_name", &s.name)?;
            if existing.iter().any(|g| g.name.eq_ignore_ascii_case(&s.name))
                || checked.iter().any(|c| c.0.eq_ignore_ascii_case(&s.name))
            {
                return Err(Error::InvalidValue(format!(
                    "grp_name {} is already an access group (names are compared without case: they name targets)",
                    shown(&s.name)
                )));
            }
            if let Some(g) = existing.iter().find(|g| g.target == s.name.to_ascii_lowercase()) {
                return Err(Error::InvalidValue(format!(
                    "grp_name {}: access group {} (made as {}) still exports its iSCSI target under that name, {}:{}; choose another name",
                    shown(&s.name),
                    shown(&g.name),
                    shown(&g.target),
                    self.iqn_prefix(),
                    g.target
                )));
            }
            let entries = Engine::normalize_entries(&s.entries)?;
            if entries.len() > MAX_ACCESS_ENTRIES as usize {
                return Err(Error::InvalidValue(format!(
                    "grp_entries of {} has {} entries; a group holds at most {MAX_ACCESS_ENTRIES}",
                    shown(&s.name),
                    entries.len()
                )));
            }
            checked.push((s.name.clone(), entries, s.modes.clone()));
        }
        let tx = self.db.tx()?;
        for (name, entries, modes) in &checked {
            let modes = modes
                .as_ref()
                .map(|m| serde_json::to_string(m).unwrap_or_default());
            tx.run(
                "INSERT INTO groups (name, modes, target) VALUES (?1, ?2, ?3)",
                params![name, modes, name.to_ascii_lowercase()],
            )
            .dbx("create group")?;
            let id = tx.last_insert_rowid();
            for (i, e) in entries.iter().enumerate() {
                tx.run(
                    "INSERT INTO entries (grp, entry, pos) VALUES (?1, ?2, ?3)",
                    params![id, e, i as i64],
                )
                .dbx("add entry")?;
            }
        }
        tx.commit().dbx("commit groups")?;
        self.groups(None)
    }

    /// `removeAccessGroups`: refused for a group something is still presented to.
    pub fn remove_groups(&mut self, names_: &[String]) -> Result<Vec<Group>> {
        let _g = self.lock()?;
        let mut rows = Vec::new();
        for n in names_ {
            let g = self.group_row("grp_name", n)?;
            let presented: Vec<String> = self
                .db
                .presentations()?
                .into_iter()
                .filter(|p| p.1 == g.name)
                .filter_map(|p| self.db.element(&p.0).ok().flatten().map(|e| shown(&e.name)))
                .collect();
            if !presented.is_empty() {
                let more = presented.len().saturating_sub(10);
                return Err(Error::Busy(format!(
                    "access group {} still has {} element(s) presented to it: {}{}; unpresent them first",
                    shown(&g.name),
                    presented.len(),
                    presented[..presented.len().min(10)].join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )));
            }
            rows.push(g);
        }
        let tx = self.db.tx()?;
        for g in rows {
            tx.run("DELETE FROM groups WHERE id = ?1", [g.id])
                .dbx("remove group")?;
        }
        tx.commit().dbx("commit")?;
        self.groups(None)
    }

    /// `renameAccessGroup`: the group's name only. Its iSCSI target keeps the IQN it was made
    /// with, so hosts keep their sessions and LUNs (a renamed target would be a new one to
    /// them, and the old one gone); a new group cannot take that IQN's name.
    pub fn rename_group(&mut self, name: &str, new_name: &str) -> Result<Vec<Group>> {
        let _g = self.lock()?;
        let g = self.group_row("access_grp_name", name)?;
        names::check_new_group_name("new_access_grp_name", new_name)?;
        if let Some(other) = self.db.group(new_name)? {
            if other.id != g.id {
                return Err(Error::InvalidValue(format!(
                    "new_access_grp_name {} is already an access group",
                    shown(new_name)
                )));
            }
        }
        let target = new_name.to_ascii_lowercase();
        if let Some(other) = self
            .db
            .groups()?
            .into_iter()
            .find(|o| o.id != g.id && o.target == target)
        {
            return Err(Error::InvalidValue(format!(
                "new_access_grp_name {}: access group {} (made as {}) still exports its iSCSI target under that name, {}:{}; choose another name",
                shown(new_name),
                shown(&other.name),
                shown(&other.target),
                self.iqn_prefix(),
                other.target
            )));
        }
        self.db
            .conn
            .run(
                "UPDATE groups SET name = ?1 WHERE id = ?2",
                params![new_name, g.id],
            )
            .dbx("rename group")?;
        self.groups(None)
    }

    /// `addToAccessGroup`.
    pub fn add_to_group(&mut self, name: &str, entries: &[String]) -> Result<Group> {
        let _g = self.lock()?;
        let g = self.group_row("access_grp_name", name)?;
        let new = Engine::normalize_entries(entries)?;
        let mut all = g.entries.clone();
        for e in new {
            if !all.contains(&e) {
                all.push(e);
            }
        }
        if all.len() > MAX_ACCESS_ENTRIES as usize {
            return Err(Error::InvalidValue(format!(
                "access group {} would hold {} entries; at most {MAX_ACCESS_ENTRIES} are allowed",
                shown(&g.name),
                all.len()
            )));
        }
        let tx = self.db.tx()?;
        for (i, e) in all.iter().enumerate().skip(g.entries.len()) {
            tx.run(
                "INSERT INTO entries (grp, entry, pos) VALUES (?1, ?2, ?3)",
                params![g.id, e, i as i64],
            )
            .dbx("add entry")?;
        }
        tx.commit().dbx("commit")?;
        let g = self.group_row("access_grp_name", name)?;
        Ok(self.group_view(&g))
    }

    /// `removeFromAccessGroup` (entries not in the group are ignored).
    pub fn remove_from_group(&mut self, name: &str, entries: &[String]) -> Result<Group> {
        let _g = self.lock()?;
        let g = self.group_row("access_grp_name", name)?;
        let gone = Engine::normalize_entries(entries)?;
        let tx = self.db.tx()?;
        for e in &gone {
            tx.run(
                "DELETE FROM entries WHERE grp = ?1 AND entry = ?2",
                params![g.id, e],
            )
            .dbx("remove entry")?;
        }
        tx.commit().dbx("commit")?;
        let g = self.group_row("access_grp_name", name)?;
        Ok(self.group_view(&g))
    }

    /// `startPresent`: presents a LUN or clone to groups; each presentation gets the lowest
    /// free LUN number of that target (1..=255), kept while it lasts.
    pub fn present(&mut self, uuid: &str, groups: &[String]) -> Result<Element> {
        let _g = self.lock()?;
        let r = self.volume_row("uuid", uuid)?;
        let mut rows = Vec::new();
        for n in groups {
            rows.push(self.group_row("access_grp_names", n)?);
        }
        if r.state == SeState::BusyCopy.as_str() {
            return Err(Error::Busy(format!(
                "element {} is being split; it cannot be presented until the split ends",
                shown(&r.name)
            )));
        }
        let tx = self.db.tx()?;
        for g in rows {
            let already: bool = tx
                .row(
                    "SELECT count(*) > 0 FROM presentations WHERE element = ?1 AND grp = ?2",
                    params![r.uuid, g.id],
                    |x| x.get(0),
                )
                .dbx("read presentation")?;
            if already {
                continue;
            }
            let used: BTreeSet<u32> = {
                let mut st = tx
                    .prepare("SELECT lun FROM presentations WHERE grp = ?1")
                    .dbx("read luns")?;
                let v = st
                    .query_map([g.id], |x| x.get::<_, i64>(0))
                    .dbx("read luns")?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .dbx("read luns")?;
                v.into_iter().map(|l| l as u32).collect()
            };
            let lun = (1..=MAX_LUNS_PER_TARGET)
                .find(|l| !used.contains(l))
                .ok_or_else(|| {
                    Error::InvalidValue(format!(
                        "access group {} already carries {MAX_LUNS_PER_TARGET} LUNs, the most one target can",
                        shown(&g.name)
                    ))
                })?;
            tx.run(
                "INSERT INTO presentations (element, grp, lun) VALUES (?1, ?2, ?3)",
                params![r.uuid, g.id, i64::from(lun)],
            )
            .dbx("present")?;
        }
        tx.commit().dbx("commit")?;
        self.get(uuid)
    }

    /// `stopPresent` (groups it is not presented to are ignored).
    pub fn unpresent(&mut self, uuid: &str, groups: &[String]) -> Result<Element> {
        let _g = self.lock()?;
        let r = self.volume_row("uuid", uuid)?;
        let mut rows = Vec::new();
        for n in groups {
            rows.push(self.group_row("access_grp_names", n)?);
        }
        let tx = self.db.tx()?;
        for g in rows {
            tx.run(
                "DELETE FROM presentations WHERE element = ?1 AND grp = ?2",
                params![r.uuid, g.id],
            )
            .dbx("unpresent")?;
        }
        tx.commit().dbx("commit")?;
        self.get(uuid)
    }

    /// `online` / `offline`: the desired state of the logical units; presentation unchanged.
    pub fn set_online(&mut self, uuid: &str, online: bool) -> Result<()> {
        let _g = self.lock()?;
        let r = self.volume_row("uuid", uuid)?;
        if r.state == SeState::BusyCopy.as_str() {
            if online {
                return Err(Error::Busy(format!(
                    "element {} is being split; it cannot go online until the split ends",
                    shown(&r.name)
                )));
            }
            self.db
                .conn
                .run("UPDATE elements SET online = 0 WHERE uuid = ?1", [&r.uuid])
                .dbx("set offline")?;
            return Ok(());
        }
        self.db
            .conn
            .run(
                "UPDATE elements SET online = ?1, state = ?2 WHERE uuid = ?3",
                params![
                    online,
                    if online {
                        SeState::Online.as_str()
                    } else {
                        SeState::Offline.as_str()
                    },
                    r.uuid
                ],
            )
            .dbx("set online")?;
        Ok(())
    }

    // ----- QoS, CHAP, export -----

    /// `getQoSList`: the cache policies.
    pub fn qos_list(&self) -> Result<Vec<QosLevel>> {
        if let Some(levels) = self.qos_levels.get() {
            return Ok(levels.clone());
        }
        let mut st = self
            .db
            .conn
            .prepare_cached("SELECT priority, value, description, write_cache FROM qos ORDER BY priority")
            .dbx("list qos")?;
        let v = st
            .query_map([], |r| {
                Ok(QosLevel {
                    priority: r.get(0)?,
                    value: r.get(1)?,
                    description: r.get(2)?,
                    write_cache: r.get(3)?,
                })
            })
            .dbx("list qos")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .dbx("list qos")?;
        Ok(self.qos_levels.get_or_init(|| v).clone())
    }

    /// `setQoS`: allowed online (the export layer applies the cache policy).
    pub fn set_qos(&mut self, uuid: &str, qos: &str) -> Result<()> {
        let _g = self.lock()?;
        let r = self.volume_row("uuid", uuid)?;
        let q = self.check_qos(Some(qos))?;
        self.db
            .conn
            .run("UPDATE elements SET qos = ?1 WHERE uuid = ?2", params![q, r.uuid])
            .dbx("set qos")?;
        Ok(())
    }

    /// The file holding the CHAP secret.
    pub(crate) fn chap_secret_path(&self) -> PathBuf {
        self.state_dir.join("chap.secret")
    }

    /// Sets (or with `None` clears) the CHAP account the targets require.
    /// The CHAP account in force (user name and secret), if any: what a failed change of it
    /// is put back to.
    pub fn chap_account(&self) -> Result<Option<ChapAccount>> {
        let Some(username) = self.db.chap_user()? else {
            return Ok(None);
        };
        let path = self.chap_secret_path();
        let secret = fs::read_to_string(&path)
            .ctx("cannot read the CHAP secret", &path)?
            .trim_end_matches('\n')
            .to_string();
        Ok(Some(ChapAccount { username, secret }))
    }

    pub fn set_chap(&mut self, chap: Option<&ChapAccount>) -> Result<()> {
        let _g = self.lock()?;
        self.store_chap(chap)
    }

    fn store_chap(&mut self, chap: Option<&ChapAccount>) -> Result<()> {
        let path = self.chap_secret_path();
        let Some(c) = chap else {
            self.db.conn.run("DELETE FROM chap", []).dbx("clear chap")?;
            fsops::remove_if_exists(&path)?;
            return Ok(());
        };
        if c.username.is_empty() {
            return Err(Error::missing(
                "username",
                "username is empty; CHAP needs a user name",
            ));
        }
        // tgt's rule for account names (spindle_tgt::UserName).
        if c.username.len() > 255
            || c.username.starts_with('-')
            || !c
                .username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'))
        {
            return Err(Error::format(
                "username",
                format!(
                    "username {} must be 1 to 255 letters, digits, '.', '_', '-', '@' or ':', not starting with '-'",
                    shown(&c.username)
                ),
            ));
        }
        // The secret is checked but never shown.
        if !(12..=255).contains(&c.secret.len()) || !c.secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::format(
                "passwd",
                "passwd (the CHAP secret) must be 12 to 255 printable ASCII characters without blanks",
            ));
        }
        // The same account again changes nothing (the export layer keys the tgt account to
        // the secret file, so rewriting it would re-create the account).
        let current = self.db.chap_user()?;
        if current.as_deref() == Some(c.username.as_str())
            && fs::read(&path).is_ok_and(|stored| stored == c.secret.as_bytes())
        {
            return Ok(());
        }
        let tmp = self.state_dir.join(".chap.secret.tmp");
        let _ = fs::remove_file(&tmp);
        {
            let mut f = fsops::create_new(&tmp, 0o600)?;
            f.write_all(c.secret.as_bytes()).ctx("cannot write", &tmp)?;
            f.sync_all().ctx("cannot fsync", &tmp)?;
        }
        fs::rename(&tmp, &path).ctx("cannot rename", &path)?;
        fsops::fsync_dir(&self.state_dir)?;
        self.db
            .conn
            .run(
                "INSERT OR REPLACE INTO chap (id, username) VALUES (1, ?1)",
                [&c.username],
            )
            .dbx("store chap")?;
        Ok(())
    }

    /// The export generation ([`Db::export_gen`]): equal values mean equal export plans.
    pub fn export_gen(&self) -> Result<i64> {
        self.db.export_gen()
    }

    /// The desired export state.
    pub fn export_plan(&self) -> Result<ExportPlan> {
        let prefix = self.iqn_prefix();
        let pools = self.db.pools()?;
        let rows: BTreeMap<String, ElementRow> = self
            .db
            .elements_where(
                "kind != 'snap' AND uuid IN (SELECT element FROM presentations)",
                &[],
            )?
            .into_iter()
            // A LUN whose pool cannot be used has no file tgtd could serve; it is exported
            // again, with its LUN numbers and identity, when the pool is back.
            .filter(|e| !self.unavailable.contains_key(&e.pool))
            .map(|e| (e.uuid.clone(), e))
            .collect();
        let caches: HashMap<String, bool> = self
            .qos_list()?
            .into_iter()
            .map(|q| (q.value, q.write_cache))
            .collect();
        let pres = self.db.presentations()?;
        let mut targets = Vec::new();
        for g in self.db.groups()? {
            let mut luns = Vec::new();
            for (e, gname, lun) in pres.iter().filter(|p| p.1 == g.name) {
                let _ = gname;
                let Some(r) = rows.get(e) else { continue };
                let pool = pools
                    .iter()
                    .find(|p| p.name == r.pool)
                    .map(|p| p.path.clone())
                    .unwrap_or_default();
                luns.push(LunPlan {
                    lun: *lun,
                    element: r.uuid.clone(),
                    name: r.name.clone(),
                    backing_path: image(&pool, &r.uuid),
                    size: r.size,
                    scsi_id: self.scsi_id(r.serial),
                    scsi_sn: format!("{:09x}{:016x}", self.vendor_id, r.serial),
                    vendor: VENDOR.into(),
                    product: PRODUCT.into(),
                    online: r.online && r.state != SeState::BusyCopy.as_str(),
                    write_cache: caches.get(&r.qos).copied().unwrap_or(false),
                    read_only: r.read_only,
                    thin: r.thin && !r.read_only,
                    backing_generation: r.backing_gen,
                });
            }
            targets.push(TargetPlan {
                group: g.name.clone(),
                iqn: format!("{prefix}:{}", g.target),
                initiators: g.entries.clone(),
                luns,
            });
        }
        let chap = self.db.chap_user()?.map(|username| ChapPlan {
            username,
            secret_file: self.chap_secret_path(),
        });
        Ok(ExportPlan {
            array_id: self.array_id.clone(),
            iqn_prefix: prefix,
            chap,
            targets,
        })
    }
}

/// Takes `serial` for an operation in `tx`: it must still be the next one (the array's lock
/// is held, so only an adopted operation could have taken it meanwhile).
fn take_serial(tx: &rusqlite::Transaction<'_>, serial: Option<u64>) -> Result<()> {
    let Some(n) = serial else { return Ok(()) };
    let taken = tx
        .run(
            "UPDATE meta SET value = ?1 WHERE key = 'next_serial' AND value = ?2",
            params![(n + 1).to_string(), n.to_string()],
        )
        .dbx("advance serial")?;
    if taken == 1 {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "serial {n} was taken by another operation meanwhile"
        )))
    }
}

/// Deletes, in `tx`, the intents left `applied` by earlier operations: they are complete (the
/// marker was found clear, or recovered), except those `waiting` for their pool
/// ([`Engine::waiting_intents`]), which are kept.
fn delete_finished_intents(tx: &rusqlite::Transaction<'_>, waiting: &BTreeSet<String>) -> Result<()> {
    if waiting.is_empty() {
        tx.run("DELETE FROM intents WHERE step = 'applied'", [])
            .dbx("delete finished intents")?;
        return Ok(());
    }
    let keep = serde_json::to_string(waiting)
        .map_err(|e| Error::Failed(format!("cannot encode the intents kept: {e}")))?;
    tx.run(
        "DELETE FROM intents WHERE step = 'applied' AND op NOT IN (SELECT value FROM json_each(?1))",
        [keep],
    )
    .dbx("delete finished intents")?;
    Ok(())
}

/// Step 3 of [`Engine::execute_insert`]: one commit, not waiting for the disk, of the intent
/// (step `applied`), the serial and the new rows. Intents left `applied` by earlier operations
/// are complete (the marker was found clear, or recovered) and are deleted in it, but for
/// those `waiting` for their pool.
fn commit_applied(
    db: &mut Db,
    op: &str,
    kind: &str,
    plan_json: &str,
    plan: &Plan,
    serial: Option<u64>,
    waiting: &BTreeSet<String>,
) -> Result<()> {
    let Plan::Insert {
        elements, members, ..
    } = plan
    else {
        return Err(Error::Failed(format!("{kind}: not a plan that adds elements")));
    };
    db.committing(false, |db| {
        let tx = db.tx()?;
        delete_finished_intents(&tx, waiting)?;
        tx.run(
            "INSERT INTO intents (op, kind, plan, step, created) VALUES (?1, ?2, ?3, 'applied', ?4)",
            params![op, kind, plan_json, db::now()],
        )
        .dbx("record intent")?;
        take_serial(&tx, serial)?;
        for e in elements {
            db::insert_element(&tx, e)?;
        }
        for m in members {
            db::insert_member(&tx, m)?;
        }
        tx.commit().dbx("commit")
    })
}

/// Fsyncs the new files of a plan that adds them (their content and marks; an fsync of a
/// file already on disk returns at once).
fn sync_new_files(plan: &Plan) -> Result<()> {
    if let Plan::Insert { moves, .. } = plan {
        for m in moves {
            File::open(&m.dest)
                .and_then(|f| f.sync_all())
                .ctx("cannot fsync", &m.dest)?;
        }
    }
    Ok(())
}

/// Reflinks `src` into `dst`, turning "the file system cannot" into `NoSuchOperationEx`.
fn reflink_or(src: &Path, dst: &Path, mode: u32, what: &str, mark: Option<&fsops::Mark<'_>>) -> Result<()> {
    match fsops::reflink(src, dst, mode, mark) {
        Ok(()) => Ok(()),
        Err(ReflinkFailure::Unsupported(e)) => Err(Error::NoSuchOperation(format!(
            "{what} is unsupported here: the file system of {} cannot reflink ({e}); this array never makes a full copy in place of a thin one",
            parent_dir(dst).display()
        ))),
        Err(ReflinkFailure::Other(e)) => Err(e),
    }
}

/// "1 snapshot 's1'" or "3 snapshots 'a', 'b', 'c'": what keeps an element in use, named
/// (the first 10, then how many more).
fn counted(names: &[String], one: &str, many: &str) -> String {
    const SHOWN: usize = 10;
    let listed: Vec<String> = names.iter().take(SHOWN).map(|n| shown(n)).collect();
    let more = names.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let what = if names.len() == 1 { one } else { many };
    format!("{} {what} {}{tail}", names.len(), listed.join(", "))
}
