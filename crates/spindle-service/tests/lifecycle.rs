//! The whole life of a storage server on the simulated array, through Service::handle.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_api::ExceptionKind;
use spindle_service::{Action, Reply, ServiceError};
use std::time::Duration;

fn s(v: &str) -> String {
    v.to_string()
}

/// splitClone of `lun`: the job it answers.
async fn split(env: &Env, server: &str, lun: &str) -> Value {
    match env
        .run(
            "split",
            Action::Split {
                server: s(server),
                lun: s(lun),
            },
        )
        .await
    {
        Ok(Reply::Job(j)) => j,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_lifecycle_on_the_simulated_array() {
    let env = Env::new().await;
    let srv = "sim";

    // ---- registration ----
    let view = env.add_sim(srv, "iSCSIStorage", 200).await;
    assert_eq!(view["name"], srv);
    assert_eq!(view["plugin"], SIM_ID);
    assert_eq!(view["storage_type"], "iSCSIStorage");
    assert_eq!(view["access_port"], 3260);
    assert_eq!(view["status"], "ONLINE");
    assert!(view["uuid"].as_str().is_some_and(|u| u.len() == 36), "{view}");
    assert_eq!(view["secrets_set"], json!(["passwd", "admin_passwd"]));
    assert_eq!(view["counts"], json!({"luns": 0, "clones": 0, "snapshots": 0}));
    assert_eq!(view["vol_groups"][0]["vol_name"], "pool0");
    assert!(view["refreshed_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_no_secrets("ServerView", &view.to_string());
    let all = env.ok(Action::ListServers).await;
    assert_eq!(names(&all), [srv]);
    assert_eq!(
        env.ok(Action::ShowServer { server: s(srv) }).await["uuid"],
        view["uuid"]
    );
    let plugins = env.ok(Action::ListPlugins).await;
    assert_eq!(plugins[0]["class"], SIM);
    assert_eq!(plugins[0]["abilities"]["splitclone_is_sync"], "NO");
    let caps = env.ok(Action::Capabilities { server: s(srv) }).await;
    assert_eq!(caps["splitclone"], "ONLINE");

    // ---- LUNs ----
    let lun1 = env.create(srv, "lun1", GIB).await;
    assert_eq!(lun1["kind"], "lun");
    assert_eq!(lun1["server"], srv);
    assert_eq!(lun1["size"], GIB);
    assert_eq!(lun1["vol_group_name"], "pool0", "the only pool is the default");
    assert!(lun1.get("parent").is_none(), "LUNs have no parent key: {lun1}");
    let page83 = lun1["page83_id"].as_str().unwrap().to_string();
    let uuid1 = lun1["uuid"].as_str().unwrap().to_string();
    let listed = env
        .ok(Action::ListLuns {
            server: s(srv),
            refresh: false,
        })
        .await;
    assert_eq!(names(&listed), ["lun1"]);
    let by_uuid = env.show_lun(srv, &uuid1).await;
    assert_eq!(by_uuid, lun1, "a LUN is found by uuid as by name");
    let refreshed = env
        .ok(Action::ShowLun {
            server: s(srv),
            lun: s("lun1"),
            refresh: true,
        })
        .await;
    assert_eq!(refreshed["page83_id"], page83.as_str());

    let grown = env
        .ok(Action::ResizeLun {
            server: s(srv),
            lun: s("lun1"),
            size: 2 * GIB,
            allow_shrink: false,
        })
        .await;
    assert_eq!(grown["size"], 2 * GIB);
    let off = env
        .ok(Action::Offline {
            server: s(srv),
            lun: s("lun1"),
        })
        .await;
    assert_eq!(off["state"], "OFFLINE", "{off}");
    let shown = env.show_lun(srv, "lun1").await;
    assert_eq!(shown["state"], "OFFLINE", "the stored record follows the change");
    let on = env
        .ok(Action::Online {
            server: s(srv),
            lun: s("lun1"),
        })
        .await;
    assert_eq!(on["state"], "ONLINE");

    // ---- access groups ----
    let g = env
        .ok(Action::CreateGroup {
            server: s(srv),
            name: s("g1"),
            entries: vec![s("IQN.2026-11.org.Example:Host1")],
        })
        .await;
    assert_eq!(
        g,
        json!({"grp_name": "g1", "grp_entries": ["iqn.2026-11.org.example:host1"]})
    );
    let g = env
        .ok(Action::RenameGroup {
            server: s(srv),
            group: s("g1"),
            new_name: s("g2"),
        })
        .await;
    assert_eq!(g["grp_name"], "g2");
    let g = env
        .ok(Action::AddGroupEntries {
            server: s(srv),
            group: s("g2"),
            entries: vec![s("iqn.2026-11.org.example:host2")],
        })
        .await;
    assert_eq!(g["grp_entries"].as_array().unwrap().len(), 2, "{g}");
    let g = env
        .ok(Action::RemoveGroupEntries {
            server: s(srv),
            group: s("g2"),
            entries: vec![s("iqn.2026-11.org.example:host1")],
        })
        .await;
    assert_eq!(g["grp_entries"], json!(["iqn.2026-11.org.example:host2"]));
    let groups = env.ok(Action::ListGroups { server: s(srv) }).await;
    assert_eq!(
        groups,
        json!([g]),
        "the stored access_grps follow every group call"
    );
    let server_view = env.ok(Action::ShowServer { server: s(srv) }).await;
    assert_eq!(server_view["access_grps"], groups);

    // ---- presentation ----
    let p = env
        .ok(Action::Present {
            server: s(srv),
            lun: s("lun1"),
            groups: vec![s("g2")],
        })
        .await;
    assert_eq!(p["access_grp_names"], json!(["g2"]));
    env.ok(Action::RenameGroup {
        server: s(srv),
        group: s("g2"),
        new_name: s("g3"),
    })
    .await;
    let shown = env.show_lun(srv, "lun1").await;
    assert_eq!(
        shown["access_grp_names"],
        json!(["g3"]),
        "a rename reaches presented elements"
    );
    let busy = env
        .err(Action::RemoveGroup {
            server: s(srv),
            group: s("g3"),
        })
        .await;
    assert!(
        matches!(&busy, ServiceError::Refused(e) if e.kind == ExceptionKind::StorageElementBusyEx),
        "{busy:?}"
    );
    let busy = env
        .err(Action::RemoveLun {
            server: s(srv),
            lun: s("lun1"),
        })
        .await;
    assert!(
        matches!(busy, ServiceError::Refused(_)),
        "a presented LUN is not removed"
    );
    let u = env
        .ok(Action::Unpresent {
            server: s(srv),
            lun: s("lun1"),
            groups: vec![s("g3")],
        })
        .await;
    assert_eq!(u["access_grp_names"], json!([]));

    // ---- snapshots ----
    let s1 = env
        .ok(Action::CreateSnapshot {
            server: s(srv),
            lun: s("lun1"),
            name: s("s1"),
        })
        .await;
    assert_eq!(s1["kind"], "snapshot");
    assert_eq!(s1["parent"], "lun1");
    env.create(srv, "lun2", GIB).await;
    let ms = env
        .ok(Action::CreateMultiSnapshot {
            server: s(srv),
            luns: vec![s("lun1"), s("lun2")],
            name: s("ms"),
        })
        .await;
    assert_eq!(ms.as_array().map(Vec::len), Some(1), "{ms}");
    assert_eq!(ms[0]["name"], "ms");
    assert_eq!(ms[0]["parent"], "lun1");
    assert_eq!(ms[0]["parents"], json!(["lun1", "lun2"]), "{ms}");
    assert_eq!(s1["parents"], json!(["lun1"]));
    let snaps = env
        .ok(Action::ListSnapshots {
            server: s(srv),
            lun: None,
        })
        .await;
    assert_eq!(names(&snaps), ["ms", "s1"]);
    let of_lun2 = env
        .ok(Action::ListSnapshots {
            server: s(srv),
            lun: Some(s("lun2")),
        })
        .await;
    assert_eq!(
        names(&of_lun2),
        ["ms"],
        "a multi snapshot belongs to each of its LUNs"
    );
    // Re-read from the array, the snapshot still names both its LUNs.
    env.ok(Action::RefreshServer { server: s(srv) }).await;
    let of_lun2 = env
        .ok(Action::ListSnapshots {
            server: s(srv),
            lun: Some(s("lun2")),
        })
        .await;
    assert_eq!(of_lun2[0]["parents"], json!(["lun1", "lun2"]), "{of_lun2}");
    let luns = env
        .ok(Action::ListLuns {
            server: s(srv),
            refresh: false,
        })
        .await;
    assert_eq!(names(&luns), ["lun1", "lun2"], "snapshots are not LUNs");

    // restore: grow, then roll back to the snapshot's size
    env.ok(Action::ResizeLun {
        server: s(srv),
        lun: s("lun1"),
        size: 3 * GIB,
        allow_shrink: false,
    })
    .await;
    let restored = env
        .ok(Action::RestoreSnapshot {
            server: s(srv),
            snap: s("s1"),
            lun: None,
        })
        .await;
    assert_eq!(restored["name"], "lun1");
    assert_eq!(
        restored["size"],
        2 * GIB,
        "the restored LUN is re-read: {restored}"
    );
    let restored = env
        .ok(Action::RestoreSnapshot {
            server: s(srv),
            snap: s("ms"),
            lun: Some(s("lun2")),
        })
        .await;
    assert_eq!(restored["name"], "lun2");

    // ---- clones ----
    let c1 = env
        .ok(Action::Clone {
            server: s(srv),
            lun: s("lun1"),
            name: s("c1"),
            qos: None,
        })
        .await;
    assert_eq!(c1["kind"], "clone");
    assert_eq!(c1["parent"], "lun1");
    let c2 = env
        .ok(Action::CloneSnapshot {
            server: s(srv),
            snap: s("s1"),
            name: s("c2"),
            qos: None,
            lun: None,
        })
        .await;
    assert_eq!(c2["kind"], "clone");
    assert_eq!(c2["parent"], "s1");
    // A snapshot of several LUNs: which one to clone must be named, and be one of them.
    let e = env
        .err(Action::CloneSnapshot {
            server: s(srv),
            snap: s("ms"),
            name: s("c3"),
            qos: None,
            lun: None,
        })
        .await;
    assert_eq!(e.key(), Some("lun"), "{e:?}");
    assert!(e.to_string().contains("lun1, lun2"), "{e}");
    let e = env
        .err(Action::CloneSnapshot {
            server: s(srv),
            snap: s("s1"),
            name: s("c3"),
            qos: None,
            lun: Some(s("lun2")),
        })
        .await;
    assert_eq!(e.key(), Some("lun"), "{e:?}");
    let c3 = env
        .ok(Action::CloneSnapshot {
            server: s(srv),
            snap: s("ms"),
            name: s("c3"),
            qos: None,
            lun: Some(s("lun2")),
        })
        .await;
    assert_eq!(c3["parent"], "ms");
    env.ok(Action::RemoveLun {
        server: s(srv),
        lun: s("c3"),
    })
    .await;

    // ---- split: a job ----
    let job = match env
        .run(
            "split",
            Action::Split {
                server: s(srv),
                lun: s("c1"),
            },
        )
        .await
        .expect("split")
    {
        Reply::Job(j) => j,
        other => panic!("split answers a job, not {other:?}"),
    };
    assert_eq!(job["state"], "running");
    assert_eq!(job["method"], "splitClone");
    assert_eq!(job["target"], "c1");
    assert!(
        job.get("record").is_none() && !job.to_string().contains("async_handle"),
        "{job}"
    );
    let running = env.ok(Action::ListJobs { running_only: true }).await;
    assert_eq!(running.as_array().map(Vec::len), Some(1));
    let done = env
        .wait_job(job["id"].as_str().unwrap(), Duration::from_secs(20))
        .await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["percent"], 100);
    assert!(done["finished_at"].is_string());
    assert_eq!(done["result"]["name"], "c1");
    assert_eq!(done["result"]["kind"], "lun", "a split clone is a LUN: {done}");
    assert!(!done.to_string().contains("async"), "{done}");
    let c1 = env.show_lun(srv, "c1").await;
    assert_eq!(c1["kind"], "lun");
    assert_eq!(c1["se_type"], "LUNType");
    assert_eq!(
        env.ok(Action::ListJobs { running_only: true }).await,
        json!([]),
        "no job left running"
    );

    // ---- QoS ----
    let qos = env.ok(Action::ListQos { server: s(srv) }).await;
    let levels: Vec<String> = qos
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["value"].as_str().unwrap().to_string())
        .collect();
    assert!(levels.len() > 1, "{qos}");
    let last = levels.last().unwrap().clone();
    let q = env
        .ok(Action::SetQos {
            server: s(srv),
            lun: s("lun2"),
            qos: json!(last),
        })
        .await;
    assert_eq!(q["qos"], json!(last));
    let bad = env
        .err(Action::SetQos {
            server: s(srv),
            lun: s("lun2"),
            qos: json!(7),
        })
        .await;
    assert_eq!(bad.key(), Some("qos"));

    // ---- refresh re-reads everything, parents included ----
    let before = env
        .ok(Action::ListLuns {
            server: s(srv),
            refresh: false,
        })
        .await;
    let view = env.ok(Action::RefreshServer { server: s(srv) }).await;
    assert_eq!(
        view["counts"],
        json!({"luns": 3, "clones": 1, "snapshots": 2}),
        "{view}"
    );
    let after = env
        .ok(Action::ListLuns {
            server: s(srv),
            refresh: false,
        })
        .await;
    assert_eq!(names(&before), names(&after));
    let c2 = env.show_lun(srv, "c2").await;
    assert_eq!(
        c2["parent"], "s1",
        "getCurrentClones(snapshot) names the snapshot"
    );
    let ms = env
        .ok(Action::ListSnapshots {
            server: s(srv),
            lun: Some(s("lun2")),
        })
        .await;
    assert_eq!(
        names(&ms),
        ["ms"],
        "getCurrentSnaps(se) per LUN gives every parent"
    );
    let with_refresh = env
        .ok(Action::ListLuns {
            server: s(srv),
            refresh: true,
        })
        .await;
    assert_eq!(names(&with_refresh), ["c1", "c2", "lun1", "lun2"]);

    // ---- removal ----
    let busy = env
        .err(Action::RemoveSnapshot {
            server: s(srv),
            snap: s("s1"),
        })
        .await;
    assert!(
        matches!(busy, ServiceError::Refused(_)),
        "s1 still backs c2: {busy:?}"
    );
    for lun in ["c2"] {
        assert_eq!(
            env.ok(Action::RemoveLun {
                server: s(srv),
                lun: s(lun)
            })
            .await,
            Value::Null
        );
    }
    for snap in ["s1", "ms"] {
        env.ok(Action::RemoveSnapshot {
            server: s(srv),
            snap: s(snap),
        })
        .await;
    }
    for lun in ["c1", "lun2", "lun1"] {
        env.ok(Action::RemoveLun {
            server: s(srv),
            lun: s(lun),
        })
        .await;
    }
    assert_eq!(
        env.ok(Action::ListLuns {
            server: s(srv),
            refresh: true
        })
        .await,
        json!([])
    );
    env.ok(Action::RemoveGroup {
        server: s(srv),
        group: s("g3"),
    })
    .await;
    assert_eq!(env.ok(Action::ListGroups { server: s(srv) }).await, json!([]));
    env.ok(Action::RemoveServer { server: s(srv) }).await;
    let gone = env.err(Action::ShowServer { server: s(srv) }).await;
    assert!(matches!(gone, ServiceError::NotFound { .. }), "{gone:?}");
    assert_eq!(env.ok(Action::ListServers).await, json!([]));

    // ---- the audit log saw every mutation, newest first ----
    let audit = env.ok(Action::ListAudit { limit: 1000 }).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.first(), Some(&"server.remove"));
    assert_eq!(actions.last(), Some(&"server.add"));
    for a in [
        "lun.create",
        "lun.resize",
        "lun.online",
        "lun.offline",
        "lun.present",
        "lun.unpresent",
        "lun.qos",
        "lun.remove",
        "clone.create",
        "clone.from_snapshot",
        "clone.split",
        "snapshot.create",
        "snapshot.multi",
        "snapshot.restore",
        "snapshot.remove",
        "group.create",
        "group.rename",
        "group.add_entries",
        "group.remove_entries",
        "group.remove",
        "server.refresh",
    ] {
        assert!(actions.contains(&a), "no audit entry for {a}: {actions:?}");
    }
    assert!(
        !actions
            .iter()
            .any(|a| a.ends_with(".list") || a.ends_with(".show")),
        "reads are not audited: {actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_split_still_answers_a_job_already_succeeded() {
    let env = Env::new().await;
    env.add_sim("fast", "SANStorage", 0).await;
    env.create("fast", "base", GIB).await;
    env.clone_lun("fast", "base", "cl").await;
    let job = split(&env, "fast", "cl").await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["kind"], "lun");
    assert!(job["finished_at"].is_string());
    let shown = env
        .ok(Action::ShowJob {
            id: job["id"].as_str().unwrap().to_string(),
        })
        .await;
    assert_eq!(shown, job);
    // Splitting a LUN is refused before the plug-in is asked.
    let e = env
        .err(Action::Split {
            server: s("fast"),
            lun: s("base"),
        })
        .await;
    assert_eq!(e.exception(), Some(ExceptionKind::InvalidValueEx));
    assert_eq!(e.key(), Some("lun"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_refresh_reads_changes_and_records_errors() {
    let env = Env::with(|c| c.refresh_interval = Duration::from_millis(150)).await;
    env.add_sim("r", "SANStorage", 0).await;
    env.create("r", "known", GIB).await;
    // A LUN made behind spindle's back shows up after a refresh.
    let ss = env.tmp.path().join("sim-r");
    let entry = env.manager.resolve(SIM).unwrap();
    let ss_record = json!({
        "name": "r", "uuid": env.ok(Action::ShowServer { server: s("r") }).await["uuid"],
        "storage_type": "SANStorage", "admin_host": "localhost", "admin_user": "admin",
        "admin_passwd": ADMIN_SECRET,
        "extra_info": format!("state_dir={};split_ms_per_gib=0", ss.display()),
    });
    let mut args = serde_json::Map::new();
    args.insert("ss_record".into(), ss_record);
    args.insert(
        "se_record".into(),
        json!({"se_type": "LUNType", "name": "outside", "size": GIB, "ss_uuid": ""}),
    );
    env.manager
        .call(entry, spindle_api::Method::Create, args, Default::default())
        .await
        .expect("create behind spindle's back");
    let mut seen = false;
    for _ in 0..100 {
        let l = env
            .ok(Action::ListLuns {
                server: s("r"),
                refresh: false,
            })
            .await;
        if names(&l) == ["known", "outside"] {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the periodic refresh never saw the new LUN");

    // Break the array: the refresh fails, records stay, last_error says why.
    let state = ss.join("sim-array.json");
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, b"{ not json").unwrap();
    let mut err = Value::Null;
    for _ in 0..100 {
        let v = env.ok(Action::ShowServer { server: s("r") }).await;
        if v["last_error"].is_string() {
            err = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(err["last_error"].is_string(), "no last_error recorded");
    assert_eq!(err["counts"]["luns"], 2, "records are kept: {err}");
    let l = env
        .ok(Action::ListLuns {
            server: s("r"),
            refresh: false,
        })
        .await;
    assert_eq!(names(&l), ["known", "outside"]);
    let e = env.err(Action::RefreshServer { server: s("r") }).await;
    assert!(
        matches!(e, ServiceError::Refused(_) | ServiceError::PluginFailed(_)),
        "{e:?}"
    );
    // refreshed_at is the last re-read that succeeded: a failed one leaves it.
    let after = env.ok(Action::ShowServer { server: s("r") }).await;
    assert_eq!(after["refreshed_at"], err["refreshed_at"], "{after}");
    assert!(after["last_error"].is_string());
    std::fs::write(&state, good).unwrap();
    let v = env.ok(Action::RefreshServer { server: s("r") }).await;
    assert!(v["last_error"].is_null(), "a good refresh clears last_error: {v}");
    env.svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_calls_get_status() {
    let env = Env::new().await;
    env.add_sim("p", "iSCSIStorage", 0).await;
    env.svc.probe("p").await.expect("probe");
    let metrics = env.svc.metrics_text();
    assert!(
        metrics.contains(&format!(
            "spindle_plugin_calls_total{{plugin=\"{SIM_ID}\",method=\"getStatus\",outcome=\"ok\"}} 1"
        )),
        "{metrics}"
    );
    let e = env.svc.probe("nope").await.expect_err("unknown server");
    assert!(matches!(e, ServiceError::NotFound { .. }));
}

/// A refresh asks the plug-in for parents element by element only when a snapshot or clone
/// appeared whose parents spindle does not know: otherwise it is five calls whatever the
/// number of LUNs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_asks_for_parents_only_when_it_does_not_know_them() {
    let env = Env::new().await;
    env.add_sim("p", "SANStorage", 0).await;
    for i in 0..20 {
        env.create("p", &format!("l{i}"), GIB).await;
    }
    env.ok(Action::CreateSnapshot {
        server: s("p"),
        lun: s("l3"),
        name: s("known"),
    })
    .await;
    env.clone_lun("p", "l4", "c4").await;
    let before = env.manager.invocations();
    env.ok(Action::RefreshServer { server: s("p") }).await;
    assert_eq!(
        env.manager.invocations() - before,
        6,
        "refresh, getInfo, list, getCurrentSnaps, getCurrentClones, getAccessGroups"
    );

    // A snapshot made behind spindle's back: its parent is learned by asking per element.
    let entry = env.manager.resolve(SIM).unwrap();
    let server = env.ok(Action::ShowServer { server: s("p") }).await;
    let lun = env.show_lun("p", "l7").await;
    let ss_record = json!({
        "name": "p", "uuid": server["uuid"],
        "storage_type": "SANStorage", "admin_host": "localhost", "admin_user": "admin",
        "admin_passwd": ADMIN_SECRET,
        "extra_info": format!("state_dir={};split_ms_per_gib=0", env.tmp.path().join("sim-p").display()),
    });
    let mut args = serde_json::Map::new();
    args.insert("ss_record".into(), ss_record);
    args.insert(
        "se_record".into(),
        json!({"se_type": "LUNType", "uuid": lun["uuid"], "name": "l7"}),
    );
    args.insert(
        "snap_se_record".into(),
        json!({"se_type": "SnapType", "name": "outside"}),
    );
    env.manager
        .call(entry, spindle_api::Method::CreateSnap, args, Default::default())
        .await
        .expect("snapshot behind spindle's back");
    let before = env.manager.invocations();
    env.ok(Action::RefreshServer { server: s("p") }).await;
    assert!(
        env.manager.invocations() - before > 6,
        "the new snapshot's parent was not asked for"
    );
    let snaps = env
        .ok(Action::ListSnapshots {
            server: s("p"),
            lun: Some(s("l7")),
        })
        .await;
    assert_eq!(names(&snaps), ["outside"]);
    assert_eq!(snaps[0]["parent"], "l7");
    let known = env
        .ok(Action::ListSnapshots {
            server: s("p"),
            lun: Some(s("l3")),
        })
        .await;
    assert_eq!(names(&known), ["known"]);
    let c4 = env.show_lun("p", "c4").await;
    assert_eq!(c4["parent"], "l4");

    // Split, the clone is a LUN of its own: no parent, also after a refresh.
    let job = split(&env, "p", "c4").await;
    env.wait_job(job["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    env.ok(Action::RefreshServer { server: s("p") }).await;
    let c4 = env.show_lun("p", "c4").await;
    assert_eq!(c4["kind"], "lun", "{c4}");
    assert!(c4.get("parent").is_none(), "a split clone keeps no parent: {c4}");
}

/// A change the array made before failing (OperationFailedEx) reaches spindle's records at
/// once, without waiting for the periodic refresh (which this service does not run); a
/// refusal, which changes nothing, re-reads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_before_a_failure_is_read_back_at_once() {
    let env = Env::new().await;
    env.add_sim("a1", "iSCSIStorage", 0).await;
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = || Action::ListLuns {
        server: s("a1"),
        refresh: false,
    };
    let show = || Action::ShowServer { server: s("a1") };
    let registered = env.ok(show()).await["refreshed_at"].clone();
    let trigger = env
        .state_dir("a1")
        .join(spindle_plugin_sim::store::FAIL_AFTER_CHANGE);
    std::fs::write(&trigger, "").unwrap();
    let e = env.err(Action::CreateLun(create_lun("a1", "made", GIB))).await;
    assert_eq!(e.exception(), Some(ExceptionKind::OperationFailedEx), "{e:?}");
    assert!(
        !trigger.exists(),
        "the simulated array did not fail after its change"
    );
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while names(&env.ok(list()).await) != vec![s("made")] {
        assert!(
            std::time::Instant::now() < until,
            "the LUN the array made was not read back: {}",
            env.ok(list()).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(env.show_lun("a1", "made").await["size"], json!(GIB));
    let reread = env.ok(show()).await["refreshed_at"].clone();
    assert_ne!(reread, registered);

    // The array refuses a size beyond its pool: nothing changed, nothing is re-read.
    let e = env
        .err(Action::CreateLun(create_lun("a1", "huge", 1 << 50)))
        .await;
    assert_eq!(e.exception(), Some(ExceptionKind::InvalidValueEx), "{e:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.ok(show()).await["refreshed_at"], reread);
    assert_eq!(names(&env.ok(list()).await), vec![s("made")]);

    // The LUN removed behind spindle's back: the array refuses the stored record it is sent,
    // and the records are re-read at once, so the stale one goes.
    let entry = env.manager.resolve(SIM).unwrap();
    let server = env.ok(show()).await;
    let lun = env.show_lun("a1", "made").await;
    let mut args = serde_json::Map::new();
    args.insert(
        "ss_record".into(),
        json!({
            "name": "a1", "uuid": server["uuid"], "storage_type": "iSCSIStorage",
            "admin_host": "localhost", "admin_user": "admin", "admin_passwd": ADMIN_SECRET,
            "extra_info": format!("state_dir={};split_ms_per_gib=0", env.state_dir("a1").display()),
        }),
    );
    args.insert(
        "se_record".into(),
        json!({"se_type": "LUNType", "uuid": lun["uuid"], "name": "made"}),
    );
    env.manager
        .call(entry, spindle_api::Method::Remove, args, Default::default())
        .await
        .expect("removed behind spindle's back");
    let e = env
        .err(Action::ResizeLun {
            server: s("a1"),
            lun: s("made"),
            size: 2 * GIB,
            allow_shrink: false,
        })
        .await;
    assert_eq!(e.exception(), Some(ExceptionKind::InvalidValueEx), "{e:?}");
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !names(&env.ok(list()).await).is_empty() {
        assert!(std::time::Instant::now() < until, "the stale record stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's totals follow its space shortly after a change, without a refresh (which this
/// service does not run): a thick LUN takes its size from the free space, and gives it back
/// when removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_follow_a_change_without_a_refresh() {
    let env = Env::new().await;
    env.add_sim("a1", "iSCSIStorage", 0).await;
    let free = || async {
        env.ok(Action::ShowServer { server: s("a1") }).await["free_sz"]
            .as_i64()
            .unwrap()
    };
    let wait_free = |want: i64| async move {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let have = free().await;
            if have == want {
                return;
            }
            assert!(std::time::Instant::now() < until, "free_sz is {have}, not {want}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let before = free().await;
    let mut thick = create_lun("a1", "thick", 4 * GIB);
    thick.thin = false;
    env.ok(Action::CreateLun(thick)).await;
    wait_free(before - 4 * GIB).await;
    env.ok(Action::RemoveLun {
        server: s("a1"),
        lun: s("thick"),
    })
    .await;
    wait_free(before).await;
}

/// The embedded array's registrations follow its settings when spindle starts with other ones
/// (`spindle serve --portal ...`): `adopt_embedded` updates them as `server set` would, keeps
/// name, uuid and CHAP, audits the change, and leaves every other server alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_of_the_embedded_array_follow_its_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("sim-embedded");
    let embedded = |access_host: &str, split: u64| spindle_service::EmbeddedServer {
        plugin: SIM.into(),
        ss_record: json!({
            "storage_type": "iSCSIStorage",
            "admin_host": "localhost",
            "admin_user": "root",
            "access_host": access_host,
            "access_port": "3260",
            "extra_info": format!("state_dir={};split_ms_per_gib={split}", state.display()),
        }),
        identity_setting: "state_dir".into(),
    };
    let manager = manager().await;
    let data = tmp.path().join("data");
    let open = |emb: spindle_service::EmbeddedServer| {
        let mut cfg = config(&data, &manager);
        cfg.embedded = Some(emb);
        spindle_service::Service::open(cfg)
    };
    let ctx = |id: &str| spindle_service::RequestContext {
        call_id: id.into(),
        who: "admin".into(),
        remote: "192.0.2.7:1".into(),
    };

    let svc = open(embedded("127.0.0.1", 0)).await.unwrap();
    let mut add = spindle_service::AddServer {
        name: "local".into(),
        embedded: true,
        ..Default::default()
    };
    add.settings.chap = Some(true);
    add.settings.username = Some("chapuser".into());
    add.settings.passwd = Some(CHAP_SECRET.into());
    let Ok(Reply::Created(before)) = svc.handle(&ctx("add"), Action::AddServer(add)).await else {
        panic!("registration failed");
    };
    let other_state = tmp.path().join("sim-other");
    svc.handle(
        &ctx("add-other"),
        Action::AddServer(sim_server("other", &other_state, "iSCSIStorage", 0)),
    )
    .await
    .unwrap();
    // One array, one registration.
    let again = spindle_service::AddServer {
        name: "again".into(),
        embedded: true,
        ..Default::default()
    };
    let e = svc
        .handle(&ctx("add-again"), Action::AddServer(again))
        .await
        .unwrap_err();
    assert_eq!(e.key(), Some("embedded"), "{e:?}");
    assert!(
        e.to_string()
            .contains("already registered as storage server 'local'"),
        "{e}"
    );
    // Its location comes from spindle serve's flags, not from server set; CHAP is set here.
    let set = |f: &dyn Fn(&mut spindle_service::ServerSettings)| {
        let mut u = spindle_service::UpdateServer {
            server: "local".into(),
            ..Default::default()
        };
        f(&mut u.settings);
        Action::UpdateServer(u)
    };
    let e = svc
        .handle(
            &ctx("set-extra"),
            set(&|s| s.extra_info = Some("state_dir=/elsewhere".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(e.key(), Some("extra_info"), "{e:?}");
    assert!(e.to_string().contains("spindle serve's flags"), "{e}");
    svc.handle(&ctx("set-chap"), set(&|s| s.username = Some("chapuser".into())))
        .await
        .unwrap();
    // Nothing changed: nothing to follow.
    assert_eq!(svc.adopt_embedded().await, vec![("local".to_string(), None)]);
    svc.shutdown().await;
    drop(svc);

    // spindle starts again with other settings for the embedded array.
    let svc = open(embedded("127.0.0.2", 300)).await.unwrap();
    assert_eq!(
        svc.adopt_embedded().await,
        vec![(
            "local".to_string(),
            Some("split_ms_per_gib 0 → 300, access_host 127.0.0.1 → 127.0.0.2".to_string())
        )]
    );
    let show = |name: &'static str| Action::ShowServer { server: name.into() };
    let Ok(Reply::Done(now)) = svc.handle(&ctx("show"), show("local")).await else {
        panic!("show failed");
    };
    assert_eq!(now["access_host"], "127.0.0.2");
    assert!(
        now["extra_info"]
            .as_str()
            .unwrap()
            .ends_with("split_ms_per_gib=300"),
        "{now}"
    );
    assert_eq!(now["uuid"], before["uuid"]);
    assert_eq!(now["username"], "chapuser");
    assert!(now["secrets_set"].to_string().contains("passwd"), "{now}");
    let Ok(Reply::Done(other)) = svc.handle(&ctx("show-other"), show("other")).await else {
        panic!("show failed");
    };
    assert_eq!(other["access_host"], "192.0.2.10", "{other}");
    let Ok(Reply::Done(audit)) = svc.handle(&ctx("audit"), Action::ListAudit { limit: 10 }).await else {
        panic!("audit failed");
    };
    let entry = audit
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["who"] == "spindle serve"))
        .unwrap_or_else(|| panic!("the change is audited: {audit}"));
    assert_eq!(entry["action"], "server.update");
    assert_eq!(
        entry["detail"], "split_ms_per_gib 0 → 300, access_host 127.0.0.1 → 127.0.0.2",
        "the audit entry says what changed: {entry}"
    );
    // Followed once: a second start with the same settings changes nothing.
    assert_eq!(svc.adopt_embedded().await, vec![("local".to_string(), None)]);
    svc.shutdown().await;
}

/// spindle was down while its arrays changed: right after it starts, every registered server
/// is re-read once (the embedded array's once `adopt_embedded` has brought it to this run's
/// settings), without waiting for the first periodic refresh, an hour away here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_is_re_read_once_right_after_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (state, other_state) = (tmp.path().join("sim-embedded"), tmp.path().join("sim-other"));
    let embedded = spindle_service::EmbeddedServer {
        plugin: SIM.into(),
        ss_record: json!({
            "storage_type": "iSCSIStorage",
            "admin_host": "localhost",
            "admin_user": "root",
            "access_host": "127.0.0.1",
            "access_port": "3260",
            "extra_info": format!("state_dir={};split_ms_per_gib=0", state.display()),
        }),
        identity_setting: "state_dir".into(),
    };
    let manager = manager().await;
    let data = tmp.path().join("data");
    let open = |refresh_interval: Duration| {
        let mut cfg = config(&data, &manager);
        cfg.embedded = Some(embedded.clone());
        cfg.refresh_interval = refresh_interval;
        spindle_service::Service::open(cfg)
    };
    let ctx = |id: &str| spindle_service::RequestContext {
        call_id: id.into(),
        who: "admin".into(),
        remote: "192.0.2.7:1".into(),
    };
    let svc = open(Duration::ZERO).await.unwrap();
    let add = spindle_service::AddServer {
        name: "local".into(),
        embedded: true,
        ..Default::default()
    };
    svc.handle(&ctx("add"), Action::AddServer(add)).await.unwrap();
    svc.handle(
        &ctx("add-other"),
        Action::AddServer(sim_server("other", &other_state, "iSCSIStorage", 0)),
    )
    .await
    .unwrap();
    svc.shutdown().await;
    drop(svc);

    // While spindle is down, both arrays get a LUN it has not seen (made through another
    // spindle, on a data directory of its own).
    {
        let elsewhere = Env::new().await;
        elsewhere
            .ok(Action::AddServer(sim_server("e", &state, "iSCSIStorage", 0)))
            .await;
        elsewhere
            .ok(Action::AddServer(sim_server(
                "o",
                &other_state,
                "iSCSIStorage",
                0,
            )))
            .await;
        elsewhere.create("e", "made-while-down", GIB).await;
        elsewhere.create("o", "made-while-down", GIB).await;
    }

    let svc = open(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(svc.adopt_embedded().await, vec![("local".to_string(), None)]);
    let luns = |server: &'static str| {
        let svc = std::sync::Arc::clone(&svc);
        async move {
            let list = svc
                .handle(
                    &ctx("list"),
                    Action::ListLuns {
                        server: server.into(),
                        refresh: false,
                    },
                )
                .await;
            let Ok(Reply::Done(list)) = list else {
                panic!("listing {server}: {list:?}");
            };
            names(&list)
        }
    };
    let until = std::time::Instant::now() + Duration::from_secs(10);
    for server in ["local", "other"] {
        loop {
            let found = luns(server).await;
            if found.contains(&s("made-while-down")) {
                break;
            }
            assert!(
                std::time::Instant::now() < until,
                "{server} was not re-read after the start: {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    svc.shutdown().await;
}
