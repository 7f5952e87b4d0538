//! The plug-in author's commands, run in this process through `spindle-manager` (no server):
//! `spindle plugin list|show|call` and `spindle conformance`.

use crate::exit;
use crate::output::{self, Printer};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use spindle_api::names::shown;
use spindle_api::{Method, PluginException};
use spindle_manager::{CallError, CallOptions, Manager, ManagerConfig, ManagerError, Mode};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// CLASS or CLASS@VERSION.
    plugin: String,
    /// The ss_record of the array to test (JSON file).
    #[arg(long, value_name = "FILE")]
    ss_record: PathBuf,
    /// The pool (vol_group) to create elements in.
    #[arg(long, value_name = "NAME")]
    vol_group: Option<String>,
    /// The initiator IQN the data-path checks log in as (with --portal).
    #[arg(long, value_name = "IQN", requires = "portal")]
    initiator: Option<String>,
    /// The array's iSCSI portal HOST:PORT (with --initiator).
    #[arg(long, value_name = "HOST:PORT", requires = "initiator")]
    portal: Option<String>,
    /// Only the checks whose id matches (comma-separated globs or substrings).
    #[arg(long, value_name = "PATTERN")]
    only: Option<String>,
    /// Prefix of every object the kit creates (default: conf-<random>-).
    #[arg(long)]
    prefix: Option<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    report: ReportFormat,
    /// Seconds between getAsyncProgress polls.
    #[arg(long, default_value_t = 0.2)]
    poll_interval: f64,
    /// Seconds the kit waits for one asynchronous operation to finish (and for its progress to
    /// move); past it the method's check fails and the run goes on.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    async_timeout: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List the plug-ins spindle can host, and the modules it skipped with the reason.
    List,
    /// Show one plug-in: class variables, abilities, methods, origin, warnings.
    Show {
        /// CLASS or CLASS@VERSION.
        id: String,
    },
    /// Call one method through the manager (contract checks and async driving included).
    Call {
        /// CLASS or CLASS@VERSION.
        id: String,
        /// Method name as the guides spell it, e.g. getCapabilities.
        method: String,
        /// Keyword arguments as a JSON object, or @FILE to read them from a file.
        #[arg(long, default_value = "{}")]
        params: String,
        /// Log and repair contract violations instead of failing the call.
        #[arg(long)]
        lenient: bool,
        /// Seconds a single plug-in invocation may take before it is killed.
        #[arg(long, default_value_t = 300)]
        deadline: u64,
        /// Seconds between getAsyncProgress polls.
        #[arg(long, default_value_t = 1.0)]
        poll_interval: f64,
        /// Seconds an asynchronous operation may take in all before the call fails (exit 4).
        #[arg(long, value_name = "SECS", default_value_t = 3600.0)]
        async_timeout: f64,
        /// Seconds an asynchronous operation may go without its progress changing before the
        /// call fails (exit 4).
        #[arg(long, value_name = "SECS", default_value_t = 600.0)]
        async_stall: f64,
    },
}

/// A manager for looking at plug-ins (list, show), which calls none of them.
async fn inspecting(roots: Vec<PathBuf>) -> Result<Manager, (u8, String)> {
    let limits = Limits {
        deadline: Duration::from_secs(30),
        poll: Duration::from_secs(1),
        async_deadline: Duration::from_secs(3600),
        async_stall: Duration::from_secs(600),
    };
    manager(roots, Mode::Strict, limits).await
}

/// How long calls and asynchronous operations may take.
struct Limits {
    deadline: Duration,
    poll: Duration,
    async_deadline: Duration,
    async_stall: Duration,
}

/// `--async-timeout` / `--async-stall` as a duration: at least 0.1 s, at most a week.
fn async_limit(option: &str, secs: f64) -> Result<Duration, (u8, String)> {
    if !secs.is_finite() || secs <= 0.0 {
        return Err((
            exit::USAGE,
            format!(
                "{option}: {} is not a number of seconds above 0",
                shown(&secs.to_string())
            ),
        ));
    }
    Ok(Duration::from_secs_f64(secs.clamp(0.1, 7.0 * 24.0 * 3600.0)))
}

async fn manager(roots: Vec<PathBuf>, mode: Mode, limits: Limits) -> Result<Manager, (u8, String)> {
    let config = ManagerConfig {
        roots,
        builtins: crate::builtins(),
        mode,
        call_deadline: limits.deadline,
        async_poll_interval: limits.poll,
        async_deadline: limits.async_deadline,
        async_stall: limits.async_stall,
        ..ManagerConfig::default()
    };
    Manager::new(config)
        .await
        .map_err(|e| (exit::SPINDLE, e.to_string()))
}

fn read_params(raw: &str) -> Result<Map<String, Value>, (u8, String)> {
    let text = match raw.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| (exit::SPINDLE, format!("cannot read {path}: {e}")))?
        }
        None => raw.to_string(),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err((
            exit::USAGE,
            format!("--params must be a JSON object of keyword arguments, not {other}"),
        )),
        Err(e) => Err((exit::USAGE, format!("--params is not valid JSON: {e}"))),
    }
}

/// Runs `spindle plugin ...`.
pub async fn plugin(
    roots: Vec<PathBuf>,
    out: output::Output,
    cmd: PluginCommand,
) -> Result<u8, (u8, String)> {
    let p = Printer::new(out);
    match cmd {
        PluginCommand::List => {
            let m = inspecting(roots.clone()).await?;
            p.plugin_list(m.plugins(), m.skipped(), m.notes());
            Ok(0)
        }
        PluginCommand::Show { id } => {
            let m = inspecting(roots.clone()).await?;
            match m.resolve(&id) {
                Ok(entry) => {
                    p.plugin_show(entry);
                    Ok(0)
                }
                Err(e) => {
                    let class = id.split('@').next().unwrap_or(&id);
                    let skipped: Vec<_> = m
                        .skipped()
                        .iter()
                        .filter(|s| s.concerns(class))
                        .cloned()
                        .collect();
                    if skipped.is_empty() {
                        Err((exit::SPINDLE, e.to_string()))
                    } else {
                        p.skipped_only(&skipped);
                        Ok(exit::SPINDLE)
                    }
                }
            }
        }
        PluginCommand::Call {
            id,
            method,
            params,
            lenient,
            deadline,
            poll_interval,
            async_timeout,
            async_stall,
        } => {
            let async_deadline = async_limit("--async-timeout", async_timeout)?;
            let async_stall = async_limit("--async-stall", async_stall)?;
            let args = read_params(&params)?;
            let Some(method) = Method::parse(&method) else {
                let e = PluginException::no_such_operation(format!(
                    "'{method}' is not a method of the Storage Array API (see `spindle plugin show {id}`)"
                ));
                p.exception(&e, &[]);
                return Ok(exit::REFUSED);
            };
            let mode = if lenient { Mode::Lenient } else { Mode::Strict };
            let poll = Duration::from_secs_f64(poll_interval.clamp(0.01, 3600.0));
            let limits = Limits {
                deadline: Duration::from_secs(deadline),
                poll,
                async_deadline,
                async_stall,
            };
            let m = manager(roots.clone(), mode, limits).await?;
            let entry = m.resolve(&id).map_err(|e| (exit::SPINDLE, e.to_string()))?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let progress = tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    output::progress(&ev);
                }
            });
            let opts = CallOptions {
                progress: Some(tx),
                call_id: None,
                ..Default::default()
            };
            let result = m.call(entry, method, args, opts).await;
            let _ = progress.await;
            match result {
                Ok(outcome) => {
                    for w in &outcome.warnings {
                        // One line each: a warning may quote what the plug-in printed.
                        eprintln!("warning: {}", w.replace('\n', " "));
                    }
                    for v in &outcome.violations {
                        eprintln!("warning: contract violation tolerated: {v}");
                    }
                    p.value(&spindle_api::redact_value(&outcome.value));
                    Ok(0)
                }
                Err(e) => {
                    p.exception(&e.exception(), e.violations());
                    Ok(match e {
                        CallError::Rejected(_) | CallError::Raised(_) => exit::REFUSED,
                        CallError::Contract(_) => exit::CONTRACT,
                        CallError::Failed(_) => exit::FAILED,
                    })
                }
            }
        }
    }
}

/// Runs `spindle conformance`.
pub async fn conformance(roots: Vec<PathBuf>, a: ConformanceArgs) -> Result<u8, (u8, String)> {
    use spindle_conformance::{load_ss_record, DataPathOptions, IscsiDataPath, Options};
    let bad = |e: spindle_conformance::ConformanceError| (exit::USAGE, e.to_string());
    // An unreadable file is spindle's failure (5); a file that is not JSON is bad input (2).
    let ss = load_ss_record(&a.ss_record).map_err(|e| match e {
        spindle_conformance::ConformanceError::ReadSsRecord { .. } => (exit::SPINDLE, e.to_string()),
        other => bad(other),
    })?;
    let mut opts = Options::new(ss.clone());
    opts.vol_group = a.vol_group;
    opts.only = a.only;
    if let Some(p) = a.prefix {
        opts.prefix = p;
    }
    if let (Some(iqn), Some(portal)) = (&a.initiator, &a.portal) {
        let driver = Arc::new(IscsiDataPath::from_ss_record(&ss));
        opts.data_path = Some(
            DataPathOptions::new(iqn, portal)
                .map_err(bad)?
                .with_driver(driver),
        );
    }
    opts.check().map_err(bad)?;
    let poll = Duration::from_secs_f64(a.poll_interval.clamp(0.01, 60.0));
    let async_deadline = async_limit("--async-timeout", a.async_timeout)?;
    let limits = Limits {
        deadline: Duration::from_secs(300),
        poll,
        async_deadline,
        async_stall: async_deadline,
    };
    let m = manager(roots, Mode::Strict, limits).await?;
    let report = match m.resolve(&a.plugin) {
        Ok(entry) => spindle_conformance::run(&m, entry, &opts).await,
        // Found but skipped: its declarations are at fault, and that is a failed check.
        Err(ManagerError::NotLoaded { reason, .. }) => {
            spindle_conformance::not_loaded(&a.plugin, &reason, &opts)
        }
        Err(e) => return Err((exit::SPINDLE, e.to_string())),
    };
    match a.report {
        ReportFormat::Text => print!("{}", report.to_text()),
        ReportFormat::Json => println!("{}", report.to_json()),
        ReportFormat::Junit => print!("{}", report.to_junit()),
    }
    Ok(if report.failed() { exit::CONTRACT } else { 0 })
}
