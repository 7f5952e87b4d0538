//! The database schema: created, migrated in order, refused when newer; file modes.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rusqlite::Connection;
use spindle_service::store::{DB_FILE, MIGRATIONS, SCHEMA_VERSION};
use spindle_service::{Action, Reply, Service, ServiceError};
use std::os::unix::fs::PermissionsExt;

fn version(path: &std::path::Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_directory_is_private_and_at_the_current_version() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("a/b/data");
    let m = manager().await;
    let svc = Service::open(config(&data, &m)).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(DB_FILE)), 0o600);
    assert_eq!(svc.db_path(), data.join(DB_FILE));
    let c = Connection::open(data.join(DB_FILE)).unwrap();
    let jm: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(jm, "wal");
    assert_eq!(version(&data.join(DB_FILE)), SCHEMA_VERSION);
    for side in ["spindle.db-wal", "spindle.db-shm"] {
        if data.join(side).exists() {
            assert_eq!(mode(&data.join(side)), 0o600, "{side}");
        }
    }
    assert!(SCHEMA_VERSION >= 2 && MIGRATIONS.len() as u32 == SCHEMA_VERSION);
    // An existing file with a loose mode is tightened.
    drop(svc);
    std::fs::set_permissions(data.join(DB_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
    let _svc = Service::open(config(&data, &m)).await.unwrap();
    assert_eq!(mode(&data.join(DB_FILE)), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_0_database_is_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Version 0: an SQLite file nobody has given a schema yet.
    let c = Connection::open(data.join(DB_FILE)).unwrap();
    c.execute_batch("CREATE TABLE unrelated (x); PRAGMA user_version = 0;")
        .unwrap();
    drop(c);
    let m = manager().await;
    let svc = Service::open(config(&data, &m)).await.unwrap();
    assert_eq!(version(&data.join(DB_FILE)), SCHEMA_VERSION);
    let ctx = spindle_service::RequestContext {
        call_id: "c".into(),
        who: "admin".into(),
        remote: "r".into(),
    };
    let r = svc
        .handle(
            &ctx,
            Action::AddServer(sim_server("s", &tmp.path().join("st"), "SANStorage", 0)),
        )
        .await
        .unwrap();
    assert!(matches!(r, Reply::Created(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_keeps_its_rows_through_the_later_migrations() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let state = tmp.path().join("st");
    // First a real server registered by the current spindle, to get a valid ss_record.
    let m = manager().await;
    let ss_record: String = {
        let scratch = tmp.path().join("scratch");
        let svc = Service::open(config(&scratch, &m)).await.unwrap();
        let ctx = spindle_service::RequestContext {
            call_id: "c".into(),
            who: "admin".into(),
            remote: "r".into(),
        };
        svc.handle(
            &ctx,
            Action::AddServer(sim_server("old", &state, "SANStorage", 0)),
        )
        .await
        .unwrap();
        svc.handle(&ctx, Action::CreateLun(create_lun("old", "keep", GIB)))
            .await
            .unwrap();
        svc.shutdown().await;
        drop(svc);
        let c = Connection::open(scratch.join(DB_FILE)).unwrap();
        c.query_row("SELECT ss_record FROM servers", [], |r| r.get(0))
            .unwrap()
    };
    // A database at version 1, as the first release wrote it.
    let mut c = Connection::open(data.join(DB_FILE)).unwrap();
    let tx = c.transaction().unwrap();
    tx.execute_batch(MIGRATIONS[0]).unwrap();
    tx.pragma_update(None, "user_version", 1).unwrap();
    tx.execute(
        "INSERT INTO servers (name, uuid, plugin, ss_record, created_at) VALUES ('old', ?1, ?2, ?3, '2026-01-01T00:00:00.000Z')",
        rusqlite::params![
            serde_json::from_str::<serde_json::Value>(&ss_record).unwrap()["uuid"].as_str().unwrap(),
            SIM_ID,
            ss_record
        ],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO elements (server, uuid, name, kind, parent, record) VALUES ('old', 'u-1', 'stale', 'lun', NULL, '{\"name\":\"stale\",\"uuid\":\"u-1\",\"se_type\":\"LUNType\"}')",
        [],
    )
    .unwrap();
    tx.commit().unwrap();
    drop(c);
    let svc = Service::open(config(&data, &m)).await.unwrap();
    assert_eq!(version(&data.join(DB_FILE)), SCHEMA_VERSION);
    let ctx = spindle_service::RequestContext {
        call_id: "c".into(),
        who: "admin".into(),
        remote: "r".into(),
    };
    let luns = match svc
        .handle(
            &ctx,
            Action::ListLuns {
                server: "old".into(),
                refresh: false,
            },
        )
        .await
        .unwrap()
    {
        Reply::Done(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(names(&luns), ["stale"], "rows survive the migration");
    let luns = match svc
        .handle(
            &ctx,
            Action::ListLuns {
                server: "old".into(),
                refresh: true,
            },
        )
        .await
        .unwrap()
    {
        Reply::Done(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        names(&luns),
        ["keep"],
        "and the migrated server still works with its plug-in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_spindle_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let c = Connection::open(data.join(DB_FILE)).unwrap();
    c.execute_batch("CREATE TABLE future (x);").unwrap();
    c.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(c);
    let m = manager().await;
    let e = Service::open(config(&data, &m)).await.expect_err("refused");
    let text = e.to_string();
    assert!(matches!(e, ServiceError::Internal(_)), "{e:?}");
    assert!(
        text.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
        "{text}"
    );
    assert!(text.contains("newer spindle"), "{text}");
    assert!(text.contains(DB_FILE), "the message names the file: {text}");
    assert_eq!(version(&data.join(DB_FILE)), SCHEMA_VERSION + 1, "left as it was");
}
