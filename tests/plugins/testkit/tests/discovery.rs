//! Discovery of a root holding good and broken modules: each broken one is skipped with its
//! reason, and the good ones are still found.

use spindle_manager::{Hosting, Manager, Mode, ModuleRuntime, Origin, Skipped};
use spindle_testkit::fixture::{PluginRoot, MODULE_EXECUTABLE};
use spindle_testkit::plugins::{
    BAD_VERSION, DEFAULT_CLASSES, EXTRA, HELLO_CRASH_MARKER, HELLO_CRASH_STATUS, MALFORMED_VERSION,
    OTHER_VERSION, VERSION, VERSION_A, VERSION_B,
};
use std::path::{Path, PathBuf};

fn skipped_at<'a>(m: &'a Manager, dir: &Path, class: Option<&str>) -> &'a Skipped {
    m.skipped()
        .iter()
        .find(|s| s.path == dir && s.class.as_deref() == class)
        .unwrap_or_else(|| {
            panic!(
                "{} ({class:?}) was not skipped; skipped: {:#?}",
                dir.display(),
                m.skipped()
            )
        })
}

fn assert_reason(s: &Skipped, needle: &str) {
    assert!(
        s.reason.contains(needle),
        "expected {needle:?} in the reason for {}: {:?}",
        s.path.display(),
        s.reason
    );
}

struct Layout {
    root: PluginRoot,
    good: PathBuf,
    extra: PathBuf,
    malformed: PathBuf,
    missing_exe: PathBuf,
    dotdot: PathBuf,
    absolute: PathBuf,
    not_executable: PathBuf,
    crash_at_hello: PathBuf,
    mixed: PathBuf,
    bad_version: PathBuf,
    empty: PathBuf,
    python_without_package: PathBuf,
}

fn layout() -> std::io::Result<Layout> {
    let root = PluginRoot::new(spindle_testkit::testplugin_exe!())?;
    let good = root.add_module("spindle", "testplugin", "default", Some(&DEFAULT_CLASSES))?;
    // Declares a class the program does not offer: that class is reported, Extra still found.
    let extra = root.add_module("acme", "extra", "extra", Some(&[EXTRA, "spindle.test.Ghost"]))?;

    let malformed = root.add_dir("broken", "malformed")?;
    root.link_program(&malformed)?;
    root.write_manifest(&malformed, "executable = [\"bin/spindle-testplugin\"\n")?;

    let missing_exe = root.add_dir("broken", "missing_exe")?;
    root.write_manifest(&missing_exe, "executable = \"bin/not-there\"\n")?;

    let dotdot = root.add_dir("broken", "dotdot")?;
    root.write_manifest(
        &dotdot,
        "executable = \"../../spindle/testplugin/bin/spindle-testplugin\"\n",
    )?;

    let absolute = root.add_dir("broken", "absolute")?;
    root.write_manifest(
        &absolute,
        &format!("executable = \"{}\"\n", spindle_testkit::testplugin_exe!()),
    )?;

    let not_executable = root.add_dir("broken", "not_executable")?;
    std::fs::create_dir_all(not_executable.join("bin"))?;
    std::fs::write(not_executable.join(MODULE_EXECUTABLE), "#!/bin/sh\nexit 0\n")?;
    root.write_manifest(
        &not_executable,
        &format!("executable = \"{MODULE_EXECUTABLE}\"\n"),
    )?;

    let crash_at_hello = root.add_module("broken", "crash_at_hello", "crash-at-hello", None)?;
    let mixed = root.add_module("broken", "mixed", "mixed-versions", None)?;
    let bad_version = root.add_module("broken", "bad_version", "bad-version", None)?;

    let empty = root.add_dir("broken", "empty")?;
    std::fs::write(empty.join("README"), "not a module")?;

    // A Python module whose vendor directory is not a package.
    let python_without_package = root.add_dir("pyvendor", "pymodule")?;
    std::fs::write(
        python_without_package.join("__init__.py"),
        "osc_isa_plugins = []\n",
    )?;

    Ok(Layout {
        root,
        good,
        extra,
        malformed,
        missing_exe,
        dotdot,
        absolute,
        not_executable,
        crash_at_hello,
        mixed,
        bad_version,
        empty,
        python_without_package,
    })
}

#[tokio::test]
async fn broken_modules_are_skipped_with_their_reasons_and_good_ones_are_found() {
    let l = layout().expect("layout");
    let m = Manager::new(l.root.config(Mode::Strict)).await.expect("manager");

    // The good ones.
    let mut found: Vec<String> = m.plugins().iter().map(|p| p.id.to_string()).collect();
    found.sort();
    let mut want: Vec<String> = DEFAULT_CLASSES
        .iter()
        .chain([EXTRA, VERSION_A].iter())
        .map(|c| format!("{c}@{VERSION}"))
        .collect();
    want.sort();
    assert_eq!(found, want, "skipped: {:#?}", m.skipped());
    for p in m.plugins() {
        assert!(matches!(p.hosting, Hosting::OutOfProcess(_)));
        match &p.origin {
            Origin::Module {
                runtime, dir, root, ..
            } => {
                assert_eq!(*runtime, ModuleRuntime::Native);
                assert_eq!(root, &l.root.path());
                assert!([&l.good, &l.extra, &l.mixed].contains(&dir), "{}", dir.display());
            }
            other => panic!("{} came from {other:?}", p.id),
        }
        assert!(p.warnings.is_empty(), "{}: {:?}", p.id, p.warnings);
    }

    // Module-level reasons.
    assert_reason(
        skipped_at(&m, &l.malformed, None),
        "spindle-module.toml is malformed",
    );
    let missing = skipped_at(&m, &l.missing_exe, None);
    assert_reason(missing, "executable");
    assert_reason(missing, "bin/not-there cannot be used");
    assert_reason(
        skipped_at(&m, &l.dotdot, None),
        "must be a path inside the module directory (relative, no '..')",
    );
    assert_reason(
        skipped_at(&m, &l.absolute, None),
        "must be a path inside the module directory",
    );
    assert_reason(
        skipped_at(&m, &l.not_executable, None),
        "is not an executable file",
    );
    let crash = skipped_at(&m, &l.crash_at_hello, None);
    assert_reason(crash, &format!("exit status {HELLO_CRASH_STATUS}"));
    assert_reason(crash, HELLO_CRASH_MARKER);
    assert_reason(
        skipped_at(&m, &l.empty, None),
        "neither spindle-module.toml nor __init__.py",
    );
    assert_reason(
        skipped_at(&m, &l.python_without_package, None),
        "has no __init__.py, so Python cannot import pyvendor.pymodule",
    );

    // Class-level reasons.
    let b = skipped_at(&m, &l.mixed, Some(VERSION_B));
    assert_reason(
        b,
        &format!("plugin_version {OTHER_VERSION} differs from {VERSION} of {VERSION_A}"),
    );
    assert_reason(b, "every plug-in of one module must have the same version");
    assert_reason(
        skipped_at(&m, &l.bad_version, Some(BAD_VERSION)),
        &format!("plugin_version '{MALFORMED_VERSION}' is not of the form Major.Minor.Patch-Release"),
    );
    assert_reason(
        skipped_at(&m, &l.extra, Some("spindle.test.Ghost")),
        "lists class spindle.test.Ghost, but the program does not offer it",
    );

    // Nothing else was skipped, and nothing was skipped twice.
    assert_eq!(m.skipped().len(), 11, "{:#?}", m.skipped());
}

#[tokio::test]
async fn a_module_offered_twice_is_found_once() {
    let root = PluginRoot::new(spindle_testkit::testplugin_exe!()).expect("root");
    let first = root
        .add_module("a_vendor", "extra", "extra", None)
        .expect("module");
    let second = root
        .add_module("b_vendor", "extra", "extra", None)
        .expect("module");
    let m = Manager::new(root.config(Mode::Strict)).await.expect("manager");
    let ids: Vec<String> = m.plugins().iter().map(|p| p.id.to_string()).collect();
    assert_eq!(ids, [format!("{EXTRA}@{VERSION}")]);
    match &m.plugins()[0].origin {
        Origin::Module { dir, .. } => assert_eq!(dir, &first),
        other => panic!("{other:?}"),
    }
    let s = skipped_at(&m, &second, Some(EXTRA));
    assert_reason(
        s,
        &format!("{EXTRA}@{VERSION} is already provided by {}", first.display()),
    );
}

#[tokio::test]
async fn an_unreadable_root_is_reported_not_fatal() {
    let root = PluginRoot::new(spindle_testkit::testplugin_exe!()).expect("root");
    root.add_module("spindle", "extra", "extra", None)
        .expect("module");
    let missing = root.scratch().join("no-such-root");
    let mut config = root.config(Mode::Strict);
    config.roots.insert(0, missing.clone());
    let m = Manager::new(config).await.expect("manager");
    assert_eq!(m.plugins().len(), 1);
    assert_reason(skipped_at(&m, &missing, None), "plug-ins root cannot be read");
}
