//! Over HTTP against the real service on the built-in sim array: unknown names, a storage
//! server's life (LUNs, groups, snapshots, clone, split as a job, audit) and concurrency.

mod common;

use common::TestServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const GIB: i64 = 1 << 30;

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn unknown_names_are_404() {
    let s = TestServer::start();
    let r = s.get("/v1/servers/ghost");
    r.expect_error(404, "not_found", Some("InvalidValueEx"), Some("server"));
    assert!(
        r.error()["message"].as_str().unwrap_or("").contains("ghost"),
        "{}",
        r.text
    );
    s.get("/v1/servers/ghost/luns")
        .expect_error(404, "not_found", Some("InvalidValueEx"), Some("server"));
    s.delete("/v1/servers/ghost")
        .expect_error(404, "not_found", Some("InvalidValueEx"), Some("server"));
    s.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
        .assert_status(404);

    s.add_sim_server("sim1");
    let r = s.get("/v1/servers/sim1/luns/db1");
    r.expect_error(404, "not_found", Some("InvalidValueEx"), Some("lun"));
    assert!(
        r.error()["message"].as_str().unwrap_or("").contains("db1"),
        "{}",
        r.text
    );
    s.delete("/v1/servers/sim1/luns/db1")
        .expect_error(404, "not_found", Some("InvalidValueEx"), Some("lun"));
    s.post("/v1/servers/sim1/luns/db1/resize", "{\"size\": 1073741824}")
        .expect_error(404, "not_found", Some("InvalidValueEx"), Some("lun"));
    s.delete("/v1/servers/sim1/snapshots/nosnap").assert_status(404);
    s.delete("/v1/servers/sim1/groups/nogroup").assert_status(404);
}

fn wait_job(s: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.get(&format!("/v1/jobs/{id}"));
        assert_eq!(r.status, 200, "{}", r.text);
        let job = r.json();
        match job["state"].as_str() {
            Some("running") => {}
            Some(_) => return job,
            None => panic!("job without state: {job}"),
        }
        assert!(Instant::now() < deadline, "job {id} still running: {job}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lifecycle_over_http() {
    let s = TestServer::start();

    // Register.
    let view = s.add_sim_server("sim1");
    assert_eq!(view["name"], "sim1");
    assert!(view.get("admin_passwd").is_none(), "secret returned: {view}");
    assert!(
        view["secrets_set"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "admin_passwd")),
        "{view}"
    );
    assert!(!view.to_string().contains("not-a-real-secret"));
    assert!(names(&s.get("/v1/servers").json()).contains(&"sim1".to_owned()));
    let again = s.add_sim_server_raw("sim1");
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.error()["code"], "conflict");
    let caps = s.get("/v1/servers/sim1/capabilities");
    assert_eq!(caps.status, 200, "{}", caps.text);
    assert!(caps.json().get("snapshot").is_some());
    let plugins = s.get("/v1/plugins");
    assert_eq!(plugins.status, 200, "{}", plugins.text);
    assert!(plugins.text.contains("spindle.sim.SimArray"));

    // A LUN.
    let r = s.raw(
        "POST",
        "/v1/servers/sim1/luns",
        Some(&json!({"name": "db1", "size": GIB}).to_string()),
        &[
            ("authorization", &format!("Bearer {}", s.token)),
            ("x-call-id", "create-db1"),
        ],
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.call_id.as_deref(), Some("create-db1"));
    let lun = r.json();
    assert_eq!(lun["kind"], "lun");
    assert_eq!(lun["server"], "sim1");
    assert!(lun["size"].as_i64().is_some_and(|n| n >= GIB), "{lun}");
    s.post(
        "/v1/servers/sim1/luns",
        &json!({"name": "db1", "size": GIB}).to_string(),
    )
    .assert_status(409);
    let luns = s.get("/v1/servers/sim1/luns");
    assert_eq!(luns.status, 200, "{}", luns.text);
    assert_eq!(names(&luns.json()), vec!["db1".to_owned()]);
    assert_eq!(s.get("/v1/servers/sim1/luns?refresh=true").status, 200);
    let shown = s.get("/v1/servers/sim1/luns/db1?refresh=true");
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.json()["uuid"], lun["uuid"]);
    let by_uuid = s.get(&format!(
        "/v1/servers/sim1/luns/{}",
        lun["uuid"].as_str().unwrap_or("")
    ));
    assert_eq!(by_uuid.status, 200, "{}", by_uuid.text);
    let resized = s.post(
        "/v1/servers/sim1/luns/db1/resize",
        &json!({"size": 2 * GIB}).to_string(),
    );
    assert_eq!(resized.status, 200, "{}", resized.text);
    assert!(resized.json()["size"].as_i64().is_some_and(|n| n >= 2 * GIB));

    // An access group, presenting.
    let g = s.post(
        "/v1/servers/sim1/groups",
        &json!({"name": "hosts", "entries": ["iqn.2024-01.org.example:host1"]}).to_string(),
    );
    assert_eq!(g.status, 201, "{}", g.text);
    assert_eq!(g.json()["grp_name"], "hosts");
    let p = s.post(
        "/v1/servers/sim1/luns/db1/present",
        &json!({"groups": ["hosts"]}).to_string(),
    );
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.json()["access_grp_names"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == "hosts")));
    // Presented: removing is refused by the plug-in (StorageElementBusyEx → 409 refused).
    s.delete("/v1/servers/sim1/luns/db1")
        .expect_error(409, "refused", Some("StorageElementBusyEx"), None);
    let u = s.post(
        "/v1/servers/sim1/luns/db1/unpresent",
        &json!({"groups": ["hosts"]}).to_string(),
    );
    assert_eq!(u.status, 200, "{}", u.text);
    assert_eq!(s.get("/v1/servers/sim1/groups").status, 200);

    // Snapshot, clone, split.
    let snap = s.post(
        "/v1/servers/sim1/snapshots",
        &json!({"lun": "db1", "name": "snap1"}).to_string(),
    );
    assert_eq!(snap.status, 201, "{}", snap.text);
    assert_eq!(snap.json()["kind"], "snapshot");
    let snaps = s.get("/v1/servers/sim1/snapshots?lun=db1");
    assert_eq!(names(&snaps.json()), vec!["snap1".to_owned()]);
    let clone = s.post(
        "/v1/servers/sim1/luns/db1/clone",
        &json!({"name": "db1c"}).to_string(),
    );
    assert!(matches!(clone.status, 201 | 202), "{}", clone.text);
    if clone.status == 202 {
        let id = clone.json()["job"]["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(wait_job(&s, &id)["state"], "succeeded");
    }
    let split = s.post("/v1/servers/sim1/luns/db1c/split", "");
    assert_eq!(split.status, 202, "{}", split.text);
    let job = split.json()["job"].clone();
    let id = job["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no job id: {job}"))
        .to_owned();
    assert_eq!(job["method"], "splitClone");
    assert_eq!(job["server"], "sim1");
    assert!(job.get("async_handle").is_none());
    let done = wait_job(&s, &id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["call_id"], split.call_id.as_deref().unwrap_or_default());
    let jobs = s.get("/v1/jobs");
    assert_eq!(jobs.status, 200);
    assert!(jobs.text.contains(&id));
    assert_eq!(s.get("/v1/jobs?state=running").status, 200);

    // Clean up through the API.
    assert_eq!(s.delete("/v1/servers/sim1/snapshots/snap1").status, 204);
    assert_eq!(s.delete("/v1/servers/sim1/luns/db1c").status, 204);
    assert_eq!(s.delete("/v1/servers/sim1/luns/db1").status, 204);
    assert_eq!(s.delete("/v1/servers/sim1/groups/hosts").status, 204);
    assert_eq!(
        names(&s.get("/v1/servers/sim1/luns").json()),
        Vec::<String>::new()
    );

    // The audit log has the create, with its call id, peer and outcome.
    let audit = s.get("/v1/audit?limit=1000");
    assert_eq!(audit.status, 200, "{}", audit.text);
    let entries = audit.json();
    let create = entries
        .as_array()
        .and_then(|a| a.iter().find(|e| e["call_id"] == "create-db1"))
        .unwrap_or_else(|| panic!("no audit entry for create-db1: {entries}"))
        .clone();
    assert_eq!(create["action"], "lun.create");
    assert_eq!(create["outcome"], "ok");
    assert_eq!(create["who"], "admin");
    assert!(
        create["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1")),
        "{create}"
    );
    assert!(entries
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["outcome"] == "refused")));

    assert_eq!(s.delete("/v1/servers/sim1").status, 204);
    s.get("/v1/servers/sim1").assert_status(404);
}

#[test]
fn fifty_concurrent_requests() {
    let s = TestServer::start();
    s.add_sim_server("sim1");
    let results: Vec<(usize, u16, Option<String>, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    let r = if i % 2 == 0 {
                        s.post(
                            "/v1/servers/sim1/luns",
                            &json!({"name": format!("c{i}"), "size": GIB}).to_string(),
                        )
                    } else {
                        s.get("/v1/servers/sim1/luns")
                    };
                    (i, r.status, r.call_id, r.text)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("client thread panicked")))
            .collect()
    });
    let mut ids = std::collections::BTreeSet::new();
    for (i, status, call_id, text) in &results {
        let expected = if i % 2 == 0 { 201 } else { 200 };
        assert_eq!(*status, expected, "request {i}: {text}");
        ids.insert(call_id.clone().unwrap_or_default());
    }
    assert_eq!(ids.len(), 50, "call ids not distinct");
    let mut listed = names(&s.get("/v1/servers/sim1/luns").json());
    listed.sort();
    let mut expected: Vec<String> = (0..50).step_by(2).map(|i| format!("c{i}")).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

/// How many times the plug-in was asked to resize, from /metrics.
fn resize_calls(s: &TestServer) -> u64 {
    let m = s.get("/metrics");
    assert_eq!(m.status, 200, "{}", m.text);
    m.text
        .lines()
        .filter(|l| l.starts_with("spindle_plugin_calls_total{") && l.contains("method=\"resize\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A resize to a smaller size is refused (400, key allow_shrink, both sizes named) without a
/// plug-in call or a change, unless the body says `"allow_shrink": true`; growing, the same
/// size and a size that rounds up to it need nothing.
#[test]
fn a_shrink_needs_allow_shrink() {
    let s = TestServer::start();
    s.add_sim_server("sim1");
    let made = s.post(
        "/v1/servers/sim1/luns",
        &json!({"name": "db1", "size": 2 * GIB}).to_string(),
    );
    assert_eq!(made.status, 201, "{}", made.text);
    let state = s.sim_dir("sim1").join("sim-array.json");
    let before = std::fs::read(&state).unwrap_or_default();
    let calls = resize_calls(&s);
    let path = "/v1/servers/sim1/luns/db1/resize";

    for body in [
        json!({"size": GIB}),
        json!({"size": GIB, "allow_shrink": false}),
        json!({"size": GIB, "allow_shrink": null}),
    ] {
        let r = s.post(path, &body.to_string());
        r.expect_error(400, "bad_request", Some("InvalidValueEx"), Some("allow_shrink"));
        let m = r.error()["message"].as_str().unwrap_or("").to_owned();
        assert!(
            m.contains(&GIB.to_string()) && m.contains(&(2 * GIB).to_string()) && m.contains("'db1'"),
            "{body}: {m}"
        );
    }
    s.post(path, &json!({"size": GIB, "allow_shrink": "yes"}).to_string())
        .expect_error(400, "bad_request", Some("ValueFormatEx"), Some("allow_shrink"));
    assert_eq!(resize_calls(&s), calls, "a refused shrink reached the plug-in");
    assert!(
        std::fs::read(&state).unwrap_or_default() == before,
        "a refused shrink changed the array"
    );
    let shown = s.get("/v1/servers/sim1/luns/db1");
    assert_eq!(shown.json()["size"], 2 * GIB, "{}", shown.text);
    let audit = s.get("/v1/audit?limit=1").json();
    assert_eq!(audit[0]["action"], "lun.resize", "{audit}");
    assert_eq!(audit[0]["outcome"], "bad_request", "{audit}");

    // No shrink: the same size, one that rounds up to it (whole MiB), a grow.
    for (size, now) in [(2 * GIB, 2 * GIB), (2 * GIB - 1000, 2 * GIB), (3 * GIB, 3 * GIB)] {
        let r = s.post(path, &json!({"size": size}).to_string());
        assert_eq!(r.status, 200, "{size}: {}", r.text);
        assert_eq!(r.json()["size"], now, "{size}");
    }
    // Asked for explicitly.
    let r = s.post(path, &json!({"size": GIB, "allow_shrink": true}).to_string());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["size"], GIB);
    assert_eq!(s.get("/v1/servers/sim1/luns/db1").json()["size"], GIB);
}
