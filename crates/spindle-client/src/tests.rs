//! The client against a scripted HTTP server on the loopback interface.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "7f3a9c1e5b7d9f1a3c5e7a9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f";

/// One canned answer: status, extra headers, body.
type Canned = (u16, Vec<(&'static str, &'static str)>, String);

/// A server that answers each connection with the next canned answer and records the
/// requests it got (request line, headers, body).
struct Mock {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

fn read_request(stream: &mut TcpStream) -> String {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    head + &String::from_utf8_lossy(&body)
}

impl Mock {
    fn start(answers: Vec<Canned>) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (status, headers, body) in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let request = read_request(&mut stream);
                log.lock().expect("lock").push(request);
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                let _ = stream.write_all(out.as_bytes());
            }
        });
        Mock { url, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

fn client(url: &str) -> Client {
    Client::new(url, Some(TOKEN.into()), None).expect("client")
}

#[test]
fn sends_the_bearer_token_call_id_and_encoded_names() {
    let mock = Mock::start(vec![(200, vec![], r#"{"name":"db 1","size":1}"#.into())]);
    let c = client(&mock.url)
        .with_call_id(Some("cli-42".into()))
        .expect("call id");
    let v = c.lun("array/one", "db 1", true).expect("lun");
    assert_eq!(v["name"], "db 1");
    let req = &mock.requests()[0];
    assert!(
        req.starts_with("GET /v1/servers/array%2Fone/luns/db%201?refresh=true HTTP/1.1"),
        "{req}"
    );
    assert!(req.contains(&format!("authorization: Bearer {TOKEN}")), "{req}");
    assert!(req.to_ascii_lowercase().contains("x-call-id: cli-42"), "{req}");
}

#[test]
fn posts_json_bodies() {
    let mock = Mock::start(vec![(201, vec![], r#"{"name":"db1"}"#.into())]);
    let lun = NewLun {
        name: "db1".into(),
        size: 10 << 30,
        vol_group: None,
        thin: false,
        qos: Some("gold".into()),
    };
    let r = client(&mock.url).create_lun("sim1", &lun).expect("create");
    assert_eq!(r, Reply::Value(json!({"name": "db1"})));
    let req = &mock.requests()[0];
    assert!(req.starts_with("POST /v1/servers/sim1/luns HTTP/1.1"), "{req}");
    let body: Value = serde_json::from_str(req.split("\r\n\r\n").nth(1).expect("body")).expect("json");
    assert_eq!(
        body,
        json!({"name": "db1", "size": 10737418240i64, "thin": false, "qos": "gold"})
    );
}

#[test]
fn error_bodies_are_kept_whole() {
    let body = r#"{"error":{"code":"not_found","exception":"InvalidValueEx","message":"no LUN named 'db9' on storage server 'sim1'","key":"lun","call_id":"abc-1"}}"#;
    let mock = Mock::start(vec![(404, vec![], body.into())]);
    let err = client(&mock.url).lun("sim1", "db9", false).expect_err("404");
    let Error::Api { status, body } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 404);
    assert_eq!(body.code, "not_found");
    assert_eq!(body.exception.as_deref(), Some("InvalidValueEx"));
    assert_eq!(body.key.as_deref(), Some("lun"));
    assert_eq!(err.call_id(), Some("abc-1"));
    assert_eq!(
        err.to_string(),
        "no LUN named 'db9' on storage server 'sim1' [InvalidValueEx, key lun]"
    );
}

#[test]
fn call_id_falls_back_to_the_response_header() {
    let body = r#"{"error":{"code":"conflict","exception":null,"message":"name taken","key":"name"}}"#;
    let mock = Mock::start(vec![(409, vec![("X-Call-Id", "hdr-7")], body.into())]);
    let err = client(&mock.url).create_group("s", "g", &[]).expect_err("409");
    assert_eq!(err.call_id(), Some("hdr-7"));
    assert_eq!(err.code(), Some("conflict"));
    assert_eq!(err.to_string(), "name taken [key name]");
}

#[test]
fn unauthorized_never_shows_the_token() {
    let body = r#"{"error":{"code":"unauthorized","exception":null,"message":"missing or wrong bearer token","key":null,"call_id":"x"}}"#;
    let mock = Mock::start(vec![(401, vec![], body.into())]);
    let c = client(&mock.url);
    let err = c.servers().expect_err("401");
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}"), format!("{c:?}")] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains(&TOKEN[..16]), "token leaked: {text}");
    }
    assert!(format!("{c:?}").contains("<redacted>"));
}

#[test]
fn secrets_of_a_new_server_are_redacted_by_debug() {
    let s = NewServer {
        name: "a".into(),
        settings: ServerSettings {
            passwd: Some("chap-secret-123".into()),
            admin_passwd: Some("admin-secret-456".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let d = format!("{s:?}");
    assert!(
        !d.contains("chap-secret-123") && !d.contains("admin-secret-456"),
        "{d}"
    );
    let wire = serde_json::to_value(&s).expect("json");
    assert_eq!(wire["passwd"], "chap-secret-123");
    assert!(wire.get("embedded").is_none(), "false is left out: {wire}");
}

#[test]
fn accepted_answers_are_jobs_and_no_content_is_empty() {
    let job = r#"{"job":{"id":"j-1","server":"sim1","method":"splitClone","target":"c1","state":"running","percent":null,"created_at":"t","updated_at":"t","finished_at":null,"call_id":"c","error":null,"result":null}}"#;
    let mock = Mock::start(vec![(202, vec![], job.into()), (204, vec![], String::new())]);
    let c = client(&mock.url);
    match c.split("sim1", "c1").expect("split") {
        Reply::Job(j) => {
            assert_eq!(j.id, "j-1");
            assert_eq!(j.state, JobState::Running);
            assert_eq!(j.percent, None);
            assert_eq!(j.raw["method"], "splitClone");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.remove_lun("sim1", "c1").expect("remove"), Reply::Empty);
}

#[test]
fn a_closed_port_is_unreachable_with_a_hint() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let err = client(&url).servers().expect_err("nothing listens");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&url) && text.contains("is `spindle serve` running?"),
        "{text}"
    );
}

#[test]
fn something_else_answering_is_a_bad_answer() {
    let mock = Mock::start(vec![(200, vec![], "<html>hello</html>".into())]);
    let err = client(&mock.url).servers().expect_err("html");
    assert!(matches!(err, Error::BadAnswer { status: 200, .. }), "{err:?}");
}

#[test]
fn bad_urls_call_ids_and_ca_files_are_refused_up_front() {
    assert!(matches!(
        Client::new("127.0.0.1:7480", None, None),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Client::new("http://", None, None),
        Err(Error::Config(_))
    ));
    let c = Client::new("http://127.0.0.1:1/", None, None).expect("client");
    assert_eq!(c.url(), "http://127.0.0.1:1");
    assert!(!c.has_token());
    assert!(c.clone().with_call_id(Some("has space".into())).is_err());
    assert!(c.clone().with_call_id(Some("x".repeat(65))).is_err());
    let dir = std::env::temp_dir().join(format!("spindle-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let not_pem = dir.join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").expect("write");
    let err = Client::new("https://localhost:1", None, Some(&not_pem)).expect_err("no cert");
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let err = Client::new("https://localhost:1", None, Some(&dir.join("missing.pem"))).expect_err("missing");
    assert!(
        err.to_string().contains("cannot read the CA certificate"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn helpers() {
    assert_eq!(encode_component("a b/c~d_e.f-g"), "a%20b%2Fc~d_e.f-g");
    assert!(is_loopback("http://127.0.0.1:7480"));
    assert!(is_loopback("https://localhost"));
    assert!(is_loopback("http://[::1]:80"));
    assert!(!is_loopback("http://array.example:7480"));
    assert!(valid_call_id("a.B_9-z"));
    assert!(!valid_call_id(""));
}
