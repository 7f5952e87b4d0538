//! Round trip of one call to a Python plug-in through the manager, p50 and p99, with the share
//! that is Python's own start-up.
//!
//! Run: `cargo bench -p spindle-manager --bench python_round_trip`
//! (`SPINDLE_BENCH_CALLS=N` changes the number of calls, default 200.)

use serde_json::{json, Map, Value};
use spindle_api::Method;
use spindle_manager::{python, CallOptions, Manager, ManagerConfig};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<48} n={:<4} p50={:>7.2} ms  p99={:>7.2} ms  min={:>7.2} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
    );
}

fn main() {
    let n: usize = std::env::var("SPINDLE_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python-plugins");
    let interpreter = python::resolve_interpreter("python3");
    println!("interpreter: {}", interpreter.display());

    // Python's own start-up, the floor of any call.
    let bare: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let _ = Command::new(&interpreter)
                .args(["-s", "-c", "pass"])
                .env_remove("PYTHONDONTWRITEBYTECODE")
                .stdout(Stdio::null())
                .status();
            t.elapsed()
        })
        .collect();
    report("python3 -s -c pass (interpreter start-up)", bare);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let state = tempfile::tempdir().expect("tempdir");
        let config = ManagerConfig {
            roots: vec![root],
            ..ManagerConfig::default()
        };
        let manager = Manager::new(config).await.expect("manager");
        let entry = manager
            .resolve("acme.minimal.MinimalArray.MinimalArray")
            .expect("sample plug-in");
        let ss = json!({
            "name": "bench", "uuid": "ss-bench", "storage_type": "iSCSIStorage",
            "access_host": "127.0.0.1", "admin_host": "127.0.0.1", "admin_user": "a", "admin_passwd": "p",
            "extra_info": format!("state_dir={}", state.path().display()),
        });
        let mut args = Map::new();
        args.insert("ss_record".into(), ss);
        // The first call also validates; warm the bytecode cache.
        for _ in 0..3 {
            manager
                .call(
                    entry,
                    Method::GetCapabilities,
                    args.clone(),
                    CallOptions::default(),
                )
                .await
                .expect("warm-up call");
        }
        let mut calls = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let out = manager
                .call(
                    entry,
                    Method::GetCapabilities,
                    args.clone(),
                    CallOptions::default(),
                )
                .await
                .expect("call");
            calls.push(t.elapsed());
            assert!(out.value.is_object());
        }
        report("manager.call getCapabilities (Python plug-in)", calls);
        let mut lists = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let out = manager
                .call(entry, Method::List, args.clone(), CallOptions::default())
                .await
                .expect("call");
            lists.push(t.elapsed());
            assert!(matches!(out.value, Value::Array(_)));
        }
        report("manager.call list (Python plug-in)", lists);
    });
}
