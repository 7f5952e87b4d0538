//! The export layer of `spindle-array`: every request brings a real tgtd (private control
//! port, socket directory and portal port) to the array's export plan, checked with the
//! spindle-iscsi initiator.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_api::make_mp_page83_from_raw_page83;
use spindle_iscsi::{Chap, Lun, Session};
use spindle_plugin_linux::config::ArrayConfig;
use spindle_plugin_linux::protocol;
use spindle_plugin_linux::tgt::SyncMode;

const MIB: u64 = 1 << 20;

fn uuid(v: &Value) -> String {
    v["uuid"].as_str().unwrap().to_string()
}

/// (LUN number, page83_id from VPD 0x83, capacity, online) of every LUN `initiator` sees in
/// `target`.
fn inspect(
    portal: &str,
    target: &str,
    initiator: &str,
    chap: Option<&Chap>,
) -> Vec<(u32, String, u64, bool)> {
    let mut s = Session::login(portal, target, initiator, chap).unwrap();
    let mut out = Vec::new();
    for lun in s.report_luns().unwrap() {
        let n = lun.number().unwrap();
        if n == 0 {
            continue;
        }
        let id = s.inquiry_vpd83(lun).unwrap();
        let naa = id.naa_of_type(6).unwrap().hex();
        let online = s.test_unit_ready(lun).is_ok();
        let cap = if online {
            s.read_capacity16(lun).unwrap().bytes()
        } else {
            0
        };
        out.push((n, make_mp_page83_from_raw_page83(&naa).unwrap(), cap, online));
    }
    s.logout().unwrap();
    out.sort();
    out
}

/// An array on a fresh XFS pool `p0` with its own tgtd, validated (tgtd started), and access
/// group `ga` of [`INIT_A`] (target `iqn.2025-01.org.example:array:ga`).
fn array_with_group_ga() -> (TestFs, Tgt, spindle_plugin_linux::config::ArrayConfig) {
    let fs = TestFs::new(Kind::Xfs, 512);
    let tgt = Tgt::new();
    let cfg = tgt_config(&fs.pool("p0"), &tgt);
    ok(&cfg, json!({"op": "validate"}));
    ok(
        &cfg,
        json!({"op": "group-create", "groups": [{"name": "ga", "entries": [INIT_A]}]}),
    );
    (fs, tgt, cfg)
}

/// Group `group` of `initiator`, and a 4 MiB thin LUN `l` in pool `p0` presented to it;
/// returns the LUN.
fn lun_in_new_group(cfg: &spindle_plugin_linux::config::ArrayConfig, group: &str, initiator: &str) -> Value {
    ok(
        cfg,
        json!({"op": "group-create", "groups": [{"name": group, "entries": [initiator]}]}),
    );
    let lun = ok(
        cfg,
        json!({"op": "create", "name": "l", "pool": "p0", "size": 4 * MIB, "thin": true}),
    );
    ok(
        cfg,
        json!({"op": "present", "uuid": lun["uuid"], "groups": [group]}),
    );
    lun
}

/// LUN `l1` of 8 MiB, made and presented to group `ga` of [`array_with_group_ga`].
fn lun_presented_to_ga(cfg: &spindle_plugin_linux::config::ArrayConfig) -> Value {
    let l = ok(
        cfg,
        json!({"op": "create", "name": "l1", "pool": "p0", "size": 8 * MIB}),
    );
    ok(cfg, json!({"op": "present", "uuid": uuid(&l), "groups": ["ga"]}));
    l
}

#[test]
fn requests_keep_tgtd_serving_the_plan_even_after_sigkill() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let tgt = Tgt::new();
    let cfg = tgt_config(&fs.pool("p0"), &tgt);
    let prefix = "iqn.2025-01.org.example:array";

    // validate starts tgtd.
    let info = ok(&cfg, json!({"op": "validate"}));
    assert_eq!(info["tgt"]["running"], true, "{info}");
    assert!(info["tgt"]["version"].as_str().unwrap().starts_with("1."));
    let first_pid = tgt.pid().expect("tgtd started by validate");

    ok(
        &cfg,
        json!({"op": "group-create", "groups": [{"name": "ga", "entries": [INIT_A]}, {"name": "gb", "entries": [INIT_B]}]}),
    );
    let l1 = ok(
        &cfg,
        json!({"op": "create", "name": "l1", "pool": "p0", "size": 8 * MIB}),
    );
    let l2 = ok(
        &cfg,
        json!({"op": "create", "name": "l2", "pool": "p0", "size": 16 * MIB}),
    );
    let l3 = ok(
        &cfg,
        json!({"op": "create", "name": "l3", "pool": "p0", "size": 4 * MIB}),
    );
    ok(
        &cfg,
        json!({"op": "present", "uuid": uuid(&l1), "groups": ["ga"]}),
    );
    ok(
        &cfg,
        json!({"op": "present", "uuid": uuid(&l2), "groups": ["gb"]}),
    );
    // One LUN in both groups: the same identity through two targets.
    let (_, shared) = request(
        &cfg,
        json!({"op": "present", "uuid": uuid(&l3), "groups": ["ga", "gb"]}),
        &[],
    );
    assert!(shared["ok"].is_object(), "{shared}");
    assert!(shared["export"]["reconciled"] == true, "{shared}");

    let ta = format!("{prefix}:ga");
    let tb = format!("{prefix}:gb");
    let portal = tgt.portal();
    assert_eq!(visible(&portal, INIT_A, None), vec![(ta.clone(), vec![1, 2])]);
    assert_eq!(visible(&portal, INIT_B, None), vec![(tb.clone(), vec![1, 2])]);
    assert!(visible(&portal, OUTSIDER, None).is_empty());
    let p83 = |v: &Value| v["page83_id"].as_str().unwrap().to_string();
    let want_a = vec![(1, p83(&l1), 8 * MIB, true), (2, p83(&l3), 4 * MIB, true)];
    let want_b = vec![(1, p83(&l2), 16 * MIB, true), (2, p83(&l3), 4 * MIB, true)];
    assert_eq!(inspect(&portal, &ta, INIT_A, None), want_a);
    assert_eq!(inspect(&portal, &tb, INIT_B, None), want_b);

    // A request that changes nothing changes nothing in tgtd.
    let (_, listed) = request(&cfg, json!({"op": "list"}), &[]);
    assert_eq!(listed["export"]["reconciled"], false, "{listed}");
    let again = ok(&cfg, json!({"op": "export-sync"}));
    assert_eq!(again["actions"], json!([]), "{again}");

    // Offline, resize, online.
    ok(&cfg, json!({"op": "offline", "uuid": uuid(&l1)}));
    ok(&cfg, json!({"op": "resize", "uuid": uuid(&l1), "size": 24 * MIB}));
    let mut want_a2 = want_a.clone();
    want_a2[0] = (1, p83(&l1), 0, false);
    assert_eq!(inspect(&portal, &ta, INIT_A, None), want_a2);
    ok(&cfg, json!({"op": "online", "uuid": uuid(&l1)}));
    ok(&cfg, json!({"op": "resize", "uuid": uuid(&l2), "size": 32 * MIB}));
    let want_a = vec![(1, p83(&l1), 24 * MIB, true), (2, p83(&l3), 4 * MIB, true)];
    let want_b = vec![(1, p83(&l2), 32 * MIB, true), (2, p83(&l3), 4 * MIB, true)];
    assert_eq!(inspect(&portal, &ta, INIT_A, None), want_a);
    assert_eq!(inspect(&portal, &tb, INIT_B, None), want_b);

    // Restore replaces the backing file: the unit is re-added and shows the old data.
    let mut s = Session::login(&portal, &ta, INIT_A, None).unwrap();
    s.write(Lun::new(1), 0, &[0x11; 4096]).unwrap();
    s.synchronize_cache(Lun::new(1)).unwrap();
    s.logout().unwrap();
    let snap = ok(&cfg, json!({"op": "snapshot", "uuid": uuid(&l1), "name": "l1-s"}));
    let mut s = Session::login(&portal, &ta, INIT_A, None).unwrap();
    s.write(Lun::new(1), 0, &[0x22; 4096]).unwrap();
    s.synchronize_cache(Lun::new(1)).unwrap();
    s.logout().unwrap();
    ok(&cfg, json!({"op": "offline", "uuid": uuid(&l1)}));
    ok(
        &cfg,
        json!({"op": "restore", "snap": uuid(&snap), "uuid": uuid(&l1)}),
    );
    ok(&cfg, json!({"op": "online", "uuid": uuid(&l1)}));
    let mut s = Session::login(&portal, &ta, INIT_A, None).unwrap();
    assert_eq!(s.read(Lun::new(1), 0, 8).unwrap(), vec![0x11; 4096]);
    s.logout().unwrap();

    // CHAP: required once set; a wrong secret is refused.
    ok(
        &cfg,
        json!({"op": "set-chap", "chap": {"username": "array-user", "secret": "right-secret-123"}}),
    );
    let right = Chap::new("array-user", "right-secret-123");
    let wrong = Chap::new("array-user", "wrong-secret-123");
    assert!(Session::login(&portal, &ta, INIT_A, None).is_err());
    assert!(Session::login(&portal, &ta, INIT_A, Some(&wrong)).is_err());
    assert_eq!(inspect(&portal, &ta, INIT_A, Some(&right)), want_a);
    // The account is kept as it is by later requests (no re-creation each time).
    let (_, r) = request(
        &cfg,
        json!({"op": "set-qos", "uuid": uuid(&l2), "qos": "writethrough"}),
        &[],
    );
    assert!(!r["export"]["actions"].to_string().contains("account"), "{r}");

    // SIGKILL: the next request of any kind brings everything back.
    let tids_before = tgt.adm().targets().unwrap();
    tgt.kill9();
    let (_, r) = request(&cfg, json!({"op": "list"}), &[]);
    assert!(r["export"]["started"].is_u64(), "{r}");
    assert_ne!(tgt.pid(), Some(first_pid));
    assert!(
        Session::login(&portal, &ta, INIT_A, None).is_err(),
        "CHAP is back"
    );
    assert_eq!(inspect(&portal, &ta, INIT_A, Some(&right)), want_a);
    assert_eq!(inspect(&portal, &tb, INIT_B, Some(&right)), want_b);
    assert!(visible(&portal, OUTSIDER, Some(&right)).is_empty());
    let tids_after = tgt.adm().targets().unwrap();
    let ids = |ts: &[spindle_tgt::TargetInfo]| {
        ts.iter()
            .map(|t| {
                (
                    t.tid,
                    t.name.clone(),
                    t.acl_initiators.clone(),
                    t.accounts.clone(),
                    t.luns
                        .iter()
                        .map(|l| (l.lun, l.scsi_id.clone(), l.scsi_sn.clone(), l.online))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&tids_before), ids(&tids_after));

    // export-sync alone does the same.
    ok(&cfg, json!({"op": "offline", "uuid": uuid(&l3)}));
    tgt.kill9();
    let report = ok(&cfg, json!({"op": "export-sync"}));
    assert!(report["started"].is_u64(), "{report}");
    let l3_off = |w: &Vec<(u32, String, u64, bool)>| {
        let mut w = w.clone();
        w[1] = (2, p83(&l3), 0, false);
        w
    };
    assert_eq!(inspect(&portal, &ta, INIT_A, Some(&right)), l3_off(&want_a));

    // Removing the CHAP account opens the targets to their ACL again; unpresenting and
    // removing groups removes targets.
    ok(&cfg, json!({"op": "set-chap", "chap": null}));
    assert_eq!(visible(&portal, INIT_A, None), vec![(ta.clone(), vec![1, 2])]);
    ok(
        &cfg,
        json!({"op": "unpresent", "uuid": uuid(&l3), "groups": ["ga", "gb"]}),
    );
    ok(
        &cfg,
        json!({"op": "unpresent", "uuid": uuid(&l2), "groups": ["gb"]}),
    );
    ok(&cfg, json!({"op": "group-remove", "names": ["gb"]}));
    assert!(visible(&portal, INIT_B, None).is_empty());
    assert_eq!(visible(&portal, INIT_A, None), vec![(ta, vec![1])]);
    let names: Vec<String> = tgt.adm().targets().unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, vec![format!("{prefix}:ga")]);
}

#[test]
fn a_portal_that_cannot_be_had_fails_validate_clearly() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let tgt = Tgt::new();
    // Someone else holds the portal port.
    let _holder = std::net::TcpListener::bind(("127.0.0.1", tgt.port)).unwrap();
    let cfg = tgt_config(&fs.pool("p0"), &tgt);
    let e = err(&cfg, json!({"op": "validate"}));
    assert_eq!(e["exception"], "InvalidStorageArrayEx", "{e}");
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("cannot listen on the configured portal") && m.contains("another program listens there"),
        "{m}"
    );
    assert!(tgt.pid().is_none(), "the misplaced tgtd was shut down");
    // A request that is not about exports still succeeds, with a warning.
    let (_, r) = request(&cfg, json!({"op": "list"}), &[]);
    assert!(r["ok"].is_array(), "{r}");
    assert!(r["warnings"][0].as_str().unwrap().contains("not serving"), "{r}");
}

#[test]
fn split_completion_reopens_the_clone() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    let l = ok(
        &cfg,
        json!({"op": "create", "name": "base", "pool": "p0", "size": 8 * MIB}),
    );
    fill(std::path::Path::new(l["path"].as_str().unwrap()), 0, 4096, 0x5a);
    let c = ok(&cfg, json!({"op": "clone", "uuid": uuid(&l), "name": "cl"}));
    ok(&cfg, json!({"op": "present", "uuid": uuid(&c), "groups": ["ga"]}));
    let portal = tgt.portal();
    let target = "iqn.2025-01.org.example:array:ga";
    ok(&cfg, json!({"op": "offline", "uuid": uuid(&c)}));
    let st = ok(&cfg, json!({"op": "split-start", "uuid": uuid(&c)}));
    let start = std::time::Instant::now();
    loop {
        let p = ok(&cfg, json!({"op": "split-progress", "handle": st["handle"]}));
        if p["progress"].is_null() {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ok(&cfg, json!({"op": "online", "uuid": uuid(&c)}));
    // tgtd serves the split copy, not the file it had open before.
    let mut s = Session::login(&portal, target, INIT_A, None).unwrap();
    s.write(Lun::new(1), 8, &[0x77; 512]).unwrap();
    s.synchronize_cache(Lun::new(1)).unwrap();
    assert_eq!(s.read(Lun::new(1), 0, 1).unwrap(), vec![0x5a; 512]);
    s.logout().unwrap();
    let now = read(std::path::Path::new(c["path"].as_str().unwrap()), 8 * 512, 512);
    assert_eq!(now, vec![0x77; 512], "the write reached the clone's current file");
}

/// A change of the export plan whose own reconciliation never ran (its program died after the
/// commit) is caught by the next request of any kind, even one that changes no export: the
/// check compares the export generation, which every change of the plan's tables moves.
#[test]
fn a_plan_changed_behind_the_last_sync_is_reconciled_by_any_request() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    let pool = cfg.pools[0].path.clone();
    let l = lun_presented_to_ga(&cfg);
    let portal = tgt.portal();
    let target = "iqn.2025-01.org.example:array:ga";
    let p83 = l["page83_id"].as_str().unwrap().to_string();
    assert_eq!(
        inspect(&portal, target, INIT_A, None),
        vec![(1, p83.clone(), 8 * MIB, true)]
    );

    // A request that changes nothing, twice: the second finds everything as applied.
    let (_, r) = request(&cfg, json!({"op": "list"}), &[]);
    assert_eq!(r["export"]["reconciled"], false, "{r}");

    // The LUN goes offline in the state alone, as if `offline` died before its sync.
    let conn = rusqlite::Connection::open(pool.join(".spindle-array/array.db")).unwrap();
    conn.execute("UPDATE elements SET online = 0 WHERE uuid = ?1", [uuid(&l)])
        .unwrap();
    drop(conn);
    let (_, r) = request(&cfg, json!({"op": "list"}), &[]);
    assert_eq!(r["export"]["reconciled"], true, "{r}");
    assert_eq!(inspect(&portal, target, INIT_A, None), vec![(1, p83, 0, false)]);
    let (_, r) = request(&cfg, json!({"op": "status"}), &[]);
    assert_eq!(r["export"]["reconciled"], false, "{r}");
}

/// Bytes the file system has allocated to `path`.
fn allocated(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// A thin LUN offers thin provisioning to initiators: blocks a host unmaps (UNMAP, as a file
/// system's discard sends it) go back to the pool, read as zeros, and leave a snapshot of the
/// LUN untouched. A thick LUN keeps every block it was given: no LBPME, UNMAP refused. A unit
/// whose thin provisioning tgtd lost (an older program made it) gets it back in place.
#[test]
fn thin_luns_give_unmapped_blocks_back_to_the_pool_and_thick_ones_keep_theirs() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    let thin = ok(
        &cfg,
        json!({"op": "create", "name": "thin", "pool": "p0", "size": 64 * MIB}),
    );
    let thick = ok(
        &cfg,
        json!({"op": "create", "name": "thick", "pool": "p0", "size": 64 * MIB, "thin": false}),
    );
    ok(
        &cfg,
        json!({"op": "present", "uuid": uuid(&thin), "groups": ["ga"]}),
    );
    ok(
        &cfg,
        json!({"op": "present", "uuid": uuid(&thick), "groups": ["ga"]}),
    );
    let (portal, target) = (tgt.portal(), "iqn.2025-01.org.example:array:ga");
    let (lt, lk) = (Lun::new(1), Lun::new(2));
    let thin_path = thin["path"].as_str().unwrap().to_string();

    let mut s = Session::login(&portal, target, INIT_A, None).unwrap();
    let cap = s.read_capacity16(lt).unwrap();
    assert!(cap.thin_provisioning && cap.reads_zeroes_when_unmapped, "{cap:?}");
    assert!(!s.read_capacity16(lk).unwrap().thin_provisioning);
    // 8 MiB of data, on disk.
    s.write(lt, 0, &vec![0xab; 8 * MIB as usize]).unwrap();
    s.synchronize_cache(lt).unwrap();
    assert!(allocated(&thin_path) >= 8 * MIB, "{}", allocated(&thin_path));
    let snap = ok(
        &cfg,
        json!({"op": "snapshot", "uuid": uuid(&thin), "name": "before"}),
    );

    // The host discards the first 6 MiB: 12288 blocks of 512 bytes.
    s.unmap(lt, &[(0, 12288)]).unwrap();
    s.synchronize_cache(lt).unwrap();
    assert!(
        allocated(&thin_path) <= 3 * MIB,
        "{} bytes still allocated",
        allocated(&thin_path)
    );
    assert_eq!(s.read(lt, 0, 8).unwrap(), vec![0; 4096]);
    assert_eq!(s.read(lt, 12288, 8).unwrap(), vec![0xab; 4096]);
    let snap_path = std::path::Path::new(snap["members"][0]["path"].as_str().unwrap());
    assert_eq!(
        read(snap_path, 0, 4096),
        vec![0xab; 4096],
        "the snapshot kept its data"
    );

    // The thick LUN refuses, and its allocation stays whole.
    let refused = s.unmap(lk, &[(0, 2048)]).unwrap_err();
    assert_eq!(
        refused.sense_key(),
        Some(spindle_iscsi::SenseKey::IllegalRequest),
        "{refused}"
    );
    assert!(allocated(thick["path"].as_str().unwrap()) >= 64 * MIB);
    s.logout().unwrap();

    // tgtd loses the setting behind the array's back; a full sync restores it in place.
    let adm = tgt.adm();
    let tid = adm.target_by_name(target).unwrap().unwrap().tid;
    adm.set_thin_provisioning(tid, 1, false).unwrap();
    let mut held = Session::login(&portal, target, INIT_A, None).unwrap();
    assert!(!held.read_capacity16(lt).unwrap().thin_provisioning);
    let report = ok(&cfg, json!({"op": "export-sync"}));
    assert!(
        report["actions"].to_string().contains("thin provisioning on"),
        "{report}"
    );
    // The same session, still logged in, sees it.
    assert!(held.read_capacity16(lt).unwrap().thin_provisioning);
    held.logout().unwrap();
}

/// eui. and naa. initiator names keep the upper-case hex of RFC 3720's examples (how initiators
/// send them) all the way into tgtd's ACL; a name tgt would refuse is refused by the array
/// first, so the group's request succeeds and its target is served.
#[test]
fn eui_and_naa_initiators_reach_the_acl() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    ok(
        &cfg,
        json!({"op": "group-create", "groups": [{"name": "wwn-hosts", "entries": ["naa.60ef0e1c710a47aa", "eui.0123456789abcdef"]}]}),
    );
    let targets = tgt.adm().targets().unwrap();
    let t = targets
        .iter()
        .find(|t| t.name.ends_with(":wwn-hosts"))
        .expect("the group's target is served");
    assert_eq!(
        t.acl_initiators,
        vec![
            "eui.0123456789ABCDEF".to_string(),
            "naa.60EF0E1C710A47AA".to_string()
        ]
    );
    let e = err(
        &cfg,
        json!({"op": "group-create", "groups": [{"name": "bad_name", "entries": []}]}),
    );
    assert!(e.to_string().contains("grp_name"), "{e}");
    assert!(targets.iter().any(|t| t.name.ends_with(":ga")));
}

/// The array's tgtd settings change and the array follows, whichever run brings the change:
/// - a new portal for a tgtd that also serves another array's targets is refused, naming
///   them, and nothing moves;
/// - another tgtd instance (`tgt_control`) takes the array's targets out of the old one,
///   which keeps serving the other array;
/// - a new portal for a tgtd serving only this array moves it (stopped and started again);
/// - when the last array leaves the old instance, that instance stops.
///
/// Every LUN keeps its number and page 83 id throughout.
#[test]
fn a_changed_portal_or_tgtd_instance_is_followed() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let (tgt, tgt2) = (Tgt::new(), Tgt::new());
    let cfg = tgt_config(&fs.pool("p0"), &tgt);
    let mut other = tgt_config(&fs.pool("p1"), &tgt);
    other.iqn_prefix = Some("iqn.2025-01.org.example:other".into());
    let mut page83 = Vec::new();
    for (c, group, init) in [(&cfg, "ga", INIT_A), (&other, "gb", INIT_B)] {
        page83.push(lun_in_new_group(c, group, init)["page83_id"].clone());
    }
    let ga = vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])];
    let gb = vec![("iqn.2025-01.org.example:other:gb".to_string(), vec![1])];
    assert_eq!(visible(&tgt.portal(), INIT_A, None), ga);
    assert_eq!(visible(&tgt.portal(), INIT_B, None), gb);
    let portals = |t: &Tgt| t.adm().portals().unwrap();

    // Shared tgtd: its portal is not moved under the other array.
    let new_portal = format!("127.0.0.1:{}", free_port());
    let mut moved = cfg.clone();
    moved.tgt.as_mut().unwrap().portal = new_portal.parse().unwrap();
    let e = err(&moved, json!({"op": "export-sync"}));
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("outside this array's prefix") && m.contains("iqn.2025-01.org.example:other:gb"),
        "{m}"
    );
    assert_eq!(portals(&tgt), vec![tgt.portal()]);
    assert_eq!(visible(&tgt.portal(), INIT_B, None), gb);

    // The other array moves to its own tgtd: its target leaves the shared one.
    let mut other2 = other.clone();
    other2.tgt = Some(tgt2.settings());
    let report = ok(&other2, json!({"op": "export-sync"}));
    assert!(
        report["actions"].to_string().contains("delete target"),
        "{report}"
    );
    assert!(visible(&tgt.portal(), INIT_B, None).is_empty());
    assert_eq!(visible(&tgt2.portal(), INIT_B, None), gb);
    assert!(tgt.pid().is_some(), "the old tgtd still serves the first array");

    // Now the first array's tgtd serves only it, and moves.
    let before = tgt.pid();
    let report = ok(&moved, json!({"op": "export-sync"}));
    assert!(report["actions"].to_string().contains("moved tgtd"), "{report}");
    assert_eq!(portals(&tgt), vec![new_portal.clone()]);
    assert_ne!(tgt.pid(), before);
    assert_eq!(visible(&new_portal, INIT_A, None), ga);
    assert!(
        try_visible(&tgt.portal(), INIT_A, None).is_err(),
        "the old portal is closed"
    );
    let info = ok(&moved, json!({"op": "info"}));
    assert_eq!(info["tgt"]["listening"], json!([new_portal]), "{info}");

    // A portal that cannot be had (held by another program, or not this host's address) is
    // refused before tgtd is stopped: the array keeps serving where it is.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for (taken, why) in [
        (holder.local_addr().unwrap(), "another program listens there"),
        ("192.0.2.1:3260".parse().unwrap(), "not one of this host's"),
    ] {
        let mut bad = moved.clone();
        bad.tgt.as_mut().unwrap().portal = taken;
        let e = err(&bad, json!({"op": "export-sync"}));
        let m = e["message"].as_str().unwrap();
        assert!(m.contains(why) && m.contains("tgtd stays on"), "{m}");
        assert_eq!(portals(&tgt), vec![new_portal.clone()]);
        assert_eq!(visible(&new_portal, INIT_A, None), ga);
    }

    // And it leaves that tgtd too, which then serves nothing and stops.
    let mut cfg2 = moved.clone();
    cfg2.tgt = Some(tgt2.settings());
    ok(&cfg2, json!({"op": "export-sync"}));
    assert!(tgt.pid().is_none(), "the tgtd nobody uses any more was stopped");
    assert_eq!(visible(&tgt2.portal(), INIT_A, None), ga);
    for (c, id) in [(&cfg2, &page83[0]), (&other2, &page83[1])] {
        assert_eq!(&ok(c, json!({"op": "list"}))[0]["page83_id"], id);
    }
}

/// A tgtd that listens elsewhere than on the configured portal is reported as such by
/// `getInfo`'s export status, not as simply running.
#[test]
fn a_tgtd_on_another_portal_is_reported() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    let mut elsewhere = cfg.clone();
    let other = format!("127.0.0.1:{}", free_port());
    elsewhere.tgt.as_mut().unwrap().portal = other.parse().unwrap();
    // The status alone (no sync) of a configuration whose portal tgtd does not listen on.
    let status = spindle_plugin_linux::tgt::status(elsewhere.tgt.as_ref().unwrap()).unwrap();
    assert_eq!(status.elsewhere(), Some(tgt.portal()), "{status:?}");
    let status = spindle_plugin_linux::tgt::status(cfg.tgt.as_ref().unwrap()).unwrap();
    assert_eq!(status.elsewhere(), None, "{status:?}");
}

/// A renamed access group keeps its target: its initiator sees the same LUN under the same
/// IQN, and the old name cannot make a second target with that IQN.
#[test]
fn a_renamed_group_keeps_its_target() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    let l = lun_presented_to_ga(&cfg);
    let portal = tgt.portal();
    let target = "iqn.2025-01.org.example:array:ga";
    let p83 = l["page83_id"].as_str().unwrap().to_string();
    let seen = vec![(1, p83, 8 * MIB, true)];
    assert_eq!(inspect(&portal, target, INIT_A, None), seen);
    ok(
        &cfg,
        json!({"op": "group-rename", "name": "ga", "new_name": "hosts"}),
    );
    assert_eq!(inspect(&portal, target, INIT_A, None), seen, "the target changed");
    let e = err(
        &cfg,
        json!({"op": "group-create", "groups": [{"name": "GA", "entries": []}]}),
    );
    assert!(
        e.to_string()
            .contains("still exports its iSCSI target under that name"),
        "{e}"
    );
}

/// One array has one export configuration: a second registration of the same array (same
/// state directory) with another portal is refused, whatever it asks, and moves nothing; with
/// the same settings it is served; the registration that set the configuration may change
/// it, after which the other must follow before it is served again.
#[test]
fn a_second_registration_cannot_move_the_exports() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (fs, tgt, cfg) = array_with_group_ga();
    let with = |r: &str, mut req: Value| {
        req["registration"] = json!(r);
        req
    };
    let l = ok(
        &cfg,
        with(
            "x",
            json!({"op": "create", "name": "l1", "pool": "p0", "size": 8 * MIB}),
        ),
    );
    ok(
        &cfg,
        with("x", json!({"op": "present", "uuid": uuid(&l), "groups": ["ga"]})),
    );
    let ga = vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])];
    assert_eq!(visible(&tgt.portal(), INIT_A, None), ga);

    let elsewhere = format!("127.0.0.1:{}", free_port());
    let mut y_cfg = cfg.clone();
    y_cfg.tgt.as_mut().unwrap().portal = elsewhere.parse().unwrap();
    for req in [json!({"op": "validate"}), json!({"op": "list"})] {
        let e = err(&y_cfg, with("y", req));
        let m = e["message"].as_str().unwrap();
        assert!(
            m.contains("exported by another registration") && m.contains("uuid x"),
            "{m}"
        );
    }
    let e = err(&y_cfg, with("y", json!({"op": "list"})));
    let portal = tgt.portal();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&format!("portal {portal} → {elsewhere}")),
        "the message says what differs: {e}"
    );
    // A refused registration adds nothing either: not a pool it names besides.
    let free = fs.pool("q0");
    let mut more_pools = cfg.clone();
    more_pools.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "q0".into(),
        path: free.clone(),
    });
    err(&more_pools, with("y", json!({"op": "validate"})));
    assert!(listing(&free).is_empty(), "a refused registration claimed a pool");
    let info = ok(&cfg, with("x", json!({"op": "info"})));
    let pools = info["pools"].to_string();
    assert!(pools.contains("p0") && !pools.contains("q0"), "{info}");
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        ga,
        "the refused registration moved tgtd"
    );
    assert_eq!(tgt.adm().portals().unwrap(), vec![tgt.portal()]);

    // The same settings: served.
    ok(&cfg, with("y", json!({"op": "list"})));
    // The first registration moves the array; the second, still on the old settings, is
    // refused until it follows.
    ok(&y_cfg, with("x", json!({"op": "export-sync"})));
    assert_eq!(visible(&elsewhere, INIT_A, None), ga);
    let e = err(&cfg, with("y", json!({"op": "list"})));
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("exported by another registration"),
        "{e}"
    );
    ok(&y_cfg, with("y", json!({"op": "list"})));
    assert_eq!(visible(&elsewhere, INIT_A, None), ga);
}

/// A new tgtd instance that serves other arrays on another portal cannot take this array:
/// the change is refused before the array leaves its own tgtd, so nothing moves and the
/// configuration in force stays the old one.
#[test]
fn a_refused_instance_change_moves_nothing() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let (tgt, tgt2) = (Tgt::new(), Tgt::new());
    let cfg = tgt_config(&fs.pool("p0"), &tgt);
    let mut w = tgt_config(&fs.pool("p1"), &tgt2);
    w.iqn_prefix = Some("iqn.2025-01.org.example:w".into());
    for (c, group, init) in [(&cfg, "ga", INIT_A), (&w, "gw", INIT_B)] {
        lun_in_new_group(c, group, init);
    }
    let ga = vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])];
    let gw = vec![("iqn.2025-01.org.example:w:gw".to_string(), vec![1])];
    let mut onto_w = cfg.clone();
    onto_w.tgt.as_mut().unwrap().control_port = tgt2.control;
    onto_w.tgt.as_mut().unwrap().socket = tgt2.settings().socket;
    let e = err(&onto_w, json!({"op": "validate"}));
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("outside this array's prefix"),
        "{e}"
    );
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        ga,
        "the array left its tgtd"
    );
    assert_eq!(visible(&tgt2.portal(), INIT_B, None), gw);
    assert!(
        visible(&tgt2.portal(), INIT_A, None).is_empty(),
        "the array's targets went to the other tgtd"
    );
    let in_force = || spindle_plugin_linux::tgt::latest_config(&cfg.state_dir().unwrap());
    assert_eq!(
        in_force().as_ref(),
        Some(&cfg),
        "the refused configuration was kept"
    );

    // A tgtd not running yet whose portal another program holds: refused too, before the
    // array leaves its tgtd.
    let tgt3 = Tgt::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut onto_taken = cfg.clone();
    onto_taken.tgt = Some(spindle_plugin_linux::config::TgtSettings {
        portal: holder.local_addr().unwrap(),
        ..tgt3.settings()
    });
    let e = err(&onto_taken, json!({"op": "validate"}));
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("the array stays where it is"),
        "{e}"
    );
    assert!(tgt3.pid().is_none(), "a tgtd was started on a taken portal");
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        ga,
        "the array left its tgtd"
    );
    assert_eq!(
        in_force().as_ref(),
        Some(&cfg),
        "the refused configuration was kept"
    );
    // The same tgtd, moved to a portal another program holds: refused, and the old
    // configuration stays in force (the resident program's watch keeps serving it).
    let mut same_taken = cfg.clone();
    same_taken.tgt.as_mut().unwrap().portal = holder.local_addr().unwrap();
    err(&same_taken, json!({"op": "validate"}));
    assert_eq!(visible(&tgt.portal(), INIT_A, None), ga);
    assert_eq!(in_force().as_ref(), Some(&cfg), "a refused portal was recorded");
    // A new tgtd whose socket directory cannot be made: refused before the array leaves its
    // own.
    let blocker = fs.pool("p9").join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let mut bad_socket = cfg.clone();
    bad_socket.tgt = Some(spindle_plugin_linux::config::TgtSettings {
        socket: Some(blocker.join("sock")),
        ..tgt3.settings()
    });
    let e = err(&bad_socket, json!({"op": "validate"}));
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("cannot create the tgtd socket directory"),
        "{e}"
    );
    assert_eq!(in_force().as_ref(), Some(&cfg), "a refused tgtd was recorded");
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        ga,
        "the array left its tgtd"
    );
    // Its own tgtd's portal is no obstacle: leaving that tgtd frees it.
    let mut own_portal = cfg.clone();
    own_portal.tgt = Some(spindle_plugin_linux::config::TgtSettings {
        portal: tgt.settings().portal,
        ..tgt3.settings()
    });
    ok(&own_portal, json!({"op": "validate"}));
    assert_eq!(visible(&tgt.portal(), INIT_A, None), ga);
    assert!(
        tgt3.pid().is_some() && tgt.pid().is_none(),
        "the array did not change tgtd"
    );
}

/// Arrays may share one tgtd only under prefixes that do not contain each other (each takes
/// every target under its prefix for its own); the array's own targets never count against
/// it, so it may change its prefix and portal together.
#[test]
fn arrays_on_one_tgtd_need_distinct_prefixes() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let tgt = Tgt::new();
    let mut b = tgt_config(&fs.pool("p0"), &tgt);
    b.iqn_prefix = Some("iqn.2025-01.org.example:b".into());
    lun_in_new_group(&b, "g1", INIT_B);
    let gb = vec![("iqn.2025-01.org.example:b:g1".to_string(), vec![1])];
    for (pool, prefix) in [
        ("p1", "iqn.2025-01.org.example:b"),
        ("p2", "iqn.2025-01.org.example:b:x"),
    ] {
        let dir = fs.pool(pool);
        let mut other = tgt_config(&dir, &tgt);
        other.iqn_prefix = Some(prefix.into());
        let e = err(&other, json!({"op": "validate"}));
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("clashes with this array's iqn_prefix"),
            "{e}"
        );
        // The refused array leaves nothing behind: no owner file, no state directory.
        assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
        assert!(
            !dir.join(".spindle-array").exists(),
            "the refused array's state stayed"
        );
    }
    assert_eq!(visible(&tgt.portal(), INIT_B, None), gb);
    // A prefix that merely begins with the same letters is another prefix.
    let mut bb = tgt_config(&fs.pool("p3"), &tgt);
    bb.iqn_prefix = Some("iqn.2025-01.org.example:bb".into());
    ok(&bb, json!({"op": "validate"}));
    // An array whose prefix lies under b's, joined while b had no target there, keeps its
    // targets whatever b does: b never takes `<prefix>:x:<group>` for one of its own (group
    // names hold no ':').
    let mut bx = tgt_config(&fs.pool("p4"), &tgt);
    bx.iqn_prefix = Some("iqn.2025-01.org.example:bb:x".into());
    lun_in_new_group(&bx, "gx", INIT_A);
    ok(
        &bb,
        json!({"op": "group-create", "groups": [{"name": "gbb", "entries": [INIT_A]}]}),
    );
    ok(&bb, json!({"op": "export-sync"}));
    assert!(
        visible(&tgt.portal(), INIT_A, None)
            .iter()
            .any(|(t, _)| t == "iqn.2025-01.org.example:bb:x:gx"),
        "b deleted the other array's target"
    );
    let e = err(
        &bb,
        json!({"op": "group-create", "groups": [{"name": "x:y", "entries": []}]}),
    );
    assert!(
        e["message"].as_str().unwrap().contains("may not contain ':'"),
        "{e}"
    );
    // The array's own targets do not clash with it: b leaves the shared tgtd for its own,
    // then changes prefix and portal together there.
    let own = Tgt::new();
    let mut b2 = b.clone();
    b2.tgt = Some(own.settings());
    ok(&b2, json!({"op": "export-sync"}));
    let mut b3 = b2.clone();
    b3.iqn_prefix = Some("iqn.2025-01.org.example:b3".into());
    let new_portal = format!("127.0.0.1:{}", free_port());
    b3.tgt.as_mut().unwrap().portal = new_portal.parse().unwrap();
    ok(&b3, json!({"op": "export-sync"}));
    assert_eq!(
        visible(&new_portal, INIT_B, None),
        vec![("iqn.2025-01.org.example:b3:g1".to_string(), vec![1])]
    );
}

/// A CHAP change tgtd cannot be brought to (here: the account name is another array's on
/// the same tgtd) is refused and put back: the array keeps no secret from it, and its hosts
/// keep logging in as before.
#[test]
fn a_refused_chap_change_is_put_back() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (fs, tgt, cfg) = array_with_group_ga();
    lun_presented_to_ga(&cfg);
    let mut other = tgt_config(&fs.pool("p1"), &tgt);
    other.iqn_prefix = Some("iqn.2025-01.org.example:other".into());
    ok(
        &other,
        json!({"op": "group-create", "groups": [{"name": "gb", "entries": [INIT_B]}]}),
    );
    ok(
        &other,
        json!({"op": "validate", "chap": {"username": "shared", "secret": "first-secret-1"}}),
    );
    let e = err(
        &cfg,
        json!({"op": "validate", "chap": {"username": "shared", "secret": "second-secret-2"}}),
    );
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("the CHAP settings were put back as they were"), "{m}");
    assert!(!m.contains("second-secret-2"), "the secret leaked: {m}");
    let state = cfg.state_dir().unwrap();
    assert!(!state.join("chap.secret").exists(), "the refused secret was kept");
    ok(&cfg, json!({"op": "export-sync"}));
    let ga = vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])];
    assert_eq!(visible(&tgt.portal(), INIT_A, None), ga, "the hosts lost the LUN");
}

/// A second registration of an array cannot take its CHAP account over: other credentials
/// from a registration that never sent the ones in force are refused, and the first
/// registration's hosts keep logging in. A registration that sends the credentials in force
/// may change them, after which the other one no longer knows them. Turning CHAP on where it
/// was off is anyone's to do.
#[test]
fn a_second_registration_cannot_take_the_chap_account() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    lun_presented_to_ga(&cfg);
    let (x, y) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let validate = |r: &str, user: &str, secret: &str| json!({"op": "validate", "registration": r, "chap": {"username": user, "secret": secret}});
    ok(&cfg, validate(&x, "first", "first-secret-1"));
    let first = Chap::new("first", "first-secret-1");
    let ga = vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])];
    assert_eq!(visible(&tgt.portal(), INIT_A, Some(&first)), ga);

    for asked in [
        validate(&y, "second", "second-secret-2"),
        validate(&y, "first", "another-secret-3"),
        json!({"op": "validate", "registration": y, "clear_chap": true}),
    ] {
        let e = err(&cfg, asked);
        assert_eq!(e["exception"], "InvalidStorageArrayEx", "{e}");
        let m = e["message"].as_str().unwrap();
        assert!(m.contains(&format!("storage server uuid {x}")), "{m}");
        assert!(
            !m.contains("secret-2") && !m.contains("secret-3"),
            "a secret leaked: {m}"
        );
    }
    assert_eq!(tgt.adm().accounts().unwrap(), ["first"]);
    assert_eq!(
        visible(&tgt.portal(), INIT_A, Some(&first)),
        ga,
        "the first registration's hosts were locked out"
    );
    // Knowing the credentials in force, the second registration may rotate them; then the
    // first one is the one that does not know them.
    ok(&cfg, validate(&y, "first", "first-secret-1"));
    ok(&cfg, validate(&y, "second", "second-secret-2"));
    assert_eq!(tgt.adm().accounts().unwrap(), ["second"]);
    let e = err(&cfg, validate(&x, "first", "first-secret-1"));
    assert!(
        e["message"].as_str().unwrap().contains(&format!("uuid {y}")),
        "{e}"
    );
    // Requests that say nothing of CHAP are served for either.
    ok(&cfg, json!({"op": "list", "registration": x}));
    ok(
        &cfg,
        json!({"op": "validate", "registration": y, "clear_chap": true}),
    );
    let z = uuid::Uuid::new_v4().to_string();
    ok(&cfg, validate(&z, "third", "third-secret-3"));
    assert_eq!(tgt.adm().accounts().unwrap(), ["third"]);
}

/// The CHAP guard holds however a registration asks: with settings that name no tgtd
/// instance (the account is the array's all the same, and the next request that exports
/// brings tgtd to it), and by asking again after a refusal on an array whose CHAP settings
/// no registration is recorded to have sent (set by a request without one, or from before
/// they were tracked), where the refused request used to make the second registration one
/// of those that may change them.
#[test]
fn the_chap_guard_holds_without_tgt_and_when_asked_again() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    lun_presented_to_ga(&cfg);
    let (x, y) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let first = Chap::new("first", "first-secret-1");
    let ga = vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])];
    // CHAP set by a request without a registration, then x sends the settings in force
    // (no CHAP in its request): x is the array's registration, nobody is recorded as
    // having sent the CHAP settings.
    ok(
        &cfg,
        json!({"op": "validate", "chap": {"username": "first", "secret": "first-secret-1"}}),
    );
    ok(&cfg, json!({"op": "list", "registration": x}));
    let other = json!({"op": "validate", "registration": y, "chap": {"username": "second", "secret": "second-secret-2"}});
    for attempt in 1..=3 {
        let e = err(&cfg, other.clone());
        assert_eq!(e["exception"], "InvalidStorageArrayEx", "attempt {attempt}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(&format!("uuid {x}")),
            "attempt {attempt}: {e}"
        );
    }
    // The same through settings without tgt_control.
    let mut no_tgt = cfg.clone();
    no_tgt.tgt = None;
    for asked in [
        json!({"op": "set-chap", "registration": y, "chap": {"username": "second", "secret": "second-secret-2"}}),
        json!({"op": "set-chap", "registration": y, "chap": null}),
        json!({"op": "validate", "registration": y, "chap": {"username": "first", "secret": "another-secret-3"}}),
    ] {
        let e = err(&no_tgt, asked.clone());
        let m = e["message"].as_str().unwrap();
        assert!(m.contains(&format!("uuid {x}")), "{asked}: {e}");
        assert!(
            !m.contains("secret-2") && !m.contains("secret-3"),
            "a secret leaked: {m}"
        );
    }
    ok(&cfg, json!({"op": "list", "registration": y}));
    assert_eq!(tgt.adm().accounts().unwrap(), ["first"]);
    assert_eq!(
        visible(&tgt.portal(), INIT_A, Some(&first)),
        ga,
        "the first registration's hosts were locked out"
    );
    // x may still rotate them.
    ok(
        &cfg,
        json!({"op": "validate", "registration": x, "chap": {"username": "first", "secret": "first-secret-4"}}),
    );
    assert_eq!(
        visible(&tgt.portal(), INIT_A, Some(&Chap::new("first", "first-secret-4"))),
        ga
    );
}

/// A registration's CHAP rotation racing another registration's re-send of the old settings
/// is never undone behind its back: when the rotation is answered OK, its secret is the one
/// in force (the two used to pass the takeover check against the same account, and the
/// re-send could land last, locking out the rotating registration's hosts).
#[test]
fn a_chap_rotation_racing_a_resend_of_the_old_settings_stays_in_force() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    lun_presented_to_ga(&cfg);
    let (x, y) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let ga = vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])];
    let chap = |secret: &str| json!({"username": "racer", "secret": secret});
    let mut in_force = "racer-secret-0".to_string();
    ok(
        &cfg,
        json!({"op": "validate", "registration": x, "chap": chap(&in_force)}),
    );
    for round in 1..=6 {
        // y knows the settings in force (it sends them: no change).
        ok(
            &cfg,
            json!({"op": "validate", "registration": y, "chap": chap(&in_force)}),
        );
        let rotated = format!("racer-secret-{round}");
        let (c1, c2) = (cfg.clone(), cfg.clone());
        let rotate = json!({"op": "validate", "registration": x, "chap": chap(&rotated)});
        let resend = json!({"op": "validate", "registration": y, "chap": chap(&in_force)});
        let a = std::thread::spawn(move || request(&c1, rotate, &[]).1);
        let b = std::thread::spawn(move || request(&c2, resend, &[]).1);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a.get("ok").is_some(), "round {round}: the rotation failed: {a}");
        let accepted = visible(&tgt.portal(), INIT_A, Some(&Chap::new("racer", rotated.as_str())));
        assert_eq!(
            accepted, ga,
            "round {round}: the rotation was answered OK but is not in force (the re-send: {b})"
        );
        in_force = rotated;
    }
}

/// The registrations that sent the settings in force are remembered up to a bound, but the
/// one that set them always: others sending the same settings (read-only requests, or the
/// same CHAP account) used to push it out, after which it was refused a change of its own
/// array's CHAP account (and of its export settings), named as another registration's.
#[test]
fn the_registration_that_set_the_chap_account_is_never_forgotten() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    let x = uuid::Uuid::new_v4().to_string();
    let chap = |r: &str, secret: &str| json!({"op": "validate", "registration": r, "chap": {"username": "first", "secret": secret}});
    ok(&cfg, chap(&x, "first-secret-1"));
    for _ in 0..20 {
        ok(&cfg, chap(&uuid::Uuid::new_v4().to_string(), "first-secret-1"));
    }
    ok(&cfg, chap(&x, "first-secret-2"));
    assert_eq!(tgt.adm().accounts().unwrap(), ["first"]);
}

/// An array of two pools (p0 on the first file system, p1 on `other`) with group ga and a LUN
/// of each pool presented to it: LUN 1 in p0, LUN 2 (l2) in p1.
fn two_pools_presented_to_ga() -> (TestFs, TestFs, Tgt, spindle_plugin_linux::config::ArrayConfig) {
    let (fs, tgt, mut cfg) = array_with_group_ga();
    let other = TestFs::new(Kind::Xfs, 512);
    cfg.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "p1".into(),
        path: other.mnt.clone(),
    });
    lun_presented_to_ga(&cfg);
    let l2 = ok(
        &cfg,
        json!({"op": "create", "name": "l2", "pool": "p1", "size": 8 * MIB}),
    );
    ok(
        &cfg,
        json!({"op": "present", "uuid": uuid(&l2), "groups": ["ga"]}),
    );
    (fs, other, tgt, cfg)
}

/// A degraded array keeps exporting the LUNs of its usable pools — also after tgtd is
/// killed — and exports a pool's LUNs again, with their LUN numbers, once its file system is
/// back.
#[test]
fn a_degraded_array_keeps_exporting_its_usable_pools() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (fs, other, tgt, cfg) = two_pools_presented_to_ga();
    let target = "iqn.2025-01.org.example:array:ga".to_string();
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        vec![(target.clone(), vec![1, 2])]
    );

    other.unmount_lazily();
    tgt.kill9();
    ok(&cfg, json!({"op": "export-sync"}));
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        vec![(target.clone(), vec![1])],
        "the usable pool's LUN was not exported"
    );
    other.remount();
    ok(&cfg, json!({"op": "export-sync"}));
    assert_eq!(visible(&tgt.portal(), INIT_A, None), vec![(target, vec![1, 2])]);
    drop(fs);
}

/// A pool whose file system goes away leaves the export with the next request of any kind,
/// and its LUNs come back, with their LUN numbers, with the next request of any kind once it
/// is mounted again: not only with one that reconciles fully, since the export generation
/// does not move (no table changed). Otherwise tgtd kept serving them from the lazily
/// unmounted file system (keeping it busy), and left them out once it was back.
#[test]
fn any_request_takes_a_pool_that_went_away_out_of_the_export_and_back_in() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (fs, other, tgt, cfg) = two_pools_presented_to_ga();
    let target = "iqn.2025-01.org.example:array:ga".to_string();
    let both = vec![(target.clone(), vec![1, 2])];
    assert_eq!(visible(&tgt.portal(), INIT_A, None), both);

    other.unmount_lazily();
    ok(&cfg, json!({"op": "list"}));
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        vec![(target, vec![1])],
        "a LUN of the pool that went away is still served"
    );
    other.remount();
    ok(&cfg, json!({"op": "list"}));
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        both,
        "the pool's LUN was not served again"
    );
    drop(fs);
}

/// Serves `req` in process as the resident program serves a request of an engine its tgtd
/// watch has (`check` `SyncMode::Recorded`), or as a one-shot run does (`SyncMode::Check`).
fn serve_in_process(cfg: &ArrayConfig, req: Value, check: SyncMode) -> Value {
    let mut body = req;
    body["config"] = serde_json::to_value(cfg).unwrap();
    let env = protocol::parse(&body.to_string()).unwrap();
    let mut engine = engine(cfg);
    protocol::handle_with(&env, &mut engine, check)
}

/// A request that changes no export does not ask tgtd whether it still listens when the
/// resident program's watch does (every 2 s, `a_killed_tgtd_comes_back_with_no_request` in
/// tests/daemon.rs): with tgtd killed, such a request is served and leaves tgtd to the watch,
/// where a one-shot run brings it back at once; a request that changes exports brings it back
/// either way.
#[test]
fn only_requests_nobody_watches_for_ask_whether_tgtd_listens() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let (_fs, tgt, cfg) = array_with_group_ga();
    let l1 = lun_presented_to_ga(&cfg);
    let first = tgt.pid().unwrap();
    tgt.kill9();

    let create = json!({"op": "create", "name": "l2", "pool": "p0", "size": 4 * MIB});
    let watched = serve_in_process(&cfg, create, SyncMode::Recorded);
    assert!(watched["ok"].is_object(), "{watched}");
    assert_eq!(watched["export"]["started"], Value::Null, "{watched}");
    assert_eq!(tgt.pid(), None, "a watched request started tgtd");

    let status = json!({"op": "status", "uuid": uuid(&l1)});
    let unwatched = serve_in_process(&cfg, status.clone(), SyncMode::Check);
    assert_eq!(unwatched["ok"], "ONLINE", "{unwatched}");
    let second = tgt.pid().expect("a request nobody watches for starts tgtd");
    assert_ne!(second, first);
    assert!(unwatched["export"]["started"].is_u64(), "{unwatched}");
    let portal = tgt.portal();
    let ta = "iqn.2025-01.org.example:array:ga".to_string();
    assert_eq!(visible(&portal, INIT_A, None), vec![(ta.clone(), vec![1])]);

    // The plan changed behind the record (l2 presented through the engine alone, as a run
    // killed before its sync leaves it): a watched request finds that and brings tgtd to it.
    engine(&cfg)
        .present(&uuid(&watched["ok"]), &["ga".to_string()])
        .unwrap();
    let watched = serve_in_process(&cfg, status, SyncMode::Recorded);
    assert_eq!(watched["ok"], "ONLINE", "{watched}");
    assert_eq!(watched["export"]["reconciled"], true, "{watched}");
    assert_eq!(tgt.pid(), Some(second));
    assert_eq!(visible(&portal, INIT_A, None), vec![(ta, vec![1, 2])]);
}
