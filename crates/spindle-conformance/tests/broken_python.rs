//! "The kit proves it can fail", out of process: Python plug-ins under
//! tests/conformance-broken, each a correct base with one rule broken, must fail exactly the
//! check for that rule; the correct base itself must fail nothing.

mod common;

use common::*;
use serde_json::json;

const CASES: &[(&str, &[&str])] = &[
    ("brokenco.correct.Array.Array", &[]),
    (
        "brokenco.removewhilepresented.Array.Array",
        &["remove.refused_while_presented"],
    ),
    ("brokenco.snapsinlist.Array.Array", &["list.never_snapshots"]),
    (
        "brokenco.keyerror.Array.Array",
        &["createAccessGroups.exceptions"],
    ),
    (
        "brokenco.negativeresize.Array.Array",
        &["resize.negative_size_refused"],
    ),
    ("brokenco.clonesunsupported.Array.Array", &["clone.unsupported"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_python_plugins_fail_exactly_their_check() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = manager(
        vec![],
        vec![repo().join("tests/conformance-broken")],
        scratch.path(),
    )
    .await;
    assert!(m.skipped().is_empty(), "skipped: {:#?}", m.skipped());
    let runs = CASES.iter().map(|(class, expected)| {
        let m = &m;
        async move {
            let state = tempfile::tempdir().expect("tempdir");
            let p = plugin(m, class);
            let ss = json!({
                "name": "conformance-broken", "uuid": format!("ss-{class}"),
                "storage_type": "iSCSIStorage", "access_host": "192.0.2.10",
                "admin_host": "192.0.2.10", "admin_user": "admin", "admin_passwd": "x",
                "extra_info": format!("state_dir={}", state.path().display()),
            });
            let opts = options(ss.clone());
            let report = spindle_conformance::run(m, p, &opts).await;
            let left = remaining(m, p, &ss, &opts.prefix).await;
            (class, expected, report, left)
        }
    });
    // Two at a time: each call is a fresh Python process.
    let mut results = Vec::new();
    let runs: Vec<_> = runs.collect();
    let mut it = runs.into_iter();
    loop {
        let (a, b) = (it.next(), it.next());
        match (a, b) {
            (Some(a), Some(b)) => {
                let (ra, rb) = tokio::join!(a, b);
                results.push(ra);
                results.push(rb);
            }
            (Some(a), None) => results.push(a.await),
            _ => break,
        }
    }
    for (class, expected, report, left) in results {
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        let got = failing(&report);
        check_report(
            &report,
            got == want,
            &format!("{class}: expected exactly {want:?} to fail, got {got:?}"),
        );
        check_report(
            &report,
            report.leftovers.is_empty(),
            &format!("{class}: left behind"),
        );
        assert!(left.is_empty(), "{class}: left on the array: {left:?}");
    }
}
