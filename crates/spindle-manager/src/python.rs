//! Where spindle finds its Python runner.
//!
//! The Python package (`python/spindle-osc/src`) is compiled into spindle and written out, once
//! per content, to a cache directory, so the `spindle` binary needs nothing installed beside it
//! but a Python 3.9+ interpreter. `SPINDLE_PYTHON_LIB` points at another copy (e.g. a
//! checkout being worked on); `SPINDLE_PYTHON` names the interpreter.

use crate::discovery::PythonSetup;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// The package's files, relative to its `src` directory.
const FILES: &[(&str, &str)] = &[
    (
        "OSCPlugin.py",
        include_str!("../../../python/spindle-osc/src/OSCPlugin.py"),
    ),
    (
        "OSCPluginUtils.py",
        include_str!("../../../python/spindle-osc/src/OSCPluginUtils.py"),
    ),
    (
        "spindle_osc_runner.py",
        include_str!("../../../python/spindle-osc/src/spindle_osc_runner.py"),
    ),
    (
        "spindle_osc/__init__.py",
        include_str!("../../../python/spindle-osc/src/spindle_osc/__init__.py"),
    ),
    (
        "spindle_osc/host.py",
        include_str!("../../../python/spindle-osc/src/spindle_osc/host.py"),
    ),
];

fn cache_base() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("spindle"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("spindle"))
}

fn content_tag() -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    FILES.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Writes the embedded package under `base` (once per content) and returns its directory.
pub fn materialize(base: &Path) -> std::io::Result<PathBuf> {
    let dir = base.join(format!("python-{}", content_tag()));
    if dir.join(FILES[0].0).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(base)?;
    // Build in a scratch directory and rename it into place, so a concurrent spindle never
    // sees half the files.
    let scratch = tempfile::Builder::new().prefix(".python-").tempdir_in(base)?;
    for (rel, text) in FILES {
        let path = scratch.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    let scratch = scratch.keep();
    match std::fs::rename(&scratch, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.join(FILES[0].0).is_file() => {
            let _ = std::fs::remove_dir_all(&scratch);
            Ok(dir)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            Err(e)
        }
    }
}

/// The interpreter itself when `name` on PATH is a wrapper script (pyenv's shims cost tens of
/// milliseconds per start, paid on every plug-in call); `name` otherwise.
pub fn resolve_interpreter(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    let Some(found) = found else {
        return PathBuf::from(name);
    };
    let is_script = std::fs::File::open(&found)
        .and_then(|mut f| {
            let mut head = [0u8; 2];
            std::io::Read::read_exact(&mut f, &mut head).map(|()| head == *b"#!")
        })
        .unwrap_or(false);
    if !is_script {
        return found;
    }
    std::process::Command::new(&found)
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file())
        .unwrap_or(found)
}

/// The Python setup, worked out only when a Python module is actually found: resolving the
/// interpreter may start it once, and the embedded runner is written to disk, neither of which
/// a manager with no Python plug-ins should pay for at start-up.
#[derive(Debug)]
pub struct LazyPython {
    given: Option<PythonSetup>,
    temp_root: PathBuf,
    cell: std::sync::OnceLock<PythonSetup>,
}

impl LazyPython {
    /// `given` if set, else [`default_setup`] under `temp_root` on first use.
    pub fn new(given: Option<PythonSetup>, temp_root: &Path) -> Self {
        LazyPython {
            given,
            temp_root: temp_root.to_path_buf(),
            cell: std::sync::OnceLock::new(),
        }
    }

    /// The setup, resolved on the first call.
    pub fn get(&self) -> &PythonSetup {
        match &self.given {
            Some(p) => p,
            None => self.cell.get_or_init(|| default_setup(&self.temp_root)),
        }
    }
}

/// The default setup: interpreter from `SPINDLE_PYTHON` (else `python3`); library from
/// `SPINDLE_PYTHON_LIB`, else the embedded copy in the user's cache (else in `temp_root`).
pub fn default_setup(temp_root: &Path) -> PythonSetup {
    let interpreter = std::env::var_os("SPINDLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| resolve_interpreter("python3"));
    let lib_dir = match std::env::var_os("SPINDLE_PYTHON_LIB") {
        Some(p) => PathBuf::from(p),
        None => cache_base()
            .and_then(|b| materialize(&b).ok())
            .or_else(|| materialize(&temp_root.join("python")).ok())
            .unwrap_or_else(|| temp_root.join("python-unavailable")),
    };
    let pycache_dir = cache_base()
        .map(|b| b.join("pycache"))
        .unwrap_or_else(|| temp_root.join("pycache"));
    PythonSetup {
        interpreter,
        lib_dir,
        pycache_dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materialize_writes_every_file_once() {
        let base = tempfile::tempdir().expect("tempdir");
        let a = materialize(base.path()).expect("first");
        let b = materialize(base.path()).expect("second");
        assert_eq!(a, b);
        for (rel, text) in FILES {
            assert_eq!(std::fs::read_to_string(a.join(rel)).expect("file"), *text);
        }
    }
}
