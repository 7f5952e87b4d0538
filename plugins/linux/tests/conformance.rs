//! The conformance kit against the Linux array plug-in on real storage: a loop-mounted XFS
//! (and btrfs) pool, a real tgtd, and the data-path checks through spindle's iSCSI initiator. This is
//! the run a plug-in author makes with `spindle conformance`; every check must pass.

mod common;

use common::*;
use spindle_conformance::{DataPathOptions, IscsiDataPath, Options};
use std::sync::Arc;

const INITIATOR: &str = "iqn.2025-01.org.example:conformance-host";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_the_linux_array_data_path_included() {
    kit(false, Kind::Xfs).await;
}

/// On btrfs a pool is a subvolume, so the array snapshots several LUNs at one point in time:
/// the kit's createMultiSnap check must take one, not accept NoSuchOperationEx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_on_btrfs_multi_lun_snapshots_included() {
    let Some(report) = kit(false, Kind::Btrfs).await else {
        return;
    };
    let c = report
        .check("createMultiSnap.works_or_no_such_operation")
        .expect("the check ran");
    assert!(c.reason.starts_with("took "), "{}", c.reason);
}

/// The same kit with the plug-in reaching the array through a resident array program
/// (`array_socket=`), as the embedded default does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_through_the_resident_array_program() {
    kit(true, Kind::Xfs).await;
}

/// Runs the kit on a pool of `kind`, directly or through a resident array program; asserts
/// every check passed and the data path really ran; the report (`None`: skipped).
async fn kit(resident: bool, kind: Kind) -> Option<spindle_conformance::Report> {
    if !can_mount() || !have_tgt() {
        eprintln!("SKIPPED: needs root, loop devices and tgt");
        return None;
    }
    let fs = TestFs::new(kind, 1024);
    let pool = fs.pool("p0");
    let tgt = Tgt::new();
    let m = Mgr::new().await;
    // Declared after the file system: stopped before it is unmounted.
    let daemon = resident.then(|| Daemon::start(&[]));
    let mut extra = local_extra_info(&pool, &tgt);
    if let Some(d) = &daemon {
        // No program to fall back to: every request must go through the socket.
        extra = extra.replace(
            &format!("array_program={}", program().display()),
            "array_program=/nonexistent/spindle-array",
        );
        extra.push_str(&format!(";array_socket={}", d.socket.display()));
    }
    let ss = ss_record("localhost", &extra);
    let mut opts = Options::new(ss.clone());
    opts.vol_group = Some("p0".into());
    let driver = Arc::new(IscsiDataPath::from_ss_record(&ss));
    opts.data_path = Some(
        DataPathOptions::new(INITIATOR, &tgt.portal())
            .expect("data-path options")
            .with_driver(driver),
    );
    opts.check().expect("options");
    let entry = m.m.resolve(spindle_plugin_linux::CLASS_NAME).expect("built in");
    let report = spindle_conformance::run(&m.m, entry, &opts).await;
    println!("{}", report.to_text());
    assert!(!report.failed(), "failures: {:?}", report.failed_ids());
    assert!(report.leftovers.is_empty(), "left behind: {:?}", report.leftovers);
    for id in [
        "datapath.visible_when_presented",
        "datapath.capacity",
        "datapath.write_read",
        "datapath.invisible_when_unpresented",
        "datapath.snapshot_freezes",
        "datapath.clone_diverges",
        "datapath.restore_brings_data_back",
        "datapath.split_keeps_data",
        "datapath.outsider_sees_nothing",
        "datapath.page83_stable",
    ] {
        let c = report.check(id).unwrap_or_else(|| panic!("no check {id}"));
        assert_eq!(
            c.verdict,
            spindle_conformance::Verdict::Pass,
            "{id} must really run: {}",
            c.reason
        );
    }
    Some(report)
}
