//! Asynchronous operations are driven to completion through getAsyncProgress (each poll a new
//! process, so the plug-in's memory is only the cache or the handle), with progress events in
//! order, and the caller never sees async_progress / async_handle.

mod common;

use serde_json::{json, Value};
use spindle_api::Method;
use spindle_manager::{CallOptions, ProgressEvent};
use spindle_testkit::fixture::{args, se_record, ss_record};
use spindle_testkit::plugins::{page83_for, ASYNC, VERSION};
use tokio::sync::mpsc;

fn drain(rx: &mut mpsc::UnboundedReceiver<ProgressEvent>) -> Vec<ProgressEvent> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        out.push(ev);
    }
    out
}

#[tokio::test]
async fn split_clone_is_polled_to_completion_with_progress_in_order() {
    let h = common::strict().await;
    let ss = ss_record("ss-split", "");
    let se = se_record("ss-split", "clone-1");
    let mut all_events = h.manager.subscribe();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = h
        .manager
        .call(
            h.plugin(ASYNC),
            Method::SplitClone,
            args([("ss_record", ss), ("se_record", se.clone())]),
            CallOptions {
                progress: Some(tx),
                call_id: Some("split-call".into()),
                ..Default::default()
            },
        )
        .await
        .expect("splitClone finishes");

    // splitClone returns nothing once the split is done.
    assert_eq!(out.value, Value::Null);
    assert_eq!(out.call_id, "split-call");
    assert_eq!(out.async_polls, 5, "0 -> 25 -> 50 -> 75 -> 100 -> done");
    let events = drain(&mut rx);
    let progress: Vec<Option<i64>> = events.iter().map(|e| e.progress).collect();
    assert_eq!(progress, [Some(0), Some(25), Some(50), Some(75), Some(100), None]);
    for e in &events {
        assert_eq!(e.call_id, "split-call");
        assert_eq!(e.plugin, format!("{ASYNC}@{VERSION}"));
        assert_eq!(e.method, "splitClone");
    }
    // The broadcast channel sees the same events.
    let mut broadcast = Vec::new();
    while let Ok(ev) = all_events.try_recv() {
        broadcast.push(ev);
    }
    assert_eq!(broadcast, events);
    // The plug-in cleared its progress entry when done.
    let key = format!("progress:split:{}", se["uuid"].as_str().unwrap_or_default());
    assert_eq!(h.manager.cache().get("ss-split", &key), None);
}

#[tokio::test]
async fn clone_is_completed_with_page83_id_and_without_async_fields() {
    let h = common::strict().await;
    let ss = ss_record("ss-clone", "");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = h
        .manager
        .call(
            h.plugin(ASYNC),
            Method::Clone,
            args([("ss_record", ss), ("se_record", se_record("ss-clone", "base"))]),
            CallOptions {
                progress: Some(tx),
                call_id: None,
                ..Default::default()
            },
        )
        .await
        .expect("clone finishes");
    assert_eq!(out.async_polls, 2);
    let progress: Vec<Option<i64>> = drain(&mut rx).iter().map(|e| e.progress).collect();
    assert_eq!(progress, [Some(-1), Some(50), None]);
    let rec = out.value.as_object().expect("clone returns a record");
    assert!(
        !rec.contains_key("async_progress"),
        "async_progress reached the caller: {rec:?}"
    );
    assert!(
        !rec.contains_key("async_handle"),
        "async_handle reached the caller: {rec:?}"
    );
    assert_eq!(rec["name"], "base-clone");
    assert_eq!(rec["page83_id"], json!(page83_for("ss-clone", "base-clone")));
}

/// With `detach_async` the caller gets the first record, async fields and all, and drives
/// getAsyncProgress itself — as the server does so that a job survives its own restart.
#[tokio::test]
async fn detached_clone_returns_the_async_record_and_can_be_polled_by_the_caller() {
    let h = common::strict().await;
    let ss = ss_record("ss-detach", "");
    let first = h
        .manager
        .call(
            h.plugin(ASYNC),
            Method::Clone,
            args([
                ("ss_record", ss.clone()),
                ("se_record", se_record("ss-detach", "base")),
            ]),
            CallOptions {
                detach_async: true,
                ..Default::default()
            },
        )
        .await
        .expect("clone starts");
    assert_eq!(first.async_polls, 0);
    assert_eq!(first.value["async_progress"], json!(-1));
    let mut record = first.value;
    let mut polls = 0;
    while !record["async_progress"].is_null() {
        polls += 1;
        assert!(polls < 10, "never finished: {record}");
        record = h
            .manager
            .call(
                h.plugin(ASYNC),
                Method::GetAsyncProgress,
                args([("ss_record", ss.clone()), ("some_record", record.clone())]),
                CallOptions::default(),
            )
            .await
            .expect("poll")
            .value;
    }
    assert_eq!(polls, 2);
    assert_eq!(record["name"], "base-clone");
}
