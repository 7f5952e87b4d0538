//! The kit against the built-in simulated array: a complete, correct plug-in passes every
//! check it can be given, and nothing the kit made is left behind.

mod common;

use common::*;
use spindle_conformance::Verdict;
use std::sync::Arc;

async fn against_sim(storage_type: &str) {
    let state = tempfile::tempdir().expect("tempdir");
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = manager(
        vec![Arc::new(spindle_plugin_sim::SimArray)],
        vec![],
        scratch.path(),
    )
    .await;
    let p = plugin(&m, "spindle.sim.SimArray");
    let ss = sim_ss(state.path(), storage_type);
    let mut opts = options(ss.clone());
    if storage_type == "SANStorage" {
        // The simulated array's one pool, named explicitly.
        opts.vol_group = Some("pool0".into());
    }
    let report = spindle_conformance::run(&m, p, &opts).await;
    println!("{}", report.to_text());
    check_report(&report, !report.failed(), "the sim must pass every check");
    check_report(&report, report.leftovers.is_empty(), "nothing may be left behind");
    let left = remaining(&m, p, &ss, &opts.prefix).await;
    assert!(
        left.is_empty(),
        "left on the array: {left:?}\n{}",
        report.to_text()
    );
    // The checks the sim's declarations make possible are judged, not skipped.
    for id in [
        "createSnap.online",
        "clone.online",
        "resize.online",
        "splitClone.progress",
        "splitClone.independent",
        "remove.refused_while_presented",
        "remove.never_unpresents",
        "remove.refused_while_snapshots",
        "remove.refused_while_clones",
        "addToAccessGroup.max_access_entries",
        "isRestorable.agrees_with_snapRestore",
        "getAccessGroups.of_element",
        "create.bad_name_refused",
        "create.zero_size_refused",
        "create.unusual_name_kept_or_refused",
        "create.unknown_pool_refused",
        "cleanup.nothing_left",
        "create.missing_parameters",
        "splitClone.sync",
    ] {
        let c = report.check(id).unwrap_or_else(|| panic!("{id} missing"));
        let want = if id == "splitClone.sync" {
            Verdict::Skip
        } else {
            Verdict::Pass
        };
        check_report(&report, c.verdict == want, &format!("{id} should be {want}"));
    }
    let last = report
        .to_text()
        .lines()
        .last()
        .map(str::to_string)
        .unwrap_or_default();
    assert_eq!(last, report.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_iscsi_passes_and_leaves_nothing() {
    against_sim("iSCSIStorage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_san_passes_and_leaves_nothing() {
    against_sim("SANStorage").await;
}
