//! Secrets never leave spindle (views, metrics, logs); every mutation is audited with its call
//! id; metrics have the documented families. One test per binary: it installs the global log
//! subscriber that captures every line.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_api::ExceptionKind;
use spindle_service::{Action, AddServer, EmbeddedServer, Reply, RequestContext};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn ctx(call_id: &str) -> RequestContext {
    RequestContext {
        call_id: call_id.into(),
        who: "admin".into(),
        remote: "198.51.100.4:4711".into(),
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_stay_inside_audit_records_every_mutation_metrics_are_complete() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();

    let tmp_state = tempfile::tempdir().unwrap();
    let embedded_ss = json!({
        "storage_type": "iSCSIStorage",
        "admin_host": "localhost",
        "admin_user": "root",
        "admin_passwd": ADMIN_SECRET,
        "passwd": CHAP_SECRET,
        "username": "chap",
        "extra_info": format!("state_dir={};split_ms_per_gib=300", tmp_state.path().display()),
    });
    let emb = EmbeddedServer {
        plugin: SIM.into(),
        ss_record: embedded_ss,
        identity_setting: "state_dir".into(),
    };
    assert_no_secrets("EmbeddedServer Debug", &format!("{emb:?}"));
    let env = Env::with(|c| c.embedded = Some(emb)).await;
    let h = |id: &'static str, a: Action| {
        let svc = Arc::clone(&env.svc);
        async move { svc.handle(&ctx(id), a).await }
    };

    // ---- the embedded array, and a second server with every secret set ----
    let local = match h(
        "reg-embedded",
        Action::AddServer(AddServer {
            name: s("local"),
            embedded: true,
            ..Default::default()
        }),
    )
    .await
    .unwrap()
    {
        Reply::Created(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(local["plugin"], SIM_ID);
    assert_eq!(local["name"], "local");
    assert_eq!(local["admin_user"], "root");
    assert_eq!(local["secrets_set"], json!(["passwd", "admin_passwd"]));
    let e = h(
        "reg-embedded-bad",
        Action::AddServer(AddServer {
            name: s("x"),
            embedded: true,
            plugin: Some(s(SIM)),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code(), e.key()), ("bad_request", Some("plugin")));
    env.add_sim("sim", "iSCSIStorage", 0).await;

    // ---- mutations that succeed, and some that fail ----
    h("mk-ok-1", Action::CreateLun(create_lun("local", "vol1", GIB)))
        .await
        .unwrap();
    h("mk-ok-2", Action::CreateLun(create_lun("local", "vol2", GIB)))
        .await
        .unwrap();
    let e = h(
        "mk-bad-1",
        Action::CreateLun(create_lun("local", "bad name", GIB)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "bad_request");
    h(
        "grp-1",
        Action::CreateGroup {
            server: s("local"),
            name: s("hosts"),
            entries: vec![s("iqn.2026-11.org.example:h1")],
        },
    )
    .await
    .unwrap();
    h(
        "present-1",
        Action::Present {
            server: s("local"),
            lun: s("vol1"),
            groups: vec![s("hosts")],
        },
    )
    .await
    .unwrap();
    let e = h(
        "rm-busy-1",
        Action::RemoveLun {
            server: s("local"),
            lun: s("vol1"),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.exception(), Some(ExceptionKind::StorageElementBusyEx));
    let e = h(
        "rm-missing-1",
        Action::RemoveLun {
            server: s("local"),
            lun: s("nope"),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "not_found");
    h(
        "clone-1",
        Action::Clone {
            server: s("local"),
            lun: s("vol2"),
            name: s("cl"),
            qos: None,
        },
    )
    .await
    .unwrap();
    let job = match h(
        "split-1",
        Action::Split {
            server: s("local"),
            lun: s("cl"),
        },
    )
    .await
    .unwrap()
    {
        Reply::Job(j) => j,
        other => panic!("{other:?}"),
    };
    assert_eq!(job["call_id"], "split-1");
    let done = env
        .wait_job(job["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(done["state"], "succeeded");
    h("refresh-1", Action::RefreshServer { server: s("local") })
        .await
        .unwrap();
    h(
        "set-1",
        Action::UpdateServer(spindle_service::UpdateServer {
            server: s("sim"),
            settings: spindle_service::ServerSettings {
                chap: Some(false),
                username: Some(s("chapuser")),
                passwd: Some(format!("{CHAP_SECRET}-new")),
                admin_passwd: Some(s(ADMIN_SECRET)),
                ..Default::default()
            },
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    h(
        "read-1",
        Action::ListLuns {
            server: s("local"),
            refresh: false,
        },
    )
    .await
    .unwrap();

    // ---- audit ----
    let audit = env.ok(Action::ListAudit { limit: 100 }).await;
    let rows = audit.as_array().unwrap();
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["call_id"] == id)
            .unwrap_or_else(|| panic!("no audit entry for {id}: {audit}"))
            .clone()
    };
    let ok = row("mk-ok-1");
    assert_eq!(ok["action"], "lun.create");
    assert_eq!(ok["who"], "admin");
    assert_eq!(ok["remote"], "198.51.100.4:4711");
    assert_eq!(ok["server"], "local");
    assert_eq!(ok["target"], "vol1");
    assert_eq!(ok["outcome"], "ok");
    assert_eq!(ok["exception"], Value::Null);
    assert!(ok["duration_ms"].as_i64().is_some_and(|d| d >= 0));
    assert!(ok["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let bad = row("mk-bad-1");
    assert_eq!(
        (bad["outcome"].as_str(), bad["exception"].as_str()),
        (Some("bad_request"), Some("ValueFormatEx"))
    );
    let busy = row("rm-busy-1");
    assert_eq!(busy["action"], "lun.remove");
    assert_eq!(
        (busy["outcome"].as_str(), busy["exception"].as_str()),
        (Some("refused"), Some("StorageElementBusyEx"))
    );
    assert_eq!(row("rm-missing-1")["outcome"], "not_found");
    assert_eq!(row("reg-embedded")["action"], "server.add");
    assert_eq!(row("reg-embedded-bad")["outcome"], "bad_request");
    assert_eq!(row("split-1")["action"], "clone.split");
    assert_eq!(row("refresh-1")["action"], "server.refresh");
    assert_eq!(row("refresh-1")["detail"], Value::Null);
    let set = row("set-1");
    assert_eq!(set["action"], "server.update");
    assert_eq!(
        set["detail"], "passwd changed, chap true → false",
        "what changed (not what was given again), the secret only as changed: {set}"
    );
    assert!(
        !rows.iter().any(|r| r["call_id"] == "read-1"),
        "reads are not audited"
    );
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let two = env.ok(Action::ListAudit { limit: 2 }).await;
    assert_eq!(two.as_array().unwrap().as_slice(), &rows[..2]);

    // ---- no secret in any view ----
    let views = [
        env.ok(Action::ListServers).await,
        env.ok(Action::ShowServer { server: s("local") }).await,
        env.ok(Action::ShowServer { server: s("sim") }).await,
        env.ok(Action::ListLuns {
            server: s("local"),
            refresh: false,
        })
        .await,
        env.ok(Action::ListSnapshots {
            server: s("local"),
            lun: None,
        })
        .await,
        env.ok(Action::ListGroups { server: s("local") }).await,
        env.ok(Action::ListJobs { running_only: false }).await,
        audit.clone(),
        env.ok(Action::ListPlugins).await,
        env.ok(Action::Capabilities { server: s("local") }).await,
        env.ok(Action::RefreshServer { server: s("sim") }).await,
    ];
    for v in &views {
        assert_no_secrets("a view", &v.to_string());
        assert!(!v.to_string().contains("async_handle"), "{v}");
    }
    // They are stored, though (a plug-in needs them).
    let db = std::fs::read(env.data_dir().join("spindle.db")).unwrap_or_default();
    let wal = std::fs::read(env.data_dir().join("spindle.db-wal")).unwrap_or_default();
    let hay = [db, wal].concat();
    assert!(
        hay.windows(ADMIN_SECRET.len())
            .any(|w| w == ADMIN_SECRET.as_bytes()),
        "the ss_record (with its secrets) is stored"
    );

    // ---- metrics ----
    let m = env.svc.metrics_text();
    assert_no_secrets("metrics", &m);
    for family in [
        "# HELP spindle_plugin_calls_total ",
        "# TYPE spindle_plugin_calls_total counter",
        "# TYPE spindle_plugin_call_duration_seconds histogram",
        "# TYPE spindle_actions_total counter",
        "# TYPE spindle_jobs gauge",
        "# TYPE spindle_cache_hits_total counter",
        "# TYPE spindle_cache_misses_total counter",
    ] {
        assert!(m.contains(family), "{family} missing:\n{m}");
    }
    for line in [
        format!("spindle_plugin_calls_total{{plugin=\"{SIM_ID}\",method=\"create\",outcome=\"ok\"}} 2"),
        format!("spindle_plugin_calls_total{{plugin=\"{SIM_ID}\",method=\"remove\",outcome=\"raised\"}} 1"),
        format!("spindle_plugin_call_duration_seconds_count{{plugin=\"{SIM_ID}\",method=\"create\"}} 2"),
        format!("spindle_plugin_call_duration_seconds_bucket{{plugin=\"{SIM_ID}\",method=\"create\",le=\"+Inf\"}} 2"),
        "spindle_actions_total{action=\"lun.create\",outcome=\"ok\"} 2".to_string(),
        "spindle_actions_total{action=\"lun.create\",outcome=\"bad_request\"} 1".to_string(),
        "spindle_actions_total{action=\"lun.remove\",outcome=\"refused\"} 1".to_string(),
        "spindle_actions_total{action=\"lun.list\",outcome=\"ok\"}".to_string(),
        "spindle_jobs{state=\"running\"} 0".to_string(),
        "spindle_jobs{state=\"succeeded\"} 1".to_string(),
        "spindle_cache_hits_total ".to_string(),
    ] {
        assert!(m.contains(&line), "{line} missing:\n{m}");
    }
    let polls = format!(
        "spindle_plugin_calls_total{{plugin=\"{SIM_ID}\",method=\"getAsyncProgress\",outcome=\"ok\"}}"
    );
    assert!(m.contains(&polls), "the job's polls are counted:\n{m}");

    // ---- logs: call ids everywhere, secrets nowhere ----
    env.svc.shutdown().await;
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(!text.is_empty());
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{text}");
    }
    assert_no_secrets("the logs", &text);
    for id in ["mk-ok-1", "mk-bad-1", "rm-busy-1", "split-1", "reg-embedded"] {
        assert!(text.contains(id), "no log line carries call id {id}");
    }
    assert!(
        text.lines()
            .any(|l| l.contains("job") && l.contains("split-1") && l.contains("getAsyncProgress")),
        "job polls are logged under the request's call id"
    );
}
