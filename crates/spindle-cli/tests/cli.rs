//! The `spindle` command as a user runs it: built-in, Python and broken plug-ins.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Env {
    cache: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn spindle(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(args)
            .env("XDG_CACHE_HOME", self.cache.path())
            .env_remove("SPINDLE_PLUGIN_PATH")
            .env_remove("SPINDLE_PYTHON_LIB")
            .output()
            .expect("spindle runs")
    }
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn samples() -> String {
    repo().join("tests/python-plugins").display().to_string()
}

fn broken() -> String {
    repo().join("tests/python-plugins-broken").display().to_string()
}

fn call(env: &Env, root: Option<&str>, class: &str, method: &str, params: &Value) -> (Output, Value) {
    let p = params.to_string();
    let mut args = vec![];
    if let Some(r) = root {
        args.extend(["--plugin-dir", r]);
    }
    args.extend([
        "--output",
        "json",
        "plugin",
        "call",
        class,
        method,
        "--poll-interval",
        "0.02",
        "--params",
        &p,
    ]);
    let out = env.spindle(&args);
    let v = stdout_json(&out);
    (out, v)
}

fn sim_ss(dir: &Path) -> Value {
    json!({
        "name": "sim", "uuid": "ss-sim-1", "storage_type": "iSCSIStorage",
        "admin_host": "localhost", "admin_user": "admin", "admin_passwd": "s3cr3t-admin",
        "extra_info": format!("state_dir={};split_ms_per_gib=100", dir.display()),
    })
}

#[test]
fn list_shows_built_in_and_python_plugins() {
    let env = Env::new();
    let out = env.spindle(&["--plugin-dir", &samples(), "--output", "json", "plugin", "list"]);
    assert!(out.status.success());
    let v = stdout_json(&out);
    let ids: Vec<&str> = v["plugins"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.contains(&"spindle.sim.SimArray@0.1.0-1"), "{ids:?}");
    assert!(
        ids.contains(&"acme.minimal.MinimalArray.MinimalArray@1.0.0-1"),
        "{ids:?}"
    );
    assert!(ids.contains(&"acme.rich.RichArray.RichArray@2.1.0-3"), "{ids:?}");
    assert_eq!(v["skipped"], json!([]));
    // The table form names the same plug-ins.
    let table = env.spindle(&["--plugin-dir", &samples(), "plugin", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("acme.rich.RichArray.RichArray") && text.contains("built-in"),
        "{text}"
    );
}

#[test]
fn plugin_path_environment_variable_names_roots() {
    let env = Env::new();
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["--output", "json", "plugin", "list"])
        .env("XDG_CACHE_HOME", env.cache.path())
        .env("SPINDLE_PLUGIN_PATH", format!("/nonexistent-root:{}", samples()))
        .output()
        .expect("runs");
    let v = stdout_json(&out);
    let n = v["plugins"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(n, 4, "built-in sim and Linux array, two Python samples: {v}");
    let skipped = v["skipped"].to_string();
    assert!(
        skipped.contains("/nonexistent-root") && skipped.contains("cannot be read"),
        "{skipped}"
    );
}

#[test]
fn show_describes_abilities_methods_and_origin() {
    let env = Env::new();
    let out = env.spindle(&[
        "--plugin-dir",
        &samples(),
        "plugin",
        "show",
        "acme.minimal.MinimalArray.MinimalArray",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "ACME",
        "iSCSIStorage",
        "python",
        "max_access_entries",
        "getCapabilities",
        "generic (supplied by spindle)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let json_out = env.spindle(&["--output", "json", "plugin", "show", "spindle.sim.SimArray"]);
    let v = stdout_json(&json_out);
    assert_eq!(v["metadata"]["plugin_ability"]["splitclone_is_sync"], "NO");
    assert_eq!(
        v["implemented"].as_array().map(Vec::len),
        Some(42),
        "the simulator implements every method"
    );
    let unknown = env.spindle(&["plugin", "show", "no.such.Plugin"]);
    assert_eq!(unknown.status.code(), Some(5));
}

#[test]
fn sim_calls_return_records_exceptions_and_drive_async_splits() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let ss = sim_ss(dir.path());
    let (out, lun) = call(
        &env,
        None,
        "spindle.sim.SimArray",
        "create",
        &json!({"ss_record": ss, "se_record": {"se_type": "LUNType", "ss_uuid": "ss-sim-1", "name": "lun1", "size": 1u64 << 30, "vol_group_name": "pool0"}}),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        lun["page83_id"].as_str().is_some_and(|p| p.starts_with('3')),
        "{lun}"
    );

    // Bad input: refused with the guide's exception naming the key, exit 1, nothing created.
    let (out, err) = call(
        &env,
        None,
        "spindle.sim.SimArray",
        "create",
        &json!({"ss_record": ss, "se_record": {"se_type": "LUNType", "ss_uuid": "ss-sim-1", "name": "lun2", "size": "ten", "vol_group_name": "pool0"}}),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err["exception"], "ValueFormatEx");
    assert_eq!(err["key"], "size");
    let (_, listed) = call(
        &env,
        None,
        "spindle.sim.SimArray",
        "list",
        &json!({"ss_record": ss}),
    );
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    // A missing parameter names the parameter.
    let (out, err) = call(
        &env,
        None,
        "spindle.sim.SimArray",
        "resize",
        &json!({"ss_record": ss, "se_record": lun}),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        (err["exception"].as_str(), err["key"].as_str()),
        (Some("MissingKeyEx"), Some("new_size"))
    );

    // An asynchronous split: progress on stderr, the result has no async fields.
    let (_, clone) = call(
        &env,
        None,
        "spindle.sim.SimArray",
        "clone",
        &json!({"ss_record": ss, "se_record": lun, "dest_se_record": {"se_type": "SnapCloneType", "ss_uuid": "ss-sim-1", "name": "c1"}}),
    );
    let (out, v) = call(
        &env,
        None,
        "spindle.sim.SimArray",
        "splitClone",
        &json!({"ss_record": ss, "se_record": clone}),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(v, Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("splitClone") && stderr.contains("done"),
        "{stderr}"
    );
    let (_, info) = call(
        &env,
        None,
        "spindle.sim.SimArray",
        "getInfo",
        &json!({"ss_record": ss, "se_record": clone}),
    );
    assert_eq!(
        info["se_type"], "LUNType",
        "the split clone is an ordinary LUN: {info}"
    );
    assert!(info.get("async_progress").is_none() && info.get("async_handle").is_none());
}

#[test]
fn secrets_never_reach_the_output() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let ss = sim_ss(dir.path());
    let (out, v) = call(
        &env,
        None,
        "spindle.sim.SimArray",
        "getInfo",
        &json!({"ss_record": ss}),
    );
    assert!(out.status.success());
    assert_eq!(v["admin_passwd"], "********");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("s3cr3t-admin"), "{all}");
}

#[test]
fn unknown_method_and_malformed_params_are_explained() {
    let env = Env::new();
    let out = env.spindle(&[
        "--output",
        "json",
        "plugin",
        "call",
        "spindle.sim.SimArray",
        "frobnicate",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["exception"], "NoSuchOperationEx");
    let out = env.spindle(&[
        "plugin",
        "call",
        "spindle.sim.SimArray",
        "list",
        "--params",
        "{not json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let out = env.spindle(&[
        "--output",
        "json",
        "plugin",
        "call",
        "spindle.sim.SimArray",
        "list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["key"], "ss_record");
}

fn minimal_ss(dir: &Path) -> Value {
    json!({
        "name": "mini", "uuid": "ss-mini-1", "storage_type": "iSCSIStorage",
        "access_host": "127.0.0.1", "admin_host": "127.0.0.1", "admin_user": "admin", "admin_passwd": "pw",
        "extra_info": format!("state_dir={}", dir.display()),
    })
}

#[test]
fn python_minimal_plugin_answers_under_strict_contract_checks() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let ss = minimal_ss(dir.path());
    let root = samples();
    let class = "acme.minimal.MinimalArray.MinimalArray";
    let (out, caps) = call(
        &env,
        Some(&root),
        class,
        "getCapabilities",
        &json!({"ss_record": ss}),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(caps.as_object().map(|m| m.len()), Some(16), "{caps}");
    let (out, info) = call(&env, Some(&root), class, "getInfo", &json!({"ss_record": ss}));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(info["storage_desc"].is_string(), "{info}");
    let (out, names) = call(
        &env,
        Some(&root),
        class,
        "getStorageNames",
        &json!({"ss_record": ss}),
    );
    assert!(out.status.success());
    assert_eq!(names, json!([]));
}

fn rich_ss(dir: &Path, storage_type: &str) -> Value {
    json!({
        "name": "rich", "uuid": format!("ss-rich-{storage_type}"), "storage_type": storage_type,
        "access_host": "127.0.0.1", "admin_host": "127.0.0.1", "admin_user": "admin", "admin_passwd": "pw",
        "extra_info": format!("state_dir={} split_step=25", dir.display()),
    })
}

#[test]
fn python_rich_plugin_creates_clones_splits_with_progress_and_raises_with_keys() {
    let env = Env::new();
    let root = samples();
    let class = "acme.rich.RichArray.RichArray";
    for storage_type in ["iSCSIStorage", "SANStorage"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let ss = rich_ss(dir.path(), storage_type);
        let uuid = ss["uuid"].clone();
        let (out, info) = call(&env, Some(&root), class, "getInfo", &json!({"ss_record": ss}));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pool = info["vol_groups"][0]["vol_name"].clone();
        let (out, lun) = call(
            &env,
            Some(&root),
            class,
            "create",
            &json!({"ss_record": ss, "se_record": {"se_type": "LUNType", "ss_uuid": uuid, "name": "vm1", "size": 1u64 << 30, "vol_group_name": pool}}),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(lun["page83_id"].is_string(), "{lun}");

        // MissingKeyEx carries its key through the runner and the manager.
        let (out, err) = call(
            &env,
            Some(&root),
            class,
            "create",
            &json!({"ss_record": ss, "se_record": {"se_type": "LUNType", "ss_uuid": uuid, "name": "vm2", "vol_group_name": pool}}),
        );
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            (err["exception"].as_str(), err["key"].as_str()),
            (Some("MissingKeyEx"), Some("size")),
            "{err}"
        );

        let (out, clone) = call(
            &env,
            Some(&root),
            class,
            "clone",
            &json!({"ss_record": ss, "se_record": lun, "dest_se_record": {"se_type": "SnapCloneType", "ss_uuid": uuid, "name": "vm1-clone"}}),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (out, v) = call(
            &env,
            Some(&root),
            class,
            "splitClone",
            &json!({"ss_record": ss, "se_record": clone}),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(v, Value::Null);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("splitClone") && stderr.contains("done"),
            "{stderr}"
        );
    }
}

#[test]
fn broken_python_modules_are_each_explained() {
    let env = Env::new();
    let out = env.spindle(&["--plugin-dir", &broken(), "--output", "json", "plugin", "list"]);
    assert!(out.status.success());
    let v = stdout_json(&out);
    let skipped = v["skipped"].as_array().cloned().unwrap_or_default();
    let reason_for = |module: &str| -> String {
        skipped
            .iter()
            .filter(|s| s["path"].as_str().is_some_and(|p| p.ends_with(module)))
            .map(|s| s["reason"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let expect = [
        ("importerror", "ModuleNotFoundError"),
        ("classimport", "NameError"),
        ("unresolved", "does not resolve"),
        ("missingvar", "plugin_ability"),
        ("badversion", "Major.Minor.Patch-Release"),
        ("mixedversions", "same version"),
        ("wrongbase", "does not derive from"),
    ];
    for (module, needle) in expect {
        let r = reason_for(module);
        assert!(
            r.contains(needle),
            "module {module}: expected {needle:?} in {r:?}"
        );
    }
    // The good class of the mixed-version module is still usable.
    let ids: Vec<&str> = v["plugins"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["class"].as_str())
        .collect();
    assert!(ids.contains(&"faulty.mixedversions.First.First"), "{ids:?}");
}

#[test]
fn conformance_kit_passes_the_simulator_and_reports_in_three_formats() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let ss_file = dir.path().join("ss.json");
    let state = dir.path().join("state");
    let ss = json!({
        "name": "kit", "uuid": "ss-kit-1", "storage_type": "iSCSIStorage",
        "admin_host": "localhost", "admin_user": "admin", "admin_passwd": "kit-secret",
        "extra_info": format!("state_dir={};split_ms_per_gib=50", state.display()),
    });
    std::fs::write(&ss_file, ss.to_string()).expect("write");
    let f = ss_file.display().to_string();
    let base = [
        "conformance",
        "spindle.sim.SimArray",
        "--ss-record",
        f.as_str(),
        "--poll-interval",
        "0.02",
    ];
    let out = env.spindle(&base);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    assert!(last.ends_with("skipped") && last.contains(" 0 failed"), "{last}");
    assert!(!text.contains("kit-secret"));

    let mut json_args = base.to_vec();
    json_args.extend(["--report", "json", "--only", "create.*"]);
    let v = stdout_json(&env.spindle(&json_args));
    assert!(v.to_string().contains("create.page83_id"), "{v}");

    let mut junit = base.to_vec();
    junit.extend(["--report", "junit", "--only", "declarations.*"]);
    let xml = String::from_utf8_lossy(&env.spindle(&junit).stdout).into_owned();
    assert!(
        xml.starts_with("<?xml") && xml.contains("<testsuite") && xml.contains("declarations.plugin_version"),
        "{xml}"
    );
}

fn conformance_broken() -> String {
    repo().join("tests/conformance-broken").display().to_string()
}

fn brokenco_ss(dir: &Path) -> Value {
    json!({
        "name": "brokenco", "uuid": "ss-brokenco-1", "storage_type": "iSCSIStorage",
        "admin_host": "192.0.2.10", "access_host": "192.0.2.10",
        "extra_info": format!("state_dir={}", dir.display()),
    })
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_stuck_asynchronous_operation_ends_plugin_call_with_exit_4() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let ss = brokenco_ss(dir.path());
    let root = conformance_broken();
    let class = "brokenco.asyncstuck.Array.Array";
    let (out, lun) = call(
        &env,
        Some(&root),
        class,
        "create",
        &json!({"ss_record": ss, "se_record": {"name": "l1", "size": 1048576}}),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let params = json!({"ss_record": ss, "se_record": lun}).to_string();
    for (flag, needles) in [
        (
            "--async-stall",
            &[
                "asynchronous createSnap",
                "stayed at 50",
                "1 s",
                "async stall limit",
            ][..],
        ),
        ("--async-timeout", &["within the limit of 1 s"][..]),
    ] {
        let started = std::time::Instant::now();
        let out = env.spindle(&[
            "--plugin-dir",
            &root,
            "plugin",
            "call",
            class,
            "createSnap",
            "--poll-interval",
            "0.05",
            flag,
            "1",
            "--params",
            &params,
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(4), "{flag}: {stdout}\n{stderr}");
        // A hang guard, not a measurement: the call must end at all.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        for needle in needles {
            assert!(stdout.contains(needle), "{flag}: {needle:?} in {stdout}");
        }
    }
}

#[test]
fn a_plugin_found_but_skipped_is_explained_and_fails_conformance() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = repo()
        .join("tests/python-plugins-misdeclared")
        .display()
        .to_string();
    let class = "typoco.abilitytypo.Array.Array";
    let ss = brokenco_ss(dir.path());
    let params = json!({ "ss_record": ss }).to_string();
    let out = env.spindle(&[
        "--plugin-dir",
        &root,
        "plugin",
        "call",
        class,
        "getCapabilities",
        "--params",
        &params,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(5), "{stdout}\n{stderr}");
    assert!(!stderr.contains("is installed"), "{stderr}");
    for needle in [
        "was found but not loaded",
        "ability key 'snap_is_synch' is not one of the 16 keys",
        "did you mean 'snap_is_sync'",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }

    let ss_file = dir.path().join("ss.json");
    std::fs::write(&ss_file, ss.to_string()).expect("write");
    let f = ss_file.display().to_string();
    let out = env.spindle(&["--plugin-dir", &root, "conformance", class, "--ss-record", &f]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("  declarations.plugin_ability  "))
        .unwrap_or_default();
    assert!(
        line.starts_with("FAIL")
            && line.contains("snap_is_synch")
            && line.contains("did you mean 'snap_is_sync'"),
        "{stdout}"
    );
}

#[test]
fn the_guides_python_2_vendor_init_is_tolerated_and_noted_once() {
    let env = Env::new();
    let root = repo().join("tests/python-plugins-appb").display().to_string();
    let class = "appbco.minimal.Array.Array";
    let out = env.spindle(&["--plugin-dir", &root, "plugin", "list"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(class), "{stdout}");
    assert!(!stdout.contains("Skipped"), "{stdout}");
    let note = "vendor package appbco: ";
    assert_eq!(stdout.matches(note).count(), 1, "{stdout}");
    assert!(
        stdout.contains("is not Python 3 (the guide's generated file?)"),
        "{stdout}"
    );
    let v = stdout_json(&env.spindle(&["--plugin-dir", &root, "--output", "json", "plugin", "list"]));
    assert_eq!(v["skipped"], json!([]));
    assert_eq!(v["notes"].as_array().map(Vec::len), Some(1), "{v}");
    let out = env.spindle(&["--plugin-dir", &root, "plugin", "show", class]);
    let (stdout, _) = text(&out);
    assert!(out.status.success() && stdout.contains(note), "{stdout}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, v) = call(
        &env,
        Some(&root),
        class,
        "getStorageNames",
        &json!({ "ss_record": brokenco_ss(dir.path()) }),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(v, json!([]));
}

#[test]
fn a_module_that_fails_to_import_is_labelled_as_a_module() {
    let env = Env::new();
    let out = env.spindle(&["--plugin-dir", &broken(), "plugin", "list"]);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("(module faulty.importerror, file "), "{stdout}");
    assert!(!stdout.contains("(class faulty.importerror,"), "{stdout}");
}

#[test]
fn a_plugin_that_prints_gets_one_warning_line_from_plugin_call() {
    let env = Env::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = conformance_broken();
    let (out, v) = call(
        &env,
        Some(&root),
        "brokenco.prints.Array.Array",
        "getStorageNames",
        &json!({ "ss_record": brokenco_ss(dir.path()) }),
    );
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(v, json!([]));
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("standard output")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("warning: the plug-in wrote"), "{stderr}");
}

#[test]
fn unreadable_files_exit_5_and_an_unmatched_pattern_exits_2() {
    let env = Env::new();
    let out = env.spindle(&[
        "conformance",
        "spindle.sim.SimArray",
        "--ss-record",
        "/nonexistent/ss.json",
    ]);
    assert_eq!(out.status.code(), Some(5), "{:?}", text(&out));
    let out = env.spindle(&[
        "plugin",
        "call",
        "spindle.sim.SimArray",
        "getCapabilities",
        "--params",
        "@/nonexistent/params.json",
    ]);
    assert_eq!(out.status.code(), Some(5), "{:?}", text(&out));
    let dir = tempfile::tempdir().expect("tempdir");
    let ss_file = dir.path().join("ss.json");
    std::fs::write(&ss_file, sim_ss(dir.path()).to_string()).expect("write");
    let f = ss_file.display().to_string();
    let out = env.spindle(&[
        "conformance",
        "spindle.sim.SimArray",
        "--ss-record",
        &f,
        "--only",
        "nomatch*",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--only") && stderr.contains("'nomatch*'"),
        "{stderr}"
    );
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_with_the_broken_pipe_status() {
    use std::process::Stdio;
    for args in [
        vec!["--plugin-dir", &samples(), "plugin", "list"],
        vec!["completions", "bash"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(&args)
            .env_remove("SPINDLE_PLUGIN_PATH")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spindle runs");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("waits");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // 128 + SIGPIPE, as a shell reports a program a closed pipe stopped: never a pass.
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
    }
}

#[test]
fn a_log_written_to_a_file_or_pipe_has_no_colour_codes() {
    let env = Env::new();
    let state = tempfile::tempdir().expect("tempdir");
    let p = json!({"ss_record": sim_ss(state.path())}).to_string();
    let out = env.spindle(&[
        "--log-level",
        "debug",
        "--output",
        "json",
        "plugin",
        "call",
        "spindle.sim.SimArray",
        "getCapabilities",
        "--params",
        &p,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("DEBUG"), "the call is logged at debug: {log}");
    assert!(!log.contains('\u{1b}'), "escape codes in a piped log: {log:?}");
}
