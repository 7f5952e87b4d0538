//! Against a real tgtd (Debian package tgt), one private instance per test, cross-checked with
//! libiscsi's tools where they can see the same thing.

mod common;

use std::time::Instant;

use common::{file_bytes, lba_stamped, libiscsi, pseudo_random, Tgtd};
use spindle_iscsi::{
    Chap, CodeSet, DataDirection, DesignatorType, Discovery, IscsiError, LoginOptions, LoginStatus, Lun,
    ScsiStatus, SenseKey, Session,
};

const INIT_A: &str = "iqn.2024-01.org.spindle.test:initiator-a";
const INIT_B: &str = "iqn.2024-01.org.spindle.test:initiator-b";
const OUTSIDER: &str = "iqn.2024-01.org.spindle.test:outsider";
const T1: &str = "iqn.2024-01.org.spindle.test:array.t1";
const T2: &str = "iqn.2024-01.org.spindle.test:array.t2";
const MIB: u64 = 1024 * 1024;

#[test]
fn discovery_lists_only_the_targets_an_initiator_may_see() {
    let mut tgt = Tgtd::start();
    tgt.simple_target(1, T1, 4 * MIB, INIT_A);
    tgt.simple_target(2, T2, 4 * MIB, INIT_B);

    let seen_by_a = Discovery::send_targets(&tgt.addr(), INIT_A, None).expect("discovery as A");
    assert_eq!(seen_by_a.len(), 1, "{seen_by_a:?}");
    assert_eq!(seen_by_a[0].name, T1);
    assert_eq!(seen_by_a[0].portals.len(), 1);
    assert_eq!(seen_by_a[0].portals[0].address, tgt.addr());
    assert_eq!(seen_by_a[0].portals[0].portal_group_tag, Some(1));

    let seen_by_b = Discovery::send_targets(&tgt.addr(), INIT_B, None).expect("discovery as B");
    assert_eq!(
        seen_by_b.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec![T2]
    );
    let seen_by_outsider = Discovery::send_targets(&tgt.addr(), OUTSIDER, None).expect("discovery");
    assert!(seen_by_outsider.is_empty(), "{seen_by_outsider:?}");

    // Logging into what discovery listed shows the LUNs.
    let visible = Discovery::visible_luns(&tgt.addr(), &LoginOptions::new(INIT_A)).expect("visible LUNs");
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].name, T1);
    assert_eq!(
        visible[0].luns.as_ref().expect("login and REPORT LUNS"),
        &vec![Lun::new(0), Lun::new(1)]
    );
    assert!(Discovery::visible_luns(&tgt.addr(), &LoginOptions::new(OUTSIDER))
        .expect("discovery")
        .is_empty());

    // libiscsi sees the same list for A.
    let url = format!("iscsi://{}", tgt.addr());
    let ls = String::from_utf8(libiscsi("iscsi-ls", &["-i", INIT_A, &url])).expect("utf-8");
    assert!(
        ls.contains(&format!("Target:{T1} Portal:{},1", tgt.addr())),
        "{ls}"
    );
    assert!(!ls.contains(T2), "{ls}");
}

#[test]
fn acl_admits_the_listed_initiator_and_refuses_others() {
    let mut tgt = Tgtd::start();
    tgt.simple_target(1, T1, 8 * MIB, INIT_A);

    let mut s = Session::login(&tgt.addr(), T1, INIT_A, None).expect("login as A");
    let p = s.params().clone();
    assert_eq!(p.target_name.as_deref(), Some(T1));
    assert_ne!(p.tsih, 0);
    assert!(!p.chap);
    assert_eq!(p.error_recovery_level, 0);
    assert_eq!(p.max_outstanding_r2t, 1);

    let luns = s.report_luns().expect("REPORT LUNS");
    assert_eq!(luns, vec![Lun::new(0), Lun::new(1)]);
    let controller = s.inquiry(Lun::new(0)).expect("INQUIRY LUN 0");
    assert_eq!(controller.device_type, 0x0c, "{controller:?}");
    let disk = s.inquiry(Lun::new(1)).expect("INQUIRY LUN 1");
    assert_eq!((disk.peripheral_qualifier, disk.device_type), (0, 0));
    assert_eq!(disk.vendor, "IET");

    // A new I_T nexus starts with a POWER ON UNIT ATTENTION, which is retried transparently.
    s.test_unit_ready(Lun::new(1)).expect("TEST UNIT READY");
    assert!(
        s.unit_attentions()
            .iter()
            .any(|(lun, sense)| *lun == Lun::new(1) && (sense.asc, sense.ascq) == (0x29, 0x00)),
        "{:?}",
        s.unit_attentions()
    );
    s.ping().expect("NOP-Out ping");
    s.logout().expect("logout");

    let refused = Session::login(&tgt.addr(), T1, OUTSIDER, None).expect_err("outsider must be refused");
    assert!(refused.is_access_denied(), "{refused}");
    assert!(!refused.is_authentication_failure(), "{refused}");
    // tgt reports an ACL refusal as "target not found" (0x0203), not 0x0202.
    assert_eq!(refused.login_status(), Some(LoginStatus::NotFound), "{refused}");

    let missing = Session::login(&tgt.addr(), "iqn.2024-01.org.spindle.test:nope", INIT_A, None)
        .expect_err("unknown target");
    assert_eq!(missing.login_status(), Some(LoginStatus::NotFound), "{missing}");
}

#[test]
fn chap_wrong_secret_is_an_authentication_failure_and_the_right_one_works() {
    let mut tgt = Tgtd::start();
    tgt.simple_target(1, T1, 4 * MIB, INIT_A);
    let secret = "right-secret-0123";
    tgt.new_account("chapuser", secret);
    tgt.bind_account(1, "chapuser", false);

    let no_chap = Session::login(&tgt.addr(), T1, INIT_A, None).expect_err("CHAP is required");
    assert!(no_chap.is_authentication_failure(), "{no_chap}");

    let wrong_secret = Chap::new("chapuser", "wrong-secret-0123");
    let e = Session::login(&tgt.addr(), T1, INIT_A, Some(&wrong_secret)).expect_err("wrong secret");
    assert!(e.is_authentication_failure(), "{e}");
    assert!(!e.is_access_denied(), "{e}");
    assert_eq!(e.login_status(), Some(LoginStatus::AuthenticationFailure));
    assert!(!format!("{e} {e:?}").contains("wrong-secret-0123"));

    let wrong_user = Chap::new("nobody", secret);
    let e = Session::login(&tgt.addr(), T1, INIT_A, Some(&wrong_user)).expect_err("unknown user");
    assert!(e.is_authentication_failure(), "{e}");
    assert!(!format!("{e} {e:?}").contains(secret));

    // The right secret, but an initiator outside the ACL: authorization, not authentication.
    let right = Chap::new("chapuser", secret);
    let e = Session::login(&tgt.addr(), T1, OUTSIDER, Some(&right)).expect_err("outsider");
    assert!(e.is_access_denied(), "{e}");
    assert!(!e.is_authentication_failure(), "{e}");

    let mut s = Session::login(&tgt.addr(), T1, INIT_A, Some(&right)).expect("right secret");
    assert!(s.params().chap);
    assert!(!s.params().mutual_chap);
    assert!(!format!("{s:?} {right:?}").contains(secret));
    s.test_unit_ready(Lun::new(1)).expect("TEST UNIT READY");
    s.logout().expect("logout");
}

#[test]
fn discovery_with_chap() {
    let mut tgt = Tgtd::start();
    tgt.simple_target(1, T1, 4 * MIB, INIT_A);
    tgt.new_account("discoverer", "discovery-secret-1");
    tgt.bind_account_for_discovery("discoverer");

    let e = Discovery::send_targets(&tgt.addr(), INIT_A, None).expect_err("CHAP is required");
    assert!(e.is_authentication_failure(), "{e}");
    let wrong = Chap::new("discoverer", "discovery-secret-2");
    let e = Discovery::send_targets(&tgt.addr(), INIT_A, Some(&wrong)).expect_err("wrong secret");
    assert!(e.is_authentication_failure(), "{e}");
    assert!(!format!("{e} {e:?}").contains("discovery-secret"));
    let right = Chap::new("discoverer", "discovery-secret-1");
    let found = Discovery::send_targets(&tgt.addr(), INIT_A, Some(&right)).expect("discovery with CHAP");
    assert_eq!(
        found.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec![T1]
    );
    // The target itself needs no CHAP: that binding is per target.
    Session::login(&tgt.addr(), T1, INIT_A, None)
        .expect("login without CHAP")
        .logout()
        .expect("logout");
}

#[test]
fn mutual_chap_proves_the_target_too() {
    let mut tgt = Tgtd::start();
    tgt.simple_target(1, T1, 4 * MIB, INIT_A);
    tgt.new_account("initiator-user", "initiator-secret-1");
    tgt.bind_account(1, "initiator-user", false);
    tgt.new_account("target-user", "target-secret-12");
    tgt.bind_account(1, "target-user", true);

    let good =
        Chap::new("initiator-user", "initiator-secret-1").with_mutual("target-user", "target-secret-12");
    let s = Session::login(&tgt.addr(), T1, INIT_A, Some(&good)).expect("mutual CHAP");
    assert!(s.params().chap && s.params().mutual_chap);
    s.logout().expect("logout");

    let bad =
        Chap::new("initiator-user", "initiator-secret-1").with_mutual("target-user", "not-the-target-secret");
    let e =
        Session::login(&tgt.addr(), T1, INIT_A, Some(&bad)).expect_err("target proves a different secret");
    assert!(matches!(e, IscsiError::MutualChapFailed { .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("not-the-target-secret"));

    let other_name =
        Chap::new("initiator-user", "initiator-secret-1").with_mutual("someone-else", "target-secret-12");
    let e = Session::login(&tgt.addr(), T1, INIT_A, Some(&other_name)).expect_err("different target name");
    assert!(matches!(e, IscsiError::MutualChapFailed { .. }), "{e}");
}

#[test]
fn vpd83_holds_an_naa6_designator_built_from_scsi_id() {
    let mut tgt = Tgtd::start();
    tgt.simple_target(1, T1, 4 * MIB, INIT_A);
    // No zero byte in the id, so that iscsi-inq (which prints designators with %s) shows it all.
    let scsi_id = "6a1b2c3d4e5f61728394a5b6c7d8e9f1";
    tgt.lun_params(1, 1, &format!("scsi_id={scsi_id},scsi_sn=SPINDLE-SN-0042"));

    let mut s = Session::login(&tgt.addr(), T1, INIT_A, None).expect("login");
    let id = s.inquiry_vpd83(Lun::new(1)).expect("VPD 0x83");
    assert_eq!(id.page[1], 0x83);
    assert_eq!(
        usize::from(u16::from_be_bytes([id.page[2], id.page[3]])) + 4,
        id.page.len()
    );
    let naa6 = id.naa_of_type(6).expect("an NAA-6 designator");
    assert_eq!(naa6.code_set, CodeSet::Binary);
    assert_eq!(naa6.value.len(), 16);
    assert_eq!(naa6.hex(), scsi_id);
    let t10 = id
        .logical_unit_designators()
        .find(|d| d.designator_type == DesignatorType::T10VendorId)
        .expect("a T10 vendor id designator");
    assert_eq!(t10.text().as_deref(), Some(scsi_id));
    assert_eq!(s.inquiry_vpd80(Lun::new(1)).expect("VPD 0x80"), "SPINDLE-SN-0042");
    s.logout().expect("logout");

    // What libiscsi's iscsi-inq prints for the same page.
    let url = format!("iscsi://{}/{T1}/1", tgt.addr());
    let out = libiscsi("iscsi-inq", &["-i", INIT_A, "-e", "1", "-c", "131", &url]);
    let mut naa_values = Vec::new();
    let mut rest = &out[..];
    while let Some(pos) = find(rest, b"Designator Type:(3) NAA\nDesignator:[") {
        let start = pos + b"Designator Type:(3) NAA\nDesignator:[".len();
        let len = find(&rest[start..], b"]\n").expect("closing bracket");
        naa_values.push(rest[start..start + len].to_vec());
        rest = &rest[start + len..];
    }
    assert!(
        naa_values.contains(&naa6.value),
        "iscsi-inq output: {}",
        String::from_utf8_lossy(&out)
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains(&format!("Designator:[{scsi_id}]")), "{text}");
    assert_eq!(
        text.matches("DEVICE DESIGNATOR #").count(),
        id.designators.len(),
        "{text}"
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn read_capacity16_matches_the_backing_file() {
    let mut tgt = Tgtd::start();
    let size = 40 * MIB + 12 * 1024;
    tgt.simple_target(1, T1, size, INIT_A);

    let mut s = Session::login(&tgt.addr(), T1, INIT_A, None).expect("login");
    let cap = s.read_capacity16(Lun::new(1)).expect("READ CAPACITY(16)");
    assert_eq!(cap.block_length, 512);
    assert_eq!(cap.bytes(), size);
    assert_eq!(cap.last_lba, size / 512 - 1);
    s.synchronize_cache(Lun::new(1)).expect("SYNCHRONIZE CACHE");
    s.logout().expect("logout");

    let url = format!("iscsi://{}/{T1}/1", tgt.addr());
    let out = String::from_utf8(libiscsi("iscsi-readcapacity16", &["-i", INIT_A, &url])).expect("utf-8");
    assert!(
        out.contains(&format!("RETURNED LOGICAL BLOCK ADDRESS:{}\n", cap.last_lba)),
        "{out}"
    );
    assert!(out.contains("LOGICAL BLOCK LENGTH IN BYTES:512\n"), "{out}");
    assert!(out.contains(&format!("Total size:{size}\n")), "{out}");
}

/// Writes several patterns, reads them back whole and in unaligned pieces, and checks the
/// backing file.
fn exercise_data_path(s: &mut Session, file: &std::path::Path) {
    let lun = Lun::new(1);
    let cap = s.read_capacity16(lun).expect("READ CAPACITY(16)");
    let bs = cap.block_length as usize;
    assert_eq!(bs, 512);
    let burst = s.params().max_burst_length as usize;
    let first = s.params().first_burst_length as usize;
    let big_len = (burst * 4 + first + 3 * bs) / bs * bs;
    let cases: Vec<(u64, Vec<u8>)> = vec![
        (0, vec![0u8; 4096]),
        (8, vec![0xff; 512]),
        (9, (0..7 * 512).map(|i| (i % 251) as u8).collect()),
        (100, lba_stamped(100, 37, 0x5a)),
        (1000, pseudo_random(big_len, 0xdecaf)),
        (cap.last_lba - 15, lba_stamped(cap.last_lba - 15, 16, 0xe7)),
    ];
    let before = s.stats();
    for (lba, data) in &cases {
        s.write(lun, *lba, data).expect("WRITE(16)");
    }
    let w = s.stats();
    let p = s.params().clone();
    let written: u64 = cases.iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(w.bytes_written - before.bytes_written, written, "{w:?}");
    // The big write is more than FirstBurstLength, so the rest was solicited by R2Ts.
    assert!(w.r2ts - before.r2ts >= 4, "{w:?}");
    assert!(
        w.solicited_data_out_pdus > before.solicited_data_out_pdus,
        "{w:?}"
    );
    assert_eq!(
        w.immediate_data_bytes > before.immediate_data_bytes,
        p.immediate_data,
        "{w:?}"
    );
    assert_eq!(
        w.unsolicited_data_out_pdus > before.unsolicited_data_out_pdus,
        !p.initial_r2t && (!p.immediate_data || p.first_burst_length > p.max_xmit_data_segment_length),
        "{w:?} {p:?}"
    );
    s.synchronize_cache(lun).expect("SYNCHRONIZE CACHE");
    let before_reads = s.stats();
    for (lba, data) in &cases {
        let blocks = (data.len() / bs) as u64;
        let back = s.read(lun, *lba, blocks).expect("READ(16)");
        assert!(
            back == *data,
            "read-back mismatch at LBA {lba} ({} bytes)",
            data.len()
        );
        let on_disk = file_bytes(file, lba * bs as u64, data.len());
        assert!(on_disk == *data, "backing file differs at LBA {lba}");
    }
    // Unaligned multi-block reads across pattern boundaries.
    let image_len = 1000 * bs + big_len;
    let image = file_bytes(file, 0, image_len);
    let image_blocks = (image_len / bs) as u64;
    for (lba, blocks) in [(3u64, 7u64), (7, 3), (99, 40), (1, 1), (995, 11), (1003, 700)] {
        let blocks = blocks.min(image_blocks - lba);
        let back = s.read(lun, lba, blocks).expect("READ(16)");
        let from = lba as usize * bs;
        assert!(
            back[..] == image[from..from + blocks as usize * bs],
            "unaligned read of {blocks} blocks at LBA {lba}"
        );
    }
    // Reads larger than MaxRecvDataSegmentLength came back in several Data-In PDUs.
    let r = s.stats();
    let read_commands = r.commands - before_reads.commands;
    assert!(
        r.data_in_pdus - before_reads.data_in_pdus > read_commands,
        "{r:?}"
    );
    assert!(r.bytes_read > before_reads.bytes_read);
    // A write that is not a whole number of blocks never reaches the target.
    assert!(matches!(
        s.write(lun, 0, &[1u8; 100]),
        Err(IscsiError::InvalidArgument(_))
    ));
}

#[test]
fn data_written_reads_back_and_lands_in_the_backing_file() {
    let mut tgt = Tgtd::start();
    let file = tgt.simple_target(1, T1, 16 * MIB, INIT_A);
    let mut s = Session::login(&tgt.addr(), T1, INIT_A, None).expect("login");
    let p = s.params().clone();
    // tgt's defaults: MaxBurstLength 256 KiB, FirstBurstLength 64 KiB, InitialR2T=Yes,
    // ImmediateData=Yes, and it declares no MaxRecvDataSegmentLength (so 8192).
    assert_eq!(
        (
            p.max_burst_length,
            p.first_burst_length,
            p.initial_r2t,
            p.immediate_data
        ),
        (262_144, 65_536, true, true),
        "{p:?}"
    );
    assert_eq!(p.max_xmit_data_segment_length, 8192);
    exercise_data_path(&mut s, &file);
    s.logout().expect("logout");
}

#[test]
fn small_bursts_without_immediate_data_use_many_r2ts_and_data_in_pdus() {
    let mut tgt = Tgtd::start();
    let file = tgt.simple_target(1, T1, 16 * MIB, INIT_A);
    let mut opts = LoginOptions::new(INIT_A);
    opts.max_recv_data_segment_length = 4096;
    opts.max_burst_length = 8192;
    opts.first_burst_length = 4096;
    opts.immediate_data = false;
    opts.initial_r2t = true;
    opts.max_transfer_bytes = 1024 * 1024;
    let mut s = Session::login_with(&tgt.addr(), T1, &opts).expect("login");
    let p = s.params().clone();
    assert_eq!(
        (
            p.max_burst_length,
            p.first_burst_length,
            p.immediate_data,
            p.initial_r2t
        ),
        (8192, 4096, false, true),
        "{p:?}"
    );
    assert_eq!(p.max_recv_data_segment_length, 4096);
    exercise_data_path(&mut s, &file);
    s.logout().expect("logout");
}

#[test]
fn unsolicited_data_out_when_the_target_allows_initial_r2t_no() {
    let mut tgt = Tgtd::start();
    let file = tgt.simple_target(1, T1, 16 * MIB, INIT_A);
    tgt.target_param(1, "InitialR2T", "No");
    tgt.target_param(1, "FirstBurstLength", "16384");
    tgt.target_param(1, "MaxRecvDataSegmentLength", "4096");

    for immediate_data in [true, false] {
        let mut opts = LoginOptions::new(INIT_A);
        opts.immediate_data = immediate_data;
        let mut s = Session::login_with(&tgt.addr(), T1, &opts).expect("login");
        let p = s.params().clone();
        assert!(!p.initial_r2t, "{p:?}");
        assert_eq!(p.immediate_data, immediate_data, "{p:?}");
        assert_eq!(p.first_burst_length, 16384, "{p:?}");
        // tgt declared its MaxRecvDataSegmentLength on its own initiative.
        assert_eq!(p.max_xmit_data_segment_length, 4096, "{p:?}");
        exercise_data_path(&mut s, &file);
        s.logout().expect("logout");
    }
}

#[test]
fn check_condition_sense_is_decoded() {
    let mut tgt = Tgtd::start();
    tgt.simple_target(1, T1, 4 * MIB, INIT_A);
    let mut s = Session::login(&tgt.addr(), T1, INIT_A, None).expect("login");
    let lun = Lun::new(1);
    let cap = s.read_capacity16(lun).expect("READ CAPACITY(16)");

    let e = s.read(lun, cap.last_lba, 2).expect_err("read past the end");
    let sense = e.sense().expect("sense data");
    assert_eq!(sense.key, SenseKey::IllegalRequest, "{e}");
    assert_eq!((sense.asc, sense.ascq), (0x21, 0x00), "{e}");
    assert!(
        e.to_string().contains("logical block address out of range"),
        "{e}"
    );

    let e = s.test_unit_ready(Lun::new(5)).expect_err("no LUN 5");
    assert_eq!(e.sense_key(), Some(SenseKey::IllegalRequest), "{e}");
    assert_eq!(e.sense().map(|s| (s.asc, s.ascq)), Some((0x25, 0x00)), "{e}");

    // The raw interface reports the same without turning it into an error.
    let raw = s
        .execute(
            lun,
            &spindle_iscsi::scsi::cdb::read16(cap.last_lba + 1, 1),
            DataDirection::Read(512),
        )
        .expect("transport works");
    assert_eq!(raw.status, ScsiStatus::CHECK_CONDITION);
    assert_eq!(raw.sense.map(|s| s.key), Some(SenseKey::IllegalRequest));

    // The session is still usable after CHECK CONDITIONs.
    assert_eq!(s.read(lun, 0, 1).expect("READ(16)").len(), 512);
    s.logout().expect("logout");
}

#[test]
fn unit_attention_after_a_lun_is_added_is_retried() {
    let mut tgt = Tgtd::start();
    tgt.simple_target(1, T1, 4 * MIB, INIT_A);
    let mut s = Session::login(&tgt.addr(), T1, INIT_A, None).expect("login");
    s.test_unit_ready(Lun::new(1)).expect("TEST UNIT READY");
    let before = s.unit_attentions().len();

    let file = tgt.backing_file("lun-1-2.img", 2 * MIB);
    tgt.new_lun(1, 2, &file);

    s.test_unit_ready(Lun::new(1))
        .expect("TEST UNIT READY after the change");
    let new: Vec<_> = s.unit_attentions()[before..].to_vec();
    assert!(
        new.iter()
            .any(|(lun, sense)| *lun == Lun::new(1) && (sense.asc, sense.ascq) == (0x3f, 0x0e)),
        "{new:?}"
    );
    assert_eq!(
        s.report_luns().expect("REPORT LUNS"),
        vec![Lun::new(0), Lun::new(1), Lun::new(2)]
    );
    assert_eq!(
        s.read_capacity16(Lun::new(2)).expect("READ CAPACITY(16)").bytes(),
        2 * MIB
    );
    s.logout().expect("logout");
}

/// Times a 64 MiB sequential write (+ SYNCHRONIZE CACHE) and read on `s`; returns MiB/s.
fn time_64_mib(s: &mut Session, data: &[u8]) -> (f64, f64) {
    let lun = Lun::new(1);
    let t = Instant::now();
    s.write(lun, 0, data).expect("WRITE(16)");
    s.synchronize_cache(lun).expect("SYNCHRONIZE CACHE");
    let write = 64.0 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = s.read(lun, 0, data.len() as u64 / 512).expect("READ(16)");
    let read = 64.0 / t.elapsed().as_secs_f64();
    assert!(back == data, "64 MiB read back differs");
    (write, read)
}

#[test]
fn throughput_of_64_mib_sequential_write_and_read() {
    let mut tgt = Tgtd::start();
    let size = 64 * MIB;
    let file = tgt.simple_target(1, T1, size, INIT_A);
    let first = pseudo_random(size as usize, 64);
    let second = pseudo_random(size as usize, 65);

    let mut s = Session::login(&tgt.addr(), T1, INIT_A, None).expect("login");
    s.test_unit_ready(Lun::new(1)).expect("TEST UNIT READY");
    let (w_fresh, r_fresh) = time_64_mib(&mut s, &first);
    assert!(
        file_bytes(&file, 0, size as usize) == first,
        "backing file differs"
    );
    let (w_over, r_over) = time_64_mib(&mut s, &second);
    assert!(
        file_bytes(&file, 0, size as usize) == second,
        "backing file differs"
    );
    let segment = s.params().max_xmit_data_segment_length;
    s.logout().expect("logout");

    // Let tgt accept 256 KiB Data-Out PDUs instead of its default 8 KiB.
    tgt.target_param(1, "MaxRecvDataSegmentLength", "262144");
    let mut s = Session::login(&tgt.addr(), T1, INIT_A, None).expect("login");
    assert_eq!(s.params().max_xmit_data_segment_length, 262_144);
    let (w_big, r_big) = time_64_mib(&mut s, &first);
    assert!(
        file_bytes(&file, 0, size as usize) == first,
        "backing file differs"
    );
    s.logout().expect("logout");

    eprintln!(
        "64 MiB sequential, loopback tgtd (rdwr backing file), 4 MiB per command, MaxBurstLength 256 KiB, \
         Data-In PDUs up to 256 KiB:\n  \
         Data-Out {segment} B: write+sync {w_fresh:.0} MiB/s into a sparse file, {w_over:.0} MiB/s overwriting; \
         read {r_fresh:.0} / {r_over:.0} MiB/s\n  \
         Data-Out 256 KiB: write+sync {w_big:.0} MiB/s overwriting; read {r_big:.0} MiB/s"
    );
}
