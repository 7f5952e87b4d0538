//! The host facilities of one call: the shared cache, a logger tagged with plug-in, method and
//! call id, and temporary files removed when the call ends. The same object serves an
//! in-process plug-in (through the `Host` trait) and an out-of-process one (through the
//! protocol's host requests).

use crate::cache::Cache;
use serde_json::Value;
use spindle_api::{Host, LogLevel, PluginException, PluginResult};
use spindle_protocol::{
    CacheParams, LogParams, TempFileResult, WarningParams, CACHE_CLEAR, CACHE_EXTEND, CACHE_GET, CACHE_SET,
    LOG, TEMP_FILE, WARNING, WARNING_STDOUT,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Identifies one call in logs.
#[derive(Debug, Clone)]
pub struct CallTag {
    /// `class@version`.
    pub plugin: String,
    /// Method wire name.
    pub method: &'static str,
    /// Unique per call.
    pub call_id: String,
}

/// Services of one call.
#[derive(Debug)]
pub struct CallServices {
    cache: Arc<Cache>,
    tag: CallTag,
    temp_root: PathBuf,
    temp_dir: Mutex<Option<tempfile::TempDir>>,
    dev_path_prefix: String,
    warnings: Mutex<Vec<String>>,
    printed: Mutex<Vec<String>>,
}

impl CallServices {
    /// Services for one call; temporary files go in a fresh directory under `temp_root`.
    pub fn new(cache: Arc<Cache>, tag: CallTag, temp_root: &Path, dev_path_prefix: &str) -> Self {
        CallServices {
            cache,
            tag,
            temp_root: temp_root.to_path_buf(),
            temp_dir: Mutex::new(None),
            dev_path_prefix: dev_path_prefix.to_string(),
            warnings: Mutex::new(Vec::new()),
            printed: Mutex::new(Vec::new()),
        }
    }

    /// The call's tag.
    pub fn tag(&self) -> &CallTag {
        &self.tag
    }

    /// Warnings the plug-in's side reported (e.g. diverted stdout).
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// What the plug-in's side reported it printed to standard output (each also a warning).
    pub fn take_printed(&self) -> Vec<String> {
        std::mem::take(&mut *self.printed.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Records a warning (also logged, under the target [`crate::WARNING_TARGET`]).
    pub fn warn(&self, message: String) {
        tracing::warn!(target: crate::WARNING_TARGET, plugin = %self.tag.plugin, method = self.tag.method, call_id = %self.tag.call_id, "{message}");
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }

    /// Removes the call's temporary files now (also done on drop).
    pub fn finish(&self) {
        if let Some(dir) = self.temp_dir.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                tracing::warn!(call_id = %self.tag.call_id, "could not remove temporary files in {}: {e}", path.display());
            }
        }
    }

    /// Answers one host request of the protocol: `Ok(result)` or `Err(message)`.
    pub fn serve_request(&self, method: &str, params: &Value) -> Result<Value, String> {
        let p = || -> Result<CacheParams, String> {
            serde_json::from_value(params.clone()).map_err(|e| format!("bad {method} parameters: {e}"))
        };
        let key = |p: &CacheParams| {
            p.cache_key
                .clone()
                .ok_or_else(|| format!("{method} needs cache_key"))
        };
        match method {
            CACHE_GET => {
                let p = p()?;
                Ok(self
                    .cache
                    .get(&p.ss_uuid, &key(&p)?)
                    .map(Value::String)
                    .unwrap_or(Value::Null))
            }
            CACHE_SET => {
                let p = p()?;
                self.cache
                    .set(&p.ss_uuid, &key(&p)?, p.cache_value.as_deref(), p.expire_time);
                Ok(Value::Null)
            }
            CACHE_EXTEND => {
                let p = p()?;
                self.cache
                    .extend(&p.ss_uuid, &key(&p)?, p.extend_time.unwrap_or(0));
                Ok(Value::Null)
            }
            CACHE_CLEAR => {
                self.cache.clear(&p()?.ss_uuid);
                Ok(Value::Null)
            }
            TEMP_FILE => {
                let path = self.temp_file().map_err(|e| e.message)?;
                serde_json::to_value(TempFileResult {
                    path: path.display().to_string(),
                })
                .map_err(|e| e.to_string())
            }
            other => Err(format!("unknown host request {other}")),
        }
    }

    /// Handles one notification of the protocol.
    pub fn serve_notification(&self, method: &str, params: &Value) {
        match method {
            LOG => match serde_json::from_value::<LogParams>(params.clone()) {
                Ok(p) => self.log(p.level, &p.message),
                Err(e) => self.warn(format!("malformed host.log notification: {e}")),
            },
            WARNING => match serde_json::from_value::<WarningParams>(params.clone()) {
                Ok(p) => {
                    if p.kind.as_deref() == Some(WARNING_STDOUT) {
                        self.printed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(p.message.clone());
                    }
                    self.warn(p.message)
                }
                Err(e) => self.warn(format!("malformed host.warning notification: {e}")),
            },
            other => self.warn(format!("unknown notification {other}")),
        }
    }
}

impl Drop for CallServices {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Host for CallServices {
    fn cache_get(&self, ss_uuid: &str, key: &str) -> PluginResult<Option<String>> {
        Ok(self.cache.get(ss_uuid, key))
    }

    fn cache_set(
        &self,
        ss_uuid: &str,
        key: &str,
        value: Option<&str>,
        expire_secs: Option<u64>,
    ) -> PluginResult<()> {
        self.cache.set(ss_uuid, key, value, expire_secs);
        Ok(())
    }

    fn cache_extend(&self, ss_uuid: &str, key: &str, extend_secs: u64) -> PluginResult<()> {
        self.cache.extend(ss_uuid, key, extend_secs);
        Ok(())
    }

    fn cache_clear(&self, ss_uuid: &str) -> PluginResult<()> {
        self.cache.clear(ss_uuid);
        Ok(())
    }

    fn log(&self, level: LogLevel, message: &str) {
        let t = &self.tag;
        match level {
            LogLevel::Debug => {
                tracing::debug!(plugin = %t.plugin, method = t.method, call_id = %t.call_id, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(plugin = %t.plugin, method = t.method, call_id = %t.call_id, "{message}")
            }
            LogLevel::Warning => {
                tracing::warn!(plugin = %t.plugin, method = t.method, call_id = %t.call_id, "{message}")
            }
            LogLevel::Error | LogLevel::Critical => {
                tracing::error!(plugin = %t.plugin, method = t.method, call_id = %t.call_id, level = ?level, "{message}")
            }
        }
    }

    fn temp_file(&self) -> PluginResult<PathBuf> {
        let mut guard = self.temp_dir.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("call-")
                .tempdir_in(&self.temp_root)
                .map_err(|e| {
                    PluginException::operation_failed(format!("cannot create a temporary directory: {e}"))
                })?;
            *guard = Some(dir);
        }
        let dir = guard.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default();
        let file = tempfile::Builder::new()
            .prefix("tmp-")
            .tempfile_in(&dir)
            .map_err(|e| PluginException::operation_failed(format!("cannot create a temporary file: {e}")))?;
        // The directory is removed with the call; the file itself must outlive this handle.
        let (_, path) = file
            .keep()
            .map_err(|e| PluginException::operation_failed(format!("cannot keep the temporary file: {e}")))?;
        Ok(path)
    }

    fn dev_path_prefix(&self) -> String {
        self.dev_path_prefix.clone()
    }
}
