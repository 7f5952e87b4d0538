//! Secrets that were replaced or removed are gone from spindle's database files: not in
//! `spindle.db` (freed space is zeroed), nor in its write-ahead log or shared-memory index
//! (checkpointed and truncated after such a write), while spindle runs.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use spindle_service::{Action, ServerSettings, UpdateServer};

/// The first of `secrets` found in the raw bytes of the database's files, with the file.
fn find_in_db_files(env: &Env, secrets: &[&str]) -> Option<(String, String)> {
    for file in ["spindle.db", "spindle.db-wal", "spindle.db-shm"] {
        let Ok(bytes) = std::fs::read(env.data_dir().join(file)) else {
            continue;
        };
        for secret in secrets {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                return Some((file.to_string(), secret.to_string()));
            }
        }
    }
    None
}

fn update(server: &str, settings: ServerSettings) -> Action {
    Action::UpdateServer(UpdateServer {
        server: server.into(),
        settings,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_and_removed_secrets_are_wiped_from_the_database_files() {
    let env = Env::new().await;
    env.add_sim("kept", "iSCSIStorage", 0).await;
    let (gone_admin, gone_chap) = ("gone-ADMIN-secret-71", "gone-CHAP-secret-72");
    let mut gone = sim_server("gone", &env.state_dir("gone"), "iSCSIStorage", 0);
    gone.settings.admin_passwd = Some(gone_admin.into());
    gone.settings.passwd = Some(gone_chap.into());
    env.ok(Action::AddServer(gone)).await;
    // Some churn: every refresh writes the ss_record again.
    for server in ["kept", "gone"] {
        env.ok(Action::RefreshServer {
            server: server.into(),
        })
        .await;
    }
    assert!(
        find_in_db_files(&env, &[ADMIN_SECRET, CHAP_SECRET]).is_some(),
        "the secrets in force are stored"
    );

    // Rotated: the old ones are gone, the new ones stored.
    let (new_admin, new_chap) = ("new-ADMIN-secret-81", "new-CHAP-secret-82");
    env.ok(update(
        "kept",
        ServerSettings {
            admin_passwd: Some(new_admin.into()),
            passwd: Some(new_chap.into()),
            ..Default::default()
        },
    ))
    .await;
    assert_eq!(
        find_in_db_files(&env, &[ADMIN_SECRET, CHAP_SECRET]),
        None,
        "a replaced secret is still in the database files"
    );
    assert!(find_in_db_files(&env, &[new_chap]).is_some());

    // Removed: its secrets with it.
    env.ok(Action::RemoveServer {
        server: "gone".into(),
    })
    .await;
    assert_eq!(
        find_in_db_files(&env, &[gone_admin, gone_chap]),
        None,
        "a removed server's secret is still in the database files"
    );

    // CHAP off: its secret is no longer needed, so it is not kept; the user name stays.
    let view = env
        .ok(update(
            "kept",
            ServerSettings {
                chap: Some(false),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(view["chap"], false, "{view}");
    assert_eq!(view["username"], "chapuser", "{view}");
    assert_eq!(view["secrets_set"], serde_json::json!(["admin_passwd"]), "{view}");
    assert_eq!(
        find_in_db_files(&env, &[new_chap]),
        None,
        "the CHAP secret of a server without CHAP is still in the database files"
    );
    assert!(find_in_db_files(&env, &[new_admin]).is_some());
    let audit = env.ok(Action::ListAudit { limit: 1 }).await;
    assert_eq!(
        audit[0]["detail"], "chap true → false, passwd removed",
        "the audit entry says the secret went: {audit}"
    );
}
