//! `spindle-loadgen`: an open-loop load generator for spindle's HTTP API.
//!
//! Requests are scheduled at a fixed rate whatever the answers take; each one's latency is
//! measured from its scheduled time (so a stalled server shows up as latency, not as a lower
//! rate). Workers keep their connections alive. GET only.
//!
//! ```text
//! spindle-loadgen --url http://127.0.0.1:7480 --token-file /var/lib/spindle/token \
//!     --rate 500 --duration 10 --path /v1/servers/local/luns --path /v1/servers/local/luns/db1
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: spindle-loadgen --url URL (--token TOKEN | --token-file FILE | env SPINDLE_TOKEN)
                       --path PATH [--path PATH ...] [--rate REQ_PER_S (500)] [--duration SECS (10)]
                       [--warmup SECS (1)] [--connections N (32)] [--cacert PEM] [--max-p99-ms MS] [--json]";

#[derive(Debug)]
struct Options {
    url: String,
    token: String,
    paths: Vec<String>,
    rate: f64,
    duration: f64,
    warmup: f64,
    connections: usize,
    cacert: Option<String>,
    max_p99_ms: Option<f64>,
    json: bool,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut url = None;
    let mut token = None;
    let mut token_file = None;
    let mut paths = Vec::new();
    let mut rate = 500.0;
    let mut duration = 10.0;
    let mut warmup = 1.0;
    let mut connections = 32;
    let mut cacert = None;
    let mut max_p99_ms = None;
    let mut json = false;
    let mut args = args.peekable();
    fn number<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => url = args.next(),
            "--token" => token = args.next(),
            "--token-file" => token_file = args.next(),
            "--path" => paths.push(args.next().ok_or("--path needs a value")?),
            "--rate" => rate = number("--rate", args.next())?,
            "--duration" => duration = number("--duration", args.next())?,
            "--warmup" => warmup = number("--warmup", args.next())?,
            "--connections" => connections = number("--connections", args.next())?,
            "--cacert" => cacert = args.next(),
            "--max-p99-ms" => max_p99_ms = Some(number("--max-p99-ms", args.next())?),
            "--json" => json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let token = match (token, token_file) {
        (Some(t), _) => t,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| format!("--token-file {f}: {e}"))?
            .trim()
            .to_owned(),
        (None, None) => std::env::var("SPINDLE_TOKEN")
            .map_err(|_| "a token is required (--token, --token-file or SPINDLE_TOKEN)")?,
    };
    if paths.is_empty() {
        return Err("at least one --path is required".into());
    }
    if paths.iter().any(|p| !p.starts_with('/')) {
        return Err("--path must start with /".into());
    }
    if !(rate > 0.0 && rate <= 100_000.0) {
        return Err("--rate must be in (0, 100000]".into());
    }
    let duration_ok = duration > 0.0 && duration <= 3600.0;
    if !duration_ok || !(0.0..=600.0).contains(&warmup) {
        return Err("--duration must be in (0, 3600], --warmup in [0, 600]".into());
    }
    if connections == 0 || connections > 1024 {
        return Err("--connections must be in [1, 1024]".into());
    }
    Ok(Options {
        url: url.trim_end_matches('/').to_owned(),
        token,
        paths,
        rate,
        duration,
        warmup,
        connections,
        cacert,
        max_p99_ms,
        json,
    })
}

#[derive(Default)]
struct Tally {
    /// From the due time to the end of the answer.
    latencies: Vec<Duration>,
    /// From the actual send to the end of the answer.
    service: Vec<Duration>,
    ok: u64,
    failed: Vec<String>,
    last_end: Option<Instant>,
}

fn agent(opts: &Options) -> Result<ureq::Agent, String> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .max_idle_connections_per_host(1)
        .max_idle_connections(1);
    if let Some(file) = &opts.cacert {
        let pem = std::fs::read(file).map_err(|e| format!("--cacert {file}: {e}"))?;
        let cert = ureq::tls::Certificate::from_pem(&pem).map_err(|e| format!("--cacert {file}: {e}"))?;
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        );
    }
    Ok(config.build().new_agent())
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("spindle-loadgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let urls: Arc<Vec<String>> = Arc::new(opts.paths.iter().map(|p| format!("{}{p}", opts.url)).collect());
    let auth = Arc::new(format!("Bearer {}", opts.token));
    let warm = (opts.rate * opts.warmup).round() as u64;
    let measured = ((opts.rate * opts.duration).round() as u64).max(1);
    let interval = Duration::from_secs_f64(1.0 / opts.rate);

    // Request i is due at start + i * interval; worker k sends requests k, k + N, k + 2N, ...
    // A worker still busy when its next request is due sends it late, and that wait counts
    // in the latency (measured from the due time), as it would for a real client.
    let start = Instant::now() + Duration::from_millis(50);
    let n = opts.connections as u64;
    let mut workers = Vec::new();
    for k in 0..n {
        let agent = match agent(&opts) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("spindle-loadgen: {e}");
                return ExitCode::from(2);
            }
        };
        let urls = urls.clone();
        let auth = auth.clone();
        workers.push(std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut i = k;
            while i < warm + measured {
                let due = start + interval.mul_f64(i as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let sent = Instant::now();
                let outcome = agent
                    .get(&urls[(i as usize) % urls.len()])
                    .header("authorization", auth.as_str())
                    .call()
                    .map_err(|e| format!("error: {e}"))
                    .and_then(|mut r| {
                        let status = r.status().as_u16();
                        r.body_mut()
                            .with_config()
                            .limit(64 << 20)
                            .read_to_vec()
                            .map_err(|e| format!("body: {e}"))?;
                        if (200..300).contains(&status) {
                            Ok(())
                        } else {
                            Err(format!("status {status}"))
                        }
                    });
                let end = Instant::now();
                if i >= warm {
                    tally.latencies.push(end.saturating_duration_since(due));
                    tally.service.push(end.saturating_duration_since(sent));
                    tally.last_end = Some(tally.last_end.map_or(end, |t| t.max(end)));
                    match outcome {
                        Ok(()) => tally.ok += 1,
                        Err(e) => tally.failed.push(e),
                    }
                }
                i += n;
            }
            tally
        }));
    }
    let first_measured = Some(start + interval.mul_f64(warm as f64));
    let mut total = Tally::default();
    for w in workers {
        match w.join() {
            Ok(t) => {
                total.latencies.extend(t.latencies);
                total.service.extend(t.service);
                total.ok += t.ok;
                total.failed.extend(t.failed);
                total.last_end = match (total.last_end, t.last_end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            Err(_) => {
                eprintln!("spindle-loadgen: a worker panicked");
                return ExitCode::from(2);
            }
        }
    }
    total.latencies.sort_unstable();
    total.service.sort_unstable();
    let done = total.latencies.len() as f64;
    let elapsed = match (first_measured, total.last_end) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let achieved = if elapsed > 0.0 { done / elapsed } else { 0.0 };
    let p50 = percentile(&total.latencies, 0.50);
    let p90 = percentile(&total.latencies, 0.90);
    let p99 = percentile(&total.latencies, 0.99);
    let max = total.latencies.last().copied().unwrap_or_default();
    let mut kinds: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in &total.failed {
        *kinds.entry(f.as_str()).or_default() += 1;
    }
    println!(
        "spindle-loadgen: {} requests over {} path(s) at {}/s for {} s on {} connection(s) (open loop, after {} s warm-up)",
        measured,
        urls.len(),
        opts.rate,
        opts.duration,
        opts.connections,
        opts.warmup
    );
    println!(
        "achieved {achieved:.1} req/s; {} ok, {} failed",
        total.ok,
        total.failed.len()
    );
    for (k, n) in &kinds {
        println!("  {n} x {k}");
    }
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max)
    );
    println!(
        "  (from the actual send: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3})",
        ms(percentile(&total.service, 0.50)),
        ms(percentile(&total.service, 0.90)),
        ms(percentile(&total.service, 0.99)),
        ms(total.service.last().copied().unwrap_or_default())
    );
    if opts.json {
        println!(
            "{{\"requests\":{measured},\"ok\":{},\"failed\":{},\"target_rate\":{},\"achieved_rate\":{achieved:.3},\"p50_ms\":{:.4},\"p90_ms\":{:.4},\"p99_ms\":{:.4},\"max_ms\":{:.4}}}",
            total.ok,
            total.failed.len(),
            opts.rate,
            ms(p50),
            ms(p90),
            ms(p99),
            ms(max)
        );
    }
    let mut code = ExitCode::SUCCESS;
    if !total.failed.is_empty() {
        eprintln!("spindle-loadgen: {} request(s) failed", total.failed.len());
        code = ExitCode::from(1);
    }
    if let Some(limit) = opts.max_p99_ms {
        if ms(p99) > limit {
            eprintln!(
                "spindle-loadgen: p99 {:.3} ms is over the limit of {limit} ms",
                ms(p99)
            );
            code = ExitCode::from(1);
        }
    }
    code
}
