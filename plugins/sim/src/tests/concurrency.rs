//! Several threads working on one state file at once.

use super::*;
use crate::store::LOCK_FILE;
use spindle_api::SeType;
use std::collections::HashSet;

#[test]
fn two_threads_mutating_one_array_lose_nothing() {
    let fx = Fx::with(spindle_api::StorageType::Iscsi, ";capacity=100G");
    const EACH: usize = 20;
    std::thread::scope(|scope| {
        for t in 0..2 {
            let fx = &fx;
            scope.spawn(move || {
                for i in 0..EACH {
                    let r = fx.lun(&format!("t{t}-lun{i}"), GIB, i % 2 == 0);
                    let r =
                        fx.p.resize(&fx.host, &fx.ss, &r, 2 * GIB)
                            .expect("resize under contention");
                    if i % 5 == 0 {
                        fx.snap(&r, None);
                    }
                }
            });
        }
    });
    let listed = fx.p.list(&fx.host, &fx.ss, &[SeType::Lun]).expect("list");
    assert_eq!(listed.len(), 2 * EACH, "a create was lost");
    assert!(listed.iter().all(|r| size_of(r) == 2 * GIB), "a resize was lost");
    let snaps = fx.p.get_current_snaps(&fx.host, &fx.ss, None).expect("snaps");
    assert_eq!(snaps.len(), 2 * 4);
    let p83: HashSet<String> = listed
        .iter()
        .chain(&snaps)
        .map(|r| text(&r.page83_id).to_string())
        .collect();
    assert_eq!(p83.len(), 2 * EACH + 8, "page83 ids collided");
    let st = fx.state();
    assert_eq!(st.next_serial as usize, 2 * EACH + 8 + 1);
    // Thick LUNs (every other one) reserve 2 GiB each.
    assert_eq!(st.pool_used("pool0"), EACH as i64 * 2 * GIB);
    // Only the state and lock files remain: no temporary file is left behind.
    let mut files: Vec<String> = std::fs::read_dir(fx.dir.path().join("array"))
        .expect("read_dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    files.sort();
    assert_eq!(files, [STATE_FILE, LOCK_FILE]);
}

#[test]
fn racing_for_one_name_lets_exactly_one_win() {
    let fx = Fx::iscsi();
    let results: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let fx = &fx;
                scope.spawn(move || {
                    fx.p.create(&fx.host, &fx.ss, &lun_req("contested", GIB), false, None)
                        .is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(false)).collect()
    });
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
    assert_eq!(fx.state().elements.len(), 1);
    assert_eq!(fx.pool_free(), 9 * GIB);
}

#[test]
fn separate_records_for_one_state_dir_share_the_array() {
    // Two ss_records (as two managers or two processes would hold) addressing one state_dir.
    let fx = Fx::iscsi();
    let mut second = fx.ss.clone();
    second.uuid = spindle_api::Field::Value("another-manager-uuid".into());
    let first = fx.lun("seen-by-both", GIB, true);
    let listed = fx.p.list(&fx.host, &second, &[SeType::Lun]).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].uuid, first.uuid);
    assert_eq!(text(&listed[0].ss_uuid), "another-manager-uuid");
}
