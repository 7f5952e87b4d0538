//! Plug-ins under tests/conformance-broken that break the guides in ways the kit must not
//! miss, and must survive: an asynchronous operation that never finishes (the manager gives
//! up, the kit fails the one check that waited on it, skips those it spoiled, goes on and
//! still cleans up, what the operation left included), a `list` that returns a dict (cleanup
//! cannot claim nothing is left), and a method that prints to standard output.

mod common;

use common::*;
use serde_json::{json, Map, Value};
use spindle_api::Method;
use spindle_conformance::{Report, Verdict};
use spindle_manager::{CallError, CallOptions, Manager, ManagerConfig, Mode};
use std::path::Path;
use std::time::Duration;

/// A strict manager over tests/conformance-broken that gives up on an asynchronous operation
/// whose progress does not move for 1 s.
async fn impatient_manager(scratch: &Path) -> Manager {
    let config = ManagerConfig {
        roots: vec![repo().join("tests/conformance-broken")],
        mode: Mode::Strict,
        call_deadline: Duration::from_secs(20),
        discovery_deadline: Duration::from_secs(30),
        async_poll_interval: Duration::from_millis(50),
        async_deadline: Duration::from_secs(30),
        async_stall: Duration::from_secs(1),
        temp_root: Some(scratch.join("manager-tmp")),
        ..ManagerConfig::default()
    };
    match Manager::new(config).await {
        Ok(m) => m,
        Err(e) => panic!("manager: {e}"),
    }
}

fn ss_for(class: &str, state: &Path) -> Value {
    json!({
        "name": "conformance-broken", "uuid": format!("ss-{class}"),
        "storage_type": "iSCSIStorage", "access_host": "192.0.2.10",
        "admin_host": "192.0.2.10", "admin_user": "admin", "admin_passwd": "x",
        "extra_info": format!("state_dir={}", state.display()),
    })
}

fn verdict<'r>(report: &'r Report, id: &str) -> (&'r Verdict, &'r str) {
    match report.checks.iter().find(|c| c.id == id) {
        Some(c) => (&c.verdict, c.reason.as_str()),
        None => panic!("no check {id}\n{}", report.to_text()),
    }
}

async fn run(m: &Manager, class: &str) -> (Report, Vec<String>) {
    let state = tempfile::tempdir().expect("tempdir");
    let p = plugin(m, class);
    let ss = ss_for(class, state.path());
    let opts = options(ss.clone());
    let report = spindle_conformance::run(m, p, &opts).await;
    let left = remaining(m, p, &ss, &opts.prefix).await;
    (report, left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_asynchronous_operation_fails_its_call_naming_method_progress_and_limit() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    let m = impatient_manager(scratch.path()).await;
    let p = plugin(&m, "brokenco.asyncstuck.Array.Array");
    let ss = ss_for("direct", state.path());
    let mut args = Map::new();
    args.insert("ss_record".into(), ss.clone());
    args.insert("se_record".into(), json!({"name": "stuck-lun1", "size": 1 << 20}));
    let lun = match m.call(p, Method::Create, args, CallOptions::default()).await {
        Ok(o) => o.value,
        Err(e) => panic!("create: {e}"),
    };
    let mut args = Map::new();
    args.insert("ss_record".into(), ss);
    args.insert("se_record".into(), lun);
    args.insert("snap_se_record".into(), json!({"name": "stuck-snap1"}));
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        m.call(p, Method::CreateSnap, args, CallOptions::default()),
    )
    .await
    .expect("the manager gives up on its own");
    match r {
        Err(CallError::Failed(e)) => {
            for needle in ["createSnap", "stayed at 50", "1 s", "async stall limit"] {
                assert!(e.message.contains(needle), "{needle:?} in {}", e.message);
            }
        }
        other => panic!("expected a failure that could not complete, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// The stuck createSnap is the kit's first (of L1, while L1 is presented: createSnap.online);
/// the checks it spoiled are skipped naming it.
fn only_the_stuck_check_fails(report: &Report) {
    check_report(
        report,
        failing(report) == ["createSnap.online"],
        &format!("only createSnap.online fails: {:?}", failing(report)),
    );
    let (_, reason) = verdict(report, "createSnap.online");
    for needle in [
        "createSnap of LUN L1",
        "could not complete",
        "asynchronous createSnap",
        "stayed at 50",
        "1 s",
    ] {
        check_report(
            report,
            reason.contains(needle),
            &format!("{needle:?} in {reason}"),
        );
    }
    // No second createSnap under the same name (it would collide with the unfinished one's
    // snapshot): the check that would judge its result points at createSnap.online.
    for id in [
        "createSnap.returns_snapshot",
        "remove.refused_while_snapshots",
        "snapRemove.removes",
    ] {
        let (v, reason) = verdict(report, id);
        check_report(report, *v == Verdict::Skip, &format!("{id} skipped: {reason}"));
        for needle in [
            "asynchronous createSnap of createSnap.online did not finish",
            "snap1",
        ] {
            check_report(
                report,
                reason.contains(needle),
                &format!("{id}: {needle:?} in {reason}"),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_fails_a_stuck_method_by_name_goes_on_and_cleans_up() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = impatient_manager(scratch.path()).await;
    let (report, left) = tokio::time::timeout(
        Duration::from_secs(300),
        run(&m, "brokenco.asyncstuck.Array.Array"),
    )
    .await
    .expect("the run ends");
    only_the_stuck_check_fails(&report);
    // The run went on past it, and removed what the unfinished createSnap left before
    // removing L1 (which that snapshot would keep busy): later checks were judged.
    let (v, reason) = verdict(&report, "remove.removes");
    check_report(
        &report,
        *v == Verdict::Pass && reason.contains("L1"),
        &format!("remove.removes passes: {reason}"),
    );
    let (v, _) = verdict(&report, "remove.twice_refused");
    check_report(&report, *v == Verdict::Pass, "remove.twice_refused passes");
    let (v, reason) = verdict(&report, "cleanup.nothing_left");
    check_report(
        &report,
        *v == Verdict::Pass
            && reason.contains("createSnap of createSnap.online did not finish and left snapshot")
            && reason.contains("snap1' (removed)"),
        &format!("cleanup passes, naming what the stuck createSnap left: {reason}"),
    );
    assert!(left.is_empty(), "left on the array: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_stuck_operation_keeps_busy_is_not_charged_to_the_plugin() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = impatient_manager(scratch.path()).await;
    let (report, left) = tokio::time::timeout(
        Duration::from_secs(300),
        run(&m, "brokenco.asyncstuckbusy.Array.Array"),
    )
    .await
    .expect("the run ends");
    only_the_stuck_check_fails(&report);
    // The unfinished snapshot could not be removed before L1 was, so L1's removal was refused
    // (StorageElementBusyEx) and not judged; L2's was.
    let (v, reason) = verdict(&report, "remove.removes");
    check_report(
        &report,
        *v == Verdict::Pass && reason.contains("L2") && !reason.contains("L1"),
        &format!("remove.removes passes for L2 only: {reason}"),
    );
    let (v, reason) = verdict(&report, "remove.twice_refused");
    check_report(
        &report,
        *v == Verdict::Skip && reason.contains("L1 could not be removed once"),
        &format!("remove.twice_refused skipped: {reason}"),
    );
    // The cleanup's second try removed the snapshot, then L1.
    let (v, reason) = verdict(&report, "cleanup.nothing_left");
    check_report(
        &report,
        *v == Verdict::Pass && reason.contains("snap1' (removed)"),
        &format!("cleanup passes: {reason}"),
    );
    assert!(left.is_empty(), "left on the array: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlistable_leftovers_and_printing_are_failures() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = manager(
        vec![],
        vec![repo().join("tests/conformance-broken")],
        scratch.path(),
    )
    .await;
    let ((listdict, _), (prints, left)) = tokio::join!(
        run(&m, "brokenco.listdict.Array.Array"),
        run(&m, "brokenco.prints.Array.Array")
    );

    let (v, reason) = verdict(&listdict, "cleanup.nothing_left");
    check_report(&listdict, *v == Verdict::Fail, "cleanup.nothing_left fails");
    check_report(
        &listdict,
        reason.starts_with("could not verify: list broke the contract"),
        reason,
    );

    let (v, reason) = verdict(&prints, "getStorageNames.returns");
    check_report(&prints, *v == Verdict::Fail, "getStorageNames.returns fails");
    check_report(
        &prints,
        reason.contains("standard output") && reason.contains("debug: getStorageNames called"),
        reason,
    );
    check_report(
        &prints,
        failing(&prints) == ["getStorageNames.returns"],
        &format!("only getStorageNames.returns fails: {:?}", failing(&prints)),
    );
    assert!(left.is_empty(), "left on the array: {left:?}");
}
