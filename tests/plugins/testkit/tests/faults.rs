//! Plug-in processes that crash, hang or write to stdout: each call fails the way the protocol
//! says, and the manager stays usable.

mod common;

use spindle_api::{ExceptionKind, Method, PluginException};
use spindle_manager::{CallError, Rule};
use spindle_testkit::fixture::{ss_args, ss_record, CALL_DEADLINE};
use spindle_testkit::plugins::{
    CRASHY, CRASH_MARKER, CRASH_STATUS, GOOD, HANGS, HANG_MARKER, POLLUTER, POLLUTION_LINE, TEMP_FILE_MARKER,
    VERSION,
};

/// What is left in the manager's temporary directory (per-call directories).
fn leftovers(h: &spindle_testkit::fixture::Harness) -> Vec<String> {
    match std::fs::read_dir(h.root.temp_root()) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The temporary file the failing call reported on stderr: it must be gone.
fn assert_temp_file_removed(h: &spindle_testkit::fixture::Harness, message: &str) {
    let path = message
        .lines()
        .find_map(|l| l.strip_prefix(TEMP_FILE_MARKER))
        .unwrap_or_else(|| panic!("the plug-in did not report its temporary file: {message}"));
    let path = std::path::Path::new(path);
    assert!(path.starts_with(h.root.temp_root()), "{}", path.display());
    assert!(!path.exists(), "{} outlived the failed call", path.display());
    assert_eq!(
        leftovers(h),
        Vec::<String>::new(),
        "the failed call's temporary directory was not removed"
    );
}

fn failed(r: Result<spindle_manager::CallOutcome, CallError>) -> PluginException {
    match r {
        Err(CallError::Failed(e)) => e,
        other => panic!("expected the call to fail, got {other:?}"),
    }
}

#[tokio::test]
async fn a_crash_fails_the_call_with_the_exit_status_and_the_stderr_tail() {
    let h = common::strict().await;
    let e = failed(
        h.call(CRASHY, Method::GetStatus, ss_args(&ss_record("ss-crash", "")))
            .await,
    );
    assert_eq!(e.kind, ExceptionKind::OperationFailedEx);
    assert!(
        e.message.starts_with(&format!(
            "plug-in {CRASHY}@{VERSION} crashed in getStatus (exit status {CRASH_STATUS})"
        )),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(&format!(
            "{CRASH_MARKER}: giving up in getStatus with exit status {CRASH_STATUS}"
        )),
        "the stderr tail is missing: {}",
        e.message
    );
    assert_temp_file_removed(&h, &e.message);
    // The manager goes on serving other calls.
    h.call(GOOD, Method::GetStatus, ss_args(&ss_record("ss-crash", "")))
        .await
        .expect("a later call works");
}

#[tokio::test]
async fn a_process_killed_by_a_signal_fails_the_call_naming_the_signal() {
    let h = common::strict().await;
    let e = failed(
        h.call(CRASHY, Method::GetInfo, ss_args(&ss_record("ss-abort", "")))
            .await,
    );
    assert_eq!(e.kind, ExceptionKind::OperationFailedEx);
    // abort() raises SIGABRT (6).
    assert!(
        e.message.starts_with(&format!(
            "plug-in {CRASHY}@{VERSION} crashed in getInfo (killed by signal 6)"
        )),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains(&format!("{CRASH_MARKER}: aborting in getInfo")),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_hung_plugin_is_killed_at_the_deadline() {
    let h = common::strict().await;
    let e = failed(
        h.call(HANGS, Method::GetStatus, ss_args(&ss_record("ss-hang", "")))
            .await,
    );
    assert_eq!(e.kind, ExceptionKind::OperationFailedEx);
    assert!(
        e.message.starts_with(&format!(
            "plug-in {HANGS}@{VERSION} did not answer getStatus within {} s and was killed",
            CALL_DEADLINE.as_secs()
        )),
        "{}",
        e.message
    );
    let line = e
        .message
        .lines()
        .find(|l| l.starts_with(HANG_MARKER))
        .unwrap_or_else(|| panic!("the stderr tail is missing: {}", e.message));
    let pid: u32 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    // The child was killed and reaped: its /proc entry is gone (or, if the pid was reused at
    // once, belongs to some other program).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    assert!(
        exe.as_ref()
            .is_none_or(|p| !p.to_string_lossy().contains("spindle-testplugin")),
        "the hung plug-in (pid {pid}) is still running"
    );
    assert_temp_file_removed(&h, &e.message);
}

#[tokio::test]
async fn stdout_pollution_is_a_contract_violation_naming_the_plugin() {
    let h = common::strict().await;
    let c = common::contract(
        h.call(POLLUTER, Method::GetStatus, ss_args(&ss_record("ss-pollute", "")))
            .await,
    );
    assert_eq!(c.plugin.to_string(), format!("{POLLUTER}@{VERSION}"));
    assert_eq!(c.method, "getStatus");
    assert_eq!(c.violations.len(), 1, "{c}");
    assert_eq!(c.violations[0].rule, Rule::StdoutPollution);
    assert_eq!(c.violations[0].field, None);
    assert_eq!(
        c.violations[0].message,
        format!("wrote to stdout: {POLLUTION_LINE:?}")
    );
    let shown = c.to_string();
    assert!(
        shown.starts_with(&format!(
            "plug-in {POLLUTER}@{VERSION} broke the contract in getStatus"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("plug-ins never print to standard output"),
        "{shown}"
    );
}
