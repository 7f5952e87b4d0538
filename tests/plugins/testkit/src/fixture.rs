//! Temporary plug-in roots whose modules run the test plug-in program, managers over them, and
//! the records tests pass.

use crate::plugins::{self, DEFAULT_CLASSES};
use serde_json::{json, Map, Value};
use spindle_api::Method;
use spindle_manager::{CallError, CallOptions, CallOutcome, Manager, ManagerConfig, Mode, PluginEntry};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a module's manifest points: `bin/spindle-testplugin`, a symlink to the program.
pub const MODULE_EXECUTABLE: &str = "bin/spindle-testplugin";
/// The vendor directory of the default module.
pub const VENDOR: &str = "spindle";
/// The module directory of the default module.
pub const MODULE: &str = "testplugin";
/// The per-call deadline of [`config`].
pub const CALL_DEADLINE: Duration = Duration::from_secs(3);
/// The pause between getAsyncProgress calls of [`config`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn toml_list(items: &[&str]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| toml_str(s)).collect::<Vec<_>>().join(", ")
    )
}

/// A temporary directory holding a plug-ins root (`plugins/`) and a scratch area
/// (`scratch/`: the manager's temporary files, trace files, barriers). Removed on drop.
#[derive(Debug)]
pub struct PluginRoot {
    dir: tempfile::TempDir,
    exe: PathBuf,
}

impl PluginRoot {
    /// An empty root whose modules will run `exe` (the test plug-in program).
    pub fn new(exe: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("spindle-testkit-").tempdir()?;
        std::fs::create_dir_all(dir.path().join("plugins"))?;
        std::fs::create_dir_all(dir.path().join("scratch"))?;
        Ok(PluginRoot { dir, exe: exe.into() })
    }

    /// A root with one module, `spindle/testplugin`, offering the `default` set.
    pub fn with_default_module(exe: impl Into<PathBuf>) -> io::Result<Self> {
        let root = PluginRoot::new(exe)?;
        root.add_module(VENDOR, MODULE, "default", Some(&DEFAULT_CLASSES))?;
        Ok(root)
    }

    /// The plug-ins root.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// The scratch directory.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// The manager's temporary directory (under the scratch directory).
    pub fn temp_root(&self) -> PathBuf {
        self.scratch().join("manager-tmp")
    }

    /// `<root>/<vendor>/<module>`, created empty.
    pub fn add_dir(&self, vendor: &str, module: &str) -> io::Result<PathBuf> {
        let dir = self.path().join(vendor).join(module);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Links `bin/spindle-testplugin` in `dir` to the program.
    pub fn link_program(&self, dir: &Path) -> io::Result<PathBuf> {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin)?;
        let link = dir.join(MODULE_EXECUTABLE);
        std::os::unix::fs::symlink(&self.exe, &link)?;
        Ok(link)
    }

    /// Writes `text` as the module's `spindle-module.toml`.
    pub fn write_manifest(&self, dir: &Path, text: &str) -> io::Result<()> {
        std::fs::write(dir.join(spindle_manager::discovery::MANIFEST), text)
    }

    /// A module running the program with `--set SET`, optionally declaring `classes`.
    pub fn add_module(
        &self,
        vendor: &str,
        module: &str,
        set: &str,
        classes: Option<&[&str]>,
    ) -> io::Result<PathBuf> {
        let dir = self.add_dir(vendor, module)?;
        self.link_program(&dir)?;
        let mut text = format!(
            "executable = {}\nargs = {}\n",
            toml_str(MODULE_EXECUTABLE),
            toml_list(&["--set", set])
        );
        if let Some(classes) = classes {
            text.push_str(&format!("classes = {}\n", toml_list(classes)));
        }
        self.write_manifest(&dir, &text)?;
        Ok(dir)
    }

    /// [`config`] for this root.
    pub fn config(&self, mode: Mode) -> ManagerConfig {
        config(vec![self.path()], self.temp_root(), mode)
    }
}

/// A strict or lenient configuration with a 3 s call deadline and a 20 ms poll interval.
pub fn config(roots: Vec<PathBuf>, temp_root: PathBuf, mode: Mode) -> ManagerConfig {
    ManagerConfig {
        roots,
        mode,
        call_deadline: CALL_DEADLINE,
        discovery_deadline: Duration::from_secs(20),
        async_poll_interval: POLL_INTERVAL,
        async_deadline: Duration::from_secs(30),
        temp_root: Some(temp_root),
        ..ManagerConfig::default()
    }
}

/// A plug-ins root with the default module and a manager over it.
#[derive(Debug)]
pub struct Harness {
    /// The root (kept alive for the manager).
    pub root: PluginRoot,
    /// The manager.
    pub manager: Manager,
}

impl Harness {
    /// Lays out the default module for `exe` and starts a manager in `mode`.
    pub async fn start(exe: &str, mode: Mode) -> Result<Harness, Box<dyn std::error::Error + Send + Sync>> {
        let root = PluginRoot::with_default_module(exe)?;
        let manager = Manager::new(root.config(mode)).await?;
        Ok(Harness { root, manager })
    }

    /// The plug-in `class` (panics with the skipped list if it was not found).
    pub fn plugin(&self, class: &str) -> &PluginEntry {
        match self.manager.resolve(class) {
            Ok(p) => p,
            Err(e) => panic!("{e}; skipped: {:#?}", self.manager.skipped()),
        }
    }

    /// Calls `method` of `class` with `args`.
    pub async fn call(
        &self,
        class: &str,
        method: Method,
        args: Map<String, Value>,
    ) -> Result<CallOutcome, CallError> {
        self.manager
            .call(self.plugin(class), method, args, CallOptions::default())
            .await
    }

    /// A path in the scratch directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.root.scratch().join(name)
    }
}

/// An iSCSI ss_record with `uuid` and `extra_info`.
pub fn ss_record(uuid: &str, extra_info: &str) -> Value {
    json!({
        "name": format!("array-{uuid}"),
        "uuid": uuid,
        "storage_type": "iSCSIStorage",
        "access_host": "192.0.2.10",
        "admin_host": "192.0.2.10",
        "admin_user": "admin",
        "admin_passwd": "not-a-real-secret",
        "status": "",
        "access_grps": [],
        "storage_desc": "",
        "extra_info": extra_info,
    })
}

/// An existing LUN of the storage server `ss_uuid`.
pub fn se_record(ss_uuid: &str, name: &str) -> Value {
    json!({
        "se_type": "LUNType",
        "ss_uuid": ss_uuid,
        "name": name,
        "uuid": format!("se-{name}"),
        "page83_id": plugins::page83_for(ss_uuid, name),
        "size": 1_i64 << 30,
        "status": "ONLINE",
        "state": "ONLINE",
        "access_grp_names": [],
    })
}

/// What `create` is given: only se_type, ss_uuid, size, vol_group_name and name.
pub fn new_se_record(ss_uuid: &str, name: &str, size: i64) -> Value {
    json!({
        "se_type": "LUNType",
        "ss_uuid": ss_uuid,
        "size": size,
        "vol_group_name": "pool0",
        "name": name,
    })
}

/// Keyword arguments from pairs.
pub fn args<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `{"ss_record": ss}`.
pub fn ss_args(ss: &Value) -> Map<String, Value> {
    args([("ss_record", ss.clone())])
}
