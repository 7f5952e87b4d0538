//! Which array each registration is: one file per registration (an ss_record uuid) under the
//! host's state home ([`host_state_home`]`/registrations`), naming the array (its id and state
//! directory) that the registration's requests last reached.
//!
//! An array's own state knows which registrations send it requests ([`crate::tgt`]), but not
//! the other way round, and a registration's settings decide which array a request opens: the
//! state directory is the first pool's (or `state=`). So a `server set` that names other pool
//! directories would quietly make the registration a new, empty array, while the old one
//! kept its LUNs exported with nobody managing them. Such a request is refused before
//! anything is opened or made, as long as the registration's array still exists; an array
//! whose state directory was moved (the same array id found in the new one) is followed, and
//! one that is gone from another place frees its registration. An array missing from its own
//! state directory is refused too: the pool's file system is most likely not mounted, and
//! the directory under its mount point would become a new, empty array.

use crate::config::ArrayConfig;
use crate::engine::{Engine, EngineOptions};
use crate::error::{Error, IoContext, Result};
use crate::fsops;
use crate::names::{shown, shown_path};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest registration (ss_record uuid) accepted: its file name must fit a directory entry.
const MAX_REGISTRATION_LEN: usize = 200;
/// Longest file name of a registration (a directory entry holds 255 bytes).
const MAX_FILE_NAME_LEN: usize = 255;

/// The environment variable that moves the host's state home ([`host_state_home`]): an
/// absolute directory. For a test suite, or a second array program on one host, whose
/// registrations and served files must stay apart from the ones the host's array program uses.
pub const STATE_HOME_VAR: &str = "SPINDLE_ARRAY_STATE_HOME";

/// Where the array program keeps what belongs to the host rather than to one array (the
/// registrations, a resident program's default served file): `$SPINDLE_ARRAY_STATE_HOME`
/// when set, else `/var/lib/spindle-array` (root) or `$XDG_STATE_HOME/spindle-array` (else
/// `~/.local/state/spindle-array`).
///
/// A set but empty or relative `SPINDLE_ARRAY_STATE_HOME` is refused, not ignored: whoever
/// set it meant the state to be kept apart, and falling back to the host's directory would
/// write exactly where they meant not to (an empty value is typically a script's unset
/// variable).
pub fn host_state_home() -> Result<PathBuf> {
    match std::env::var_os(STATE_HOME_VAR) {
        Some(home) => state_home_from(&home),
        None => Ok(default_state_home()),
    }
}

/// Writes at `path` an executable script that runs `program` with [`STATE_HOME_VAR`] set to
/// `home`: for whatever starts the array program where the environment cannot be set, as a
/// test suite whose threads must not change it, or over ssh, which does not carry it.
///
/// The file is written by a child process: a file this process held open for writing could be
/// inherited, for the moment between fork and exec, by a program another thread starts, and
/// running the script would then fail with "Text file busy".
pub fn write_launcher(path: &Path, program: &Path, home: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let quoted = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let text = format!(
        "#!/bin/sh\nexport {STATE_HOME_VAR}={}\nexec {} \"$@\"\n",
        quoted(home),
        quoted(program)
    );
    let mut sh = Command::new("sh")
        .args(["-c", "umask 022 && cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = sh.stdin.take() {
        stdin.write_all(text.as_bytes())?;
    }
    match sh.wait()? {
        st if st.success() => Ok(()),
        st => Err(std::io::Error::other(format!(
            "cannot write {}: sh {st}",
            path.display()
        ))),
    }
}

/// The state home a `SPINDLE_ARRAY_STATE_HOME` value names (see [`host_state_home`]).
fn state_home_from(value: &std::ffi::OsStr) -> Result<PathBuf> {
    let home = PathBuf::from(value);
    if home.is_absolute() {
        return Ok(home);
    }
    Err(Error::Failed(format!(
        "{STATE_HOME_VAR} is {}: it must be an absolute directory (unset it to use {})",
        if value.is_empty() {
            "set but empty".to_string()
        } else {
            format!("{}, a relative path", shown_path(Path::new(value)))
        },
        default_state_home().display(),
    )))
}

/// The host's state home when [`STATE_HOME_VAR`] is not set.
fn default_state_home() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        PathBuf::from("/var/lib/spindle-array")
    } else {
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir)
            .join("spindle-array")
    }
}

/// `text` as one file name: ASCII letters, digits, `.` and `-` stay, every other byte becomes
/// `%XX`, so no two texts share a name and none leaves the directory.
pub fn file_name_of(text: &[u8]) -> String {
    let mut name = String::with_capacity(text.len());
    for &b in text {
        match b {
            b if b.is_ascii_alphanumeric() || b == b'-' || (b == b'.' && !name.is_empty()) => {
                name.push(char::from(b))
            }
            b => name.push_str(&format!("%{b:02X}")),
        }
    }
    name
}

/// Refuses a registration (ss_record uuid) that cannot be one: empty, control or non-ASCII
/// characters, a path separator or a leading `.` (`../x`), or too long for its file name
/// (every byte [`file_name_of`] escapes takes three). Checked before anything is opened,
/// so nothing is written for it; its file would otherwise be missing (name too long) and
/// the registration silently unguarded, or its text land in messages and logs as it is.
pub fn check_id(registration: &str) -> Result<()> {
    let why = if registration.is_empty() {
        Some("is empty".to_string())
    } else if !registration.bytes().all(|b| b.is_ascii_graphic()) {
        Some("holds a blank, control or non-ASCII character".to_string())
    } else if registration.contains(['/', '\\']) || registration.starts_with('.') {
        Some("holds a path separator or starts with '.'".to_string())
    } else if registration.len() > MAX_REGISTRATION_LEN
        || file_name_of(registration.as_bytes()).len() + ".json".len() > MAX_FILE_NAME_LEN
    {
        Some(format!(
            "is longer than {MAX_REGISTRATION_LEN} bytes, or than its file name allows"
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::format(
            "registration",
            format!(
                "registration (the storage server's uuid) {} {why}: it must be printable ASCII without '/' or '\\', not starting with '.'",
                shown(registration)
            ),
        )),
        None => Ok(()),
    }
}

/// The array a registration reached last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    array_id: String,
    state_dir: PathBuf,
}

/// The registrations of one host (the directory of their files).
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    /// The registrations kept in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Registry { dir: dir.into() }
    }

    /// The registrations of the state home `opts` names ([`EngineOptions::state_home`]),
    /// else of the host's ([`host_state_home`]). No `Default`: which directory is meant
    /// must be decided, and the host's can be refused.
    pub fn of(opts: &EngineOptions) -> Result<Self> {
        Ok(Registry::at(opts.home()?.join("registrations")))
    }

    fn path(&self, registration: &str) -> Result<PathBuf> {
        check_id(registration)?;
        Ok(self
            .dir
            .join(format!("{}.json", file_name_of(registration.as_bytes()))))
    }

    fn bound(&self, registration: &str) -> Result<Option<Bound>> {
        // An unreadable or damaged file refuses the registration's requests: taken for no
        // file, it let settings naming another array make the registration a new, empty
        // one, and the next request wrote that one over the lost binding for good.
        let path = self.path(registration)?;
        let damaged = |why: String| {
            Error::Unavailable(format!(
                "the file {} that says which array storage server uuid {} is cannot be used ({why}); check the array, then remove the file (the next request records the array it reaches)",
                shown_path(&path),
                shown(registration),
            ))
        };
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| damaged(format!("damaged: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(damaged(format!("unreadable: {e}"))),
        }
    }

    /// Refuses a request of `registration` whose configuration names another array than the
    /// one the registration is, while that one still exists (see the module documentation).
    ///
    /// While the registration is bound to no array, the answer holds the host's lock of first
    /// bindings: keep it until the request is answered and its array recorded. Two first
    /// requests of one registration naming different arrays, run in parallel, both passed
    /// the check, and the registration stayed bound to whichever answered last while the
    /// other array was made too. One lock for every registration: first bindings are rare,
    /// and it leaves no file per registration. A bound registration's file is read once.
    pub fn check(&self, registration: &str, cfg: &ArrayConfig) -> Result<Option<fs::File>> {
        let (bound, first) = match self.bound(registration)? {
            Some(bound) => (bound, None),
            None => {
                fs::create_dir_all(&self.dir).ctx("cannot create the registrations directory", &self.dir)?;
                let lock = fsops::lock_file(&self.dir.join(".first-binding.lock"))?;
                // Read again under the lock: a parallel first request may have bound it.
                match self.bound(registration)? {
                    Some(bound) => (bound, Some(lock)),
                    None => return Ok(Some(lock)),
                }
            }
        };
        self.check_bound(registration, cfg, &bound)?;
        Ok(first)
    }

    /// [`Registry::check`] of a registration bound to `bound`.
    fn check_bound(&self, registration: &str, cfg: &ArrayConfig, bound: &Bound) -> Result<()> {
        let state_dir = cfg.state_dir()?;
        if bound.state_dir == state_dir {
            // The array there is compared once it is open (`check_opened`).
            if state_dir.join("array.db").exists() {
                return Ok(());
            }
            // Most likely the directory under an unmounted pool's mount point: opened, it
            // would become a new, empty array on the wrong file system.
            return Err(Error::Unavailable(format!(
                "the array of storage server uuid {} (array {}) is not in its state directory {} any more (is its pool's file system mounted?); if it was removed on purpose, register another storage server for a new array",
                shown(registration),
                bound.array_id,
                shown_path(&state_dir),
            )));
        }
        if Engine::stored_array_id(&bound.state_dir).as_deref() != Some(bound.array_id.as_str())
            || Engine::stored_array_id(&state_dir).as_deref() == Some(bound.array_id.as_str())
        {
            return Ok(());
        }
        let other = match Engine::stored_array_id(&state_dir) {
            Some(id) => format!("array {id}, in {}", shown_path(&state_dir)),
            None => format!("a new array, in {}", shown_path(&state_dir)),
        };
        Err(Error::InvalidArray(format!(
            "storage server uuid {} is the array {} (state directory {}), and these settings name another one ({other}): the first pool (or state=) decides which array a storage server is, so keep it when changing pools (adding pools is fine); for another array, register another storage server (a record of its own uuid)",
            shown(registration),
            bound.array_id,
            shown_path(&bound.state_dir),
        )))
    }

    /// Refuses serving `registration` with `engine`'s array when the registration is another
    /// array in the same state directory: one made in the directory under an unmounted pool's
    /// mount point (by a request of another registration, or of none). Followed, the
    /// registration would show that array, empty, and make its LUNs on the wrong file system.
    /// Returns the binding it read, for [`Registry::note`].
    pub fn check_opened(&self, registration: &str, engine: &Engine) -> Result<Option<Bound>> {
        match self.bound(registration)? {
            Some(b) if b.state_dir == engine.state_dir() && b.array_id != engine.array_id() => {
                Err(Error::Unavailable(format!(
                    "the state directory {} of storage server uuid {} holds array {}, not this registration's array {} (is its pool's file system mounted? an array made in the directory under the mount point hides it); a registration keeps its array",
                    shown_path(&b.state_dir),
                    shown(registration),
                    engine.array_id(),
                    b.array_id,
                )))
            }
            seen => Ok(seen),
        }
    }

    /// Records that a request of `registration` was served by `engine`'s array. `seen` is
    /// the binding [`Registry::check_opened`] read for this request: when it is already this
    /// array's, nothing is read or written (reading it again, without a lock either, could
    /// only find the change of a request that ran alongside, which may as well come after).
    pub fn note(&self, registration: &str, engine: &Engine, seen: Option<&Bound>) -> Result<()> {
        let now = Bound {
            array_id: engine.array_id().to_string(),
            state_dir: engine.state_dir().to_path_buf(),
        };
        // The usual case, nothing new, writes nothing.
        if seen == Some(&now) || self.bound(registration)?.as_ref() == Some(&now) {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).ctx("cannot create the registrations directory", &self.dir)?;
        let text = serde_json::to_vec(&now)
            .map_err(|e| Error::Failed(format!("cannot encode a registration: {e}")))?;
        fsops::replace_file(&self.path(registration)?, &text)
    }

    /// The directory of the registrations.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_launcher_runs_the_program_with_the_state_home_and_the_arguments() {
        let dir = tempfile::tempdir().unwrap();
        // Quotes and blanks in both paths: the script must keep each one word.
        let home = dir.path().join("it's a home");
        let launcher = dir.path().join("launch me");
        write_launcher(&launcher, Path::new("/usr/bin/env"), &home).unwrap();
        let out = std::process::Command::new(&launcher)
            .args([
                "sh",
                "-c",
                "printf '%s|%s' \"$SPINDLE_ARRAY_STATE_HOME\" \"$0\"",
                "an arg",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}|an arg", home.display())
        );
    }

    #[test]
    fn file_names_stay_in_the_directory_and_never_collide() {
        assert_eq!(
            file_name_of(b"5f0e6c1e-2f7d-4f0a-9d1e-0c9b6f3e2a11"),
            "5f0e6c1e-2f7d-4f0a-9d1e-0c9b6f3e2a11"
        );
        assert_eq!(file_name_of(b"../x"), "%2E.%2Fx");
        assert_eq!(file_name_of(b".."), "%2E.");
        assert_ne!(file_name_of(b"a/b"), file_name_of(b"a%2Fb"));
        assert!(!file_name_of(b"a/b\0c").contains(['/', '\0']));
    }

    #[test]
    fn only_an_absolute_state_home_is_taken() {
        assert_eq!(
            state_home_from(std::ffi::OsStr::new("/srv/test-home")).ok(),
            Some(PathBuf::from("/srv/test-home"))
        );
        for (value, says) in [("", "set but empty"), ("rel/home", "relative path")] {
            let text = match state_home_from(std::ffi::OsStr::new(value)) {
                Ok(home) => panic!("{value:?} was taken as {}", home.display()),
                Err(e) => e.to_string(),
            };
            assert!(text.contains(STATE_HOME_VAR) && text.contains(says), "{text}");
        }
    }

    #[test]
    fn the_options_state_home_holds_the_registrations() {
        let opts = EngineOptions {
            state_home: Some(PathBuf::from("/srv/test-home")),
            ..EngineOptions::default()
        };
        assert_eq!(
            Registry::of(&opts).ok().map(|r| r.dir().to_path_buf()),
            Some(PathBuf::from("/srv/test-home/registrations"))
        );
    }
}
