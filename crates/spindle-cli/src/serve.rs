//! `spindle serve`: wires the manager, the embedded default, the service and the HTTP
//! transport together. (Being written; owned by the integration step, not the admin CLI.)

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Seconds between re-reads of every storage server from its plug-in (0: never).
    #[arg(long, default_value_t = 60)]
    pub refresh_interval: u64,
    /// Do not prepare the embedded local Linux array.
    #[arg(long)]
    pub no_embedded: bool,
    /// Size of the embedded array's pool image (e.g. 20G), when the data directory is not on
    /// a reflink-capable file system.
    #[arg(long, default_value = "20G")]
    pub pool_size: String,
    /// iSCSI portal of the embedded array.
    #[arg(long, default_value = "127.0.0.1:3260")]
    pub portal: String,
    /// tgtd control port of the embedded array (tgtd -C N).
    #[arg(long, default_value_t = 7)]
    pub tgt_control: u16,
    /// Never run apt-get to install what the embedded array needs (tgt, xfsprogs).
    #[arg(long)]
    pub no_install: bool,
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(plugin_roots: Vec<PathBuf>, args: ServeArgs) -> Result<u8, (u8, String)> {
    let _ = (plugin_roots, args);
    Err((5, "spindle serve is not wired yet".into()))
}
