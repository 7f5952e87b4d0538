//! What is mounted where (`/proc/self/mountinfo`) and which loop device holds which file
//! (`/sys/dev/block/M:m/loop/backing_file`).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The device's major and minor number.
    pub dev: (u32, u32),
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The file system type.
    pub fstype: String,
    /// The mount source (a device, or what the file system calls it).
    pub source: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a blank, `\134` for a backslash, ...).
fn unescape(field: &str) -> OsString {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// Parses the text of a mountinfo file; lines it cannot read are skipped.
pub(crate) fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let (major, minor) = f.get(2)?.split_once(':')?;
            let mount_point = PathBuf::from(unescape(f.get(4)?));
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let source = unescape(r.next().unwrap_or("")).to_string_lossy().into_owned();
            Some(Mount {
                dev: (major.parse().ok()?, minor.parse().ok()?),
                mount_point,
                fstype,
                source,
            })
        })
        .collect()
}

/// The current mounts of this process's mount namespace.
pub(crate) fn mounts() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The topmost mount at `path`, if any.
pub(crate) fn mount_at(path: &Path) -> std::io::Result<Option<Mount>> {
    Ok(mounts()?.into_iter().rev().find(|m| m.mount_point == path))
}

/// The file behind loop device `dev`, if it is a loop device.
pub(crate) fn loop_backing_file(dev: (u32, u32)) -> Option<PathBuf> {
    let text =
        std::fs::read_to_string(format!("/sys/dev/block/{}:{}/loop/backing_file", dev.0, dev.1)).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

/// The loop devices (`/dev/loopN`) whose backing file is `file`.
pub(crate) fn loop_devices_of(file: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = dir
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("loop"))
        .filter(|e| {
            std::fs::read_to_string(e.path().join("loop/backing_file"))
                .is_ok_and(|t| Path::new(t.trim_end_matches('\n')) == file)
        })
        .map(|e| Path::new("/dev").join(e.file_name()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_escapes() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    90 27 7:3 / /srv/my\\040data/pool rw,relatime shared:1 - xfs /dev/loop3 rw,attr2\n\
                    garbage line\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].dev, (7, 3));
        assert_eq!(m[1].mount_point, PathBuf::from("/srv/my data/pool"));
        assert_eq!(m[1].fstype, "xfs");
        assert_eq!(m[1].source, "/dev/loop3");
        assert_eq!(unescape("a\\134b"), OsString::from("a\\b"));
        assert_eq!(unescape("tail\\04"), OsString::from("tail\\04"));
    }

    #[test]
    fn root_is_mounted() {
        let m = mount_at(Path::new("/")).expect("mountinfo");
        assert!(m.is_some());
    }
}
