//! Errors: [`HttpError`] (starting the transport) and [`ApiError`] (one failed request, rendered
//! as the error body of `docs/http-api.md`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use spindle_api::ExceptionKind;
use spindle_service::ServiceError;
use std::path::PathBuf;

/// Why the HTTP transport could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// A TLS file (certificate chain or private key) could not be read.
    #[error("cannot read TLS {what} {}: {source}", path.display())]
    TlsRead {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A TLS file is not valid PEM.
    #[error("TLS {what} {} is not valid PEM: {source}", path.display())]
    TlsPem {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("TLS certificate file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)", path.display())]
    TlsNoCertificate { path: PathBuf },
    /// The key file holds no private key.
    #[error("TLS key file {} holds no PEM private key (expected PKCS#8, PKCS#1 or SEC1)", path.display())]
    TlsNoKey { path: PathBuf },
    /// rustls refused the certificate and key (e.g. they do not belong together).
    #[error("TLS certificate {} and key {} cannot be used: {source}", cert.display(), key.display())]
    TlsConfig {
        cert: PathBuf,
        key: PathBuf,
        source: tokio_rustls::rustls::Error,
    },
    /// The token file could not be read or written.
    #[error("token file {}: {source}", path.display())]
    TokenIo { path: PathBuf, source: std::io::Error },
    /// The token file may be read by other users.
    #[error(
        "token file {} has mode {mode:o}: it must not be readable or writable by group or others \
         (chmod 600 {})", path.display(), path.display()
    )]
    TokenPermissions { path: PathBuf, mode: u32 },
    /// The token file does not hold a token.
    #[error("token file {} does not hold a token (64 hex digits); remove it to make a new one", path.display())]
    TokenInvalid { path: PathBuf },
    /// The token file is not a regular file.
    #[error("token file {} is not a regular file", path.display())]
    TokenNotAFile { path: PathBuf },
    /// No random numbers for a new token.
    #[error("cannot make a token: no random numbers: {0}")]
    Random(String),
}

/// One failed request, before its call id is known: status, `code`, `exception`, `message`, `key`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub exception: Option<ExceptionKind>,
    pub message: String,
    pub key: Option<String>,
}

impl ApiError {
    /// 400 `bad_request` with `ValueFormatEx`.
    pub fn value_format(key: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            exception: Some(ExceptionKind::ValueFormatEx),
            message: message.into(),
            key: key.map(str::to_owned),
        }
    }

    /// 400 `bad_request` with `MissingKeyEx`.
    pub fn missing_key(key: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            exception: Some(ExceptionKind::MissingKeyEx),
            message: message.into(),
            key: Some(key.to_owned()),
        }
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            exception: None,
            message: "missing or wrong bearer token (Authorization: Bearer <token>)".into(),
            key: None,
        }
    }

    /// 404 `not_found` for a path no route serves.
    pub fn no_route(method: &str, path: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            exception: None,
            message: format!("no route for {method} {path}"),
            key: None,
        }
    }

    /// 405 for a path served only with other methods.
    pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            exception: None,
            message: format!("{path} does not answer {method}"),
            key: None,
        }
    }

    /// 413 `payload_too_large`: a request body over [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES).
    pub fn payload_too_large(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            exception: None,
            message: message.into(),
            key: None,
        }
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            exception: None,
            message: message.into(),
            key: None,
        }
    }

    /// The response: the error body with `call_id`, `Content-Type: application/json`.
    pub fn into_response_with(self, call_id: &str) -> Response {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'static str,
            exception: Option<&'static str>,
            message: &'a str,
            key: Option<&'a str>,
            call_id: &'a str,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        let body = Body {
            error: Inner {
                code: self.code,
                exception: self.exception.map(ExceptionKind::as_str),
                message: &self.message,
                key: self.key.as_deref(),
                call_id,
            },
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"error\":{}}".to_vec());
        let mut resp = (self.status, bytes).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"spindle\""),
            );
        }
        resp
    }
}

/// The status a refused exception answers with (the table of `docs/http-api.md`).
pub fn refused_status(kind: ExceptionKind) -> StatusCode {
    use ExceptionKind as K;
    match kind {
        K::StorageElementBusyEx
        | K::SnapRestoreNotSafeEx
        | K::OperationPreReqNotMetEx
        | K::FileSystemBusyEx
        | K::FileSystemAlreadyMountedEx => StatusCode::CONFLICT,
        K::MissingKeyEx
        | K::ValueFormatEx
        | K::InvalidValueEx
        | K::InvalidStorageArrayEx
        | K::StorageNameRequiredEx
        | K::InvalidFSTypeEx => StatusCode::BAD_REQUEST,
        K::PermissionDeniedEx | K::StorageArrayLicenseEx => StatusCode::FORBIDDEN,
        K::NoSuchOperationEx => StatusCode::NOT_IMPLEMENTED,
        K::IPluginException
        | K::OperationFailedEx
        | K::TargetDiscoveryEx
        | K::LoginFailedEx
        | K::LogoutFailedEx
        | K::RefreshFailedEx
        | K::ListFailedEx
        | K::CreateSnapFailedEx
        | K::ListSnapFailedEx
        | K::CloneFailedEx => StatusCode::BAD_GATEWAY,
    }
}

impl From<ServiceError> for ApiError {
    /// The core names the error (code, exception, key, message); the transport only picks the
    /// HTTP status for it.
    fn from(e: ServiceError) -> ApiError {
        let status = match &e {
            ServiceError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
            ServiceError::Conflict { .. } => StatusCode::CONFLICT,
            ServiceError::Refused(pe) => refused_status(pe.kind),
            ServiceError::Contract(_) | ServiceError::PluginFailed(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            code: e.code(),
            exception: e.exception(),
            message: e.message().to_string(),
            key: e.key().map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_api::PluginException;

    #[test]
    fn every_exception_kind_has_the_documented_status() {
        for &k in ExceptionKind::ALL {
            let s = refused_status(k).as_u16();
            let expected = match k.as_str() {
                "StorageElementBusyEx"
                | "SnapRestoreNotSafeEx"
                | "OperationPreReqNotMetEx"
                | "FileSystemBusyEx"
                | "FileSystemAlreadyMountedEx" => 409,
                "MissingKeyEx"
                | "ValueFormatEx"
                | "InvalidValueEx"
                | "InvalidStorageArrayEx"
                | "StorageNameRequiredEx"
                | "InvalidFSTypeEx" => 400,
                "PermissionDeniedEx" | "StorageArrayLicenseEx" => 403,
                "NoSuchOperationEx" => 501,
                _ => 502,
            };
            assert_eq!(s, expected, "{k}");
        }
    }

    #[test]
    fn service_errors_map_to_codes() {
        let cases: Vec<(ServiceError, u16, &str, Option<&str>)> = vec![
            (
                ServiceError::BadRequest {
                    exception: Some(ExceptionKind::InvalidValueEx),
                    message: "m".into(),
                    key: Some("size".into()),
                },
                400,
                "bad_request",
                Some("InvalidValueEx"),
            ),
            (
                ServiceError::NotFound {
                    message: "m".into(),
                    key: Some("lun".into()),
                },
                404,
                "not_found",
                Some("InvalidValueEx"),
            ),
            (
                ServiceError::Conflict {
                    message: "m".into(),
                    key: None,
                    ambiguous: false,
                },
                409,
                "conflict",
                Some("InvalidValueEx"),
            ),
            (
                ServiceError::Conflict {
                    message: "m".into(),
                    key: None,
                    ambiguous: true,
                },
                409,
                "ambiguous",
                Some("InvalidValueEx"),
            ),
            (
                ServiceError::Refused(PluginException::new(ExceptionKind::StorageElementBusyEx, "m")),
                409,
                "refused",
                Some("StorageElementBusyEx"),
            ),
            (
                ServiceError::Refused(PluginException::new(ExceptionKind::NoSuchOperationEx, "m")),
                501,
                "refused",
                Some("NoSuchOperationEx"),
            ),
            (
                ServiceError::Refused(PluginException::new(ExceptionKind::CloneFailedEx, "m")),
                502,
                "refused",
                Some("CloneFailedEx"),
            ),
            (ServiceError::Contract("m".into()), 502, "contract", None),
            (
                ServiceError::PluginFailed(PluginException::new(ExceptionKind::OperationFailedEx, "m")),
                502,
                "plugin_failed",
                Some("OperationFailedEx"),
            ),
            (ServiceError::Internal("m".into()), 500, "internal", None),
        ];
        for (e, status, code, exception) in cases {
            let a = ApiError::from(e);
            assert_eq!(a.status.as_u16(), status);
            assert_eq!(a.code, code);
            assert_eq!(a.exception.map(ExceptionKind::as_str), exception);
        }
    }
}
