//! Exit codes (stable; listed in `spindle --help`) and how a failure becomes one.

use serde_json::{json, Value};
use spindle_client::{Error as ClientError, ErrorBody};

/// Success.
pub const OK: u8 = 0;
/// The array (through its plug-in) refused, or spindle refused the request: a guide
/// exception, or codes refused / bad_request / not_found / conflict / ambiguous /
/// payload_too_large.
pub const REFUSED: u8 = 1;
/// Usage error (clap uses 2 as well).
pub const USAGE: u8 = 2;
/// The plug-in broke the contract (for `conformance`: a check failed).
pub const CONTRACT: u8 = 3;
/// The plug-in failed: crashed, hung past its deadline, could not start (plugin_failed).
pub const FAILED: u8 = 4;
/// spindle itself could not do it: server unreachable, internal error, unknown plug-in.
pub const SPINDLE: u8 = 5;
/// No token, or the wrong one.
pub const UNAUTHORIZED: u8 = 6;

/// The table shown at the end of `spindle --help`.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  refused: the array or spindle refused the request (a guide exception such as
     InvalidValueEx or StorageElementBusyEx; error codes refused, bad_request, not_found,
     conflict, ambiguous, payload_too_large)
  2  usage: bad arguments or options
  3  contract violation by the plug-in (for `conformance`: a check failed)
  4  the plug-in failed: crashed, timed out or could not start (code plugin_failed)
  5  spindle error: the server is unreachable, or spindle itself failed (code internal)
  6  unauthorized: no token, or the wrong one

Errors are printed on stderr as `spindle: <message> [<exception>, key <key>] (call id <id>)`;
with --output json the error body is also printed on stdout as {\"error\": {...}}.";

/// The exit code of a server error `code` (`status`: the HTTP status, for codes this
/// version does not know).
pub fn for_code(code: &str, status: Option<u16>) -> u8 {
    match code {
        "refused" | "bad_request" | "not_found" | "conflict" | "ambiguous" | "payload_too_large" => REFUSED,
        "contract" => CONTRACT,
        "plugin_failed" => FAILED,
        "unauthorized" => UNAUTHORIZED,
        "internal" => SPINDLE,
        _ => match status {
            Some(401) => UNAUTHORIZED,
            Some(s) if (400..500).contains(&s) => REFUSED,
            _ => SPINDLE,
        },
    }
}

/// The exit code of a client error.
pub fn for_error(e: &ClientError) -> u8 {
    match e {
        ClientError::Api { status, body } => for_code(&body.code, Some(*status)),
        ClientError::Unauthorized { .. } => UNAUTHORIZED,
        ClientError::Unreachable { .. } | ClientError::Tls { .. } | ClientError::BadAnswer { .. } => SPINDLE,
        ClientError::Config(_) => USAGE,
        _ => SPINDLE,
    }
}

/// A failed admin command: what to print and how to exit.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// The error body (the server's, or one made up for a local failure).
    pub body: Box<ErrorBody>,
    /// A line of advice printed after the message.
    pub hint: Option<String>,
    /// The message in the command's own terms (its flags, not the API's fields), printed in
    /// place of the body's; the JSON output keeps the body.
    pub reworded: Option<String>,
}

impl Failure {
    /// A failure found before or without the server.
    pub fn local(code: u8, error_code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            body: Box::new(ErrorBody {
                code: error_code.into(),
                exception: None,
                message: message.into(),
                key: None,
                call_id: None,
            }),
            hint: None,
            reworded: None,
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::local(USAGE, "usage", message)
    }

    /// A failure the server reported in a job's `error`.
    pub fn from_body(body: ErrorBody) -> Failure {
        Failure {
            code: for_code(&body.code, None),
            body: Box::new(body),
            hint: None,
            reworded: None,
        }
    }

    /// Adds a line of advice.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Says what failed in the command's own terms instead of the server's message.
    pub fn reworded(mut self, message: impl Into<String>) -> Failure {
        self.reworded = Some(message.into());
        self
    }

    /// The line printed on stderr: `spindle: message [Exception, key k] (call id X)`, or
    /// `spindle: reworded message [Exception] (call id X)`.
    pub fn line(&self) -> String {
        let mut s = match (&self.reworded, &self.body.exception) {
            (Some(m), Some(ex)) => format!("spindle: {m} [{ex}]"),
            (Some(m), None) => format!("spindle: {m}"),
            (None, _) => format!("spindle: {}", self.body),
        };
        if let Some(id) = &self.body.call_id {
            s.push_str(&format!(" (call id {id})"));
        }
        s
    }

    /// The JSON printed on stdout with `--output json`.
    pub fn json(&self) -> Value {
        json!({ "error": self.body })
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let code = for_error(&e);
        match e {
            ClientError::Api { body, .. } => Failure {
                code,
                body,
                hint: None,
                reworded: None,
            },
            ClientError::Unauthorized { mut body } => {
                if !body.message.starts_with("unauthorized") {
                    body.message = format!("unauthorized: {}", body.message);
                }
                Failure {
                    code,
                    body,
                    hint: None,
                    reworded: None,
                }
            }
            ClientError::Unreachable { .. } => Failure::local(code, "unreachable", e.to_string()),
            ClientError::Tls { .. } => Failure::local(code, "tls", e.to_string()),
            ClientError::BadAnswer { .. } => Failure::local(code, "bad_answer", e.to_string()),
            ClientError::Config(m) => Failure::local(code, "usage", m),
            other => Failure::local(code, "internal", other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> ClientError {
        ClientError::Api {
            status,
            body: Box::new(ErrorBody {
                code: code.into(),
                exception: None,
                message: "m".into(),
                key: None,
                call_id: None,
            }),
        }
    }

    #[test]
    fn every_documented_code_has_its_exit_code() {
        for (code, status, exit) in [
            ("refused", 409, REFUSED),
            ("refused", 502, REFUSED),
            ("refused", 501, REFUSED),
            ("bad_request", 400, REFUSED),
            ("not_found", 404, REFUSED),
            ("conflict", 409, REFUSED),
            ("ambiguous", 409, REFUSED),
            ("payload_too_large", 413, REFUSED),
            ("contract", 502, CONTRACT),
            ("plugin_failed", 502, FAILED),
            ("internal", 500, SPINDLE),
            ("unauthorized", 401, UNAUTHORIZED),
            ("some_future_code", 422, REFUSED),
            ("some_future_code", 503, SPINDLE),
        ] {
            assert_eq!(for_error(&api(status, code)), exit, "{code} {status}");
        }
    }

    #[test]
    fn transport_failures_have_their_exit_codes() {
        let unreachable = ClientError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "refused".into(),
        };
        assert_eq!(for_error(&unreachable), SPINDLE);
        let f = Failure::from(unreachable);
        assert_eq!(f.code, SPINDLE);
        assert!(f.line().contains("is `spindle serve` running?"), "{}", f.line());
        let unauthorized = ClientError::Unauthorized {
            body: Box::new(ErrorBody {
                code: "unauthorized".into(),
                exception: None,
                message: "missing or wrong bearer token".into(),
                key: None,
                call_id: Some("c1".into()),
            }),
        };
        let f = Failure::from(unauthorized);
        assert_eq!(f.code, UNAUTHORIZED);
        assert_eq!(
            f.line(),
            "spindle: unauthorized: missing or wrong bearer token (call id c1)"
        );
        assert_eq!(for_error(&ClientError::Config("x".into())), USAGE);
        let bad = ClientError::BadAnswer {
            url: "u".into(),
            status: 200,
            what: "html".into(),
        };
        assert_eq!(for_error(&bad), SPINDLE);
    }

    #[test]
    fn the_error_line_names_exception_key_and_call_id() {
        let f = Failure::from(ClientError::Api {
            status: 404,
            body: Box::new(ErrorBody {
                code: "not_found".into(),
                exception: Some("InvalidValueEx".into()),
                message: "no LUN named 'db9' on storage server 'sim1'".into(),
                key: Some("lun".into()),
                call_id: Some("9f0c".into()),
            }),
        });
        assert_eq!(f.code, REFUSED);
        assert_eq!(
            f.line(),
            "spindle: no LUN named 'db9' on storage server 'sim1' [InvalidValueEx, key lun] (call id 9f0c)"
        );
        assert_eq!(f.json()["error"]["code"], "not_found");
        assert_eq!(f.json()["error"]["key"], "lun");
    }

    #[test]
    fn a_failed_job_exits_with_its_error_code() {
        for (code, exit) in [
            ("plugin_failed", FAILED),
            ("contract", CONTRACT),
            ("refused", REFUSED),
        ] {
            let f = Failure::from_body(ErrorBody {
                code: code.into(),
                exception: None,
                message: "split failed".into(),
                key: None,
                call_id: None,
            });
            assert_eq!(f.code, exit, "{code}");
            assert_eq!(f.line(), "spindle: split failed");
        }
    }

    #[test]
    fn the_help_lists_every_code() {
        for code in 0..=6 {
            assert!(
                HELP.contains(&format!("\n  {code}  ")),
                "exit code {code} missing"
            );
        }
    }
}
