//! `spindle serve`: wires the manager, the embedded default, the service and the HTTP
//! transport together, and nothing else. Each piece lives in its own crate:
//! `spindle-embedded` prepares the local array, `spindle-service` keeps the records and jobs,
//! `spindle-http` translates requests.

use crate::client_opts::default_data_dir;
use crate::sizes::parse_size;
use clap::Args;
use serde_json::Value;
use spindle_manager::{Manager, ManagerConfig, Mode};
use spindle_plugin_linux::daemon::Resident;
use spindle_service::{EmbeddedServer, Service, ServiceConfig};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the embedded array is called when nothing else calls it: any request makes the
/// array program restart a dead tgtd and bring it back to the export state.
const EMBEDDED_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// How often a running job polls getAsyncProgress.
const JOB_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Options of `spindle serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where spindle keeps its database, token and (embedded default) pool image.
    /// Default: /var/lib/spindle as root, else ~/.local/share/spindle.
    #[arg(long, env = "SPINDLE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the HTTP API listens on (port 0: any free port; the address bound is written
    /// to <data-dir>/listen).
    #[arg(long, env = "SPINDLE_LISTEN", default_value = "127.0.0.1:7480")]
    pub listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds between re-reads of every storage server from its plug-in, the first right
    /// after start (0: never).
    #[arg(long, default_value_t = 60)]
    pub refresh_interval: u64,
    /// Do not prepare the embedded local Linux array.
    #[arg(long)]
    pub no_embedded: bool,
    /// Size of the embedded array's pool image (e.g. 20G), used when the data directory is
    /// not on a reflink-capable file system. The image is sparse.
    #[arg(long, default_value = "20G")]
    pub pool_size: String,
    /// iSCSI portal of the embedded array.
    #[arg(long, default_value = "127.0.0.1:3260")]
    pub portal: String,
    /// tgtd control port of the embedded array (tgtd -C N).
    #[arg(long, default_value_t = 7)]
    pub tgt_control: u16,
    /// Bandwidth limit of the embedded array's clone splits, MiB/s (0: unlimited).
    #[arg(long, default_value_t = 0)]
    pub split_rate_mib: u64,
    /// Never run apt-get to install what the embedded array needs (tgt, xfsprogs).
    #[arg(long)]
    pub no_install: bool,
}

type Failure = (u8, String);

fn spindle_err(what: &str) -> impl Fn(String) -> Failure + '_ {
    move |e| (crate::exit::SPINDLE, format!("{what}: {e}"))
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(plugin_roots: Vec<PathBuf>, args: ServeArgs) -> Result<u8, Failure> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    make_private_dir(&data_dir).map_err(spindle_err("cannot create the data directory"))?;

    let (embedded, prepared) = if args.no_embedded {
        (None, None)
    } else {
        let (server, pool_dir, prepared) = prepare_embedded(&data_dir, &args).await?;
        (Some((server, pool_dir)), Some(prepared))
    };

    let manager = Manager::new(ManagerConfig {
        roots: plugin_roots,
        builtins: crate::builtins(),
        mode: Mode::Strict,
        call_deadline: Duration::from_secs(300),
        ..ManagerConfig::default()
    })
    .await
    .map_err(|e| spindle_err("cannot start the plug-in manager")(e.to_string()))?;
    for s in manager.skipped() {
        tracing::warn!(module = %s.path.display(), reason = %s.reason, "plug-in module skipped");
    }

    let service = Service::open(ServiceConfig {
        data_dir: data_dir.clone(),
        manager: Arc::new(manager),
        embedded: embedded.as_ref().map(|(e, _)| e.clone()),
        refresh_interval: Duration::from_secs(args.refresh_interval),
        job_poll_interval: JOB_POLL_INTERVAL,
    })
    .await
    .map_err(|e| spindle_err("cannot open spindle's database")(e.to_string()))?;

    // Registrations of the embedded array follow this run's flags (--portal, --tgt-control).
    let registrations = service.adopt_embedded().await;
    // Started only now, so that what it restores is the configuration just brought in force,
    // not the one of the previous start (until now, requests ran the array program once each).
    let resident = match prepared {
        Some(prepared) => start_resident(prepared).await,
        None => None,
    };
    for (name, changes) in &registrations {
        if let Some(changes) = changes {
            eprintln!("  storage server {name} follows the embedded array's new settings: {changes}");
        }
    }

    let token = spindle_http::Token::load_or_create(&data_dir)
        .map_err(|e| spindle_err("cannot set up the API token")(e.to_string()))?;
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(spindle_http::TlsFiles { cert, key }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let bound = spindle_http::bind(
        spindle_http::HttpOptions {
            listen: args.listen,
            tls,
        },
        Arc::clone(&service),
        token,
    )
    .await
    .map_err(|e| spindle_err("cannot listen")(e.to_string()))?;
    let addr = bound.local_addr();
    write_atomically(&data_dir.join("listen"), &format!("{addr}\n"))
        .map_err(spindle_err("cannot write <data-dir>/listen"))?;

    eprintln!(
        "spindle {} listening on {scheme}://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    eprintln!("  data directory: {}", data_dir.display());
    eprintln!(
        "  API token:      {} (mode 0600)",
        data_dir.join("token").display()
    );
    if let Some((_, pool_dir)) = &embedded {
        let names: Vec<&str> = registrations.iter().map(|(n, _)| n.as_str()).collect();
        if names.is_empty() {
            eprintln!(
                "  embedded array: pool {} — register it with: spindle server add local --embedded",
                pool_dir.display()
            );
        } else {
            eprintln!(
                "  embedded array: pool {}, registered as {}",
                pool_dir.display(),
                names.join(", ")
            );
        }
    }

    let probe = embedded
        .is_some()
        .then(|| tokio::spawn(supervise_embedded(Arc::clone(&service))));

    bound.run(shutdown_signal()).await;
    eprintln!(
        "spindle stopping: finishing the requests in flight (a second SIGTERM or Ctrl-C stops it at once)"
    );
    // A second signal ends the process at once: as safe as a crash (jobs resume at the next
    // start), and an administrator must never find the server deaf to signals.
    tokio::spawn(async {
        shutdown_signal().await;
        eprintln!("spindle stopped at once on a second signal; running jobs resume at the next start");
        std::process::exit(130);
    });
    if let Some(p) = probe {
        p.abort();
    }
    service.shutdown().await;
    let exported = resident.is_some();
    if let Some(r) = resident {
        // Waits for the requests it is serving; the LUNs stay exported by tgtd.
        let _ = tokio::task::spawn_blocking(move || drop(r)).await;
    }
    eprintln!("spindle stopped; running jobs resume at the next start");
    if exported {
        // Hosts keep their disks through a restart of spindle: say so, since an
        // administrator may expect everything to stop with it.
        eprintln!(
            "  tgtd (control port {}) keeps exporting the embedded array's LUNs to their hosts; README.md, 'The server', says how to stop it too",
            args.tgt_control
        );
    }
    Ok(0)
}

/// Starts the embedded array's resident array program (stopped when dropped); without it the
/// array still works, one program run per request.
async fn start_resident(prepared: spindle_embedded::EmbeddedArray) -> Option<Resident> {
    let started = tokio::task::spawn_blocking(move || spindle_embedded::start_resident(&prepared)).await;
    match started {
        Ok(Ok(Some(r))) => {
            tracing::info!(socket = %r.socket().display(), pid = ?r.pid(), "embedded array: resident array program started");
            Some(r)
        }
        Ok(Ok(None)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "embedded array: running the array program once per request");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "embedded array: starting the resident array program panicked; running the array program once per request");
            None
        }
    }
}

/// The embedded array's registration settings, its pool directory (for the banner) and the
/// prepared array (whose resident program is started once its registration follows).
async fn prepare_embedded(
    data_dir: &Path,
    args: &ServeArgs,
) -> Result<(EmbeddedServer, PathBuf, spindle_embedded::EmbeddedArray), Failure> {
    let pool_size = parse_size(&args.pool_size)
        .ok()
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| {
            (
                crate::exit::USAGE,
                format!("--pool-size {:?} is not a size such as 20G", args.pool_size),
            )
        })?;
    let mut cfg = spindle_embedded::EmbeddedConfig::new(data_dir.join("embedded"));
    cfg.pool_size = pool_size;
    cfg.portal = args.portal.clone();
    cfg.tgt_control = args.tgt_control;
    cfg.install = !args.no_install;
    let prepared = tokio::task::spawn_blocking(move || spindle_embedded::prepare(&cfg))
        .await
        .map_err(|e| spindle_err("preparing the embedded array panicked")(e.to_string()))?
        .map_err(|e| {
            (
                crate::exit::SPINDLE,
                format!("cannot prepare the embedded local array: {e} (or start with --no-embedded)"),
            )
        })?;
    // Its notes (image made or reused, tgtd moved, tools installed) were logged as it
    // prepared them.
    let mut ss_record = prepared.ss_record.clone();
    if args.split_rate_mib > 0 {
        if let Some(Value::String(extra)) = ss_record.get_mut("extra_info") {
            extra.push_str(&format!(";split_rate_mib={}", args.split_rate_mib));
        }
    }
    Ok((
        EmbeddedServer {
            plugin: prepared.plugin.to_string(),
            ss_record,
            identity_setting: spindle_embedded::IDENTITY_SETTING.to_string(),
        },
        prepared.pool_dir.clone(),
        prepared,
    ))
}

/// Calls the embedded array every few seconds: the array program checks tgtd on each request
/// and restarts or reconciles it, so a killed tgtd comes back with every target, ACL and LUN
/// within one interval even when nobody is calling.
async fn supervise_embedded(service: Arc<Service>) {
    loop {
        tokio::time::sleep(EMBEDDED_PROBE_INTERVAL).await;
        service.probe_embedded().await;
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}

fn make_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}
