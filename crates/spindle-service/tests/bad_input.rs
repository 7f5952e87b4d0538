//! Bad input gives the documented error, reaches no plug-in, and changes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_api::ExceptionKind;
use spindle_service::{Action, AddServer, CreateLun, ServiceError, UpdateServer};

fn s(v: &str) -> String {
    v.to_string()
}

/// Everything an observer can see of the server: stored views and the array's state file.
async fn observe(env: &Env, server: &str) -> (Value, Value, Value, Value, Vec<u8>) {
    (
        env.ok(Action::ListServers).await,
        env.ok(Action::ListLuns {
            server: s(server),
            refresh: false,
        })
        .await,
        env.ok(Action::ListSnapshots {
            server: s(server),
            lun: None,
        })
        .await,
        env.ok(Action::ListGroups { server: s(server) }).await,
        std::fs::read(env.state_dir(server).join("sim-array.json")).unwrap(),
    )
}

fn expect_bad(e: &ServiceError, exception: ExceptionKind, key: &str) {
    match e {
        ServiceError::BadRequest {
            exception: Some(x),
            key: Some(k),
            ..
        } => {
            assert_eq!((*x, k.as_str()), (exception, key), "{e:?}");
        }
        other => panic!("expected bad_request {exception} on {key}, got {other:?}"),
    }
    assert_eq!(e.code(), "bad_request");
}

fn expect_not_found(e: &ServiceError, key: &str) {
    assert!(matches!(e, ServiceError::NotFound { .. }), "{e:?}");
    assert_eq!(e.key(), Some(key), "{e:?}");
    assert_eq!(e.code(), "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_plugin_call_and_changes_nothing() {
    let env = Env::new().await;
    env.add_sim("sim", "iSCSIStorage", 0).await;
    env.create("sim", "lun1", GIB).await;
    env.ok(Action::CreateSnapshot {
        server: s("sim"),
        lun: s("lun1"),
        name: s("snap1"),
    })
    .await;
    env.ok(Action::CreateGroup {
        server: s("sim"),
        name: s("g"),
        entries: vec![],
    })
    .await;
    let before = observe(&env, "sim").await;
    let calls = env.manager.invocations();

    let lun = |name: &str, size: i64| Action::CreateLun(create_lun("sim", name, size));
    // names
    for bad in ["bad name", "a/b", "-x", "a;b", "x$(id)", &"n".repeat(65)] {
        let e = env.err(lun(bad, GIB)).await;
        expect_bad(&e, ExceptionKind::ValueFormatEx, "name");
    }
    // names that look like another (lun1 and a zero-width space) or turn the line around
    for bad in ["lun1\u{200B}", "x\u{202E}gpj.exe", "\u{FEFF}lun1"] {
        let e = env.err(lun(bad, GIB)).await;
        expect_bad(&e, ExceptionKind::ValueFormatEx, "name");
        assert!(e.message().contains("invisible or text-direction"), "{e}");
    }
    // a decomposed "é" (e + U+0301) looks like the composed one: another name that looks
    // the same, so only the composed spelling is accepted, and the message shows it
    let e = env.err(lun("caf\u{65}\u{301}", GIB)).await;
    expect_bad(&e, ExceptionKind::ValueFormatEx, "name");
    assert!(
        e.message().contains("normal form C (write it as 'caf\u{e9}')"),
        "{e}"
    );
    // "data1" with a Cyrillic "а" reads as the Latin name another LUN may have
    let e = env.err(lun("d\u{430}ta1", GIB)).await;
    expect_bad(&e, ExceptionKind::ValueFormatEx, "name");
    assert!(e.message().contains("mixes letters of Latin and Cyrillic"), "{e}");
    expect_bad(&env.err(lun("", GIB)).await, ExceptionKind::MissingKeyEx, "name");
    // sizes
    for size in [0, -1, i64::MIN] {
        expect_bad(
            &env.err(lun("fine", size)).await,
            ExceptionKind::InvalidValueEx,
            "size",
        );
        let e = env
            .err(Action::ResizeLun {
                server: s("sim"),
                lun: s("lun1"),
                size,
                allow_shrink: true,
            })
            .await;
        expect_bad(&e, ExceptionKind::InvalidValueEx, "size");
    }
    // pools
    let e = env
        .err(Action::CreateLun(CreateLun {
            vol_group: Some(s("nopool")),
            ..create_lun("sim", "fine", GIB)
        }))
        .await;
    expect_bad(&e, ExceptionKind::InvalidValueEx, "vol_group");
    assert!(e.message().contains("pool0"), "the pools are listed: {e}");
    // qos must be a string
    let e = env
        .err(Action::CreateLun(CreateLun {
            qos: Some(json!(3)),
            ..create_lun("sim", "fine", GIB)
        }))
        .await;
    expect_bad(&e, ExceptionKind::ValueFormatEx, "qos");
    // name already used (by a LUN, by a snapshot)
    for taken in ["lun1", "snap1"] {
        let e = env.err(lun(taken, GIB)).await;
        assert!(
            matches!(e, ServiceError::Conflict { ambiguous: false, .. }),
            "{e:?}"
        );
        assert_eq!((e.code(), e.key()), ("conflict", Some("name")));
    }
    let e = env
        .err(Action::Clone {
            server: s("sim"),
            lun: s("lun1"),
            name: s("snap1"),
            qos: None,
        })
        .await;
    assert_eq!(e.code(), "conflict");
    // unknown server, LUN, snapshot, group, job
    let e = env.err(lun("fine", GIB).clone_with_server("nosuch")).await;
    expect_not_found(&e, "server");
    assert_eq!(e.message(), "no storage server named 'nosuch'");
    let e = env
        .err(Action::RemoveLun {
            server: s("sim"),
            lun: s("db1"),
        })
        .await;
    expect_not_found(&e, "lun");
    assert_eq!(e.message(), "no LUN named 'db1' on storage server 'sim'");
    assert_eq!(e.exception(), Some(ExceptionKind::InvalidValueEx));
    let e = env
        .err(Action::RemoveLun {
            server: s("sim"),
            lun: s("snap1"),
        })
        .await;
    expect_not_found(&e, "lun");
    assert!(e.message().contains("is a snapshot"), "{e}");
    let e = env
        .err(Action::RemoveSnapshot {
            server: s("sim"),
            snap: s("lun1"),
        })
        .await;
    expect_not_found(&e, "snap");
    let e = env
        .err(Action::CreateMultiSnapshot {
            server: s("sim"),
            luns: vec![s("lun1"), s("zz")],
            name: s("m"),
        })
        .await;
    expect_not_found(&e, "luns");
    let e = env
        .err(Action::CreateMultiSnapshot {
            server: s("sim"),
            luns: vec![s("lun1"), s("lun1")],
            name: s("m"),
        })
        .await;
    expect_bad(&e, ExceptionKind::InvalidValueEx, "luns");
    let e = env
        .err(Action::Present {
            server: s("sim"),
            lun: s("lun1"),
            groups: vec![s("nog")],
        })
        .await;
    expect_not_found(&e, "groups");
    let e = env
        .err(Action::Present {
            server: s("sim"),
            lun: s("lun1"),
            groups: vec![],
        })
        .await;
    expect_bad(&e, ExceptionKind::MissingKeyEx, "groups");
    let e = env
        .err(Action::RemoveGroup {
            server: s("sim"),
            group: s("nog"),
        })
        .await;
    expect_not_found(&e, "group");
    let e = env
        .err(Action::RenameGroup {
            server: s("sim"),
            group: s("g"),
            new_name: s("bad name"),
        })
        .await;
    expect_bad(&e, ExceptionKind::ValueFormatEx, "new_name");
    let e = env.err(Action::ShowJob { id: s("no-such-job") }).await;
    expect_not_found(&e, "id");
    // group entries must be initiator names on an iSCSI server
    for bad in ["host1", "0x0011223344556677", "iqn.2026-13.org.example"] {
        let e = env
            .err(Action::CreateGroup {
                server: s("sim"),
                name: s("g2"),
                entries: vec![s(bad)],
            })
            .await;
        expect_bad(&e, ExceptionKind::ValueFormatEx, "entries");
        let e = env
            .err(Action::AddGroupEntries {
                server: s("sim"),
                group: s("g"),
                entries: vec![s(bad)],
            })
            .await;
        expect_bad(&e, ExceptionKind::ValueFormatEx, "entries");
    }
    let e = env
        .err(Action::AddGroupEntries {
            server: s("sim"),
            group: s("g"),
            entries: vec![],
        })
        .await;
    expect_bad(&e, ExceptionKind::MissingKeyEx, "entries");
    let e = env
        .err(Action::CreateGroup {
            server: s("sim"),
            name: s("g"),
            entries: vec![],
        })
        .await;
    assert_eq!((e.code(), e.key()), ("conflict", Some("name")));
    // registration
    let add = |f: &dyn Fn(&mut AddServer)| {
        let mut a = sim_server("new", &env.state_dir("new"), "SANStorage", 0);
        f(&mut a);
        Action::AddServer(a)
    };
    expect_bad(
        &env.err(add(&|a| a.name = s("bad name"))).await,
        ExceptionKind::ValueFormatEx,
        "name",
    );
    expect_bad(
        &env.err(add(&|a| a.name = s(""))).await,
        ExceptionKind::MissingKeyEx,
        "name",
    );
    expect_bad(
        &env.err(add(&|a| a.plugin = None)).await,
        ExceptionKind::MissingKeyEx,
        "plugin",
    );
    expect_bad(
        &env.err(add(&|a| a.plugin = Some(s("acme.Nope")))).await,
        ExceptionKind::InvalidValueEx,
        "plugin",
    );
    expect_bad(
        &env.err(add(&|a| a.storage_type = Some(s("FooStorage")))).await,
        ExceptionKind::ValueFormatEx,
        "storage_type",
    );
    expect_bad(
        &env.err(add(&|a| a.storage_type = None)).await,
        ExceptionKind::MissingKeyEx,
        "storage_type",
    );
    expect_bad(
        &env.err(add(&|a| a.settings.access_port = Some(0))).await,
        ExceptionKind::InvalidValueEx,
        "access_port",
    );
    expect_bad(
        &env.err(Action::AddServer(AddServer {
            name: s("emb"),
            embedded: true,
            ..Default::default()
        }))
        .await,
        ExceptionKind::InvalidValueEx,
        "embedded",
    );
    let e = env.err(add(&|a| a.name = s("sim"))).await;
    assert_eq!((e.code(), e.key()), ("conflict", Some("name")));
    // settings
    let set = |f: &dyn Fn(&mut UpdateServer)| {
        let mut u = UpdateServer {
            server: s("sim"),
            ..Default::default()
        };
        f(&mut u);
        Action::UpdateServer(u)
    };
    expect_bad(
        &env.err(set(&|_| ())).await,
        ExceptionKind::MissingKeyEx,
        "settings",
    );
    expect_bad(
        &env.err(set(&|u| u.settings.access_port = Some(70000))).await,
        ExceptionKind::InvalidValueEx,
        "access_port",
    );
    expect_not_found(
        &env.err(set(&|u| {
            u.server = s("nope");
            u.settings.chap = Some(false);
        }))
        .await,
        "server",
    );

    assert_eq!(env.manager.invocations(), calls, "bad input reached a plug-in");
    let after = observe(&env, "sim").await;
    assert_eq!(before.0, after.0, "servers changed");
    assert_eq!(before.1, after.1, "LUNs changed");
    assert_eq!(before.2, after.2, "snapshots changed");
    assert_eq!(before.3, after.3, "groups changed");
    assert!(before.4 == after.4, "the array's state changed");

    // A registration the plug-in refuses stores nothing.
    let e = env
        .err(add(&|a| {
            a.settings.extra_info = Some(s("state_dir=relative/dir"))
        }))
        .await;
    assert!(
        matches!(&e, ServiceError::Refused(x) if x.kind == ExceptionKind::InvalidStorageArrayEx),
        "{e:?}"
    );
    assert_eq!(env.ok(Action::ListServers).await, before.0);

    // The plug-in's own refusals come back as they are.
    let e = env
        .err(Action::SetQos {
            server: s("sim"),
            lun: s("lun1"),
            qos: json!("no-such-level"),
        })
        .await;
    assert_eq!(e.code(), "refused", "{e:?}");
    assert!(e.exception().is_some());
}

trait WithServer {
    fn clone_with_server(self, server: &str) -> Action;
}

impl WithServer for Action {
    fn clone_with_server(self, server: &str) -> Action {
        match self {
            Action::CreateLun(c) => Action::CreateLun(CreateLun {
                server: s(server),
                ..c
            }),
            other => other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_matches_two_elements_is_ambiguous_and_the_uuid_still_works() {
    let env = Env::new().await;
    env.add_sim("sim", "SANStorage", 0).await;
    let a = env.create("sim", "twin", GIB).await;
    let b = env.create("sim", "other", GIB).await;
    // An array that allows two elements of one name: edit the simulated array's state.
    let path = env.state_dir("sim").join("sim-array.json");
    let mut st: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for e in st["elements"].as_array_mut().unwrap() {
        if e["name"] == "other" {
            e["name"] = json!("twin");
        }
    }
    std::fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();
    env.ok(Action::RefreshServer { server: s("sim") }).await;
    let calls = env.manager.invocations();
    let e = env
        .err(Action::ShowLun {
            server: s("sim"),
            lun: s("twin"),
            refresh: false,
        })
        .await;
    assert!(
        matches!(e, ServiceError::Conflict { ambiguous: true, .. }),
        "{e:?}"
    );
    assert_eq!((e.code(), e.key()), ("ambiguous", Some("lun")));
    let body = e.body("cid-1");
    assert_eq!(body["code"], "ambiguous");
    assert_eq!(body["call_id"], "cid-1");
    let e = env
        .err(Action::RemoveLun {
            server: s("sim"),
            lun: s("twin"),
        })
        .await;
    assert_eq!(e.code(), "ambiguous");
    assert_eq!(
        env.manager.invocations(),
        calls,
        "an ambiguous name reaches no plug-in"
    );
    assert_eq!(
        env.ok(Action::ListLuns {
            server: s("sim"),
            refresh: false
        })
        .await
        .as_array()
        .map(Vec::len),
        Some(2)
    );
    for v in [&a, &b] {
        let uuid = v["uuid"].as_str().unwrap();
        let shown = env.show_lun("sim", uuid).await;
        assert_eq!(shown["uuid"], uuid);
        assert_eq!(shown["name"], "twin");
    }
    env.ok(Action::RemoveLun {
        server: s("sim"),
        lun: b["uuid"].as_str().unwrap().into(),
    })
    .await;
    let left = env.show_lun("sim", "twin").await;
    assert_eq!(
        left["uuid"], a["uuid"],
        "with one left, the name is no longer ambiguous"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_huge_name_is_audited_cut_short() {
    let env = Env::new().await;
    env.add_sim("sim", "iSCSIStorage", 0).await;
    let huge = "n".repeat(10_000);
    let e = env.err(Action::CreateLun(create_lun("sim", &huge, GIB))).await;
    expect_bad(&e, ExceptionKind::ValueFormatEx, "name");
    let e = env.err(Action::CreateLun(create_lun(&huge, "fine", GIB))).await;
    expect_not_found(&e, "server");
    let audit = env.ok(Action::ListAudit { limit: 2 }).await;
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{audit}");
    let (unknown_server, huge_target) = (&rows[0], &rows[1]);
    let target = huge_target["target"].as_str().unwrap();
    assert_eq!(target, format!("{}...", "n".repeat(200)), "the target is cut");
    assert_eq!(huge_target["outcome"], "bad_request");
    let server = unknown_server["server"].as_str().unwrap();
    assert_eq!(server, format!("{}...", "n".repeat(200)), "the server is cut");
    assert_eq!(unknown_server["target"], "fine");
}

/// A resize below the LUN's size drops the data past it: refused with key allow_shrink
/// (naming both sizes), before any plug-in call and changing nothing, unless allowed. A size
/// that the array's rounding to whole MiB brings back to the LUN's own is no shrink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shrink_is_refused_unless_allowed() {
    let env = Env::new().await;
    env.add_sim("sim", "iSCSIStorage", 0).await;
    // The simulated array rounds 1000000 bytes up to 1 MiB.
    let made = env.create("sim", "lun1", 2 * GIB - 1_000_000).await;
    assert_eq!(made["size"], 2 * GIB, "{made}");
    let resize = |size: i64, allow_shrink: bool| Action::ResizeLun {
        server: s("sim"),
        lun: s("lun1"),
        size,
        allow_shrink,
    };
    // The create's totals are re-read 200 ms after it; let that pass so that the count of
    // plug-in calls below sees only the refused resizes.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let before = observe(&env, "sim").await;
    let calls = env.manager.invocations();
    let audited = env.ok(Action::ListAudit { limit: 100 }).await;

    for size in [GIB, 2 * GIB - (1 << 20), 1] {
        let e = env.err(resize(size, false)).await;
        expect_bad(&e, ExceptionKind::InvalidValueEx, "allow_shrink");
        let m = e.message();
        assert!(
            m.contains(&format!("size {size} ")) && m.contains(&format!("{} bytes", 2 * GIB)),
            "both sizes are named: {m}"
        );
        assert!(m.contains("'lun1'") && m.contains("allow_shrink"), "{m}");
    }
    // By uuid too: the check is on the element, not on the name.
    let uuid = made["uuid"].as_str().unwrap().to_string();
    let e = env
        .err(Action::ResizeLun {
            server: s("sim"),
            lun: uuid,
            size: GIB,
            allow_shrink: false,
        })
        .await;
    expect_bad(&e, ExceptionKind::InvalidValueEx, "allow_shrink");

    assert_eq!(
        env.manager.invocations(),
        calls,
        "a refused shrink reached the plug-in"
    );
    let after = observe(&env, "sim").await;
    assert_eq!(before.1, after.1, "LUNs changed");
    assert!(before.4 == after.4, "the array's state changed");
    let audit = env.ok(Action::ListAudit { limit: 100 }).await;
    let rows = audit.as_array().unwrap();
    assert_eq!(
        rows.len(),
        audited.as_array().unwrap().len() + 4,
        "one audit row per refusal: {audit}"
    );
    assert_eq!(rows[0]["action"], "lun.resize");
    assert_eq!(rows[0]["outcome"], "bad_request");
    assert_eq!(
        rows[0]["detail"],
        format!("size {} -> {GIB} bytes", 2 * GIB),
        "{audit}"
    );

    // Same size, and sizes that round up to it, are no shrink and need no decision.
    for size in [2 * GIB, 2 * GIB - 1_000_000, 2 * GIB - (1 << 20) + 1] {
        assert_eq!(env.ok(resize(size, false)).await["size"], 2 * GIB, "{size}");
    }
    // Growing needs none either.
    assert_eq!(env.ok(resize(3 * GIB, false)).await["size"], 3 * GIB);
    // Asked for in so many words, the shrink is done, and audited with the size it cut.
    assert_eq!(env.ok(resize(GIB, true)).await["size"], GIB);
    assert_eq!(env.show_lun("sim", "lun1").await["size"], GIB);
    let audit = env.ok(Action::ListAudit { limit: 1 }).await;
    assert_eq!(audit[0]["outcome"], "ok", "{audit}");
    assert_eq!(
        audit[0]["detail"],
        format!("size {} -> {GIB} bytes, allow_shrink", 3 * GIB),
        "{audit}"
    );
    // allow_shrink on a grow changes nothing about it.
    assert_eq!(env.ok(resize(2 * GIB, true)).await["size"], 2 * GIB);

    // Grown to 4 GiB through another registration of the same array, the LUN is still 2 GiB
    // in this server's records: 3 GiB looks like a grow there, but would drop a GiB. The
    // array's own record decides.
    env.ok(Action::AddServer(sim_server(
        "sim2",
        &env.state_dir("sim"),
        "iSCSIStorage",
        0,
    )))
    .await;
    env.ok(Action::ListLuns {
        server: s("sim2"),
        refresh: true,
    })
    .await;
    let grown = env
        .ok(Action::ResizeLun {
            server: s("sim2"),
            lun: s("lun1"),
            size: 4 * GIB,
            allow_shrink: false,
        })
        .await;
    assert_eq!(grown["size"], 4 * GIB);
    assert_eq!(
        env.show_lun("sim", "lun1").await["size"],
        2 * GIB,
        "the records are stale"
    );
    let e = env.err(resize(3 * GIB, false)).await;
    expect_bad(&e, ExceptionKind::InvalidValueEx, "allow_shrink");
    assert!(e.message().contains(&format!("{} bytes", 4 * GIB)), "{e}");
    assert_eq!(env.show_lun("sim2", "lun1").await["size"], 4 * GIB);
    // A real grow from there is no shrink.
    assert_eq!(env.ok(resize(5 * GIB, false)).await["size"], 5 * GIB);
}
