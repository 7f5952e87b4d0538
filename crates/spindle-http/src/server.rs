//! The router (built from [`ROUTES`]), the per-request layer (call id, span, metrics) and the
//! listener (plain HTTP or TLS, graceful shutdown).

use crate::metrics::Metrics;
use crate::routes::{aliases, parse_body, parse_query, templates, Input, RouteSpec, Target, Verb, ROUTES};
use crate::{openapi, ApiError, HttpError, Token};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{header, request::Parts, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use spindle_service::{Reply, RequestContext, Service};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::Instrument;

/// The header carrying the call id, in and out.
pub const CALL_ID_HEADER: HeaderName = HeaderName::from_static("x-call-id");

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The `who` of every authenticated request (the one token's name).
pub const TOKEN_NAME: &str = "admin";

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `s` may be used as a call id: 1–64 of `[A-Za-z0-9._-]`.
pub fn valid_call_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn new_call_id() -> Arc<str> {
    Arc::from(uuid::Uuid::new_v4().simple().to_string())
}

#[derive(Debug, Clone)]
struct CallId(Arc<str>);

/// Set on a response by the handler that answered: its metrics label.
#[derive(Debug, Clone, Copy)]
struct RouteLabel(u16);

struct AppState {
    service: Arc<Service>,
    token: Token,
    metrics: Metrics,
    openapi: Bytes,
    health: Bytes,
}

fn filter(v: Verb) -> MethodFilter {
    match v {
        Verb::Get => MethodFilter::GET,
        Verb::Post => MethodFilter::POST,
        Verb::Delete => MethodFilter::DELETE,
    }
}

/// The axum router of every route in [`ROUTES`] (plus the 404 and 405 answers), each request
/// going through the call-id / metrics layer. Serve it with [`bind`]; peers are known when a
/// request carries `ConnectInfo<SocketAddr>`.
pub fn router(service: Arc<Service>, token: Token) -> Router {
    let health = serde_json::to_vec(&serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .unwrap_or_default();
    let openapi = serde_json::to_vec(&openapi::document()).unwrap_or_default();
    let state = Arc::new(AppState {
        service,
        token,
        metrics: Metrics::new(&templates()),
        openapi: Bytes::from(openapi),
        health: Bytes::from(health),
    });
    let mut router: Router<Arc<AppState>> = Router::new();
    for (idx, spec) in ROUTES.iter().enumerate() {
        router = router.route(
            spec.path,
            on(filter(spec.method), handler(&state, idx, Vec::new())),
        );
    }
    for alias in aliases() {
        let spec = &ROUTES[alias.route];
        router = router.route(
            alias.path,
            on(filter(spec.method), handler(&state, alias.route, alias.fixed)),
        );
    }
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), around))
        .with_state(state)
}

type Fixed = Arc<[(&'static str, &'static str)]>;

fn handler(
    state: &AppState,
    idx: usize,
    fixed: Vec<(&'static str, &'static str)>,
) -> impl Fn(State<Arc<AppState>>, Request) -> std::pin::Pin<Box<dyn Future<Output = Response> + Send>>
       + Clone
       + Send
       + Sync
       + 'static {
    let label = state.metrics.label_of(Some(ROUTES[idx].path));
    let fixed: Fixed = fixed.into();
    move |State(st): State<Arc<AppState>>, req: Request| {
        let fixed = fixed.clone();
        Box::pin(async move {
            let mut resp = answer(&st, &ROUTES[idx], &fixed, req).await;
            resp.extensions_mut().insert(RouteLabel(label));
            resp
        })
    }
}

fn call_id_of(parts: &Parts) -> Arc<str> {
    parts
        .extensions
        .get::<CallId>()
        .map_or_else(new_call_id, |c| c.0.clone())
}

async fn answer(st: &AppState, spec: &'static RouteSpec, fixed: &Fixed, req: Request) -> Response {
    tracing::Span::current().record("route", spec.path);
    let (mut parts, body) = req.into_parts();
    let call_id = call_id_of(&parts);
    match respond(st, spec, fixed, &mut parts, body, &call_id).await {
        Ok(r) => r,
        Err(e) => {
            if e.status == StatusCode::UNAUTHORIZED {
                // Who knocked without the token is worth an administrator's eye (the header
                // sent is never logged: a near miss may be most of the token).
                let remote = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
                tracing::warn!(%remote, method = %parts.method, "request refused: missing or wrong bearer token");
            } else if e.status.is_server_error() {
                tracing::warn!(code = e.code, message = %e.message, "request failed");
            } else {
                tracing::debug!(code = e.code, message = %e.message, key = ?e.key, "request refused");
            }
            e.into_response_with(&call_id)
        }
    }
}

fn authorized(token: &Token, parts: &Parts) -> bool {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| token.verify_header(v.as_bytes()))
}

fn json_response(status: StatusCode, bytes: impl Into<Body>) -> Response {
    let mut resp = (status, bytes.into()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn json_value(status: StatusCode, v: &Value) -> Result<Response, ApiError> {
    let bytes =
        serde_json::to_vec(v).map_err(|e| ApiError::internal(format!("cannot serialise the answer: {e}")))?;
    Ok(json_response(status, bytes))
}

async fn respond(
    st: &AppState,
    spec: &'static RouteSpec,
    fixed: &Fixed,
    parts: &mut Parts,
    body: Body,
    call_id: &Arc<str>,
) -> Result<Response, ApiError> {
    if spec.auth && !authorized(&st.token, parts) {
        return Err(ApiError::unauthorized());
    }
    let build = match spec.target {
        Target::Health => return Ok(json_response(StatusCode::OK, st.health.clone())),
        Target::OpenApi => return Ok(json_response(StatusCode::OK, st.openapi.clone())),
        Target::Metrics => {
            let mut text = st.metrics.render();
            text.push_str(&st.service.metrics_text());
            let mut resp = (StatusCode::OK, text).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return Ok(resp);
        }
        Target::Action(build) => build,
    };
    let raw = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::value_format(None, format!("bad path parameter: {e}")))?;
    let mut params: Vec<(String, String)> = raw.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    params.extend(fixed.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let query = parse_query(spec.query, parts.uri.query())?;
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        if over_the_limit(&e) {
            ApiError::payload_too_large(format!(
                "the request body is larger than the {MAX_BODY_BYTES} bytes accepted"
            ))
        } else {
            ApiError::value_format(None, format!("cannot read the request body: {e}"))
        }
    })?;
    let fields = parse_body(spec.body, &bytes)?;
    let action = build(&mut Input::new(params, query, fields))?;
    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.to_string());
    let ctx = RequestContext {
        call_id: call_id.to_string(),
        who: TOKEN_NAME.to_owned(),
        remote,
    };
    let reply = if action.mutates() {
        // A change runs to its end in a task of its own, even if the client goes away
        // (dropping the request's future would cancel it half-way).
        let service = st.service.clone();
        tokio::spawn(async move { service.handle(&ctx, action).await }.instrument(tracing::Span::current()))
            .await
            .map_err(|e| ApiError::internal(format!("the action failed: {e}")))??
    } else {
        st.service.handle(&ctx, action).await?
    };
    match reply {
        Reply::Created(v) => json_value(StatusCode::CREATED, &v),
        Reply::Done(v) => json_value(StatusCode::OK, &v),
        Reply::Nothing => Ok(StatusCode::NO_CONTENT.into_response()),
        Reply::Job(v) => json_value(StatusCode::ACCEPTED, &serde_json::json!({ "job": v })),
    }
}

/// Whether reading a body failed because it went past [`MAX_BODY_BYTES`] (413), not because
/// the connection or its framing failed (400). The limit's error is somewhere in the chain:
/// axum wraps the one `Limited` raises.
fn over_the_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

fn shorten(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

async fn not_found(req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let call_id = call_id_of(&parts);
    ApiError::no_route(parts.method.as_str(), shorten(parts.uri.path())).into_response_with(&call_id)
}

async fn method_not_allowed(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let call_id = call_id_of(&parts);
    let template = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut resp = ApiError::method_not_allowed(parts.method.as_str(), shorten(parts.uri.path()))
        .into_response_with(&call_id);
    resp.extensions_mut()
        .insert(RouteLabel(st.metrics.label_of(template.as_deref())));
    resp
}

/// Around every request: the call id (taken from `X-Call-Id` when valid, else made), a span
/// carrying it, the metrics, and the `X-Call-Id` answer header.
async fn around(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let call_id = req
        .headers()
        .get(&CALL_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_call_id(s))
        .map_or_else(new_call_id, Arc::from);
    let method = req.method().clone();
    let span = tracing::info_span!(
        "http",
        call_id = %call_id,
        method = %method,
        route = tracing::field::Empty,
    );
    req.extensions_mut().insert(CallId(call_id.clone()));
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let label = resp
        .extensions()
        .get::<RouteLabel>()
        .map_or_else(|| st.metrics.label_of(None), |l| l.0);
    let status = resp.status();
    st.metrics
        .observe(label, method.as_str(), status.as_u16(), elapsed);
    if let Ok(v) = HeaderValue::from_str(&call_id) {
        resp.headers_mut().insert(CALL_ID_HEADER, v);
    }
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "answered"
        );
    });
    resp
}

// ---------------------------------------------------------------------------------------------
// Listening

/// The PEM files of an HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain (leaf first).
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Where and how to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Address to listen on (port 0: any free port; see [`BoundServer::local_addr`]).
    pub listen: SocketAddr,
    /// Serve HTTPS with these files; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
}

/// A listening socket with its router, not yet accepting.
pub struct BoundServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Loads the TLS files and binds the socket (nothing is accepted until [`BoundServer::run`]).
pub async fn bind(opts: HttpOptions, service: Arc<Service>, token: Token) -> Result<BoundServer, HttpError> {
    let tls = opts.tls.as_ref().map(load_tls).transpose()?;
    let bind_err = |source| HttpError::Bind {
        addr: opts.listen,
        source,
    };
    let listener = TcpListener::bind(opts.listen).await.map_err(bind_err)?;
    let local_addr = listener.local_addr().map_err(bind_err)?;
    Ok(BoundServer {
        listener,
        tls,
        router: router(service, token),
        local_addr,
    })
}

fn load_tls(files: &TlsFiles) -> Result<TlsAcceptor, HttpError> {
    let read = |what: &'static str, path: &PathBuf| {
        std::fs::read(path).map_err(|source| HttpError::TlsRead {
            what,
            path: path.clone(),
            source,
        })
    };
    let pem_err = |what: &'static str, path: &PathBuf| {
        let path = path.clone();
        move |source| HttpError::TlsPem { what, path, source }
    };
    let cert_pem = read("certificate", &files.cert)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err("certificate", &files.cert))?;
    if certs.is_empty() {
        return Err(HttpError::TlsNoCertificate {
            path: files.cert.clone(),
        });
    }
    let key_pem = read("key", &files.key)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(pem_err("key", &files.key))?
        .ok_or_else(|| HttpError::TlsNoKey {
            path: files.key.clone(),
        })?;
    let config_err = |source| HttpError::TlsConfig {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(config_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl BoundServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Accepts and serves connections until `shutdown` completes, then stops accepting, lets
    /// requests in progress finish (idle keep-alive connections are closed at once) and
    /// returns; connections still busy after 30 s are dropped.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let BoundServer {
            listener,
            tls,
            router,
            local_addr,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .keep_alive(true);
        let builder = Arc::new(builder);
        let mut conns = JoinSet::new();
        tracing::info!(%local_addr, tls = tls.is_some(), "HTTP API listening");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nodelay(true);
                        conns.spawn(connection(
                            tcp,
                            peer,
                            tls.clone(),
                            router.clone(),
                            builder.clone(),
                            stop_rx.clone(),
                        ));
                    }
                    Err(e) => {
                        // Out of descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drain = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            tracing::warn!(
                connections = conns.len(),
                "connections still busy after the drain timeout; dropping them"
            );
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        }
        tracing::info!(%local_addr, "HTTP API stopped");
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    mut stop: watch::Receiver<bool>,
) {
    match tls {
        None => drive(TokioIo::new(tcp), peer, router, &builder, stop).await,
        Some(acceptor) => {
            let handshake = tokio::select! {
                r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match handshake {
                Ok(Ok(stream)) => drive(TokioIo::new(stream), peer, router, &builder, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn drive<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    builder: &hyper::server::conn::http1::Builder,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req)
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
