//! A plug-in in any language: a shell script that speaks the protocol. Also the edges helper
//! reviews found: bytes after the answer, symlinked module directories, records without uuid.

mod common;

use serde_json::json;
use spindle_api::{ExceptionKind, Method};
use spindle_manager::{CallError, Manager, Mode, Rule};
use spindle_testkit::fixture::{args, ss_args, ss_record, PluginRoot};
use spindle_testkit::plugins::GOOD;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A Storage Array plug-in written in POSIX shell: answers hello, then one getStatus call,
/// then (when `POLLUTE` is set in its manifest args) prints a stray line after answering.
const SCRIPT: &str = r#"#!/bin/sh
ability='{"snapshot":"UNSUPPORTED","custom_snap_name":"NO","snap_is_sync":"YES","clone":"UNSUPPORTED","custom_clone_name":"NO","clone_is_sync":"YES","resize":"UNSUPPORTED","resize_is_sync":"YES","splitclone":"UNSUPPORTED","splitclone_is_sync":"YES","splitclone_while_open":"NO","snapclone":"UNSUPPORTED","snapclone_is_sync":"YES","require_storage_name":"NO","access_control":"NO","max_access_entries":-1}'
meta='{"plugin_name":"Shell array","vendor_name":"Example","plugin_version":"0.0.1-1","plugin_desc":"a plug-in in sh","storage_types":["iSCSIStorage"],"plugin_ability":'"$ability"'}'
while IFS= read -r line; do
  case "$line" in
    *'"spindle.hello"'*)
      printf '%s\n' '{"jsonrpc":"2.0","id":0,"result":{"protocol":1,"runtime":"sh","classes":[{"class":"example.shell.Array","kind":"storage_array","metadata":'"$meta"',"implemented":["validate","getStatus"]}],"errors":[]}}' ;;
    *'"method":"validate"'*)
      printf '%s\n' '{"jsonrpc":"2.0","id":1,"result":{"value":null}}' ;;
    *'"plugin.call"'*)
      printf '%s\n' '{"jsonrpc":"2.0","id":1,"result":{"value":"status from sh"}}'
      [ "$1" = pollute ] && echo "debug: done" ;;
  esac
done
"#;

fn shell_module(root: &PluginRoot, module: &str, arg: &str) -> std::path::PathBuf {
    let dir = root.add_dir("example", module).expect("module dir");
    let script = dir.join("array.sh");
    std::fs::write(&script, SCRIPT).expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    root.write_manifest(&dir, &format!("executable = \"array.sh\"\nargs = [\"{arg}\"]\n"))
        .expect("manifest");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_script_plugin_is_hosted_and_stray_bytes_after_the_answer_are_caught() {
    let root = PluginRoot::new(spindle_testkit::testplugin_exe!()).expect("root");
    shell_module(&root, "shell", "quiet");
    let manager = Manager::new(root.config(Mode::Strict)).await.expect("manager");
    let entry = manager
        .resolve("example.shell.Array")
        .expect("the shell plug-in is found");
    let ss = ss_record("ss-shell", "");
    let out = manager
        .call(entry, Method::GetStatus, ss_args(&ss), Default::default())
        .await
        .expect("the call succeeds");
    assert_eq!(out.value, json!("status from sh"));

    let root = PluginRoot::new(spindle_testkit::testplugin_exe!()).expect("root");
    shell_module(&root, "noisy", "pollute");
    let manager = Manager::new(root.config(Mode::Strict)).await.expect("manager");
    let entry = manager.resolve("example.shell.Array").expect("found");
    let err = manager
        .call(entry, Method::GetStatus, ss_args(&ss), Default::default())
        .await
        .expect_err("bytes after the answer fail the call");
    match err {
        CallError::Contract(c) => {
            assert_eq!(c.violations[0].rule, Rule::StdoutPollution);
            assert!(
                c.violations[0].message.contains("debug: done"),
                "{}",
                c.violations[0].message
            );
        }
        other => panic!("expected a contract failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn symlinked_vendor_and_module_directories_are_followed() {
    let real = PluginRoot::with_default_module(spindle_testkit::testplugin_exe!()).expect("root");
    let linked = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(real.path().join("spindle"), linked.path().join("spindle")).expect("symlink");
    let config =
        spindle_testkit::fixture::config(vec![linked.path().to_path_buf()], real.temp_root(), Mode::Strict);
    let manager = Manager::new(config).await.expect("manager");
    assert!(manager.resolve(GOOD).is_ok(), "skipped: {:?}", manager.skipped());
    assert!(Path::new(&linked.path().join("spindle")).is_symlink());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_without_uuid_is_refused_before_any_plugin_runs() {
    let h = common::harness(Mode::Strict).await;
    let mut ss = ss_record("x", "");
    ss.as_object_mut().map(|m| m.remove("uuid"));
    let err = h
        .call(GOOD, Method::GetStatus, args([("ss_record", ss)]))
        .await
        .expect_err("refused");
    match err {
        CallError::Rejected(e) => {
            assert_eq!(
                (e.kind, e.key.as_deref()),
                (ExceptionKind::MissingKeyEx, Some("uuid"))
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(h.manager.invocations(), 0);
}
