//! A job survives a restart of spindle: the Service is shut down and dropped while the
//! simulated array splits a clone, then opened again on the same data directory.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use spindle_service::{Action, Reply, Service};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_job_resumes_after_the_service_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let state = tmp.path().join("sim-slow");
    let manager = manager().await;
    let svc = Service::open(config(&data, &manager)).await.unwrap();
    let ctx = |id: &str| spindle_service::RequestContext {
        call_id: id.to_string(),
        who: "admin".into(),
        remote: "test".into(),
    };
    // 2500 ms per started GiB: a 1 GiB clone takes 2.5 s to split.
    svc.handle(
        &ctx("add"),
        Action::AddServer(sim_server("slow", &state, "SANStorage", 2500)),
    )
    .await
    .unwrap();
    svc.handle(&ctx("mk"), Action::CreateLun(create_lun("slow", "base", GIB)))
        .await
        .unwrap();
    svc.handle(
        &ctx("cl"),
        Action::Clone {
            server: "slow".into(),
            lun: "base".into(),
            name: "cl".into(),
            qos: None,
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    let job = match svc
        .handle(
            &ctx("split-call-1"),
            Action::Split {
                server: "slow".into(),
                lun: "cl".into(),
            },
        )
        .await
        .unwrap()
    {
        Reply::Job(j) => j,
        other => panic!("{other:?}"),
    };
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["state"], "running");
    assert_eq!(job["call_id"], "split-call-1");

    // Stop spindle while the array is still splitting, and forget it entirely.
    tokio::time::sleep(Duration::from_millis(100)).await;
    svc.shutdown().await;
    drop(svc);
    assert!(
        started.elapsed() < Duration::from_millis(2400),
        "the split should still be running"
    );

    // The split finishes on the array while spindle is down; the job row cannot know.
    tokio::time::sleep(Duration::from_millis(2700)).await;
    {
        let c = rusqlite::Connection::open(data.join("spindle.db")).unwrap();
        let (st, handle): (String, Option<String>) = c
            .query_row("SELECT state, record FROM jobs WHERE id = ?1", [&id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(st, "running", "nobody followed the job while spindle was down");
        assert!(
            handle.is_some_and(|r| r.contains("async_handle")),
            "the async handle is kept in the jobs table"
        );
    }

    // A new spindle on the same data directory (and a new manager: a new process).
    let manager = common::manager().await;
    let svc = Service::open(config(&data, &manager)).await.unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let done = loop {
        let j = match svc
            .handle(&ctx("show"), Action::ShowJob { id: id.clone() })
            .await
            .unwrap()
        {
            Reply::Done(j) => j,
            other => panic!("{other:?}"),
        };
        if j["state"] != "running" {
            break j;
        }
        assert!(Instant::now() < until, "the job was not resumed: {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        done["call_id"], "split-call-1",
        "the job keeps the call id of its request"
    );
    assert_eq!(done["result"]["kind"], "lun", "{done}");
    let lun = match svc
        .handle(
            &ctx("show"),
            Action::ShowLun {
                server: "slow".into(),
                lun: "cl".into(),
                refresh: false,
            },
        )
        .await
        .unwrap()
    {
        Reply::Done(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        lun["kind"], "lun",
        "the stored element was refreshed after the split: {lun}"
    );
    let c = rusqlite::Connection::open(data.join("spindle.db")).unwrap();
    let record: Option<String> = c
        .query_row("SELECT record FROM jobs WHERE id = ?1", [&id], |r| r.get(0))
        .unwrap();
    assert_eq!(record, None, "the async record is dropped once the job is over");
    let elements: String = c
        .query_row("SELECT group_concat(record) FROM elements", [], |r| r.get(0))
        .unwrap();
    assert!(
        !elements.contains("async_"),
        "no async field in the elements table: {elements}"
    );
    assert!(svc.metrics_text().contains("spindle_jobs{state=\"succeeded\"} 1"));
    svc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_server_fails_its_running_jobs() {
    let env = Env::new().await;
    env.add_sim("gone", "SANStorage", 60_000).await;
    env.create("gone", "base", GIB).await;
    env.clone_lun("gone", "base", "cl").await;
    let job = env
        .ok(Action::Split {
            server: "gone".into(),
            lun: "cl".into(),
        })
        .await;
    assert_eq!(job["state"], "running");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let polled = env
        .ok(Action::ShowJob {
            id: job["id"].as_str().unwrap().into(),
        })
        .await;
    assert!(polled["percent"].is_number(), "progress is recorded: {polled}");
    env.ok(Action::RemoveServer {
        server: "gone".into(),
    })
    .await;
    let j = env
        .wait_job(job["id"].as_str().unwrap(), Duration::from_secs(5))
        .await;
    assert_eq!(j["state"], "failed");
    assert_eq!(j["error"]["code"], "not_found");
    assert_eq!(j["error"]["call_id"], j["call_id"]);
    assert!(env
        .svc
        .metrics_text()
        .contains("spindle_jobs{state=\"failed\"} 1"));
}

/// Cancels the split of `clone` on the simulated array in `state_dir`, as an array that rolled
/// its split back would: the clone is an unsplit clone again and its async handle names
/// nothing. Holds the array's lock while it edits, as the plug-in does.
fn roll_back_split_on_the_sim(state_dir: &std::path::Path, clone: &str) {
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(state_dir.join(spindle_plugin_sim::store::LOCK_FILE))
        .unwrap();
    lock.lock().unwrap();
    let path = state_dir.join(spindle_plugin_sim::store::STATE_FILE);
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let element = state["elements"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == clone)
        .unwrap();
    assert!(element["split"].is_object(), "{clone} is being split: {element}");
    element["split"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    drop(lock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_split_job_leaves_the_clone_as_the_array_has_it() {
    let env = Env::new().await;
    env.add_sim("arr", "SANStorage", 60_000).await;
    env.create("arr", "base", GIB).await;
    env.clone_lun("arr", "base", "cl").await;
    let job = env
        .ok(Action::Split {
            server: "arr".into(),
            lun: "cl".into(),
        })
        .await;
    assert_eq!(job["state"], "running");
    // Read while it splits (a `lun show --refresh`, a refresh): the record says so.
    let splitting = env
        .ok(Action::ShowLun {
            server: "arr".into(),
            lun: "cl".into(),
            refresh: true,
        })
        .await;
    assert!(
        splitting["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("SPLITTING")),
        "{splitting}"
    );
    roll_back_split_on_the_sim(&env.state_dir("arr"), "cl");
    let j = env
        .wait_job(job["id"].as_str().unwrap(), Duration::from_secs(5))
        .await;
    assert_eq!(j["state"], "failed", "{j}");
    // The record follows the array as soon as the job is over, with no refresh asked for.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let cl = env.show_lun("arr", "cl").await;
        if cl["status"] == "ONLINE" {
            assert_eq!(cl["kind"], "clone", "the split was rolled back: {cl}");
            assert_eq!(cl["parent"], "base", "the clone keeps its parent: {cl}");
            break;
        }
        assert!(
            Instant::now() < until,
            "the clone's record still says what it was while the split ran: {cl}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
