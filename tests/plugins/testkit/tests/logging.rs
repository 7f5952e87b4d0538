//! What plug-ins log (through `host.log`) and write to stderr reaches the host's logger, tagged
//! with the plug-in, the method and the call id; lenient mode logs the violations it tolerates.
//!
//! This file installs a process-wide `tracing` subscriber, so it is its own test binary.

mod common;

use serde_json::Value;
use spindle_api::Method;
use spindle_testkit::fixture::{args, new_se_record, ss_args, ss_record};
use spindle_testkit::plugins::{violate, CRASHY, CRASH_MARKER, GOOD, LOG_PREFIX, VERSION, VIOLATOR};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log record so far, as JSON objects.
fn records() -> Vec<Value> {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    let captured = CAPTURED.get_or_init(|| {
        let c = Captured::default();
        let writer = c.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        if let Err(e) = tracing::subscriber::set_global_default(subscriber) {
            panic!("cannot install the capturing subscriber: {e}");
        }
        c
    });
    let bytes = captured.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn field<'a>(r: &'a Value, k: &str) -> &'a str {
    r["fields"][k].as_str().unwrap_or_default()
}

#[tokio::test]
async fn plugin_log_records_are_tagged_with_plugin_method_and_call_id() {
    records();
    let h = common::strict().await;
    let out = h
        .call(GOOD, Method::GetStatus, ss_args(&ss_record("ss-log", "")))
        .await
        .expect("getStatus");
    let all = records();
    let mine: Vec<&Value> = all
        .iter()
        .filter(|r| field(r, "call_id") == out.call_id)
        .collect();
    let logged = mine
        .iter()
        .find(|r| field(r, "message") == format!("{LOG_PREFIX} {GOOD} getStatus on storage server ss-log"))
        .unwrap_or_else(|| panic!("the plug-in's log record is missing; records of the call: {mine:#?}"));
    assert_eq!(field(logged, "plugin"), format!("{GOOD}@{VERSION}"));
    assert_eq!(field(logged, "method"), "getStatus");
    assert_eq!(logged["level"], "INFO");
    // The implicit validate logs under the same call id, tagged with its own method.
    assert!(
        mine.iter().any(|r| field(r, "method") == "validate"
            && field(r, "message") == format!("{LOG_PREFIX} {GOOD} validate on storage server ss-log")),
        "{mine:#?}"
    );
}

#[tokio::test]
async fn plugin_stderr_goes_to_the_log_naming_the_plugin() {
    records();
    let h = common::strict().await;
    let _ = h
        .call(CRASHY, Method::GetStatus, ss_args(&ss_record("ss-log-crash", "")))
        .await;
    let all = records();
    let line = all
        .iter()
        .find(|r| field(r, "stream") == "stderr" && field(r, "message").starts_with(CRASH_MARKER))
        .unwrap_or_else(|| panic!("Crashy's stderr was not logged"));
    assert_eq!(field(line, "plugin"), format!("{CRASHY}@{VERSION}"));
}

#[tokio::test]
async fn lenient_mode_logs_each_tolerated_violation() {
    records();
    let h = common::lenient().await;
    let uuid = "ss-log-lenient";
    let ss = ss_record(uuid, &format!("violate={}", violate::UPDATE_RULES));
    let out = h
        .call(
            VIOLATOR,
            Method::Create,
            args([
                ("ss_record", ss),
                ("se_record", new_se_record(uuid, "logged-vol", 1 << 30)),
            ]),
        )
        .await
        .expect("lenient mode does not fail the call");
    assert_eq!(out.value["name"], "logged-vol");
    let all = records();
    let warning = all
        .iter()
        .find(|r| {
            field(r, "message").starts_with("contract violation tolerated: field se_record.name")
                && field(r, "message").contains("\"logged-vol\"")
        })
        .unwrap_or_else(|| panic!("the tolerated violation was not logged"));
    assert_eq!(warning["level"], "WARN");
    assert_eq!(field(warning, "plugin"), format!("{VIOLATOR}@{VERSION}"));
    assert_eq!(field(warning, "method"), "create");
}
