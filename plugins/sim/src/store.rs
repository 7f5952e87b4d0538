//! The state file: one per simulated array, `sim-array.json` in `state_dir`, read and written
//! only while holding an exclusive lock on `sim-array.lock` beside it, and replaced atomically
//! (a temporary file in the same directory, flushed to disk, renamed over the old one).
//!
//! Every call of the plug-in goes through [`with_array`], so two processes (or two threads)
//! working on one array see each other's changes whole or not at all.

use crate::config::Config;
use crate::state::State;
use spindle_api::{ExceptionKind, PluginException, PluginResult, StorageType};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the state file inside `state_dir`.
pub const STATE_FILE: &str = "sim-array.json";
/// Name of the lock file inside `state_dir`.
pub const LOCK_FILE: &str = "sim-array.lock";
/// While this file exists in `state_dir`, the next call that changes the array saves its
/// change and then fails (crate docs, "Fault injection").
pub const FAIL_AFTER_CHANGE: &str = "fail-after-change";
/// Name of the temporary file a new state is written to before the rename.
const TEMP_FILE: &str = ".sim-array.json.tmp";

/// Which call the state is opened for; decides the exception raised when it cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `validate`: every failure is `InvalidStorageArrayEx`.
    Validate,
    /// Any other method: I/O failures are `OperationFailedEx`, a storage-type mismatch is
    /// `InvalidValueEx`.
    Call,
}

impl Phase {
    fn io(self, message: String) -> PluginException {
        match self {
            Phase::Validate => PluginException::new(ExceptionKind::InvalidStorageArrayEx, message),
            Phase::Call => PluginException::operation_failed(message),
        }
    }

    fn mismatch(self, message: String) -> PluginException {
        match self {
            Phase::Validate => PluginException::new(ExceptionKind::InvalidStorageArrayEx, message),
            Phase::Call => PluginException::invalid_value(message),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Runs `f` on the array's state under the array's lock, then saves the state if `f` changed it.
///
/// The array is created (with the shape `cfg` asks for) the first time it is addressed. Finished
/// clone splits are settled before `f` runs. When `f` fails nothing is saved, so a refused call
/// changes nothing.
pub fn with_array<R>(
    cfg: &Config,
    storage_type: StorageType,
    phase: Phase,
    f: impl FnOnce(&mut State, u64) -> PluginResult<R>,
) -> PluginResult<R> {
    let dir = cfg.state_dir.as_path();
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(phase.io(format!(
                "state_dir {} exists but is not a directory",
                dir.display()
            )))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => fs::create_dir_all(dir)
            .map_err(|e| phase.io(format!("state_dir {} cannot be created: {e}", dir.display())))?,
        Err(e) => return Err(phase.io(format!("state_dir {} cannot be read: {e}", dir.display()))),
    }
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| {
            phase.io(format!(
                "lock file {} cannot be opened: {e}",
                dir.join(LOCK_FILE).display()
            ))
        })?;
    lock.lock().map_err(|e| {
        phase.io(format!(
            "lock file {} cannot be locked: {e}",
            dir.join(LOCK_FILE).display()
        ))
    })?;
    // The lock is released when `lock` is dropped, on every path out of this function.
    let now = now_ms();
    let path = dir.join(STATE_FILE);
    let (mut state, fresh) = match fs::read(&path) {
        Ok(bytes) => (
            State::from_json(&bytes).map_err(|e| {
                phase.io(format!(
                    "state file {} is not a simulated array's state: {e}",
                    path.display()
                ))
            })?,
            false,
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => (State::new(cfg, storage_type, now), true),
        Err(e) => return Err(phase.io(format!("state file {} cannot be read: {e}", path.display()))),
    };
    if state.storage_type != storage_type {
        return Err(phase.mismatch(format!(
            "storage_type {} does not match the simulated array in {}, which was created as {}",
            storage_type,
            dir.display(),
            state.storage_type
        )));
    }
    state.settle(now);
    let before = state.clone();
    let result = f(&mut state, now)?;
    if fresh || state != before {
        let bytes = state
            .to_json()
            .map_err(|e| phase.io(format!("state not encodable: {e}")))?;
        write_atomically(dir, &path, &bytes)
            .map_err(|e| phase.io(format!("state file {} cannot be written: {e}", path.display())))?;
        if phase == Phase::Call && fs::remove_file(dir.join(FAIL_AFTER_CHANGE)).is_ok() {
            return Err(PluginException::operation_failed(format!(
                "the change was made, then the call failed as {} in {} asked",
                FAIL_AFTER_CHANGE,
                dir.display()
            )));
        }
    }
    drop(lock);
    Ok(result)
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(TEMP_FILE);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    // Make the rename itself durable.
    File::open(dir)?.sync_all()
}
