//! The options every administrator's command shares: where the server is, the token, which
//! storage server. Turns them into a [`spindle_client::Client`].

use crate::exit::{self, Failure};
use clap::Args;
use spindle_client::Client;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A token given on the command line or in SPINDLE_TOKEN; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Global options of the administrator's commands.
#[derive(Debug, Args)]
#[command(next_help_heading = "Server connection (administrator's commands)")]
pub struct ClientArgs {
    /// URL of `spindle serve` (http://HOST:PORT or https://HOST:PORT).
    #[arg(long, global = true, env = "SPINDLE_URL", default_value = spindle_client::DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// API token (prefer SPINDLE_TOKEN or --token-file: other users can see arguments).
    #[arg(
        long,
        global = true,
        env = "SPINDLE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<Secret>,
    /// File holding the API token [default: <data dir>/token, where the data dir is
    /// SPINDLE_DATA_DIR, else /var/lib/spindle as root, else ~/.local/share/spindle — the
    /// same default as `spindle serve`].
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM certificate of the CA (or the self-signed certificate) to trust for https.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Storage server to act on (may be left out when exactly one is registered).
    #[arg(short = 'S', long, global = true, env = "SPINDLE_SERVER", value_name = "NAME")]
    pub server: Option<String>,
    /// X-Call-Id sent with every request (1-64 of A-Z a-z 0-9 . _ -); it tags the server's
    /// log lines, the plug-in's, the audit entry and any job.
    #[arg(long, global = true, value_name = "ID")]
    pub call_id: Option<String>,
    /// Do not follow an asynchronous operation: print its job id and return
    /// (follow it later with `spindle job watch ID`).
    #[arg(long, global = true)]
    pub no_wait: bool,
}

/// spindle's data directory: SPINDLE_DATA_DIR, else /var/lib/spindle as root, else
/// ~/.local/share/spindle.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPINDLE_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/spindle");
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/spindle")
}

/// Where the token came from, for messages (never the token itself).
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// --token or SPINDLE_TOKEN.
    Given,
    /// Read from this file.
    File(PathBuf),
    /// None: the default file could not be read, for this reason.
    Missing(PathBuf, String),
}

impl ClientArgs {
    /// The token and where it came from. An explicit --token-file that cannot be read is an
    /// error (exit 6); a missing default file just means no token.
    pub fn token(&self) -> Result<(Option<String>, TokenSource), Failure> {
        if let Some(Secret(t)) = &self.token {
            if !t.trim().is_empty() {
                return Ok((Some(t.clone()), TokenSource::Given));
            }
        }
        let (path, explicit) = match &self.token_file {
            Some(p) => (p.clone(), true),
            None => (default_data_dir().join("token"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => {
                Ok((Some(text.trim().to_string()), TokenSource::File(path)))
            }
            Ok(_) if explicit => Err(Failure::local(
                exit::UNAUTHORIZED,
                "unauthorized",
                format!("the token file {} is empty", path.display()),
            )),
            Err(e) if explicit => Err(Failure::local(
                exit::UNAUTHORIZED,
                "unauthorized",
                format!("cannot read the token file {}: {e}", path.display()),
            )),
            Ok(_) => Ok((None, TokenSource::Missing(path, "it is empty".into()))),
            Err(e) => Ok((None, TokenSource::Missing(path, e.to_string()))),
        }
    }

    /// A client for these options, and where its token came from.
    pub fn connect(&self) -> Result<(Client, TokenSource), Failure> {
        let (token, source) = self.token()?;
        let client = Client::new(&self.url, token, self.ca_cert.as_deref())
            .and_then(|c| c.with_call_id(self.call_id.clone()))
            .map_err(Failure::from)?;
        Ok((client, source))
    }
}

/// Advice added to an `unauthorized` failure.
pub fn token_hint(source: &TokenSource) -> String {
    match source {
        TokenSource::Given => "the token given by --token or SPINDLE_TOKEN was refused".into(),
        TokenSource::File(p) => format!(
            "the token read from {} was refused (is it the token of the server at that URL?)",
            p.display()
        ),
        TokenSource::Missing(p, why) => format!(
            "no token was sent: pass --token-file FILE, set SPINDLE_TOKEN, or make {} readable ({why})",
            p.display()
        ),
    }
}

/// The storage server to act on: `explicit` (a positional NAME), else -S/--server, else the
/// only one registered.
pub fn pick_server(client: &Client, explicit: Option<&str>, option: Option<&str>) -> Result<String, Failure> {
    if let Some(name) = explicit.or(option) {
        return Ok(name.to_string());
    }
    let names = client.server_names().map_err(Failure::from)?;
    match names.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(Failure::local(
            exit::REFUSED,
            "not_found",
            "no storage server is registered: add one with `spindle server add`",
        )),
        many => Err(Failure::usage(format!(
            "{} storage servers are registered ({}): name one with -S/--server NAME or SPINDLE_SERVER",
            many.len(),
            many.join(", ")
        ))),
    }
}
