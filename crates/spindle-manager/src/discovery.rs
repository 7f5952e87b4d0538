//! Finding plug-ins: built-in ones, and modules under plug-in roots laid out as
//! `<root>/<vendor>/<module>/` (General guide, Appendix B). A broken module is reported with
//! its reason and skipped; it never stops the others from being found.

use crate::process::{self, Fault, Launcher};
use serde::{Deserialize, Serialize};
use spindle_api::{
    MetadataError, Method, PluginId, PluginKind, PluginMetadata, Requirement, StorageArrayPlugin, METHODS,
};
use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The manifest of a module that is not Python.
pub const MANIFEST: &str = "spindle-module.toml";

/// How a plug-in is hosted.
#[derive(Clone)]
pub enum Hosting {
    /// A Rust trait object in the manager's process.
    InProcess(Arc<dyn StorageArrayPlugin>),
    /// A fresh child process per call.
    OutOfProcess(Launcher),
}

impl std::fmt::Debug for Hosting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hosting::InProcess(p) => write!(f, "InProcess({})", p.class_name()),
            Hosting::OutOfProcess(l) => write!(f, "OutOfProcess({})", l.program.display()),
        }
    }
}

/// Where a plug-in came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Origin {
    /// Compiled into spindle.
    BuiltIn,
    /// A module under a plug-ins root.
    Module {
        /// The root.
        root: PathBuf,
        /// The module directory.
        dir: PathBuf,
        /// `python` or `native`.
        runtime: ModuleRuntime,
        /// The file that defines the class, if known.
        source: Option<String>,
    },
}

/// What a module is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleRuntime {
    /// Python, run by spindle's Python runner.
    Python,
    /// Any program with a `spindle-module.toml`.
    Native,
}

/// One plug-in spindle can call.
#[derive(Debug, Clone)]
pub struct PluginEntry {
    /// Class and version.
    pub id: PluginId,
    /// Storage Array (File System plug-ins are not hosted yet).
    pub kind: PluginKind,
    /// Validated class variables.
    pub metadata: PluginMetadata,
    /// Methods the class implements.
    pub implemented: BTreeSet<Method>,
    /// Where it came from.
    pub origin: Origin,
    /// How it is called.
    pub hosting: Hosting,
    /// Problems that do not stop it from being used (e.g. a required method missing).
    pub warnings: Vec<String>,
}

impl PluginEntry {
    /// True if the plug-in implements `method` itself.
    pub fn implements(&self, method: Method) -> bool {
        self.implemented.contains(&method)
    }

    fn check_declarations(&mut self) {
        for m in METHODS {
            let needed = match m.requirement {
                Requirement::Required => true,
                Requirement::RequiredIfAsync => self.metadata.plugin_ability.any_async(),
                _ => false,
            };
            if needed && !self.implemented.contains(&m.method) {
                let why = if m.requirement == Requirement::RequiredIfAsync {
                    " (some operation is declared asynchronous: a *_is_sync key is NO)"
                } else {
                    ""
                };
                self.warnings
                    .push(format!("required method {} is not implemented{why}", m.name));
            }
        }
    }

    /// An entry for a built-in plug-in.
    pub fn built_in(plugin: Arc<dyn StorageArrayPlugin>) -> Self {
        let metadata = plugin.metadata();
        let implemented = METHODS
            .iter()
            .filter(|m| {
                m.requirement == Requirement::Required || plugin.implemented_optional().contains(&m.method)
            })
            .map(|m| m.method)
            .collect();
        let mut e = PluginEntry {
            id: PluginId {
                class: plugin.class_name().to_string(),
                version: metadata.plugin_version.clone(),
            },
            kind: PluginKind::StorageArray,
            metadata,
            implemented,
            origin: Origin::BuiltIn,
            hosting: Hosting::InProcess(plugin),
            warnings: Vec::new(),
        };
        e.check_declarations();
        e
    }
}

/// A module or class that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The module directory (or root).
    pub path: PathBuf,
    /// The class, when one class of a module was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The module (`vendor.module`), when the whole module failed to load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The file at fault, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why, for the vendor.
    pub reason: String,
}

impl Skipped {
    /// True if this entry explains why class `class` (fully qualified) is not loaded: it names
    /// the class, or it is about the whole module the class lives in.
    pub fn concerns(&self, class: &str) -> bool {
        if let Some(c) = &self.class {
            return c == class;
        }
        let module = self.module.clone().or_else(|| {
            let mut parts = self.path.iter().rev().filter_map(|p| p.to_str());
            let module = parts.next()?;
            let vendor = parts.next()?;
            Some(format!("{vendor}.{module}"))
        });
        module.is_some_and(|m| class.len() > m.len() + 1 && class.starts_with(&format!("{m}.")))
    }
}

/// How to run Python modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonSetup {
    /// The interpreter.
    pub interpreter: PathBuf,
    /// A directory holding `OSCPlugin.py`, `OSCPluginUtils.py` and `spindle_osc_runner.py`.
    pub lib_dir: PathBuf,
    /// Where compiled bytecode goes (never into a vendor's module).
    pub pycache_dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    executable: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    classes: Option<Vec<String>>,
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Usable plug-ins, built-in first, then by root order.
    pub plugins: Vec<PluginEntry>,
    /// What was skipped.
    pub skipped: Vec<Skipped>,
    /// Problems worked around while loading modules, each once.
    pub notes: Vec<String>,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn sorted_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        // A symlinked vendor or module directory is followed, as Python's import would.
        .filter(|p| p.is_dir())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n != "__pycache__")
        })
        .collect();
    out.sort();
    Ok(out)
}

struct Candidate {
    /// `vendor.module` for a Python module.
    module: Option<String>,
    root: PathBuf,
    dir: PathBuf,
    runtime: ModuleRuntime,
    launcher: Launcher,
    expected_classes: Option<Vec<String>>,
}

fn native_candidate(root: &Path, dir: &Path) -> Result<Candidate, String> {
    let text =
        std::fs::read_to_string(dir.join(MANIFEST)).map_err(|e| format!("cannot read {MANIFEST}: {e}"))?;
    let m: Manifest = toml::from_str(&text).map_err(|e| format!("{MANIFEST} is malformed: {e}"))?;
    let rel = Path::new(&m.executable);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!(
            "{MANIFEST}: executable '{}' must be a path inside the module directory (relative, no '..')",
            m.executable
        ));
    }
    let program = dir.join(rel);
    let meta = std::fs::metadata(&program)
        .map_err(|e| format!("{MANIFEST}: executable {} cannot be used: {e}", program.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(format!(
                "{MANIFEST}: {} is not an executable file",
                program.display()
            ));
        }
    }
    Ok(Candidate {
        module: None,
        root: root.to_path_buf(),
        dir: dir.to_path_buf(),
        runtime: ModuleRuntime::Native,
        launcher: Launcher {
            program,
            args: m.args,
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: dir.to_path_buf(),
        },
        expected_classes: m.classes,
    })
}

fn python_candidate(
    root: &Path,
    vendor: &str,
    module: &str,
    dir: &Path,
    py: &PythonSetup,
) -> Result<Candidate, String> {
    if !root.join(vendor).join("__init__.py").is_file() {
        return Err(format!(
            "vendor directory {} has no __init__.py, so Python cannot import {vendor}.{module}",
            root.join(vendor).display()
        ));
    }
    for (what, name) in [("vendor", vendor), ("module", module)] {
        if !is_identifier(name) {
            return Err(format!(
                "{what} directory name '{name}' is not a Python identifier"
            ));
        }
    }
    Ok(Candidate {
        module: Some(format!("{vendor}.{module}")),
        root: root.to_path_buf(),
        dir: dir.to_path_buf(),
        runtime: ModuleRuntime::Python,
        launcher: python_launcher(py, root, &format!("{vendor}.{module}")),
        expected_classes: None,
    })
}

/// The command line that runs a Python module through spindle's runner.
pub fn python_launcher(py: &PythonSetup, root: &Path, module: &str) -> Launcher {
    Launcher {
        program: py.interpreter.clone(),
        args: vec![
            "-s".into(),
            "-m".into(),
            "spindle_osc_runner".into(),
            "--root".into(),
            root.display().to_string(),
            "--module".into(),
            module.into(),
        ],
        env: vec![
            ("PYTHONPATH".into(), py.lib_dir.display().to_string()),
            ("PYTHONPYCACHEPREFIX".into(), py.pycache_dir.display().to_string()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
        ],
        // Bytecode goes to spindle's own cache (PYTHONPYCACHEPREFIX); forbidding it would make
        // every call recompile the standard library.
        env_remove: vec!["PYTHONDONTWRITEBYTECODE".into()],
        cwd: root.to_path_buf(),
    }
}

fn candidates(
    roots: &[PathBuf],
    py: &crate::python::LazyPython,
    skipped: &mut Vec<Skipped>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let skip = |path: &Path, reason: String| Skipped {
        path: path.to_path_buf(),
        class: None,
        module: None,
        file: None,
        reason,
    };
    for given in roots {
        // Children run with the module as working directory: every path handed on is absolute.
        let root_buf = std::fs::canonicalize(given).unwrap_or_else(|_| given.clone());
        let root = &root_buf;
        let vendors = match sorted_dirs(root) {
            Ok(v) => v,
            Err(e) => {
                skipped.push(skip(root, format!("plug-ins root cannot be read: {e}")));
                continue;
            }
        };
        for vendor_dir in vendors {
            let modules = match sorted_dirs(&vendor_dir) {
                Ok(m) => m,
                Err(e) => {
                    skipped.push(skip(&vendor_dir, format!("vendor directory cannot be read: {e}")));
                    continue;
                }
            };
            let vendor = vendor_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            for dir in modules {
                let module = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                let found = if dir.join(MANIFEST).is_file() {
                    Some(native_candidate(root, &dir))
                } else if dir.join("__init__.py").is_file() {
                    Some(python_candidate(root, &vendor, &module, &dir, py.get()))
                } else {
                    None
                };
                match found {
                    Some(Ok(c)) => out.push(c),
                    Some(Err(reason)) => skipped.push(skip(&dir, reason)),
                    None => skipped.push(skip(
                        &dir,
                        format!("neither {MANIFEST} nor __init__.py: not a plug-in module"),
                    )),
                }
            }
        }
    }
    out
}

fn fault_reason(f: &Fault) -> String {
    match f {
        Fault::Spawn(m) | Fault::Protocol(m) => m.clone(),
        Fault::Pollution(line) => {
            format!("wrote to stdout something that is not a protocol message: {line:?}")
        }
        Fault::Crash { status, stderr_tail } => {
            format!("the module's program ended ({status}) before answering; stderr:\n{stderr_tail}")
        }
        Fault::Deadline { after, stderr_tail } => {
            format!("the module's program did not answer within {after:?}; stderr:\n{stderr_tail}")
        }
    }
}

/// Discovers the built-in plug-ins and every module under `roots`.
pub async fn discover(
    builtins: &[Arc<dyn StorageArrayPlugin>],
    roots: &[PathBuf],
    py: &crate::python::LazyPython,
    deadline: Duration,
) -> Discovered {
    let mut found = Discovered::default();
    for b in builtins {
        found.plugins.push(PluginEntry::built_in(Arc::clone(b)));
    }
    let cands = candidates(roots, py, &mut found.skipped);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, c) in cands.iter().enumerate() {
        let launcher = c.launcher.clone();
        let label = c.dir.display().to_string();
        tasks.spawn(async move { (i, process::describe(&launcher, &label, deadline).await) });
    }
    let mut answers: HashMap<usize, _> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, r)) = joined {
            answers.insert(i, r);
        }
    }
    for (i, c) in cands.into_iter().enumerate() {
        match answers.remove(&i) {
            Some(Ok(hello)) => admit(&mut found, c, hello),
            Some(Err(f)) => found.skipped.push(Skipped {
                path: c.dir.clone(),
                class: None,
                module: c.module.clone(),
                file: None,
                reason: fault_reason(&f),
            }),
            None => found.skipped.push(Skipped {
                path: c.dir.clone(),
                class: None,
                module: c.module.clone(),
                file: None,
                reason: "discovery of this module did not finish".into(),
            }),
        }
    }
    found
}

fn admit(found: &mut Discovered, c: Candidate, hello: spindle_protocol::HelloResult) {
    let skip = |class: Option<String>, file: Option<String>, reason: String| Skipped {
        path: c.dir.clone(),
        class,
        module: None,
        file,
        reason,
    };
    for e in hello.errors {
        if c.module.as_deref() == Some(e.class.as_str()) {
            // The module itself failed to load: it is not a class.
            found.skipped.push(Skipped {
                module: Some(e.class),
                ..skip(None, e.file, e.message)
            });
        } else {
            found.skipped.push(skip(Some(e.class), e.file, e.message));
        }
    }
    for w in &hello.warnings {
        if !found.notes.contains(w) {
            found.notes.push(w.clone());
        }
    }
    if let Some(expected) = &c.expected_classes {
        for class in expected {
            if !hello.classes.iter().any(|d| &d.class == class) {
                found.skipped.push(skip(
                    Some(class.clone()),
                    None,
                    format!("{MANIFEST} lists class {class}, but the program does not offer it"),
                ));
            }
        }
    }
    let mut module_version: Option<(String, spindle_api::PluginVersion)> = None;
    for d in hello.classes {
        if d.kind != PluginKind::StorageArray {
            found.skipped.push(skip(
                Some(d.class),
                d.source,
                "File System plug-ins are not hosted by this version of spindle".into(),
            ));
            continue;
        }
        let metadata = match PluginMetadata::from_value(&d.metadata) {
            Ok(m) => m,
            Err(e) => {
                let reason = match &e {
                    MetadataError::Version(_) => e.to_string(),
                    _ => format!("class variables: {e}"),
                };
                found.skipped.push(skip(Some(d.class), d.source, reason));
                continue;
            }
        };
        match &module_version {
            Some((first, v)) if *v != metadata.plugin_version => {
                found.skipped.push(skip(
                    Some(d.class.clone()),
                    d.source,
                    format!(
                        "plugin_version {} differs from {v} of {first}; every plug-in of one module must have the same version",
                        metadata.plugin_version
                    ),
                ));
                continue;
            }
            Some(_) => {}
            None => module_version = Some((d.class.clone(), metadata.plugin_version.clone())),
        }
        let id = PluginId {
            class: d.class.clone(),
            version: metadata.plugin_version.clone(),
        };
        if let Some(prev) = found.plugins.iter().find(|p| p.id == id) {
            let prev_place = match &prev.origin {
                Origin::BuiltIn => "built into spindle".to_string(),
                Origin::Module { dir, .. } => dir.display().to_string(),
            };
            found.skipped.push(skip(
                Some(d.class),
                d.source,
                format!("{id} is already provided by {prev_place}, which comes first"),
            ));
            continue;
        }
        let mut unknown = Vec::new();
        let implemented: BTreeSet<Method> = d
            .implemented
            .iter()
            .filter_map(|n| {
                let m = Method::parse(n);
                if m.is_none() {
                    unknown.push(n.clone());
                }
                m
            })
            .collect();
        let mut entry = PluginEntry {
            id,
            kind: PluginKind::StorageArray,
            metadata,
            implemented,
            origin: Origin::Module {
                root: c.root.clone(),
                dir: c.dir.clone(),
                runtime: c.runtime,
                source: d.source,
            },
            hosting: Hosting::OutOfProcess(c.launcher.clone()),
            warnings: Vec::new(),
        };
        if !unknown.is_empty() {
            entry.warnings.push(format!(
                "declares methods the API does not have: {}",
                unknown.join(", ")
            ));
        }
        entry.warnings.extend(hello.warnings.iter().cloned());
        entry.check_declarations();
        found.plugins.push(entry);
    }
}
