//! spindle's HTTP transport: it only translates. Each request becomes one
//! [`spindle_service::Action`] handed to [`spindle_service::Service::handle`]; the
//! [`spindle_service::Reply`] becomes a status and JSON, a [`spindle_service::ServiceError`]
//! the error body of `docs/http-api.md` (code, exception, message, key, call_id).
//!
//! - [`ROUTES`] is the one route table: the router ([`router`]) and the OpenAPI 3.1 document
//!   ([`openapi::document`], served at `GET /openapi.json`) are both built from it.
//! - Every route but `/healthz` and `/openapi.json` needs `Authorization: Bearer <token>`
//!   ([`Token`], kept in `<data-dir>/token`, mode 0600, compared in constant time, never
//!   logged nor shown by `Debug`).
//! - Every answer carries `X-Call-Id` (the request's, when it is 1–64 of `[A-Za-z0-9._-]`,
//!   else a new one); the same id is on the request's tracing span and in the
//!   [`spindle_service::RequestContext`].
//! - `GET /metrics`: `spindle_http_requests_total{route,method,status}` and
//!   `spindle_http_request_duration_seconds{route}`, then the service's own metrics.
//! - [`bind`] + [`BoundServer::run`]: plain HTTP or TLS (rustls), graceful shutdown.
//! - Request bodies are read as JSON whatever their `Content-Type` (at most
//!   [`MAX_BODY_BYTES`]; a larger one is answered 413 `payload_too_large`); an empty body is
//!   `{}`; optional fields may be `null`.
//! - Mutating actions run in a task of their own, so a client that goes away does not cancel
//!   a change half-way.
//!
//! `spindle-loadgen` (a binary of this crate) is an open-loop load generator for any spindle
//! server; `benches/read_load.rs` runs it against an in-process server on a sim array.

pub mod error;
pub mod metrics;
pub mod openapi;
pub mod routes;
mod server;
pub mod token;

pub use error::{refused_status, ApiError, HttpError};
pub use routes::{RouteSpec, Verb, ROUTES};
pub use server::{
    bind, router, valid_call_id, BoundServer, HttpOptions, TlsFiles, CALL_ID_HEADER, MAX_BODY_BYTES,
    TOKEN_NAME,
};
pub use token::Token;
