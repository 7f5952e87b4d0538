//! The file-system operations the engine is built from: reflink (FICLONE), allocation
//! (fallocate), durable renames (fsync of file and directory), hole-aware reads
//! (SEEK_DATA / SEEK_HOLE), space and file-system type, and btrfs subvolume snapshots.
//!
//! System calls go through `rustix` (safe wrappers; this crate forbids `unsafe`). Helper
//! programs (`btrfs`) get argument vectors, never a shell.

use crate::error::{Error, IoContext, Result};
use rustix::fs::{FallocateFlags, SeekFrom};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// XFS's `statfs` magic.
pub const XFS_MAGIC: u64 = 0x5846_5342;
/// btrfs's `statfs` magic.
pub const BTRFS_MAGIC: u64 = 0x9123_683E;
/// ext2/3/4's `statfs` magic.
pub const EXT4_MAGIC: u64 = 0xEF53;
/// tmpfs's `statfs` magic.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// The inode number of a btrfs subvolume's root directory.
pub const BTRFS_SUBVOL_ROOT_INO: u64 = 256;
/// The extended attribute that marks a new element's file complete: its value is the id of
/// the operation that made it. It is set after the file's content is in place and before the
/// file is fsynced, so on a file system that commits metadata in order (XFS's log, btrfs's
/// transactions and fsync log, ext4's journal) a durable mark means a durable, complete file.
pub const COMPLETE_XATTR: &str = "user.spindle-array.op";

/// The extended attribute that carries, on each new file of an operation that adds elements,
/// the operation's record (its intent: id, kind and plan, as JSON). It is set before
/// [`COMPLETE_XATTR`], so a durable mark means a durable record too, and the operation can be
/// rolled forward from its files alone when a power cut lost every commit of it.
pub const RECORD_XATTR: &str = "user.spindle-array.intent";

/// The largest record carried in [`RECORD_XATTR`]: well within what every file system allows
/// one file's attributes (ext4 holds them all in one 4 KiB block). A longer one (a multi-LUN
/// snapshot of many LUNs) is not carried; its intent is flushed instead.
pub const MAX_RECORD: usize = 2048;

/// How a new file is marked complete: the operation's id, and its record when it is carried
/// in the file ([`RECORD_XATTR`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark<'a> {
    /// The operation's id ([`COMPLETE_XATTR`]).
    pub op: &'a str,
    /// The operation's record ([`RECORD_XATTR`]), at most [`MAX_RECORD`] bytes.
    pub record: Option<&'a str>,
}

/// Marks the open file `f` complete ([`COMPLETE_XATTR`]), after writing the record it carries
/// ([`RECORD_XATTR`]). Best effort: a file system without user extended attributes leaves the
/// file unmarked, and the engine then makes the operation durable the other way (see
/// [`completed_by`]); a record that cannot be written leaves the file unmarked too.
fn mark_complete(f: &File, mark: &Mark<'_>) {
    let flags = rustix::fs::XattrFlags::empty();
    if let Some(record) = mark.record {
        if rustix::fs::fsetxattr(f, RECORD_XATTR, record.as_bytes(), flags).is_err() {
            return;
        }
    }
    let _ = rustix::fs::fsetxattr(f, COMPLETE_XATTR, mark.op.as_bytes(), flags);
}

/// The operation that marked `path` complete, if any ([`COMPLETE_XATTR`]).
pub fn completed_by(path: &Path) -> Option<String> {
    let mut buf = [0u8; 64];
    let n = rustix::fs::getxattr(path, COMPLETE_XATTR, &mut buf[..]).ok()?;
    std::str::from_utf8(buf.get(..n)?).ok().map(str::to_string)
}

/// The record `path` carries ([`RECORD_XATTR`]), if any.
pub fn carried_record(path: &Path) -> Option<String> {
    let mut buf = vec![0u8; MAX_RECORD];
    let n = rustix::fs::getxattr(path, RECORD_XATTR, &mut buf[..]).ok()?;
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

/// The name of a file-system magic, for descriptions.
pub fn fs_name(magic: u64) -> String {
    match magic {
        XFS_MAGIC => "xfs".into(),
        BTRFS_MAGIC => "btrfs".into(),
        EXT4_MAGIC => "ext4".into(),
        TMPFS_MAGIC => "tmpfs".into(),
        other => format!("fs-0x{other:x}"),
    }
}

/// The file system's magic number (`statfs.f_type`) of `path`.
pub fn fs_magic(path: &Path) -> Result<u64> {
    let f = File::open(path).ctx("cannot open", path)?;
    let st = rustix::fs::fstatfs(&f).ctx("cannot statfs", path)?;
    #[allow(clippy::useless_conversion)]
    let raw = i128::from(st.f_type);
    Ok((raw as u64) & 0xffff_ffff)
}

/// Total and available bytes of the file system holding `path`.
pub fn space(path: &Path) -> Result<(u64, u64)> {
    let f = File::open(path).ctx("cannot open", path)?;
    let st = rustix::fs::fstatvfs(&f).ctx("cannot statvfs", path)?;
    Ok((
        st.f_blocks.saturating_mul(st.f_frsize),
        st.f_bavail.saturating_mul(st.f_frsize),
    ))
}

/// Which file system each of `paths` is on, for counting a file system's space once when
/// several pools share it: the device a block-device file system was mounted from (every btrfs
/// subvolume and every directory of one XFS share it), else the device number. Reads the mount
/// table once.
pub fn fs_identities(paths: &[&Path]) -> Result<Vec<String>> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // (mount point, source) of every mount, in mount order.
    let mounts: Vec<(String, &str)> = mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some((fields.get(4)?.replace("\\040", " "), *fields.get(dash + 2)?))
        })
        .collect();
    paths
        .iter()
        .map(|path| {
            let real = fs::canonicalize(path).ctx("cannot resolve", path)?;
            // The mount that holds `real`: the longest mount point above it (the last of
            // equals, the one on top).
            let source = mounts
                .iter()
                .filter(|(point, _)| real.starts_with(point))
                .max_by_key(|(point, _)| point.len())
                .map(|(_, source)| *source);
            Ok(match source {
                Some(s) if s.starts_with("/dev/") => s.to_string(),
                _ => format!("dev:{}", fs::metadata(&real).ctx("cannot stat", &real)?.dev()),
            })
        })
        .collect()
}

/// True when `path` is the root directory of a btrfs subvolume.
pub fn is_btrfs_subvolume(path: &Path) -> Result<bool> {
    if fs_magic(path)? != BTRFS_MAGIC {
        return Ok(false);
    }
    let md = fs::metadata(path).ctx("cannot stat", path)?;
    Ok(md.is_dir() && md.ino() == BTRFS_SUBVOL_ROOT_INO)
}

/// Syncs a directory, making the renames and unlinks in it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).ctx("cannot open directory", dir)?;
    d.sync_all().ctx("cannot fsync directory", dir)
}

/// Creates `path` (which must not exist) with mode `mode`, for writing.
pub fn create_new(path: &Path, mode: u32) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .ctx("cannot create", path)
}

/// Replaces the file `path` with `bytes` (mode 0600), so that a reader sees the old content
/// or the new, never a part: written and fsynced as `.<name>.tmp` beside it, then renamed
/// over it. The rename itself is made durable by the caller's [`fsync_dir`] when it matters.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent_or_dot(path).join(format!(".{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    {
        let mut f = create_new(&tmp, 0o600)?;
        std::io::Write::write_all(&mut f, bytes).ctx("cannot write", &tmp)?;
        f.sync_all().ctx("cannot fsync", &tmp)?;
    }
    fs::rename(&tmp, path).ctx("cannot rename", path)
}

fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Gives the new file `f` exactly `mode`: the mode given at creation is filtered by the umask,
/// which rarely matters for owner-only modes, so the file is changed only when it did.
fn exact_mode(f: &File, mode: u32, path: &Path) -> Result<()> {
    let have = f.metadata().ctx("cannot stat", path)?.mode() & 0o7777;
    if have != mode {
        f.set_permissions(fs::Permissions::from_mode(mode))
            .ctx("cannot chmod", path)?;
    }
    Ok(())
}

/// Ends the making of a new file whose content is in place: marked for `mark` and left for
/// the caller to fsync (the engine overlaps that flush with its own commit), or fsynced.
fn finish(f: &File, path: &Path, mark: Option<&Mark<'_>>) -> Result<()> {
    match mark {
        Some(m) => {
            mark_complete(f, m);
            Ok(())
        }
        None => f.sync_all().ctx("cannot fsync", path),
    }
}

/// Why a reflink failed.
#[derive(Debug)]
pub enum ReflinkFailure {
    /// The file system cannot share extents (EOPNOTSUPP, EXDEV, EINVAL, ENOTTY).
    Unsupported(io::Error),
    /// Something else went wrong.
    Other(Error),
}

fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::OPNOTSUPP.raw_os_error()
            || code == rustix::io::Errno::XDEV.raw_os_error()
            || code == rustix::io::Errno::INVAL.raw_os_error()
            || code == rustix::io::Errno::NOTTY.raw_os_error()
            || code == rustix::io::Errno::NOSYS.raw_os_error()
    )
}

/// Makes `dst` (which must not exist) a reflink copy of the whole of `src` (FICLONE): the
/// two share every extent, nothing is copied. `dst` gets `mode`, and is marked for `mark` (then
/// the caller fsyncs it) or fsynced. On failure
/// `dst` is removed. A file system that cannot reflink gives [`ReflinkFailure::Unsupported`]:
/// the caller must never fall back to a full copy.
pub fn reflink(
    src: &Path,
    dst: &Path,
    mode: u32,
    mark: Option<&Mark<'_>>,
) -> std::result::Result<(), ReflinkFailure> {
    let s = File::open(src)
        .ctx("cannot open", src)
        .map_err(ReflinkFailure::Other)?;
    let d = create_new(dst, mode).map_err(ReflinkFailure::Other)?;
    let done = rustix::fs::ioctl_ficlone(&d, &s)
        .map_err(io::Error::from)
        .map_err(|e| {
            if unsupported(&e) {
                ReflinkFailure::Unsupported(e)
            } else {
                ReflinkFailure::Other(Error::io("cannot reflink into", dst, e))
            }
        })
        .and_then(|()| {
            exact_mode(&d, mode, dst).map_err(ReflinkFailure::Other)?;
            finish(&d, dst, mark).map_err(ReflinkFailure::Other)
        });
    if done.is_err() {
        drop(d);
        let _ = fs::remove_file(dst);
    }
    done
}

/// Creates `path` of `size` bytes, mode 0600: sparse when `thin`, otherwise with every block
/// allocated (fallocate); marked complete for `mark` ([`COMPLETE_XATTR`]) when given, and then
/// left for the caller to fsync; fsynced otherwise.
pub fn create_image(path: &Path, size: u64, thin: bool, mark: Option<&Mark<'_>>) -> Result<()> {
    let f = create_new(path, 0o600)?;
    let done = (|| {
        exact_mode(&f, 0o600, path)?;
        if thin {
            f.set_len(size).ctx("cannot size", path)?;
        } else {
            rustix::fs::fallocate(&f, FallocateFlags::empty(), 0, size).ctx("cannot allocate", path)?;
        }
        finish(&f, path, mark)
    })();
    if done.is_err() {
        drop(f);
        let _ = fs::remove_file(path);
    }
    done
}

/// Resizes the image at `path` to `size`: shrinks or grows; growth of a thick image is
/// allocated (fallocate extends the size only once the blocks are there). Fsynced.
pub fn resize_image(path: &Path, size: u64, thin: bool) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .ctx("cannot open", path)?;
    let old = f.metadata().ctx("cannot stat", path)?.len();
    if size > old && !thin {
        rustix::fs::fallocate(&f, FallocateFlags::empty(), old, size - old).ctx("cannot allocate", path)?;
    } else if size != old {
        f.set_len(size).ctx("cannot resize", path)?;
    }
    f.sync_all().ctx("cannot fsync", path)
}

/// Bytes allocated to `path` on disk.
pub fn allocated(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path).ctx("cannot stat", path)?.blocks() * 512)
}

/// The data segments `(offset, length)` of `f` (holes skipped), by SEEK_DATA / SEEK_HOLE.
pub fn data_segments(f: &File, path: &Path) -> Result<Vec<(u64, u64)>> {
    let len = f.metadata().ctx("cannot stat", path)?.len();
    let mut out = Vec::new();
    let mut off = 0u64;
    while off < len {
        let start = match rustix::fs::seek(f, SeekFrom::Data(off)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(Error::io("cannot seek data in", path, e.into())),
        };
        let end = match rustix::fs::seek(f, SeekFrom::Hole(start)) {
            Ok(e) => e.min(len),
            Err(e) => return Err(Error::io("cannot seek hole in", path, e.into())),
        };
        if end > start {
            out.push((start, end - start));
        }
        off = end.max(start + 1);
    }
    Ok(out)
}

/// Probes whether the file system of `dir` can reflink: clones a small temporary file into
/// another (`.spindle-probe.<random>.a/.b`), then removes both.
pub fn probe_reflink(dir: &Path) -> Result<bool> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let a = dir.join(format!(".spindle-probe.{tag}.a"));
    let b = dir.join(format!(".spindle-probe.{tag}.b"));
    let res = (|| {
        let f = create_new(&a, 0o600)?;
        use std::io::Write;
        (&f).write_all(&[0x5a; 4096]).ctx("cannot write", &a)?;
        f.sync_all().ctx("cannot fsync", &a)?;
        match reflink(&a, &b, 0o600, None) {
            Ok(()) => Ok(true),
            Err(ReflinkFailure::Unsupported(_)) => Ok(false),
            Err(ReflinkFailure::Other(e)) => Err(e),
        }
    })();
    let _ = fs::remove_file(&a);
    let _ = fs::remove_file(&b);
    res
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command(format!("{what}: cannot run btrfs: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(Error::Command(format!(
            "{what}: btrfs exited with {}: {}",
            out.status,
            err.trim()
        )))
    }
}

/// `btrfs subvolume snapshot -r SRC DST`: an atomic, read-only snapshot of a subvolume.
pub fn btrfs_snapshot(src: &Path, dst: &Path) -> Result<()> {
    run(
        Command::new("btrfs")
            .args(["subvolume", "snapshot", "-r"])
            .arg(src)
            .arg(dst)
            .stdout(Stdio::null()),
        &format!("cannot snapshot subvolume {}", src.display()),
    )
}

/// `btrfs subvolume delete PATH`.
pub fn btrfs_delete(path: &Path) -> Result<()> {
    run(
        Command::new("btrfs")
            .args(["subvolume", "delete"])
            .arg(path)
            .stdout(Stdio::null()),
        &format!("cannot delete subvolume {}", path.display()),
    )
}

/// Removes `path` if it exists.
pub fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("cannot remove", path, e)),
    }
}

/// Identity of a file's content state: device, inode, size, mtime and ctime (ns). Any write
/// through any descriptor changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size.
    pub size: u64,
    /// Modification time, ns.
    pub mtime_ns: i64,
    /// Change time, ns.
    pub ctime_ns: i64,
}

/// The [`Stamp`] of `path`.
pub fn stamp(path: &Path) -> Result<Stamp> {
    let m = fs::metadata(path).ctx("cannot stat", path)?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: m
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.mtime_nsec()),
        ctime_ns: m
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(m.ctime_nsec()),
    })
}

/// Opens (making it, mode 0600) the lock file `path` and takes its exclusive lock, blocking;
/// the lock is held until the returned file is closed.
pub fn lock_file(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .ctx("cannot open lock", path)?;
    f.lock().ctx("cannot lock", path)?;
    Ok(f)
}

/// Makes `dir` (and its parents) exist with mode 0700 for the last component.
pub fn ensure_private_dir(dir: &Path) -> Result<PathBuf> {
    fs::create_dir_all(dir).ctx("cannot create directory", dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).ctx("cannot chmod", dir)?;
    Ok(dir.to_path_buf())
}
