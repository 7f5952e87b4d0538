//! Many clients at once on one storage server.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use spindle_service::{Action, Reply};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_concurrent_creates_all_succeed_with_distinct_page83_ids() {
    let env = Env::new().await;
    env.add_sim("sim", "iSCSIStorage", 0).await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let svc = Arc::clone(&env.svc);
        let ctx = env.ctx("mk");
        tasks.push(tokio::spawn(async move {
            svc.handle(
                &ctx,
                Action::CreateLun(create_lun("sim", &format!("lun{i:02}"), GIB)),
            )
            .await
        }));
    }
    let mut page83 = HashSet::new();
    let mut uuids = HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(Reply::Created(v)) => {
                assert!(
                    page83.insert(v["page83_id"].as_str().unwrap().to_string()),
                    "page83 reused: {v}"
                );
                assert!(uuids.insert(v["uuid"].as_str().unwrap().to_string()));
            }
            other => panic!("a create failed: {other:?}"),
        }
    }
    assert_eq!(page83.len(), 32);
    let stored = env
        .ok(Action::ListLuns {
            server: "sim".into(),
            refresh: false,
        })
        .await;
    assert_eq!(stored.as_array().unwrap().len(), 32);
    let array = env
        .ok(Action::ListLuns {
            server: "sim".into(),
            refresh: true,
        })
        .await;
    assert_eq!(
        stored, array,
        "the store matches the array after concurrent creates"
    );
    let view = env.ok(Action::ShowServer { server: "sim".into() }).await;
    assert_eq!(view["counts"]["luns"], 32);
    let audit = env.ok(Action::ListAudit { limit: 100 }).await;
    let creates = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "lun.create" && a["outcome"] == "ok")
        .count();
    assert_eq!(creates, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_are_answered_while_a_mutation_is_stuck_in_the_plugin() {
    let env = Env::new().await;
    env.add_sim("sim", "SANStorage", 0).await;
    for i in 0..5 {
        env.create("sim", &format!("base{i}"), GIB).await;
    }
    // Hold the simulated array's own lock: every plug-in call on it now blocks.
    let lock = std::fs::File::open(env.state_dir("sim").join("sim-array.lock")).unwrap();
    lock.lock().unwrap();
    let svc = Arc::clone(&env.svc);
    let ctx = env.ctx("stuck");
    let stuck = tokio::spawn(async move {
        svc.handle(&ctx, Action::CreateLun(create_lun("sim", "late", GIB)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stuck.is_finished(), "the create should be waiting for the array");
    let started = Instant::now();
    for i in 0..60 {
        let a = match i % 4 {
            0 => Action::ListLuns {
                server: "sim".into(),
                refresh: false,
            },
            1 => Action::ShowServer { server: "sim".into() },
            2 => Action::ShowLun {
                server: "sim".into(),
                lun: "base3".into(),
                refresh: false,
            },
            _ => Action::ListAudit { limit: 10 },
        };
        let r = tokio::time::timeout(Duration::from_secs(2), env.svc.handle(&env.ctx("r"), a)).await;
        assert!(
            matches!(r, Ok(Ok(_))),
            "a read waited for the stuck mutation: {r:?}"
        );
    }
    eprintln!("60 reads while a mutation was stuck: {:?}", started.elapsed());
    assert!(
        !stuck.is_finished(),
        "the create was still stuck during the reads"
    );
    // Another mutation on the same server waits its turn (mutations are serialised).
    let svc = Arc::clone(&env.svc);
    let ctx = env.ctx("second");
    let second = tokio::spawn(async move {
        svc.handle(
            &ctx,
            Action::RemoveLun {
                server: "sim".into(),
                lun: "base0".into(),
            },
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second.is_finished());
    lock.unlock().unwrap();
    assert!(matches!(stuck.await.unwrap(), Ok(Reply::Created(_))));
    assert!(matches!(second.await.unwrap(), Ok(Reply::Nothing)));
    let luns = env
        .ok(Action::ListLuns {
            server: "sim".into(),
            refresh: false,
        })
        .await;
    assert_eq!(names(&luns), ["base1", "base2", "base3", "base4", "late"]);
}

/// One array, one registration, however many ask at once: parallel `server add --embedded`
/// under different names register the embedded array once.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_embedded_registrations_register_the_array_once() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("sim-embedded");
    let manager = manager().await;
    let mut cfg = config(&tmp.path().join("data"), &manager);
    cfg.embedded = Some(spindle_service::EmbeddedServer {
        plugin: SIM.into(),
        ss_record: serde_json::json!({
            "storage_type": "iSCSIStorage",
            "admin_host": "localhost",
            "extra_info": format!("state_dir={}", state.display()),
        }),
        identity_setting: "state_dir".into(),
    });
    let svc = spindle_service::Service::open(cfg).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let svc = Arc::clone(&svc);
        tasks.push(tokio::spawn(async move {
            let ctx = spindle_service::RequestContext {
                call_id: format!("add-{i}"),
                who: "admin".into(),
                remote: "192.0.2.7:1".into(),
            };
            let add = spindle_service::AddServer {
                name: format!("local{i}"),
                embedded: true,
                ..Default::default()
            };
            svc.handle(&ctx, Action::AddServer(add)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.key(), Some("embedded"), "{e:?}"),
        }
    }
    let ctx = spindle_service::RequestContext {
        call_id: "list".into(),
        who: "admin".into(),
        remote: "192.0.2.7:1".into(),
    };
    let Ok(Reply::Done(list)) = svc.handle(&ctx, Action::ListServers).await else {
        panic!("list failed");
    };
    assert_eq!(
        (ok, list.as_array().unwrap().len()),
        (1, 1),
        "the embedded array was registered more than once: {list}"
    );
}
