//! Benchmarks of the Linux array's engine on a loop-mounted XFS (reflink=1), next to the bare
//! operations in the same run (each as durable as the engine's: the new file and its directory
//! fsynced). Needs root (it mounts a loop file system); prints a table.
//!
//! `cargo bench -p spindle-plugin-linux --bench engine` (set `SPINDLE_BENCH_LUNS` to change
//! the 10,000 LUNs of the list() measurement).
#![allow(clippy::unwrap_used)]

mod common;

use common::{array_exe, median, ms, settle, sh, time, xfs, GIB, MIB, TIB};
use spindle_api::SeType;
use spindle_plugin_linux::config::{ArrayConfig, PoolConfig};
use spindle_plugin_linux::engine::{Engine, EngineOptions};
use spindle_plugin_linux::fsops;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn cfg(pool: &Path) -> ArrayConfig {
    ArrayConfig {
        pools: vec![PoolConfig {
            name: "p0".into(),
            path: pool.to_path_buf(),
        }],
        state: None,
        iqn_prefix: None,
        split_rate_mib: None,
        tgt: None,
    }
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64())
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and then it only says what it would do.
    if !std::env::args().any(|a| a == "--bench") {
        println!("engine benchmark: run with cargo bench -p spindle-plugin-linux --bench engine");
        return;
    }
    if sh("id", &["-u"]) != "0" {
        eprintln!("the engine benchmark needs root (it mounts a loop XFS); skipped");
        return;
    }
    let exe = array_exe();
    let opts = EngineOptions {
        worker_exe: Some(exe.clone()),
        ..EngineOptions::default()
    };
    let m = xfs(16);
    let pool = m.mnt.join("p0");
    std::fs::create_dir(&pool).unwrap();
    let c = cfg(&pool);
    let mut e = Engine::open(&c, opts.clone()).unwrap();
    println!("spindle-plugin-linux engine benchmark, XFS (reflink=1) on a 16 GiB loop image");
    println!("{:<58} {:>14}", "operation", "median of 5");

    // create a 1 TiB thin LUN, vs bare truncate
    let mut eng = Vec::new();
    let mut bare = Vec::new();
    for i in 0..5 {
        let (d, x) = time(|| e.create(&format!("c{i}"), "p0", TIB, true, None).unwrap());
        eng.push(d);
        e.remove(&x.uuid).unwrap();
        let p = pool.join(format!("bare{i}"));
        let (d, _) = time(|| {
            let f = std::fs::File::create(&p).unwrap();
            f.set_len(TIB as u64).unwrap();
            f.sync_all().unwrap();
            fsops::fsync_dir(&pool).unwrap();
        });
        bare.push(d);
        std::fs::remove_file(&p).unwrap();
    }
    let (eng, bare) = (median(eng), median(bare));
    println!("{:<58} {:>14}", "create 1 TiB thin LUN (engine)", ms(eng));
    println!(
        "{:<58} {:>14}",
        "bare: create + truncate 1 TiB + fsync file + fsync dir",
        ms(bare)
    );
    println!("{:<58} {:>14}", "  engine / bare", ratio(eng, bare));
    // The same as the resident program runs it: answered once durable, committed after.
    e.commit_after_answer(true);
    let mut first = Vec::new();
    for i in 0..5 {
        let (d, x) = time(|| e.create(&format!("a{i}"), "p0", TIB, true, None).unwrap());
        first.push(d);
        e.finish_pending().unwrap();
        e.remove(&x.uuid).unwrap();
    }
    e.commit_after_answer(false);
    let first = median(first);
    println!(
        "{:<58} {:>14}",
        "create, answered before its commit (resident program)",
        ms(first)
    );
    println!("{:<58} {:>14}", "  answered first / bare", ratio(first, bare));

    // A 1 TiB LUN holding 1 GiB of data: 1024 x 1 MiB extents spread over the whole LUN.
    let lun = e.create("big", "p0", TIB, true, None).unwrap();
    let lp = lun.path.clone().unwrap();
    {
        let f = std::fs::OpenOptions::new().write(true).open(&lp).unwrap();
        let buf: Vec<u8> = (0..MIB as usize).map(|i| (i % 251) as u8 | 1).collect();
        for i in 0..1024u64 {
            f.write_all_at(&buf, i * GIB).unwrap();
        }
        f.sync_all().unwrap();
    }
    // Each operation starts from a settled file system, and is paired with the bare FICLONE of
    // the same source in the same state, run just before it.
    let mut snap = Vec::new();
    let mut clone = Vec::new();
    let mut snapclone = Vec::new();
    let (mut bare_snap, mut bare_clone, mut bare_snapclone) = (Vec::new(), Vec::new(), Vec::new());
    let bare_ficlone = |src: &Path, name: &str| -> Duration {
        let p = pool.join(name);
        settle(&pool);
        let (d, _) = time(|| match fsops::reflink(src, &p, 0o600, None) {
            Ok(()) => fsops::fsync_dir(&pool).unwrap(),
            Err(_) => panic!("FICLONE failed"),
        });
        std::fs::remove_file(&p).unwrap();
        settle(&pool);
        d
    };
    for i in 0..5 {
        bare_snap.push(bare_ficlone(&lp, &format!("bare-s{i}")));
        let (d, s) = time(|| e.snapshot(&lun.uuid, Some(&format!("s{i}"))).unwrap());
        snap.push(d);
        let image = s.members[0].path.clone();
        bare_clone.push(bare_ficlone(&lp, &format!("bare-k{i}")));
        let (d, cl) = time(|| e.clone_element(&lun.uuid, Some(&format!("k{i}")), None).unwrap());
        clone.push(d);
        bare_snapclone.push(bare_ficlone(&image, &format!("bare-sc{i}")));
        let (d, sc) = time(|| {
            e.clone_from_snap(&lun.uuid, &s.uuid, Some(&format!("sc{i}")), None)
                .unwrap()
        });
        snapclone.push(d);
        e.remove(&sc.uuid).unwrap();
        e.remove(&cl.uuid).unwrap();
        e.snap_remove(&s.uuid).unwrap();
    }
    for (what, d, bare) in [
        ("snapshot of 1 TiB LUN with 1 GiB data (engine)", snap, bare_snap),
        ("clone of it (engine)", clone, bare_clone),
        ("clone from snapshot (engine)", snapclone, bare_snapclone),
    ] {
        let (d, bare) = (median(d), median(bare));
        println!("{what:<58} {:>14}", format!("{} ({})", ms(d), ratio(d, bare)));
        println!(
            "{:<58} {:>14}",
            "  bare: FICLONE of the same source + fsync file + fsync dir",
            ms(bare)
        );
    }

    // Split throughput vs cp --reflink=never, both reading a fresh clone with a cold page
    // cache (a reflink copy does not share page cache with its source).
    let drop_caches = || {
        sh("sync", &[]);
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    };
    let cl = e.clone_element(&lun.uuid, Some("to-split"), None).unwrap();
    drop_caches();
    let (d_split, _) = time(|| {
        let st = e.split_start(&cl.uuid).unwrap();
        loop {
            if e.split_progress(&st.handle).unwrap().progress.is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let cl2 = e.clone_element(&lun.uuid, Some("to-copy"), None).unwrap();
    let src2 = cl2.path.clone().unwrap();
    let dst = pool.join("cp-copy");
    drop_caches();
    let (d_cp, _) = time(|| {
        sh(
            "cp",
            &[
                "--reflink=never",
                "--sparse=always",
                src2.to_str().unwrap(),
                dst.to_str().unwrap(),
            ],
        );
        std::fs::File::open(&dst).unwrap().sync_all().unwrap();
    });
    std::fs::remove_file(&dst).unwrap();
    e.remove(&cl2.uuid).unwrap();
    let gibs = |d: Duration| format!("{:.0} MiB/s", 1024.0 / d.as_secs_f64());
    println!(
        "{:<58} {:>14}",
        format!("split clone, 1 GiB data in 1 TiB ({})", ms(d_split)),
        gibs(d_split)
    );
    println!(
        "{:<58} {:>14}",
        format!("bare: cp --reflink=never --sparse=always ({})", ms(d_cp)),
        gibs(d_cp)
    );
    e.remove(&cl.uuid).unwrap();
    e.remove(&lun.uuid).unwrap();

    // list() with many LUNs.
    let n: usize = std::env::var("SPINDLE_BENCH_LUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (d_create, _) = time(|| {
        for i in 0..n {
            e.create(&format!("l{i}"), "p0", MIB as i64, true, None).unwrap();
        }
    });
    println!(
        "{:<58} {:>14}",
        format!(
            "create {n} LUNs, one by one (engine, total {:.1} s)",
            d_create.as_secs_f64()
        ),
        ms(d_create / n as u32)
    );
    let mut lists = Vec::new();
    for _ in 0..5 {
        let (d, v) = time(|| e.list(&[SeType::Lun, SeType::SnapClone]).unwrap());
        assert_eq!(v.len(), n);
        lists.push(d);
    }
    println!(
        "{:<58} {:>14}",
        format!("list() with {n} LUNs (engine)"),
        ms(median(lists))
    );
    let mut opens = Vec::new();
    for _ in 0..5 {
        let (d, _) = time(|| Engine::open(&c, opts.clone()).unwrap());
        opens.push(d);
    }
    println!(
        "{:<58} {:>14}",
        format!("open + recovery scan with {n} LUNs (every request)"),
        ms(median(opens))
    );
    let req = serde_json::json!({"op": "list", "config": c}).to_string();
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (d, _) = time(|| {
            let mut ch = Command::new(&exe)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            ch.stdin.take().unwrap().write_all(req.as_bytes()).unwrap();
            let out = ch.wait_with_output().unwrap();
            assert!(out.stdout.starts_with(b"{\"ok\""));
        });
        runs.push(d);
    }
    println!(
        "{:<58} {:>14}",
        format!("spindle-array list with {n} LUNs (whole program)"),
        ms(median(runs))
    );
    drop(e);
}
