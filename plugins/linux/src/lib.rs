//! The array side of spindle's reference Storage Array: a **Linux software array** whose LUNs
//! are sparse files on reflink-capable file systems, exported over iSCSI by tgt.
//!
//! This crate holds the storage engine ([`engine::Engine`]), the array-side program
//! `spindle-array`, which serves one JSON request per run ([`protocol`]) so that it works the
//! same locally or through `ssh host spindle-array`, or many as a resident program on a Unix
//! socket ([`daemon`]), the export layer that keeps a tgtd
//! instance serving the array's [`export::ExportPlan`] ([`tgt`]), and the plug-in
//! `spindle.linux.LinuxArray` ([`plugin::LinuxArray`]), a thin stateless client of the program
//! ([`client`]: local, or ssh with key authentication and a verified host key, requests to
//! one array sharing one connection).
//!
//! # Model
//! - **Pools** (vol_groups) are directories, configured as `pools=NAME:/abs/dir,...` (see
//!   [`config`]), on XFS (`mkfs.xfs -m reflink=1`) or btrfs. Each pool's file system is probed
//!   at `validate` / `getCapabilities` by cloning one small temporary file into another
//!   (FICLONE). A pool that cannot reflink still holds LUNs, but snapshots, clones and splits
//!   there are `NoSuchOperationEx` and its `vol_desc` says so; a thin clone is never silently
//!   a full copy. If no pool can reflink, `getCapabilities` reports them UNSUPPORTED.
//! - A **LUN** is `<pool>/<uuid>.img`, mode 0600: sparse when thin, allocated with
//!   `fallocate` when `thin_provision` is False. Sizes are rounded up to whole MiB. Resize grows
//!   (allocating the growth of a thick LUN) or shrinks (`set_len`).
//! - A **snapshot** is a read-only (mode 0400) FICLONE of the whole file: one image per LUN
//!   it covers, `<pool>/<image-uuid>.img`. A **clone** is a writable FICLONE of a LUN or of a
//!   snapshot's image (`SnapCloneType` until split).
//! - **createMultiSnap** is offered only where it is real: all LUNs in one pool that is a
//!   btrfs subvolume. The pool is snapshotted atomically (`btrfs subvolume snapshot -r`) to
//!   `<pool>/.spindle-msnap.<op>`, the images are reflinked from there and the subvolume
//!   snapshot is deleted, so every image shows one crash-consistent point in time. The
//!   subvolume snapshot goes inside the pool rather than the state directory, so it is always
//!   on the same file system (the state directory may be elsewhere). Otherwise:
//!   `NoSuchOperationEx`. A single LUN is an ordinary snapshot.
//! - **splitClone** is asynchronous: a detached worker copies the clone's data (holes stay
//!   holes, via SEEK_DATA / SEEK_HOLE; zero blocks are not written) into a new file with real
//!   writes and renames it over the clone's file; progress is the fraction of data bytes
//!   copied. See [`engine::Engine::split_start`] for why `splitclone_while_open` is NO and how a
//!   presented clone is handled.
//! - **snapRestore** reflinks the image into a temporary and renames it over the LUN's file.
//!   Rules: nothing else can change, because clones and other snapshots are separate files that
//!   share extents copy-on-write, so neither later snapshots nor clones block a restore. What
//!   is refused (SnapRestoreNotSafeEx, and `isRestorable` says False in advance) is a LUN that
//!   is presented and online (hosts would see its data change under them and tgtd keeps the
//!   old file open) or that is being split. Without an element, every LUN the snapshot covers
//!   is rolled back, under the same rules for each.
//! - **remove** refuses (StorageElementBusyEx) an element that is presented, being split,
//!   covered by snapshots, or the source of unsplit clones; it never unpresents on its own.
//!   `snapRemove` refuses a snapshot that unsplit clones were made from.
//! - **Exports**: the engine keeps the desired state and [`tgt`] brings the configured tgtd
//!   instance (`tgt_control`, `portal`, `tgt_socket`; started detached when it is not running)
//!   to it at the end of every request: access groups are targets `<iqn_prefix>:<group>`,
//!   their entries (initiator IQNs) the ACL, presentations logical units with stable LUN
//!   numbers (lowest free from 1, kept while presented), the QoS is the cache policy
//!   (`writeback` / `writethrough`, default `writethrough`), the CHAP account lives in the
//!   state directory (secret in a 0600 file, never logged, never in an answer). Thin
//!   elements are exported with thin provisioning (LBPME, VPD 0xB2: UNMAP and WRITE SAME
//!   with UNMAP punch holes in the file), so what a host discards goes back to the pool
//!   while snapshots and clones keep their shared extents; a thick LUN is exported without
//!   it and keeps every block.
//! - **Identity**: each array has a random locally administered company id and a random vendor
//!   id, made once; an element's raw id is NAA-6 `6` + company (6 hex) + vendor (9 hex) +
//!   serial (16 hex) = 32 hex digits, the tgt `scsi_id`, and its `page83_id` is
//!   `make_mp_page83_from_raw_page83` of it (`3` + the id). Serials only grow and are never
//!   reused, even after removals, failed operations and restarts.
//! - **Limits** ([`engine::MAX_SNAPS_PER_ELEMENT`] and friends): 256 snapshots per LUN and 256
//!   unsplit clones per element (bounded by reflink sharing costs, not a file-system cap),
//!   256 entries per group (`max_access_entries`), 255 LUNs per target (LUN 0 is tgt's
//!   controller; 1..255 is single-level LUN addressing).
//!
//! # Durability and crash safety
//! The state is a SQLite database (WAL, kept between runs; synchronous=FULL; schema version
//! and migrations, see [`db`]) in the state directory (default `<first pool>/.spindle-array`,
//! mode 0700). Every operation's result is durable before it answers. Every file-touching
//! operation journals an intent first and builds new files under names no element has yet
//! (temporaries for files it replaces);
//! recovery at the start of every run rolls each pending intent back or forward and removes
//! orphan files that match this array's naming patterns (`<uuid>.img` that no element owns,
//! `.<op>.partial`, `.spindle-msnap.<op>`, `.spindle-probe.*`), never anything else. See
//! [`engine`] for the protocol (and why the journal entries of operations that only add new
//! files need no flush of their own) and [`crash`] for the fault hook and its step names.
//!
//! # Cost of a request
//! One request is one run of `spindle-array`, or one connection to a resident
//! `spindle-array daemon` ([`daemon`]) when `extra_info` names its socket (`array_socket=`;
//! the embedded default of `spindle serve` does; over ssh, `spindle-array --socket PATH`
//! hands the request to the resident program on the array's host). A run pays a process start and exit and a
//! database open (about 2.4 ms on the reference machine); the resident program pays neither,
//! and answers `getStatus` in about 0.3 ms through the plug-in. What every request does is
//! kept small either way: the database is opened with no write unless the schema or the
//! pools changed; statements are prepared once per connection; the WAL is not checkpointed
//! and deleted at every exit; the tgtd check is a connection to tgtd's management socket (no
//! request, no tgtadm process) plus a fingerprint of the export plan; an operation that adds
//! an element takes its serial in the intent's commit and builds its file under its final
//! name (no rename), carrying its own intent. A snapshot or clone then flushes the disk twice
//! (the new file, its directory), as the bare FICLONE + fsync +
//! directory fsync it is built on does. `benches/plugin.rs` measures both ways next to the
//! bare operations.

pub mod client;
pub mod config;
pub mod crash;
pub mod daemon;
pub mod db;
pub mod engine;
pub mod error;
pub mod export;
pub mod fsops;
pub mod model;
pub mod names;
pub mod plugin;
pub mod protocol;
pub mod registry;
pub mod tgt;

pub use config::ArrayConfig;
pub use engine::{Engine, EngineOptions};
pub use error::{Error, Result};
pub use export::ExportPlan;
pub use plugin::{LinuxArray, CLASS_NAME, PLUGIN_VERSION};

/// The plug-in `spindle.linux.LinuxArray` as a trait object.
pub fn plugin() -> Box<dyn spindle_api::StorageArrayPlugin> {
    Box::new(LinuxArray)
}
