//! Calls that change a storage server are serialised per server; read-only calls, and calls to
//! different servers, run concurrently.
//!
//! Serialisation is checked from the plug-in's own trace of when each call entered and left
//! (each call is a separate process, so only the manager can keep them apart). Concurrency is
//! checked with a barrier the plug-in processes meet at: a call that waited for the other in
//! vain raises, so these tests cannot pass by luck and assert nothing about speed.

mod common;

use serde_json::Value;
use spindle_api::Method;
use spindle_testkit::fixture::{args, se_record, ss_record, Harness};
use spindle_testkit::plugins::GOOD;

#[derive(Debug)]
struct Span {
    method: String,
    enter: u128,
    exit: u128,
}

fn read_trace(path: &std::path::Path) -> Vec<Span> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            let num = |s: &str| {
                s.parse::<u128>()
                    .unwrap_or_else(|e| panic!("bad trace line {l:?}: {e}"))
            };
            match parts.as_slice() {
                [m, a, b] => Span {
                    method: m.to_string(),
                    enter: num(a),
                    exit: num(b),
                },
                _ => panic!("bad trace line {l:?}"),
            }
        })
        .collect()
}

fn mutating(method: &str) -> bool {
    Method::parse(method).is_some_and(|m| m.spec().mutates)
}

fn se_args(ss: &Value, uuid: &str) -> serde_json::Map<String, Value> {
    args([("ss_record", ss.clone()), ("se_record", se_record(uuid, "a"))])
}

async fn call_ok(h: &Harness, method: Method, a: serde_json::Map<String, Value>) {
    if let Err(e) = h.call(GOOD, method, a).await {
        panic!("{method} failed: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_to_one_server_never_overlap_each_other_or_readers() {
    let h = common::strict().await;
    let trace = h.scratch("trace-serial.log");
    let ss = ss_record("ss-serial", &format!("trace={};delay_ms=120", trace.display()));
    let a = || se_args(&ss, "ss-serial");
    tokio::join!(
        call_ok(&h, Method::Online, a()),
        call_ok(&h, Method::Offline, a()),
        call_ok(&h, Method::Online, a()),
        call_ok(&h, Method::IsCloneable, a()),
        call_ok(&h, Method::GetInfo, a()),
    );
    let spans = read_trace(&trace);
    assert_eq!(spans.len(), 5, "{spans:?}");
    assert_eq!(spans.iter().filter(|s| mutating(&s.method)).count(), 3);
    for (i, x) in spans.iter().enumerate() {
        assert!(x.enter <= x.exit);
        for y in &spans[i + 1..] {
            if mutating(&x.method) || mutating(&y.method) {
                let apart = x.exit <= y.enter || y.exit <= x.enter;
                assert!(
                    apart,
                    "{x:?} and {y:?} ran at the same time on one storage server"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_calls_to_one_server_run_concurrently() {
    let h = common::strict().await;
    let barrier = h.scratch("barrier-readers");
    let ss = ss_record("ss-readers", &format!("barrier={};parties=2", barrier.display()));
    // Each call waits at the barrier until the other arrives; serialised, the first would wait
    // in vain and raise.
    tokio::join!(
        call_ok(&h, Method::IsCloneable, se_args(&ss, "ss-readers")),
        call_ok(&h, Method::GetInfo, se_args(&ss, "ss-readers")),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_calls_to_different_servers_run_concurrently() {
    let h = common::strict().await;
    let barrier = h.scratch("barrier-servers");
    let info = format!("barrier={};parties=2", barrier.display());
    let a = ss_record("ss-server-a", &info);
    let b = ss_record("ss-server-b", &info);
    tokio::join!(
        call_ok(&h, Method::Online, se_args(&a, "ss-server-a")),
        call_ok(&h, Method::Online, se_args(&b, "ss-server-b")),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_barrier_does_catch_serialised_calls() {
    // The check above is only worth something if a lone call at the barrier fails.
    let h = common::strict().await;
    let barrier = h.scratch("barrier-alone");
    let ss = ss_record(
        "ss-alone",
        &format!("barrier={};parties=2;barrier_timeout_ms=100", barrier.display()),
    );
    match h.call(GOOD, Method::IsCloneable, se_args(&ss, "ss-alone")).await {
        Err(spindle_manager::CallError::Raised(e)) => {
            assert!(e.message.contains("only 1 of 2 calls arrived"), "{e}");
        }
        other => panic!("a lone call must not pass the barrier: {other:?}"),
    }
}
