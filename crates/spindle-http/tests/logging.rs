//! Log lines carry the call id; the token and request secrets never appear in them.

mod common;

use common::TestServer;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buf {
    type Writer = Buf;
    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

#[test]
fn logs_carry_the_call_id_and_never_the_token() {
    let buf = Buf::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("subscriber");

    let s = TestServer::start();
    let token = s.token.clone();
    let auth = format!("Bearer {token}");
    s.raw(
        "GET",
        "/v1/servers",
        None,
        &[("authorization", &auth), ("x-call-id", "trace-me-1")],
    );
    s.raw(
        "POST",
        "/v1/servers",
        Some(r#"{"name": "x", "admin_passwd": "hunter2-secret-value", "passwd": "chap-secret-value"}"#),
        &[("authorization", &auth), ("x-call-id", "trace-me-2")],
    );
    s.raw(
        "GET",
        "/v1/servers",
        None,
        &[
            ("authorization", "Bearer 0123456789wrongwrongwrong"),
            ("x-call-id", "trace-me-3"),
        ],
    );
    s.raw("GET", "/nowhere", None, &[("x-call-id", "trace-me-4")]);
    drop(s);

    let text = String::from_utf8_lossy(&buf.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        .into_owned();
    for id in ["trace-me-1", "trace-me-2", "trace-me-3", "trace-me-4"] {
        assert!(text.contains(id), "no log line carries {id}:\n{text}");
    }
    // A refused token is a warning naming where it came from (never what was sent).
    let refused = text
        .lines()
        .find(|l| l.contains("trace-me-3") && l.contains("missing or wrong bearer token"))
        .unwrap_or_else(|| panic!("no line says the token was refused:\n{text}"));
    assert!(refused.contains("WARN"), "{refused}");
    assert!(refused.contains("remote=127.0.0.1:"), "{refused}");
    assert!(
        text.contains("route=/v1/servers") || text.contains("route=\"/v1/servers\""),
        "{text}"
    );
    for secret in [
        token.as_str(),
        "hunter2-secret-value",
        "chap-secret-value",
        "0123456789wrongwrongwrong",
    ] {
        assert!(!text.contains(secret), "{secret} was logged:\n{text}");
    }
}
