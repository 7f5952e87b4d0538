//! Out-of-process round trip of one call through `Manager::call` to the test plug-in program
//! (spawn, `spindle.hello`, `plugin.call`, host requests, exit), reported as p50 / p99 / max
//! latency over many calls, for a small call (`getCapabilities`) and a large one (`list` of
//! 1,000 elements).
//!
//! Run (300 calls per series, release build of the plug-in program):
//!     cargo bench -p spindle-testkit --bench roundtrip
//! Another count:
//!     SPINDLE_BENCH_CALLS=1000 cargo bench -p spindle-testkit --bench roundtrip
//! Without `--bench` (as `cargo test --benches` runs it) it makes 3 calls per series, as a
//! smoke test.

use serde_json::{Map, Value};
use spindle_api::Method;
use spindle_manager::{CallOptions, Manager, Mode, PluginEntry};
use spindle_testkit::fixture::{ss_args, ss_record, PluginRoot};
use spindle_testkit::plugins::GOOD;
use std::time::{Duration, Instant};

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

async fn series(
    manager: &Manager,
    entry: &PluginEntry,
    label: &str,
    method: Method,
    args: &Map<String, Value>,
    calls: usize,
) {
    // Warm up: validation, page cache, the program's first start.
    for _ in 0..calls.min(10) {
        if let Err(e) = manager
            .call(entry, method, args.clone(), CallOptions::default())
            .await
        {
            panic!("{label}: {e}");
        }
    }
    let mut samples = Vec::with_capacity(calls);
    let all = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        let out = manager
            .call(entry, method, args.clone(), CallOptions::default())
            .await;
        samples.push(t.elapsed());
        if let Err(e) = out {
            panic!("{label}: {e}");
        }
    }
    let total = all.elapsed();
    samples.sort();
    let mean = total / calls as u32;
    println!(
        "{label:<40} calls={calls:<5} p50={:<11} p99={:<11} min={:<11} max={:<11} mean={}",
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        ms(mean),
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let calls = if full {
        std::env::var("SPINDLE_BENCH_CALLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300)
    } else {
        3
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async {
        let root = PluginRoot::with_default_module(spindle_testkit::testplugin_exe!())
            .unwrap_or_else(|e| panic!("root: {e}"));
        let mut config = root.config(Mode::Strict);
        config.call_deadline = Duration::from_secs(30);
        let manager = Manager::new(config)
            .await
            .unwrap_or_else(|e| panic!("manager: {e}"));
        let entry = manager.resolve(GOOD).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "out-of-process round trip through Manager::call ({})",
            spindle_testkit::testplugin_exe!()
        );
        series(
            &manager,
            entry,
            "getCapabilities (small answer)",
            Method::GetCapabilities,
            &ss_args(&ss_record("ss-bench", "")),
            calls,
        )
        .await;
        series(
            &manager,
            entry,
            "list (1,000 se_records)",
            Method::List,
            &ss_args(&ss_record("ss-bench-list", "elements=1000")),
            calls,
        )
        .await;
    });
}
