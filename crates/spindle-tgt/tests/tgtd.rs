//! The tgtd supervisor and the typed client against a real tgtd: start, liveness, stop,
//! restart, portal checks, online/offline, cache policies down to the open flags.

#[macro_use]
mod common;

use std::net::{Ipv4Addr, TcpListener};

use common::{INIT_A, MIB};
use spindle_tgt::{CachePolicy, Iqn, SecretChannel, TgtError, Tgtd};

#[test]
fn start_stop_restart_and_cleanup() {
    require_tgtd!();
    let mut inst = common::start();
    assert!(inst.tgtd.is_alive());
    let adm = inst.tgtd.tgtadm().clone();
    let sys = adm.system().expect("show sys");
    assert_eq!(sys.state, "ready");
    assert!(sys.backing_stores.iter().any(|b| b == "rdwr"), "{sys:?}");
    assert_eq!(adm.portals().expect("portals"), vec![inst.portal()]);
    let socket = adm.ipc_socket_path();
    assert!(socket.exists());

    // A second instance on the same control port is refused.
    let again = Tgtd::start(inst.tgtd.config().clone());
    assert!(matches!(again, Err(TgtError::AlreadyRunning(_))), "{again:?}");

    // Restart: a new process, empty configuration, same portal.
    let name = Iqn::new(format!("{}keep", common::PREFIX)).expect("valid");
    adm.new_target(3, &name).expect("target");
    let pid = inst.tgtd.pid().expect("pid");
    inst.tgtd.restart().expect("restart");
    assert_ne!(inst.tgtd.pid(), Some(pid));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "old tgtd still around"
    );
    assert!(inst.tgtd.is_alive());
    assert!(
        adm.targets().expect("show").is_empty(),
        "tgtd kept its targets over a restart"
    );
    assert_eq!(adm.portals().expect("portals"), vec![inst.portal()]);

    // Stop: targets deleted with --force, system deleted, socket and lock file gone.
    adm.new_target(3, &name).expect("target");
    let pid = inst.tgtd.pid().expect("pid");
    inst.tgtd.stop().expect("stop");
    assert!(!inst.tgtd.is_alive());
    assert!(!adm.is_alive());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "tgtd still running"
    );
    assert!(!socket.exists(), "socket left behind");
    let mut lock = socket.clone().into_os_string();
    lock.push(".lock");
    assert!(!std::path::Path::new(&lock).exists(), "lock file left behind");
    assert!(adm.targets().expect_err("stopped tgtd answered").is_not_running());

    // ensure_running brings a stopped instance back.
    assert!(inst.tgtd.ensure_running().expect("start again"));
    assert!(!inst.tgtd.ensure_running().expect("already running"));
}

#[test]
fn a_taken_portal_is_refused_rather_than_moved() {
    require_tgtd!();
    let dir = tempfile::tempdir().expect("temporary directory");
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = squatter.local_addr().expect("address").port();
    let config = common::config(dir.path(), port, SecretChannel::ManagementSocket);
    let adm_port = config.control_port;
    match Tgtd::start(config) {
        Err(TgtError::PortalUnavailable { wanted, actual }) => {
            assert_eq!(wanted, format!("127.0.0.1:{port}"));
            assert!(!actual.contains(&port.to_string()), "{actual}");
        }
        other => panic!("expected PortalUnavailable, got {other:?}"),
    }
    let adm = spindle_tgt::Tgtadm::new(adm_port)
        .expect("client")
        .with_ipc_socket_base(dir.path().join("sock"));
    assert!(!adm.is_alive(), "the refused tgtd is still running");
    drop(squatter);
}

#[test]
fn cache_policies_reach_the_backing_file() {
    require_tgtd!();
    let inst = common::start();
    let policies = [
        (1, CachePolicy::WriteBack),
        (2, CachePolicy::WriteThrough),
        (3, CachePolicy::Direct),
        (4, CachePolicy::DirectWriteThrough),
    ];
    let mut luns = Vec::new();
    for (lun, policy) in policies {
        let mut spec = inst.lun(&format!("cache-{lun}.img"), 4 * MIB, 0x80 + lun as u8);
        spec.cache = policy;
        luns.push((lun, spec));
    }
    let name = common::export(inst.tgtd.tgtadm(), 1, "cache", &[INIT_A], &luns);
    let info = common::show(inst.tgtd.tgtadm(), &name);
    let pid = inst.tgtd.pid().expect("pid");
    const O_DIRECT: u32 = 0o40000;
    const O_SYNC: u32 = 0o4010000;
    for (lun, spec) in &luns {
        let lu = info.lun(*lun).expect("lun");
        assert_eq!(
            CachePolicy::from_oflags(lu.oflag_sync, lu.oflag_direct),
            spec.cache
        );
        assert_eq!(spindle_tgt::lun_mismatch(lu, spec), None, "LUN {lun}: {lu:?}");
        // The flags tgtd really opened the file with.
        let flags = open_flags(pid, spec.backing.as_str()).expect("tgtd has the file open");
        let (sync, direct) = match spec.cache {
            CachePolicy::WriteBack => (false, false),
            CachePolicy::WriteThrough => (true, false),
            CachePolicy::Direct => (false, true),
            CachePolicy::DirectWriteThrough => (true, true),
        };
        assert_eq!(flags & O_SYNC == O_SYNC, sync, "LUN {lun} flags {flags:o}");
        assert_eq!(flags & O_DIRECT == O_DIRECT, direct, "LUN {lun} flags {flags:o}");
        // And I/O works on each.
        assert_eq!(
            inst.capacity(INIT_A, None, &name, *lun).expect("capacity"),
            4 * MIB
        );
    }
}

/// The open flags (octal, from /proc/PID/fdinfo) of the first descriptor of `pid` on `path`.
fn open_flags(pid: u32, path: &str) -> Option<u32> {
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        let target = std::fs::read_link(entry.path()).ok()?;
        if target.to_str() == Some(path) {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", entry.file_name().to_str()?))
                .ok()?;
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
            return u32::from_str_radix(flags.trim(), 8).ok();
        }
    }
    None
}

#[test]
fn typed_client_round_trip() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let name = Iqn::new(format!("{}typed", common::PREFIX)).expect("valid");
    adm.new_target(7, &name).expect("new target");
    let dup = adm.new_target(7, &name).expect_err("duplicate");
    assert_eq!(
        dup.adm_error(),
        Some(spindle_tgt::AdmError::TargetExists),
        "{dup}"
    );
    adm.bind_initiator(7, &Iqn::new(INIT_A).expect("valid"))
        .expect("bind");
    let spec = inst.lun("typed.img", 3 * MIB, 0x90);
    adm.add_lun(7, 2, &spec).expect("add lun");
    let t = adm.target_by_name(name.as_str()).expect("show").expect("target");
    assert_eq!(t.tid, 7);
    assert_eq!(t.driver, "iscsi");
    assert_eq!(t.acl_initiators, vec![INIT_A]);
    assert!(t.acl_addresses.is_empty());
    let lu = t.lun(2).expect("lun 2");
    assert_eq!(lu.device_type, "disk");
    assert_eq!(lu.scsi_id, spec.scsi_id.as_str());
    assert_eq!(lu.scsi_sn, spec.scsi_sn.as_str());
    assert_eq!(lu.size_mb, spindle_tgt::tgt_size_mb(3 * MIB));
    assert_eq!(lu.block_size, 512);
    assert!(lu.online);
    assert_eq!(t.lun(0).expect("controller").device_type, "controller");

    adm.set_lu_online(7, 2, false).expect("offline");
    assert!(
        !adm.target_by_name(name.as_str())
            .expect("show")
            .expect("t")
            .lun(2)
            .expect("lun")
            .online
    );
    adm.set_lu_online(7, 2, true).expect("online");
    adm.set_write_cache(7, 2, false).expect("WCE off");

    // A missing backing file is refused before tgtadm runs; a bad path cannot even be named.
    let mut missing = spec.clone();
    missing.backing =
        spindle_tgt::BackingPath::new(format!("{}/nope.img", inst.dir.path().display())).expect("valid");
    assert!(matches!(adm.add_lun(7, 3, &missing), Err(TgtError::Io { .. })));
    assert!(spindle_tgt::BackingPath::new(format!("{}/../etc/passwd", inst.dir.path().display())).is_err());

    adm.unbind_initiator(7, INIT_A).expect("unbind");
    adm.delete_lu(7, 2).expect("delete lun");
    adm.delete_target(7, false).expect("delete target");
    assert!(adm.targets().expect("show").is_empty());
}
