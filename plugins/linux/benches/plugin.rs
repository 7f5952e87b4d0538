//! Benchmarks of `spindle.linux.LinuxArray` as a caller sees it: each figure is one plug-in
//! method (array program started, request, engine, answer, and the export check against a
//! real tgtd), next to the bare operation underneath measured in the same run. Needs root (a
//! loop-mounted XFS with reflink=1 and a private tgtd); prints a table.
//!
//! `cargo bench -p spindle-plugin-linux --bench plugin` (set `SPINDLE_BENCH_LUNS` to change the
//! 10,000 LUNs of the list() measurement).
#![allow(clippy::unwrap_used)]

mod common;

use common::{sh, xfs, GIB};
use serde_json::Value;
use spindle_api::{
    Field, Host, LogLevel, PluginException, PluginResult, SeRecord, SeType, SsRecord, StorageArrayPlugin,
};
use spindle_plugin_linux::config::{ArrayConfig, TgtSettings, CLIENT_KEYS};
use spindle_plugin_linux::engine::{Engine, EngineOptions};
use spindle_plugin_linux::{fsops, LinuxArray};
use spindle_tgt::{BackingPath, CachePolicy, Iqn, LunSpec, ScsiId, ScsiSn, Tgtadm};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TIB: i64 = 1 << 40;
const MIB: u64 = 1 << 20;
const RUNS: usize = 5;

/// The private tgtd the array starts; shut down on drop.
struct TgtGuard {
    adm: Tgtadm,
    _dir: tempfile::TempDir,
}

impl Drop for TgtGuard {
    fn drop(&mut self) {
        let _ = self.adm.shutdown_daemon();
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A host that offers nothing but a logger that drops messages.
struct BenchHost;

impl Host for BenchHost {
    fn cache_get(&self, _: &str, _: &str) -> PluginResult<Option<String>> {
        Ok(None)
    }
    fn cache_set(&self, _: &str, _: &str, _: Option<&str>, _: Option<u64>) -> PluginResult<()> {
        Ok(())
    }
    fn cache_extend(&self, _: &str, _: &str, _: u64) -> PluginResult<()> {
        Ok(())
    }
    fn cache_clear(&self, _: &str) -> PluginResult<()> {
        Ok(())
    }
    fn log(&self, level: LogLevel, message: &str) {
        if level >= LogLevel::Warning {
            eprintln!("{message}");
        }
    }
    fn temp_file(&self) -> PluginResult<PathBuf> {
        Err(PluginException::operation_failed("no temporary files here"))
    }
    fn dev_path_prefix(&self) -> String {
        "/dev/mapper/".into()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn row(what: &str, d: Duration) {
    println!("{what:<64} {:>12}", ms(d));
}

fn array_exe() -> PathBuf {
    // target/release/deps/plugin-xxxx -> target/release/spindle-array
    let me = std::env::current_exe().unwrap();
    me.parent().and_then(Path::parent).unwrap().join("spindle-array")
}

fn named(se_type: SeType, ss: &SsRecord, name: &str) -> SeRecord {
    SeRecord {
        se_type: Field::Value(se_type),
        ss_uuid: ss.uuid.clone(),
        name: Field::Value(name.into()),
        ..SeRecord::default()
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("plug-in benchmark: run with cargo bench -p spindle-plugin-linux --bench plugin");
        return;
    }
    if sh("id", &["-u"]) != "0" || !Path::new("/usr/sbin/tgtd").exists() {
        eprintln!("the plug-in benchmark needs root (loop XFS) and tgt (/usr/sbin/tgtd); skipped");
        return;
    }
    let exe = array_exe();
    if !exe.exists() {
        let _ = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "spindle-plugin-linux",
                "--bin",
                "spindle-array",
            ])
            .status();
    }
    let m = xfs(16);
    let pool = m.mnt.join("p0");
    std::fs::create_dir(&pool).unwrap();
    let tdir = tempfile::Builder::new()
        .prefix("spindle-pbench-tgt-")
        .tempdir()
        .unwrap();
    let portal = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let control = 3000 + (std::process::id() % 1000) as u16;
    let base = tdir.path().join("sock");
    let guard = TgtGuard {
        adm: Tgtadm::new(control).unwrap().with_ipc_socket_base(&base),
        _dir: tdir,
    };
    let extra = format!(
        "pools=p0:{};iqn_prefix=iqn.2025-01.org.example:bench;tgt_control={control};portal=127.0.0.1:{portal};tgt_socket={};array_program={}",
        pool.display(),
        base.display(),
        exe.display()
    );
    let ss = SsRecord {
        name: Field::Value("bench".into()),
        uuid: Field::Value(uuid::Uuid::new_v4().to_string()),
        storage_type: Field::Value("iSCSIStorage".into()),
        admin_host: Field::Value("localhost".into()),
        admin_user: Field::Value("root".into()),
        extra_info: Field::Value(extra.clone()),
        ..SsRecord::default()
    };
    let p = LinuxArray;
    let h = BenchHost;
    p.validate(&h, &ss).unwrap();

    println!("spindle.linux.LinuxArray benchmark: XFS (reflink=1) on a 16 GiB loop image, local array program, tgtd on 127.0.0.1:{portal}");
    println!("{:<64} {:>12}", "operation", format!("median of {RUNS}"));

    let (d, _) = time(|| p.get_status(&h, &ss, None).unwrap());
    let mut floor = vec![d];
    for _ in 1..RUNS {
        floor.push(time(|| p.get_status(&h, &ss, None).unwrap()).0);
    }
    row("getStatus (the fixed cost of one plug-in call)", median(floor));
    let mut show = Vec::new();
    for _ in 0..RUNS {
        show.push(time(|| assert!(guard.adm.is_alive())).0);
    }
    row(
        "bare: tgtadm --op show --mode sys (each call's tgtd check)",
        median(show),
    );

    // create: 1 TiB thin LUN vs truncate.
    let mut create = Vec::new();
    let mut bare = Vec::new();
    for i in 0..RUNS {
        let mut se = named(SeType::Lun, &ss, &format!("c{i}"));
        se.size = Field::Value(TIB);
        se.vol_group_name = Field::Value("p0".into());
        let (d, rec) = time(|| p.create(&h, &ss, &se, true, None).unwrap());
        create.push(d);
        p.remove(&h, &ss, &rec).unwrap();
        let f = pool.join(format!("bare{i}"));
        bare.push(
            time(|| {
                let file = std::fs::File::create(&f).unwrap();
                file.set_len(TIB as u64).unwrap();
                file.sync_all().unwrap();
            })
            .0,
        );
        std::fs::remove_file(&f).unwrap();
    }
    row("create: 1 TiB thin LUN (plug-in)", median(create));
    row("bare: create + truncate to 1 TiB + fsync", median(bare));

    // A 1 TiB LUN holding 1 GiB of data: 1024 x 1 MiB, one per GiB.
    let mut se = named(SeType::Lun, &ss, "big");
    se.size = Field::Value(TIB);
    se.vol_group_name = Field::Value("p0".into());
    let big = p.create(&h, &ss, &se, true, None).unwrap();
    let big_path = PathBuf::from(big.array_path.value().unwrap());
    {
        let f = std::fs::OpenOptions::new().write(true).open(&big_path).unwrap();
        let buf: Vec<u8> = (0..MIB as usize).map(|i| (i % 251) as u8 | 1).collect();
        for i in 0..1024u64 {
            f.write_all_at(&buf, i * GIB).unwrap();
        }
        f.sync_all().unwrap();
    }
    let (mut snap, mut clone, mut snapclone, mut ficlone) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..RUNS {
        let sn = named(SeType::Snap, &ss, &format!("s{i}"));
        let (d, s) = time(|| p.create_snap(&h, &ss, &big, Some(&sn)).unwrap());
        snap.push(d);
        let dest = named(SeType::SnapClone, &ss, &format!("k{i}"));
        let (d, k) = time(|| p.clone_element(&h, &ss, &big, Some(&dest), None).unwrap());
        clone.push(d);
        let dest = named(SeType::SnapClone, &ss, &format!("sc{i}"));
        let (d, sc) = time(|| p.clone_from_snap(&h, &ss, &big, &s, Some(&dest), None).unwrap());
        snapclone.push(d);
        let f = pool.join(format!("bareclone{i}"));
        ficlone.push(
            time(|| {
                if fsops::reflink(&big_path, &f, 0o600).is_err() {
                    panic!("FICLONE failed");
                }
            })
            .0,
        );
        std::fs::remove_file(&f).unwrap();
        p.remove(&h, &ss, &sc).unwrap();
        p.remove(&h, &ss, &k).unwrap();
        p.snap_remove(&h, &ss, &s).unwrap();
    }
    row("createSnap: 1 TiB LUN holding 1 GiB (plug-in)", median(snap));
    row("clone of it (plug-in)", median(clone));
    row("cloneFromSnap (plug-in)", median(snapclone));
    row("bare: FICLONE of the same file + fsync", median(ficlone));

    // startPresent (a full reconcile with tgtd) vs the tgtadm calls underneath.
    p.create_access_groups(
        &h,
        &ss,
        &[spindle_api::AccessGrp {
            grp_name: Field::Value("g".into()),
            grp_entries: Field::Value(vec!["iqn.2025-01.org.example:host".into()]),
            ..spindle_api::AccessGrp::default()
        }],
    )
    .unwrap();
    let (mut present, mut unpresent, mut bare_lu) = (Vec::new(), Vec::new(), Vec::new());
    let scratch = Iqn::new("iqn.2025-01.org.example:scratch").unwrap();
    guard.adm.new_target(900, &scratch).unwrap();
    for i in 0..RUNS {
        let (d, rec) = time(|| p.start_present(&h, &ss, &big, &["g".to_string()]).unwrap());
        present.push(d);
        unpresent.push(time(|| p.stop_present(&h, &ss, &rec, &["g".to_string()]).unwrap()).0);
        let spec = LunSpec {
            backing: BackingPath::new(big_path.to_str().unwrap()).unwrap(),
            scsi_id: ScsiId::new(format!("6aabbcc00000000000000000000000{i:02x}")).unwrap(),
            scsi_sn: ScsiSn::new(format!("bench{i}")).unwrap(),
            vendor_id: Default::default(),
            product_id: Default::default(),
            online: true,
            cache: CachePolicy::WriteThrough,
        };
        bare_lu.push(time(|| guard.adm.add_lun(900, 1, &spec).unwrap()).0);
        guard.adm.delete_lu(900, 1).unwrap();
    }
    guard.adm.delete_target(900, true).unwrap();
    row(
        "startPresent to one group (plug-in, full tgtd reconcile)",
        median(present),
    );
    row("stopPresent (plug-in, full tgtd reconcile)", median(unpresent));
    row("bare: tgtadm new LU + identity/cache update", median(bare_lu));
    p.remove(&h, &ss, &big).unwrap();

    // list() with many LUNs (made through the engine: 10,000 plug-in calls would only
    // measure create again).
    let n: usize = std::env::var("SPINDLE_BENCH_LUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let cfg = ArrayConfig::from_extra_info(Some(&extra), CLIENT_KEYS).unwrap();
    assert_eq!(
        cfg.tgt.as_ref().map(|t: &TgtSettings| t.control_port),
        Some(control)
    );
    let opts = EngineOptions {
        worker_exe: Some(exe.clone()),
    };
    let mut e = Engine::open(&cfg, opts).unwrap();
    let (d_create, _) = time(|| {
        for i in 0..n {
            e.create(&format!("l{i}"), "p0", MIB as i64, true, None).unwrap();
        }
    });
    println!(
        "{:<64} {:>12}",
        format!(
            "(setup: {n} LUNs created through the engine in {:.1} s)",
            d_create.as_secs_f64()
        ),
        ""
    );
    let mut lists = Vec::new();
    for _ in 0..RUNS {
        let (d, v) = time(|| p.list(&h, &ss, &[SeType::Lun, SeType::SnapClone]).unwrap());
        assert_eq!(v.len(), n);
        lists.push(d);
    }
    row(&format!("list() with {n} LUNs (plug-in)"), median(lists));
    let mut engine_lists = Vec::new();
    for _ in 0..RUNS {
        engine_lists.push(time(|| e.list(&[SeType::Lun, SeType::SnapClone]).unwrap()).0);
    }
    row(
        &format!("bare: engine list of {n} LUNs (no process, no JSON)"),
        median(engine_lists),
    );
    let v: Value = serde_json::to_value(p.list(&h, &ss, &[SeType::Lun]).unwrap()).unwrap();
    println!(
        "{:<64} {:>12}",
        format!(
            "(list answer: {} KiB of JSON records)",
            v.to_string().len() / 1024
        ),
        ""
    );
    drop(e);
    drop(guard);
    drop(m);
}
