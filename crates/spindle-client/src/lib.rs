//! Typed blocking client of spindle's HTTP API (`docs/http-api.md`), version 1.
//!
//! One method per route. Views come back as `serde_json::Value`s exactly as the server sent
//! them (so a caller can print the exact JSON), except jobs, which are also parsed into
//! [`Job`] because callers follow them. Every failure is one [`Error`]; the server's error body
//! (`code`, `exception`, `message`, `key`, `call_id`) is kept whole in [`ErrorBody`].
//!
//! The bearer token is never part of an error, a `Debug` output or a log line.
//!
//! ```no_run
//! let client = spindle_client::Client::new("http://127.0.0.1:7480", Some("0f…".into()), None)?;
//! for lun in client.luns("local", false)?.as_array().into_iter().flatten() {
//!     println!("{}", lun["name"]);
//! }
//! # Ok::<(), spindle_client::Error>(())
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The default address of `spindle serve`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7480";

/// Largest answer body read (the audit log and long element lists stay well below).
const BODY_LIMIT: u64 = 256 * 1024 * 1024;

/// The error body every failing route answers: `{"error": ErrorBody}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `bad_request`, `unauthorized`, `not_found`, `conflict`, `ambiguous`, `refused`,
    /// `contract`, `plugin_failed`, `internal`, or a code this client does not know yet.
    pub code: String,
    /// The guide's exception name (`InvalidValueEx`, ...) when one applies.
    #[serde(default)]
    pub exception: Option<String>,
    /// What went wrong, for a person.
    #[serde(default)]
    pub message: String,
    /// The offending field, when known.
    #[serde(default)]
    pub key: Option<String>,
    /// The call id the server tagged the request with.
    #[serde(default)]
    pub call_id: Option<String>,
}

impl fmt::Display for ErrorBody {
    /// `message [Exception, key k]` (the bracket only when there is something to put in it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (&self.exception, &self.key) {
            (Some(e), Some(k)) => write!(f, " [{e}, key {k}]"),
            (Some(e), None) => write!(f, " [{e}]"),
            (None, Some(k)) => write!(f, " [key {k}]"),
            (None, None) => Ok(()),
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error body (any status but 401).
    #[error("{body}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's error body, whole.
        body: Box<ErrorBody>,
    },
    /// 401: no token, or the wrong one.
    #[error("unauthorized: {body}")]
    Unauthorized {
        /// The server's error body, whole.
        body: Box<ErrorBody>,
    },
    /// Nothing answered at that address.
    #[error("cannot reach spindle at {url}: {reason} (is `spindle serve` running?)")]
    Unreachable {
        /// The base URL the client was given.
        url: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// A TLS connection could not be set up (certificate not trusted, not TLS, ...).
    #[error("TLS with {url} failed: {reason} (is it https? does --ca-cert name the server's CA?)")]
    Tls {
        /// The base URL.
        url: String,
        /// What rustls reported.
        reason: String,
    },
    /// Something answered, but not as spindle's API does.
    #[error("{url} answered {what}: is this spindle's HTTP API?")]
    BadAnswer {
        /// The request's URL (no credentials are ever in it).
        url: String,
        /// HTTP status.
        status: u16,
        /// What was wrong with the answer.
        what: String,
    },
    /// The client itself could not be set up (bad URL, unreadable CA certificate).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The server's error body, for [`Error::Api`] and [`Error::Unauthorized`].
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Error::Api { body, .. } | Error::Unauthorized { body } => Some(body.as_ref()),
            _ => None,
        }
    }

    /// The error `code` (`unauthorized` for [`Error::Unauthorized`]).
    pub fn code(&self) -> Option<&str> {
        self.body().map(|b| b.code.as_str())
    }

    /// The call id of the failed request, when the server named one.
    pub fn call_id(&self) -> Option<&str> {
        self.body().and_then(|b| b.call_id.as_deref())
    }
}

/// State of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Still being polled by the server.
    Running,
    /// Finished; `result` holds the element.
    Succeeded,
    /// Finished; `error` says why.
    Failed,
    /// A state this client does not know (treated as still running).
    #[serde(other)]
    Unknown,
}

impl JobState {
    /// Whether the job has finished, one way or the other.
    pub fn is_finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Unknown => "unknown",
        }
    }
}

/// A job (`JobView`): an asynchronous operation the server follows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Job {
    /// uuid.
    pub id: String,
    /// The storage server's name.
    #[serde(default)]
    pub server: Option<String>,
    /// The plug-in method, e.g. `splitClone`.
    #[serde(default)]
    pub method: Option<String>,
    /// The element's name.
    #[serde(default)]
    pub target: Option<String>,
    /// running, succeeded or failed.
    pub state: JobState,
    /// 0..=100, or `None` while unknown.
    #[serde(default)]
    pub percent: Option<i64>,
    /// RFC 3339.
    #[serde(default)]
    pub created_at: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The call id of the request that started it.
    #[serde(default)]
    pub call_id: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<ErrorBody>,
    /// The element, once succeeded.
    #[serde(default)]
    pub result: Option<Value>,
    /// The JobView exactly as the server sent it.
    #[serde(skip)]
    pub raw: Value,
}

impl Job {
    /// Parses a JobView.
    pub fn from_value(v: &Value) -> Result<Job, String> {
        let mut job: Job = serde_json::from_value(v.clone()).map_err(|e| format!("not a job view ({e})"))?;
        job.raw = v.clone();
        Ok(job)
    }
}

/// The answer of a mutating route.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200 / 201 with a view (or a list of views).
    Value(Value),
    /// 204.
    Empty,
    /// 202 `{"job": JobView}`: the plug-in answered asynchronously; follow with [`Client::job`].
    Job(Box<Job>),
}

/// `POST /v1/servers`. Secrets (`admin_passwd`, `passwd`) are redacted by `Debug`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewServer {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<String>,
    #[serde(flatten)]
    pub settings: ServerSettings,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub embedded: bool,
}

/// A storage server's settings: all of them for `POST /v1/servers` ([`NewServer`]), those to
/// change for `POST /v1/servers/{server}/settings` (the others are kept). Secrets
/// (`admin_passwd`, `passwd`) are redacted by `Debug`.
#[derive(Clone, Default, PartialEq, Serialize)]
pub struct ServerSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_passwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_port: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chap: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_info: Option<String>,
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ServerSettings")
            .field("admin_host", &self.admin_host)
            .field("admin_user", &self.admin_user)
            .field("admin_passwd", &hide(&self.admin_passwd))
            .field("access_host", &self.access_host)
            .field("access_port", &self.access_port)
            .field("username", &self.username)
            .field("passwd", &hide(&self.passwd))
            .field("chap", &self.chap)
            .field("extra_info", &self.extra_info.as_ref().map(|_| "<not shown>"))
            .finish()
    }
}

/// `POST /v1/servers/{server}/luns`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewLun {
    pub name: String,
    /// Bytes.
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vol_group: Option<String>,
    pub thin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
}

/// The bearer token; never shown.
#[derive(Clone)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A blocking client of one spindle server.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<Token>,
    call_id: Option<String>,
    agent: ureq::Agent,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("call_id", &self.call_id)
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
enum Verb {
    Get,
    Post,
    Delete,
}

/// What one request answered (a non-error status).
#[derive(Debug)]
struct Answer {
    status: u16,
    url: String,
    body: Option<Value>,
}

/// Percent-encodes one path segment or query value (RFC 3986 unreserved characters pass).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_loopback(base: &str) -> bool {
    let rest = base.split_once("://").map(|(_, r)| r).unwrap_or(base);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority)
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// Whether `id` is a valid `X-Call-Id` (1–64 of `[A-Za-z0-9._-]`).
pub fn valid_call_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Client {
    /// A client of the server at `url` (`http://HOST:PORT` or `https://...`), authenticating
    /// with `token`; `ca_cert` is a PEM file of the CA (or self-signed certificate) to trust
    /// for https instead of the public roots.
    pub fn new(url: &str, token: Option<String>, ca_cert: Option<&Path>) -> Result<Client, Error> {
        let base = url.trim().trim_end_matches('/').to_string();
        let scheme_ok = base.starts_with("http://") || base.starts_with("https://");
        if !scheme_ok || base.split_once("://").is_none_or(|(_, r)| r.is_empty()) {
            return Err(Error::Config(format!(
                "the server URL '{base}' is not http://HOST:PORT or https://HOST:PORT"
            )));
        }
        let token = match token {
            None => None,
            Some(t) => {
                let t = t.trim().to_string();
                if t.is_empty() {
                    None
                } else if !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(Error::Config(
                        "the token contains characters that cannot be sent in a header".into(),
                    ));
                } else {
                    Some(Token(t))
                }
            }
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(900)))
            .user_agent(concat!("spindle-client/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&base) {
            config = config.proxy(None);
        }
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Config(format!("cannot read the CA certificate {}: {e}", path.display()))
            })?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                    certs.push(c);
                }
            }
            if certs.is_empty() {
                return Err(Error::Config(format!(
                    "{} holds no PEM certificate",
                    path.display()
                )));
            }
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            config = config.tls_config(tls);
        }
        Ok(Client {
            base,
            token,
            call_id: None,
            agent: config.build().new_agent(),
        })
    }

    /// Sends `X-Call-Id: id` with every request from now on (`None`: let the server choose).
    pub fn with_call_id(mut self, id: Option<String>) -> Result<Client, Error> {
        if let Some(id) = &id {
            if !valid_call_id(id) {
                return Err(Error::Config(format!(
                    "call id '{id}' is not 1-64 characters of A-Z a-z 0-9 . _ -"
                )));
            }
        }
        self.call_id = id;
        Ok(self)
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Whether a token will be sent.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn request(
        &self,
        verb: Verb,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Answer, Error> {
        let mut url = format!("{}{path}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode_component(v));
        }
        macro_rules! prepare {
            ($rb:expr) => {{
                let mut rb = $rb.header("Accept", "application/json");
                if let Some(t) = &self.token {
                    rb = rb.header("Authorization", format!("Bearer {}", t.0));
                }
                if let Some(id) = &self.call_id {
                    rb = rb.header("X-Call-Id", id.as_str());
                }
                rb
            }};
        }
        let result = match verb {
            Verb::Get => prepare!(self.agent.get(&url)).call(),
            Verb::Delete => prepare!(self.agent.delete(&url)).call(),
            Verb::Post => prepare!(self.agent.post(&url)).send_json(body.unwrap_or(json!({}))),
        };
        let response = result.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let header_call_id = response
            .headers()
            .get("x-call-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let bytes = response
            .into_body()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(|e| Error::BadAnswer {
                url: url.clone(),
                status,
                what: format!("a body that could not be read ({e})"),
            })?;
        let body: Option<Value> = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => Some(v),
                // Only /metrics answers text; every other answer must be JSON.
                Err(_) if (200..300).contains(&status) && path == "/metrics" => {
                    Some(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
                }
                Err(e) => {
                    let snippet: String = String::from_utf8_lossy(&bytes).chars().take(120).collect();
                    return Err(Error::BadAnswer {
                        url,
                        status,
                        what: format!("status {status} with a body that is not JSON ({e}): {snippet}"),
                    });
                }
            }
        };
        if (200..300).contains(&status) {
            return Ok(Answer { status, url, body });
        }
        let mut err = body
            .as_ref()
            .and_then(|b| b.get("error"))
            .and_then(|e| serde_json::from_value::<ErrorBody>(e.clone()).ok())
            .ok_or_else(|| Error::BadAnswer {
                url: url.clone(),
                status,
                what: format!("status {status} without an error body"),
            })?;
        if err.call_id.is_none() {
            err.call_id = header_call_id;
        }
        if status == 401 || err.code == "unauthorized" {
            Err(Error::Unauthorized { body: Box::new(err) })
        } else {
            Err(Error::Api {
                status,
                body: Box::new(err),
            })
        }
    }

    fn transport_error(&self, e: ureq::Error) -> Error {
        let url = self.base.clone();
        match e {
            ureq::Error::Tls(reason) => Error::Tls {
                url,
                reason: reason.to_string(),
            },
            ureq::Error::Rustls(r) => Error::Tls {
                url,
                reason: r.to_string(),
            },
            ureq::Error::Pem(_) => Error::Config("the CA certificate is not valid PEM".into()),
            ureq::Error::Protocol(p) => Error::BadAnswer {
                url,
                status: 0,
                what: format!("something that is not HTTP ({p})"),
            },
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
                Error::Config(format!("cannot make a request to '{url}': {e}"))
            }
            ureq::Error::Io(io) => Error::Unreachable {
                url,
                reason: io.to_string(),
            },
            ureq::Error::HostNotFound => Error::Unreachable {
                url,
                reason: "host not found".into(),
            },
            other => Error::Unreachable {
                url,
                reason: other.to_string(),
            },
        }
    }

    fn value(&self, verb: Verb, path: &str, query: &[(&str, String)]) -> Result<Value, Error> {
        let a = self.request(verb, path, query, None)?;
        a.body.ok_or_else(|| Error::BadAnswer {
            url: a.url,
            status: a.status,
            what: format!("status {} with no body", a.status),
        })
    }

    fn get(&self, path: &str) -> Result<Value, Error> {
        self.value(Verb::Get, path, &[])
    }

    fn reply(&self, verb: Verb, path: &str, body: Option<Value>) -> Result<Reply, Error> {
        let a = self.request(verb, path, &[], body)?;
        if a.status == 202 {
            let job = a
                .body
                .as_ref()
                .and_then(|b| b.get("job"))
                .ok_or_else(|| Error::BadAnswer {
                    url: a.url.clone(),
                    status: 202,
                    what: "202 without {\"job\": ...}".into(),
                })?;
            let job = Job::from_value(job).map_err(|what| Error::BadAnswer {
                url: a.url.clone(),
                status: 202,
                what,
            })?;
            return Ok(Reply::Job(Box::new(job)));
        }
        Ok(match a.body {
            Some(v) => Reply::Value(v),
            None => Reply::Empty,
        })
    }

    fn post(&self, path: &str, body: Value) -> Result<Reply, Error> {
        self.reply(Verb::Post, path, Some(body))
    }

    fn delete(&self, path: &str) -> Result<Reply, Error> {
        self.reply(Verb::Delete, path, None)
    }

    fn server_path(server: &str) -> String {
        format!("/v1/servers/{}", encode_component(server))
    }

    fn lun_path(server: &str, lun: &str) -> String {
        format!("{}/luns/{}", Self::server_path(server), encode_component(lun))
    }

    fn snap_path(server: &str, snap: &str) -> String {
        format!(
            "{}/snapshots/{}",
            Self::server_path(server),
            encode_component(snap)
        )
    }

    fn group_path(server: &str, group: &str) -> String {
        format!("{}/groups/{}", Self::server_path(server), encode_component(group))
    }

    // ---- unauthenticated ----

    /// `GET /healthz`: `{"status": "ok", "version"}`.
    pub fn health(&self) -> Result<Value, Error> {
        self.get("/healthz")
    }

    /// `GET /openapi.json`.
    pub fn openapi(&self) -> Result<Value, Error> {
        self.get("/openapi.json")
    }

    /// `GET /metrics` (Prometheus text).
    pub fn metrics(&self) -> Result<String, Error> {
        let v = self.get("/metrics")?;
        Ok(match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    // ---- plug-ins and storage servers ----

    /// `GET /v1/plugins`.
    pub fn plugins(&self) -> Result<Value, Error> {
        self.get("/v1/plugins")
    }

    /// `GET /v1/servers`: `[ServerView]`.
    pub fn servers(&self) -> Result<Value, Error> {
        self.get("/v1/servers")
    }

    /// The names of the registered storage servers.
    pub fn server_names(&self) -> Result<Vec<String>, Error> {
        let v = self.servers()?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(Value::as_str).map(String::from))
            .collect())
    }

    /// `POST /v1/servers`: `201 ServerView`.
    pub fn add_server(&self, server: &NewServer) -> Result<Reply, Error> {
        let body = serde_json::to_value(server).map_err(|e| Error::Config(e.to_string()))?;
        self.post("/v1/servers", body)
    }

    /// `GET /v1/servers/{server}`.
    pub fn server(&self, server: &str) -> Result<Value, Error> {
        self.get(&Self::server_path(server))
    }

    /// `POST /v1/servers/{server}/settings`: changes the settings given, once the plug-in has
    /// validated the new record; the server re-read with it.
    pub fn update_server(&self, server: &str, settings: &ServerSettings) -> Result<Reply, Error> {
        let body = serde_json::to_value(settings).map_err(|e| Error::Config(e.to_string()))?;
        self.post(&format!("{}/settings", Self::server_path(server)), body)
    }

    /// `POST /v1/servers/{server}/refresh`.
    pub fn refresh_server(&self, server: &str) -> Result<Reply, Error> {
        self.post(&format!("{}/refresh", Self::server_path(server)), json!({}))
    }

    /// `DELETE /v1/servers/{server}`: forgets the records.
    pub fn remove_server(&self, server: &str) -> Result<Reply, Error> {
        self.delete(&Self::server_path(server))
    }

    /// `GET /v1/servers/{server}/capabilities`: the ability dict.
    pub fn capabilities(&self, server: &str) -> Result<Value, Error> {
        self.get(&format!("{}/capabilities", Self::server_path(server)))
    }

    // ---- LUNs and clones ----

    /// `GET /v1/servers/{server}/luns` (`refresh`: re-read from the plug-in first).
    pub fn luns(&self, server: &str, refresh: bool) -> Result<Value, Error> {
        let q: Vec<(&str, String)> = if refresh {
            vec![("refresh", "true".into())]
        } else {
            vec![]
        };
        self.value(Verb::Get, &format!("{}/luns", Self::server_path(server)), &q)
    }

    /// `POST /v1/servers/{server}/luns`.
    pub fn create_lun(&self, server: &str, lun: &NewLun) -> Result<Reply, Error> {
        let body = serde_json::to_value(lun).map_err(|e| Error::Config(e.to_string()))?;
        self.post(&format!("{}/luns", Self::server_path(server)), body)
    }

    /// `GET /v1/servers/{server}/luns/{lun}` (`refresh`: getInfo(se) first).
    pub fn lun(&self, server: &str, lun: &str, refresh: bool) -> Result<Value, Error> {
        let q: Vec<(&str, String)> = if refresh {
            vec![("refresh", "true".into())]
        } else {
            vec![]
        };
        self.value(Verb::Get, &Self::lun_path(server, lun), &q)
    }

    /// `DELETE /v1/servers/{server}/luns/{lun}`.
    pub fn remove_lun(&self, server: &str, lun: &str) -> Result<Reply, Error> {
        self.delete(&Self::lun_path(server, lun))
    }

    /// `POST .../luns/{lun}/resize`. `allow_shrink` lets a smaller size through (the data past
    /// it is lost); without it the server refuses a shrink with key `allow_shrink`.
    pub fn resize_lun(&self, server: &str, lun: &str, size: i64, allow_shrink: bool) -> Result<Reply, Error> {
        // Sent only when true, so a grow still reaches a server that predates the field.
        let body = if allow_shrink {
            json!({ "size": size, "allow_shrink": true })
        } else {
            json!({ "size": size })
        };
        self.post(&format!("{}/resize", Self::lun_path(server, lun)), body)
    }

    /// `POST .../luns/{lun}/online`.
    pub fn online(&self, server: &str, lun: &str) -> Result<Reply, Error> {
        self.post(&format!("{}/online", Self::lun_path(server, lun)), json!({}))
    }

    /// `POST .../luns/{lun}/offline`.
    pub fn offline(&self, server: &str, lun: &str) -> Result<Reply, Error> {
        self.post(&format!("{}/offline", Self::lun_path(server, lun)), json!({}))
    }

    /// `POST .../luns/{lun}/present` (startPresent).
    pub fn present(&self, server: &str, lun: &str, groups: &[String]) -> Result<Reply, Error> {
        self.post(
            &format!("{}/present", Self::lun_path(server, lun)),
            json!({ "groups": groups }),
        )
    }

    /// `POST .../luns/{lun}/unpresent` (stopPresent).
    pub fn unpresent(&self, server: &str, lun: &str, groups: &[String]) -> Result<Reply, Error> {
        self.post(
            &format!("{}/unpresent", Self::lun_path(server, lun)),
            json!({ "groups": groups }),
        )
    }

    /// `POST .../luns/{lun}/qos` (setQoS).
    pub fn set_qos(&self, server: &str, lun: &str, qos: &str) -> Result<Reply, Error> {
        self.post(
            &format!("{}/qos", Self::lun_path(server, lun)),
            json!({ "qos": qos }),
        )
    }

    /// `POST .../luns/{lun}/clone`: `201 ElementView` or `202 {"job"}`.
    pub fn clone_lun(&self, server: &str, lun: &str, name: &str, qos: Option<&str>) -> Result<Reply, Error> {
        let mut body = json!({ "name": name });
        if let Some(q) = qos {
            body["qos"] = json!(q);
        }
        self.post(&format!("{}/clone", Self::lun_path(server, lun)), body)
    }

    /// `POST .../luns/{lun}/split` (splitClone): always a job.
    pub fn split(&self, server: &str, lun: &str) -> Result<Reply, Error> {
        self.post(&format!("{}/split", Self::lun_path(server, lun)), json!({}))
    }

    // ---- snapshots ----

    /// `GET /v1/servers/{server}/snapshots` (`lun`: only that LUN's).
    pub fn snapshots(&self, server: &str, lun: Option<&str>) -> Result<Value, Error> {
        let q: Vec<(&str, String)> = lun.map(|l| ("lun", l.to_string())).into_iter().collect();
        self.value(Verb::Get, &format!("{}/snapshots", Self::server_path(server)), &q)
    }

    /// `POST /v1/servers/{server}/snapshots` (createSnap).
    pub fn create_snapshot(&self, server: &str, lun: &str, name: &str) -> Result<Reply, Error> {
        self.post(
            &format!("{}/snapshots", Self::server_path(server)),
            json!({ "lun": lun, "name": name }),
        )
    }

    /// `POST /v1/servers/{server}/snapshots/multi` (createMultiSnap).
    pub fn create_multi_snapshot(&self, server: &str, luns: &[String], name: &str) -> Result<Reply, Error> {
        self.post(
            &format!("{}/snapshots/multi", Self::server_path(server)),
            json!({ "luns": luns, "name": name }),
        )
    }

    /// `DELETE .../snapshots/{snap}` (snapRemove).
    pub fn remove_snapshot(&self, server: &str, snap: &str) -> Result<Reply, Error> {
        self.delete(&Self::snap_path(server, snap))
    }

    /// `POST .../snapshots/{snap}/restore` (snapRestore; `lun`: restore into that element).
    pub fn restore_snapshot(&self, server: &str, snap: &str, lun: Option<&str>) -> Result<Reply, Error> {
        let body = match lun {
            Some(l) => json!({ "lun": l }),
            None => json!({}),
        };
        self.post(&format!("{}/restore", Self::snap_path(server, snap)), body)
    }

    /// `POST .../snapshots/{snap}/clone` (cloneFromSnap); `lun`: which of the snapshot's LUNs
    /// (required when it covers several).
    pub fn clone_snapshot(
        &self,
        server: &str,
        snap: &str,
        name: &str,
        qos: Option<&str>,
        lun: Option<&str>,
    ) -> Result<Reply, Error> {
        let mut body = json!({ "name": name });
        if let Some(q) = qos {
            body["qos"] = json!(q);
        }
        if let Some(l) = lun {
            body["lun"] = json!(l);
        }
        self.post(&format!("{}/clone", Self::snap_path(server, snap)), body)
    }

    // ---- access groups ----

    /// `GET /v1/servers/{server}/groups`.
    pub fn groups(&self, server: &str) -> Result<Value, Error> {
        self.get(&format!("{}/groups", Self::server_path(server)))
    }

    /// `POST /v1/servers/{server}/groups` (createAccessGroups).
    pub fn create_group(&self, server: &str, name: &str, entries: &[String]) -> Result<Reply, Error> {
        self.post(
            &format!("{}/groups", Self::server_path(server)),
            json!({ "name": name, "entries": entries }),
        )
    }

    /// `DELETE .../groups/{group}` (removeAccessGroups).
    pub fn remove_group(&self, server: &str, group: &str) -> Result<Reply, Error> {
        self.delete(&Self::group_path(server, group))
    }

    /// `POST .../groups/{group}/rename`.
    pub fn rename_group(&self, server: &str, group: &str, new_name: &str) -> Result<Reply, Error> {
        self.post(
            &format!("{}/rename", Self::group_path(server, group)),
            json!({ "new_name": new_name }),
        )
    }

    /// `POST .../groups/{group}/entries` (addToAccessGroup).
    pub fn add_group_entries(&self, server: &str, group: &str, entries: &[String]) -> Result<Reply, Error> {
        self.post(
            &format!("{}/entries", Self::group_path(server, group)),
            json!({ "entries": entries }),
        )
    }

    /// `POST .../groups/{group}/entries/remove` (removeFromAccessGroup).
    pub fn remove_group_entries(
        &self,
        server: &str,
        group: &str,
        entries: &[String],
    ) -> Result<Reply, Error> {
        self.post(
            &format!("{}/entries/remove", Self::group_path(server, group)),
            json!({ "entries": entries }),
        )
    }

    // ---- QoS, jobs, audit ----

    /// `GET /v1/servers/{server}/qos` (getQoSList).
    pub fn qos_list(&self, server: &str) -> Result<Value, Error> {
        self.get(&format!("{}/qos", Self::server_path(server)))
    }

    /// `GET /v1/jobs`, newest first (`running_only`: `?state=running`).
    pub fn jobs(&self, running_only: bool) -> Result<Value, Error> {
        let q: Vec<(&str, String)> = if running_only {
            vec![("state", "running".into())]
        } else {
            vec![]
        };
        self.value(Verb::Get, "/v1/jobs", &q)
    }

    /// `GET /v1/jobs/{id}`.
    pub fn job(&self, id: &str) -> Result<Job, Error> {
        let path = format!("/v1/jobs/{}", encode_component(id));
        let v = self.get(&path)?;
        Job::from_value(&v).map_err(|what| Error::BadAnswer {
            url: format!("{}{path}", self.base),
            status: 200,
            what,
        })
    }

    /// `GET /v1/audit`, newest first (`limit`: the server's default is 100).
    pub fn audit(&self, limit: Option<u32>) -> Result<Value, Error> {
        let q: Vec<(&str, String)> = limit.map(|n| ("limit", n.to_string())).into_iter().collect();
        self.value(Verb::Get, "/v1/audit", &q)
    }
}

#[cfg(test)]
mod tests;
