//! `prepare` and `release` for real (as root): the loop-mounted XFS image on a data directory
//! that cannot reflink, the plain directory on one that can, the ss_record accepted by the real
//! Linux plug-in through the manager, and the documented errors.
//!
//! Each test has its own portal port and tgtd control port (3291.., 21..), so they run in
//! parallel with each other and with the other suites.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_embedded::{prepare, release, EmbeddedConfig, EmbeddedError};
use std::path::{Path, PathBuf};

fn fake_program() -> PathBuf {
    PathBuf::from("/bin/true")
}

#[test]
fn an_image_pool_is_made_once_reused_and_survives_release() {
    if !can_mount() || !have_tools() {
        return;
    }
    let mut d = DataDir::without_reflink();
    let cfg = d.config(3291, 21, fake_program());

    let a = d.prepare(&cfg);
    eprintln!("first prepare: {:#?}", a.notes);
    let data = std::fs::canonicalize(&d.data).unwrap();
    let image = data.join("pool.img");
    assert_eq!(a.pool_dir, data.join("pool"));
    assert_eq!(a.image.as_deref(), Some(image.as_path()));
    assert!(a.mounted_here);
    assert_eq!(mounts_at(&a.pool_dir), vec!["xfs".to_string()]);
    assert!(spindle_embedded::reflink_capable(&a.pool_dir).unwrap());
    assert!(
        a.notes.iter().any(|n| n.contains("made the pool image")),
        "{:?}",
        a.notes
    );
    let meta = std::fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 512 << 20);
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&meta) * 512 < 256 << 20,
        "the image is sparse"
    );
    assert!(!data.join("pool.img.partial").exists());

    // A file in the pool.
    let keep = a.pool_dir.join("keep.txt");
    std::fs::write(&keep, b"kept across restarts").unwrap();
    std::fs::File::open(&keep).unwrap().sync_all().unwrap();

    // A second prepare while mounted reuses the mount.
    let b = d.prepare(&cfg);
    eprintln!("second prepare: {:#?}", b.notes);
    assert!(!b.mounted_here);
    assert_eq!(b.pool_dir, a.pool_dir);
    assert_eq!(b.image, a.image);
    assert_eq!(b.ss_record, a.ss_record);
    assert_eq!(mounts_at(&a.pool_dir).len(), 1, "mounted once");
    assert!(b.notes.iter().any(|n| n.contains("reusing")), "{:?}", b.notes);
    assert!(!b.notes.iter().any(|n| n.contains("made the pool image")));

    // release unmounts and detaches.
    release(&b).unwrap();
    assert!(mounts_at(&a.pool_dir).is_empty());
    assert_eq!(run("losetup", &["-j", image.to_str().unwrap()]).unwrap(), "");
    assert!(!keep.exists());
    release(&b).unwrap(); // idempotent

    // prepare again: mounted again, not reformatted.
    let c = d.prepare(&cfg);
    assert!(c.mounted_here);
    assert!(
        !c.notes.iter().any(|n| n.contains("made the pool image")),
        "{:?}",
        c.notes
    );
    assert_eq!(std::fs::read(&keep).unwrap(), b"kept across restarts");
    assert_eq!(c.ss_record, a.ss_record);
    release(&c).unwrap();
    assert!(mounts_at(&a.pool_dir).is_empty());
}

#[test]
fn a_reflink_data_dir_uses_a_plain_directory() {
    if !can_mount() || !have_tools() {
        return;
    }
    let mut d = DataDir::on_reflink_xfs();
    let cfg = d.config(3292, 22, fake_program());
    let a = d.prepare(&cfg);
    assert_eq!(a.pool_dir, d.data.join("pool"));
    assert!(a.pool_dir.is_dir());
    assert!(!a.mounted_here);
    assert_eq!(a.image, None);
    assert!(!d.data.join("pool.img").exists());
    assert!(mounts_at(&a.pool_dir).is_empty(), "not a mount");
    assert!(
        a.notes.iter().any(|n| n.contains("xfs, which can reflink")),
        "{:?}",
        a.notes
    );
    let extra = a.ss_record["extra_info"].as_str().unwrap();
    assert!(
        extra.starts_with(&format!("pools=default:{};", a.pool_dir.display())),
        "{extra}"
    );
    // Idempotent, and release leaves a plain directory alone.
    std::fs::write(a.pool_dir.join("f"), b"x").unwrap();
    let b = d.prepare(&cfg);
    assert_eq!(b.ss_record, a.ss_record);
    release(&b).unwrap();
    assert_eq!(std::fs::read(a.pool_dir.join("f")).unwrap(), b"x");
}

#[test]
fn an_existing_image_is_never_reformatted() {
    if !can_mount() || !have_tools() {
        return;
    }
    let d = DataDir::without_reflink();
    std::fs::create_dir_all(&d.data).unwrap();
    let image = d.data.join("pool.img");
    let junk = vec![0x42u8; 1 << 20];
    std::fs::write(&image, &junk).unwrap();
    let e = prepare(&d.config(3293, 23, fake_program())).unwrap_err();
    assert!(matches!(e, EmbeddedError::ImageNotXfs { .. }), "{e}");
    assert!(e.to_string().contains("never reformats"), "{e}");
    assert_eq!(std::fs::read(&image).unwrap(), junk);
}

#[test]
fn files_in_the_pool_directory_are_never_hidden_by_a_mount() {
    if !can_mount() || !have_tools() {
        return;
    }
    let d = DataDir::without_reflink();
    std::fs::create_dir_all(d.data.join("pool")).unwrap();
    std::fs::write(d.data.join("pool/mine"), b"x").unwrap();
    let e = prepare(&d.config(3294, 24, fake_program())).unwrap_err();
    assert!(matches!(e, EmbeddedError::PoolDirNotEmpty { .. }), "{e}");
    assert!(!d.data.join("pool.img").exists(), "nothing made");
    assert!(mounts_at(&d.data.join("pool")).is_empty());
}

/// Stops the test's tgtd (the array starts it) even when the test fails.
struct TgtdGuard(u16);

impl Drop for TgtdGuard {
    fn drop(&mut self) {
        if let Ok(adm) = spindle_tgt::Tgtadm::new(self.0) {
            let _ = adm.shutdown_daemon();
            for _ in 0..100 {
                if adm.remove_stale_socket() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_is_accepted_by_the_real_plugin() {
    if !can_mount() || !have_tools() {
        return;
    }
    let Some(program) = array_program() else {
        return;
    };
    let mut d = DataDir::without_reflink();
    let cfg = d.config(3299, 29, program.clone());
    let a = d.prepare(&cfg);
    let _tgtd = TgtdGuard(29);
    eprintln!("{:#?}", a);
    assert_eq!(a.plugin, "spindle.linux.LinuxArray");
    let ss = &a.ss_record;
    assert_eq!(ss["storage_type"], "iSCSIStorage");
    assert_eq!(ss["admin_host"], "localhost");
    assert_eq!(ss["admin_user"], "root");
    assert_eq!(ss["admin_passwd"], "");
    assert_eq!(ss["access_host"], "127.0.0.1");
    assert_eq!(ss["access_port"], "3299");
    assert!(ss.get("name").is_none() && ss.get("uuid").is_none());
    let data = std::fs::canonicalize(&d.data).unwrap();
    let extra = ss["extra_info"].as_str().unwrap();
    let prefix = format!(
        "pools=default:{};tgt_control=29;portal=127.0.0.1:3299;state={};iqn_prefix=iqn.2026-11.localhost.spindle:",
        data.join("pool").display(),
        data.join("array").display()
    );
    assert!(extra.starts_with(&prefix), "{extra}");
    assert!(
        extra.ends_with(&format!(
            ";array_program={};array_socket={}",
            program.display(),
            data.join("array.sock").display()
        )),
        "{extra}"
    );

    // Through the manager, as the server will call it.
    let manager = spindle_manager::Manager::new(spindle_manager::ManagerConfig {
        builtins: vec![std::sync::Arc::new(spindle_plugin_linux::LinuxArray)],
        mode: spindle_manager::Mode::Strict,
        ..spindle_manager::ManagerConfig::default()
    })
    .await
    .unwrap();
    let entry = manager.resolve(a.plugin).unwrap();
    let mut record = ss.clone();
    record["name"] = json!("local");
    record["uuid"] = json!("4f0c3a52-7d61-4c8e-9f3a-2b1d0e5c6a71");
    let call = |method, args: Value| {
        manager.call(
            entry,
            method,
            args.as_object().cloned().unwrap(),
            spindle_manager::CallOptions::default(),
        )
    };
    call(spindle_api::Method::Validate, json!({"ss_record": record}))
        .await
        .unwrap_or_else(|e| panic!("validate: {e}"));
    // The registration is kept in this test run's state home, not the host's.
    assert!(
        common::state_home()
            .join("registrations/4f0c3a52-7d61-4c8e-9f3a-2b1d0e5c6a71.json")
            .is_file(),
        "the array program did not use the test's SPINDLE_ARRAY_STATE_HOME"
    );
    let info = call(spindle_api::Method::GetInfo, json!({"ss_record": record}))
        .await
        .unwrap_or_else(|e| panic!("getInfo: {e}"))
        .value;
    eprintln!("getInfo: {info:#}");
    assert_eq!(info["status"], "ONLINE", "{info}");
    assert_eq!(info["vol_groups"][0]["vol_name"], "default", "{info}");
    assert!(info["total_sz"].as_i64().unwrap() > 0, "{info}");
    let desc = info["storage_desc"].as_str().unwrap_or("");
    assert!(desc.contains("xfs"), "{desc}");
    assert!(desc.contains("running"), "the array started its tgtd: {desc}");
    assert!(data.join("array").is_dir(), "state lives in <data_dir>/array");

    // The resident array program: the same answers through its socket, gone when stopped.
    let resident = spindle_embedded::start_resident(&a).unwrap().expect("a socket");
    assert!(resident.wait_ready(std::time::Duration::from_secs(5)));
    let info2 = call(spindle_api::Method::GetInfo, json!({"ss_record": record}))
        .await
        .unwrap_or_else(|e| panic!("getInfo through the resident program: {e}"))
        .value;
    assert_eq!(info2["vol_groups"], info["vol_groups"]);
    drop(resident);
    assert!(
        !data.join("array.sock").exists(),
        "the socket outlived the program"
    );

    // A restart finds the running tgtd and the mounted pool.
    let again = spindle_embedded::prepare(&cfg).unwrap();
    assert_eq!(again.ss_record, a.ss_record);
    assert!(!again.mounted_here);
    assert!(
        again.notes.iter().any(|n| n.contains("tgtd -C 29 already runs")),
        "{:?}",
        again.notes
    );

    // Stop the tgtd the array started, then release.
    drop(_tgtd);
    release(&a).unwrap();
    assert!(mounts_at(&a.pool_dir).is_empty());
}

#[test]
fn a_portal_held_by_another_program_is_refused() {
    if !can_mount() || !have_tools() {
        return;
    }
    let d = DataDir::without_reflink();
    let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    let e = prepare(&d.config(port, 25, fake_program())).unwrap_err();
    assert!(matches!(e, EmbeddedError::PortalUnavailable { .. }), "{e}");
    let m = e.to_string();
    assert!(
        m.contains(&format!("127.0.0.1:{port}")) && m.contains("tgtd -C 25"),
        "{m}"
    );
    assert!(!d.data.join("pool.img").exists(), "nothing made");
}

fn config_in(dir: &Path) -> EmbeddedConfig {
    EmbeddedConfig {
        array_program: Some(fake_program()),
        install: false,
        ..EmbeddedConfig::new(dir.join("data"))
    }
}

#[test]
fn a_missing_array_program_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config_in(tmp.path());
    cfg.array_program = Some(tmp.path().join("bin/spindle-array"));
    let e = prepare(&cfg).unwrap_err();
    assert!(matches!(e, EmbeddedError::ArrayProgramMissing { .. }), "{e}");
    let m = e.to_string();
    assert!(m.contains("cargo build --release --workspace --bins"), "{m}");
    assert!(m.contains("bin/spindle-array"), "{m}");
    assert!(!tmp.path().join("data").exists(), "nothing touched");
}

#[test]
fn bad_settings_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    for portal in [
        "localhost:3260",
        "127.0.0.1",
        "127.0.0.1:0",
        "0.0.0.0:3260",
        "1.2.3.4:99999",
    ] {
        let cfg = EmbeddedConfig {
            portal: portal.into(),
            ..config_in(tmp.path())
        };
        let e = prepare(&cfg).unwrap_err();
        assert!(matches!(e, EmbeddedError::InvalidPortal { .. }), "{portal}: {e}");
        assert!(e.to_string().contains(portal), "{e}");
    }
    let e = prepare(&EmbeddedConfig {
        tgt_control: 40000,
        ..config_in(tmp.path())
    })
    .unwrap_err();
    assert!(e.to_string().contains("tgt_control"), "{e}");
    let e = prepare(&EmbeddedConfig {
        pool_size: 1 << 20,
        ..config_in(tmp.path())
    })
    .unwrap_err();
    assert!(e.to_string().contains("pool_size"), "{e}");
    let e = prepare(&config_in(&tmp.path().join("a b"))).unwrap_err();
    assert!(matches!(e, EmbeddedError::InvalidDataDir { .. }), "{e}");
    assert!(!tmp.path().join("data").exists() && !tmp.path().join("a b").exists());
}
