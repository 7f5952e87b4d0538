//! A real server for the integration tests: the built-in sim plug-in behind a real manager
//! and a real service, served over HTTP (or HTTPS) on 127.0.0.1:0 by a runtime of its own;
//! a blocking ureq client talks to it.
#![allow(dead_code)]

use serde_json::Value;
use spindle_http::{bind, HttpOptions, TlsFiles, Token};
use spindle_manager::{Manager, ManagerConfig, Mode};
use spindle_service::{Service, ServiceConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A running server; stopped (gracefully) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub token: String,
    pub dir: tempfile::TempDir,
    pub agent: ureq::Agent,
    /// The service behind the server (to call it in process, on a runtime of the caller's).
    pub service: Arc<Service>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The manager, service and token the servers of these tests run on.
pub async fn stack(dir: &Path) -> (Arc<Service>, Token) {
    let manager = Manager::new(ManagerConfig {
        builtins: vec![Arc::new(spindle_plugin_sim::SimArray)],
        mode: Mode::Strict,
        call_deadline: Duration::from_secs(30),
        async_poll_interval: Duration::from_millis(20),
        async_deadline: Duration::from_secs(120),
        temp_root: Some(dir.join("manager-tmp")),
        ..ManagerConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("manager: {e}"));
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).unwrap_or_else(|e| panic!("data dir: {e}"));
    let service = Service::open(ServiceConfig {
        data_dir: data_dir.clone(),
        manager: Arc::new(manager),
        embedded: None,
        refresh_interval: Duration::ZERO,
        job_poll_interval: Duration::from_millis(50),
    })
    .await
    .unwrap_or_else(|e| panic!("service: {e}"));
    let token = Token::load_or_create(&data_dir).unwrap_or_else(|e| panic!("token: {e}"));
    (service, token)
}

/// An agent that reports every status as a response (not an error).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

impl TestServer {
    /// A plain-HTTP server.
    pub fn start() -> TestServer {
        TestServer::start_with(None, agent())
    }

    /// A server with these TLS files, and the agent to talk to it.
    pub fn start_with(tls: Option<TlsFiles>, agent: ureq::Agent) -> TestServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let root = dir.path().to_path_buf();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(SocketAddr, String, Arc<Service>)>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("runtime: {e}"));
            rt.block_on(async move {
                let (service, token) = stack(&root).await;
                let secret = token.expose_secret().to_owned();
                let server = bind(
                    HttpOptions {
                        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                        tls,
                    },
                    service.clone(),
                    token,
                )
                .await
                .unwrap_or_else(|e| panic!("bind: {e}"));
                let _ = ready_tx.send((server.local_addr(), secret, service.clone()));
                server
                    .run(async {
                        let _ = stop_rx.await;
                    })
                    .await;
                service.shutdown().await;
            });
        });
        let (addr, token, service) = ready_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        TestServer {
            addr,
            base: format!("{scheme}://{addr}"),
            token,
            dir,
            agent,
            service,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The sim's state directory for a storage server named `name`.
    pub fn sim_dir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join("sim").join(name);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("sim dir: {e}"));
        d
    }

    /// A request with the right token.
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        let auth = format!("Bearer {}", self.token);
        self.raw(method, path, body, &[("authorization", &auth)])
    }

    pub fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> Resp {
        self.call("POST", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None)
    }

    /// A request with exactly these headers.
    pub fn raw(&self, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Resp {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let result = match body {
            Some(b) => self.agent.run(
                req.header("content-type", "application/json")
                    .body(b.to_owned())
                    .unwrap_or_else(|e| panic!("request: {e}")),
            ),
            None => self
                .agent
                .run(req.body(()).unwrap_or_else(|e| panic!("request: {e}"))),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let call_id = header("x-call-id");
        let content_type = header("content-type");
        let allow = header("allow");
        let text = resp
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {path}: body: {e}"));
        Resp {
            status,
            call_id,
            content_type,
            allow,
            text,
        }
    }

    /// Registers a sim storage server named `name` (iSCSI), asserting 201.
    pub fn add_sim_server(&self, name: &str) -> Value {
        let r = self.add_sim_server_raw(name);
        assert_eq!(r.status, 201, "add server: {}", r.text);
        r.json()
    }

    /// Asks to register a sim storage server named `name` (iSCSI).
    pub fn add_sim_server_raw(&self, name: &str) -> Resp {
        let dir = self.sim_dir(name);
        let body = serde_json::json!({
            "name": name,
            "plugin": "spindle.sim.SimArray",
            "storage_type": "iSCSIStorage",
            "admin_host": "192.0.2.10",
            "admin_user": "admin",
            "admin_passwd": "not-a-real-secret",
            "access_host": "192.0.2.10",
            "extra_info": format!("state_dir={};split_ms_per_gib=50;capacity=1T", dir.display()),
        });
        self.post("/v1/servers", &body.to_string())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub call_id: Option<String>,
    pub content_type: Option<String>,
    pub allow: Option<String>,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The `error` object of an error answer, checked for the documented shape.
    pub fn error(&self) -> Value {
        let v = self.json();
        let e = v
            .get("error")
            .unwrap_or_else(|| panic!("no error object: {}", self.text))
            .clone();
        for k in ["code", "exception", "message", "key", "call_id"] {
            assert!(e.get(k).is_some(), "error body lacks {k}: {}", self.text);
        }
        assert_eq!(
            e["call_id"].as_str(),
            self.call_id.as_deref(),
            "call_id in body and header differ"
        );
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        e
    }

    /// Asserts the status of an error answer (and its shape).
    pub fn assert_status(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text);
        if status >= 400 {
            self.error();
        }
    }

    /// Asserts an error answer's status, code, exception and key.
    pub fn expect_error(&self, status: u16, code: &str, exception: Option<&str>, key: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.text);
        let e = self.error();
        assert_eq!(e["code"].as_str(), Some(code), "{}", self.text);
        assert_eq!(e["exception"].as_str(), exception, "{}", self.text);
        assert_eq!(e["key"].as_str(), key, "{}", self.text);
    }
}
