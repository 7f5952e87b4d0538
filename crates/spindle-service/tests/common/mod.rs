//! Shared set-up: a real Manager with the built-in simulated array, a Service on a fresh data
//! directory, and helpers to drive it.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::Value;
use spindle_manager::{Manager, ManagerConfig};
use spindle_plugin_sim::SimArray;
use spindle_service::{
    Action, AddServer, CreateLun, Reply, RequestContext, ServerSettings, Service, ServiceConfig, ServiceError,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SIM: &str = "spindle.sim.SimArray";
pub const SIM_ID: &str = "spindle.sim.SimArray@0.1.0-1";
pub const ADMIN_SECRET: &str = "adm1n-S3CRET-pw";
pub const CHAP_SECRET: &str = "chap-S3CRET-pw";
pub const GIB: i64 = 1 << 30;

pub async fn manager() -> Arc<Manager> {
    Arc::new(
        Manager::new(ManagerConfig {
            builtins: vec![Arc::new(SimArray)],
            ..Default::default()
        })
        .await
        .expect("manager"),
    )
}

pub fn config(data_dir: &Path, manager: &Arc<Manager>) -> ServiceConfig {
    ServiceConfig {
        data_dir: data_dir.to_path_buf(),
        manager: Arc::clone(manager),
        embedded: None,
        refresh_interval: Duration::ZERO,
        job_poll_interval: Duration::from_millis(20),
    }
}

/// A fresh data directory and sim state directory, a manager and an open service.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub manager: Arc<Manager>,
    pub svc: Arc<Service>,
    n: AtomicU64,
}

impl Env {
    pub async fn new() -> Env {
        Env::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut ServiceConfig)) -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        let manager = manager().await;
        let mut cfg = config(&tmp.path().join("data"), &manager);
        tweak(&mut cfg);
        let svc = Service::open(cfg).await.expect("open");
        Env {
            tmp,
            manager,
            svc,
            n: AtomicU64::new(0),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(format!("sim-{name}"))
    }

    /// A fresh context with a recognisable call id.
    pub fn ctx(&self, tag: &str) -> RequestContext {
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        RequestContext {
            call_id: format!("t-{tag}-{n}"),
            who: "admin".into(),
            remote: "192.0.2.7:5555".into(),
        }
    }

    pub async fn run(&self, tag: &str, action: Action) -> Result<Reply, ServiceError> {
        self.svc.handle(&self.ctx(tag), action).await
    }

    /// Runs `action`, expecting success; the reply's JSON (Null for Nothing).
    pub async fn ok(&self, action: Action) -> Value {
        let name = action.name();
        match self.run(name, action).await {
            Ok(Reply::Created(v)) | Ok(Reply::Done(v)) | Ok(Reply::Job(v)) => v,
            Ok(Reply::Nothing) => Value::Null,
            Err(e) => panic!("{name} failed: {e:?}"),
        }
    }

    pub async fn err(&self, action: Action) -> ServiceError {
        let name = action.name();
        match self.run(name, action).await {
            Ok(r) => panic!("{name} should have failed, answered {r:?}"),
            Err(e) => e,
        }
    }

    /// Registers a simulated array called `name`.
    pub async fn add_sim(&self, name: &str, storage_type: &str, split_ms_per_gib: u64) -> Value {
        match self
            .run(
                "add",
                Action::AddServer(sim_server(
                    name,
                    &self.state_dir(name),
                    storage_type,
                    split_ms_per_gib,
                )),
            )
            .await
        {
            Ok(Reply::Created(v)) => v,
            other => panic!("registration: {other:?}"),
        }
    }

    pub async fn create(&self, server: &str, name: &str, size: i64) -> Value {
        self.ok(Action::CreateLun(create_lun(server, name, size))).await
    }

    /// Shows LUN `lun` of `server` as spindle last recorded it (no refresh).
    pub async fn show_lun(&self, server: &str, lun: &str) -> Value {
        self.ok(Action::ShowLun {
            server: server.to_string(),
            lun: lun.to_string(),
            refresh: false,
        })
        .await
    }

    /// Clones LUN `lun` of `server` as `name` (default QoS).
    pub async fn clone_lun(&self, server: &str, lun: &str, name: &str) -> Value {
        self.ok(Action::Clone {
            server: server.to_string(),
            lun: lun.to_string(),
            name: name.to_string(),
            qos: None,
        })
        .await
    }

    /// Follows a job until it is no longer running.
    pub async fn wait_job(&self, id: &str, within: Duration) -> Value {
        let until = Instant::now() + within;
        loop {
            let j = self.ok(Action::ShowJob { id: id.to_string() }).await;
            if j["state"] != "running" {
                return j;
            }
            assert!(Instant::now() < until, "job still running after {within:?}: {j}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn sim_server(name: &str, state_dir: &Path, storage_type: &str, split_ms_per_gib: u64) -> AddServer {
    AddServer {
        name: name.to_string(),
        plugin: Some(SIM.into()),
        storage_type: Some(storage_type.into()),
        settings: ServerSettings {
            admin_host: Some("localhost".into()),
            admin_user: Some("admin".into()),
            admin_passwd: Some(ADMIN_SECRET.into()),
            access_host: Some("192.0.2.10".into()),
            access_port: Some(3260),
            username: Some("chapuser".into()),
            passwd: Some(CHAP_SECRET.into()),
            chap: Some(true),
            extra_info: Some(format!(
                "state_dir={};split_ms_per_gib={split_ms_per_gib}",
                state_dir.display()
            )),
        },
        embedded: false,
    }
}

pub fn create_lun(server: &str, name: &str, size: i64) -> CreateLun {
    CreateLun {
        server: server.into(),
        name: name.into(),
        size,
        vol_group: None,
        thin: true,
        qos: None,
    }
}

/// The names in a list of views.
pub fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

/// Panics if `text` holds a secret.
pub fn assert_no_secrets(what: &str, text: &str) {
    for s in [ADMIN_SECRET, CHAP_SECRET] {
        assert!(!text.contains(s), "{what} leaks a secret: {text}");
    }
}
