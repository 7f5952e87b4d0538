//! The kit against the two Python sample plug-ins (tests/python-plugins), run out of process
//! through the manager.
//!
//! Both samples pass every check. (Earlier versions let a KeyError out of
//! createAccessGroups, accepted duplicate and path-like names, ignored an unknown pool, answered
//! a missing size with the wrong exception and accepted a negative new_size: the kit found each
//! of those, and the samples were fixed, not the kit.)

mod common;

use common::*;
use serde_json::json;

const SAMPLES: &[(&str, &[&str])] = &[
    ("acme.minimal.MinimalArray.MinimalArray", &[]),
    ("acme.rich.RichArray.RichArray", &[]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_samples_pass_every_check() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = manager(vec![], vec![repo().join("tests/python-plugins")], scratch.path()).await;
    let runs = SAMPLES.iter().map(|(class, known)| {
        let m = &m;
        async move {
            let state = tempfile::tempdir().expect("tempdir");
            let ss = json!({
                "name": "conformance-python", "uuid": format!("ss-{class}"),
                "storage_type": "iSCSIStorage", "access_host": "192.0.2.10",
                "admin_host": "192.0.2.10", "admin_user": "admin", "admin_passwd": "not-a-secret",
                "extra_info": format!("state_dir={} split_step=50", state.path().display()),
            });
            let p = plugin(m, class);
            let opts = options(ss.clone());
            let report = spindle_conformance::run(m, p, &opts).await;
            let left = remaining(m, p, &ss, &opts.prefix).await;
            (class, known, report, left)
        }
    });
    let runs: Vec<_> = runs.collect();
    let mut it = runs.into_iter();
    let (Some(a), Some(b)) = (it.next(), it.next()) else {
        panic!("two samples expected");
    };
    let (ra, rb) = tokio::join!(a, b);
    for (class, known, report, left) in [ra, rb] {
        println!("== {class}\n{}", report.to_text());
        let mut want: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        want.sort();
        let got = failing(&report);
        check_report(
            &report,
            got == want,
            &format!("{class}: expected no failures {want:?}, got {got:?}"),
        );
        check_report(
            &report,
            report.leftovers.is_empty(),
            &format!("{class}: left behind"),
        );
        assert!(left.is_empty(), "{class}: left on the array: {left:?}");
    }
}
