//! The data-path checks, through a fake initiator that sees the simulated array's state: a LUN
//! is visible to an initiator when it is presented to a group holding it; its VPD page 0x83
//! carries the page 83 id; its capacity is its size; blocks written read back.
//!
//! The simulated array stores no data, so the fake keeps each element's blocks and follows
//! what the array did, from its state file: a snapshot it has not seen yet gets a copy of each
//! member's blocks, a clone a copy of its origin's (the element, or the snapshot's image of the
//! member), as the state file names it. Data only changes through the fake, which looks at the
//! state before every operation, so each copy is what the origin held when the array made it.
//! A restore leaves no trace in the state file: the plug-in wrapper [`DataSim`] tells the fake
//! after the simulated array restored.

mod common;

use common::*;
use spindle_api::{Host, PluginMetadata, PluginResult, SeRecord, SsRecord, StorageArrayPlugin};
use spindle_conformance::{Capacity, ConformanceError, DataPath, DataPathOptions, LunRef, Verdict};
use spindle_plugin_sim::state::State;
use spindle_plugin_sim::store::STATE_FILE;
use spindle_plugin_sim::SimArray;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const BLOCK: u32 = 512;

/// An element's blocks: (serial, member) -> lba -> block. A LUN's or clone's own image has
/// member 0; a snapshot keeps one image per member it covers.
type Images = HashMap<(u64, u64), HashMap<u64, Vec<u8>>>;

#[derive(Default)]
struct Data {
    images: Images,
    /// Serials already followed.
    known: HashSet<u64>,
}

struct FakeInitiator {
    state_dir: PathBuf,
    data: Mutex<Data>,
    /// Reports one block more than there is.
    wrong_capacity: bool,
}

fn dp_err(e: impl ToString) -> ConformanceError {
    ConformanceError::DataPath(e.to_string())
}

impl FakeInitiator {
    fn state(&self) -> Result<State, ConformanceError> {
        let bytes = std::fs::read(self.state_dir.join(STATE_FILE)).map_err(dp_err)?;
        State::from_json(&bytes).map_err(ConformanceError::DataPath)
    }

    fn element(&self, lun: &LunRef) -> Result<(String, i64), ConformanceError> {
        let st = self.state()?;
        st.elements
            .iter()
            .find(|e| e.serial == lun.lun)
            .map(|e| (e.page83_id.clone(), e.size))
            .ok_or_else(|| ConformanceError::DataPath(format!("no {lun}")))
    }

    /// Follows what the array made since the last look, in creation order, and returns the
    /// data (locked).
    fn synced(&self) -> Result<std::sync::MutexGuard<'_, Data>, ConformanceError> {
        let st = self.state()?;
        let mut d = self.data.lock().map_err(|_| dp_err("poisoned"))?;
        for e in &st.elements {
            if !d.known.insert(e.serial) {
                continue;
            }
            if e.is_snap() {
                for m in &e.members {
                    let img = d.images.get(&(m.serial, 0)).cloned().unwrap_or_default();
                    d.images.insert((e.serial, m.serial), img);
                }
            } else if let Some(o) = &e.origin {
                let from = (o.serial, o.member.unwrap_or(0));
                let img = d.images.get(&from).cloned().unwrap_or_default();
                d.images.insert((e.serial, 0), img);
            }
        }
        Ok(d)
    }

    /// After the array restored `member` from snapshot `snap`: its blocks are the snapshot's.
    fn restored(&self, snap: u64, member: u64) -> Result<(), ConformanceError> {
        let mut d = self.synced()?;
        let img = d.images.get(&(snap, member)).cloned().unwrap_or_default();
        d.images.insert((member, 0), img);
        Ok(())
    }
}

impl DataPath for FakeInitiator {
    fn visible_luns(&self, _portal: &str, initiator: &str) -> Result<Vec<LunRef>, ConformanceError> {
        let st = self.state()?;
        let me = initiator.to_ascii_lowercase();
        let groups: Vec<&str> = st
            .access_groups
            .iter()
            .filter(|g| g.entries.contains(&me))
            .map(|g| g.name.as_str())
            .collect();
        Ok(st
            .elements
            .iter()
            .filter(|e| e.presented_to.iter().any(|p| groups.contains(&p.as_str())))
            .map(|e| LunRef {
                target: "iqn.2000-01.invalid.fake:target".into(),
                lun: e.serial,
            })
            .collect())
    }

    fn read_capacity(&self, _p: &str, _i: &str, lun: &LunRef) -> Result<Capacity, ConformanceError> {
        let (_, size) = self.element(lun)?;
        let blocks = u64::try_from(size).unwrap_or(0) / u64::from(BLOCK);
        Ok(Capacity {
            block_size: BLOCK,
            blocks: blocks + u64::from(self.wrong_capacity),
        })
    }

    fn read_vpd_page83(&self, _p: &str, _i: &str, lun: &LunRef) -> Result<Vec<u8>, ConformanceError> {
        let (id, _) = self.element(lun)?;
        // "3" + NAA hex: one binary NAA designator for the logical unit.
        let hex = id.strip_prefix('3').unwrap_or(&id);
        let naa: Vec<u8> = (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        let mut desc = vec![0x01, 0x03, 0x00, naa.len() as u8];
        desc.extend(naa);
        let mut page = vec![0x00, 0x83, 0x00, desc.len() as u8];
        page.extend(desc);
        Ok(page)
    }

    fn write_pattern(
        &self,
        _p: &str,
        _i: &str,
        lun: &LunRef,
        lba: u64,
        data: &[u8],
    ) -> Result<(), ConformanceError> {
        let mut d = self.synced()?;
        let img = d.images.entry((lun.lun, 0)).or_default();
        for (i, chunk) in data.chunks(BLOCK as usize).enumerate() {
            img.insert(lba + i as u64, chunk.to_vec());
        }
        Ok(())
    }

    fn read_back(
        &self,
        _p: &str,
        _i: &str,
        lun: &LunRef,
        lba: u64,
        blocks: u32,
    ) -> Result<Vec<u8>, ConformanceError> {
        let d = self.synced()?;
        let img = d.images.get(&(lun.lun, 0));
        let mut out = Vec::new();
        for i in 0..u64::from(blocks) {
            out.extend(
                img.and_then(|b| b.get(&(lba + i)))
                    .cloned()
                    .unwrap_or_else(|| vec![0; BLOCK as usize]),
            );
        }
        Ok(out)
    }
}

/// The simulated array, telling the fake initiator about restores; `clone_of_current` breaks
/// cloneFromSnap: it clones the element as it is now instead of the snapshot.
struct DataSim {
    fake: Arc<FakeInitiator>,
    clone_of_current: bool,
}

impl StorageArrayPlugin for DataSim {
    fn class_name(&self) -> &'static str {
        "conformance.datapath.Sim"
    }
    fn metadata(&self) -> PluginMetadata {
        SimArray::plugin_metadata()
    }
    fn clone_from_snap(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        s: &SeRecord,
        d: Option<&SeRecord>,
        q: Option<&str>,
    ) -> PluginResult<SeRecord> {
        if self.clone_of_current {
            return SIM.clone_element(h, ss, se, d, q);
        }
        SIM.clone_from_snap(h, ss, se, s, d, q)
    }
    fn snap_restore(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        s: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<()> {
        SIM.snap_restore(h, ss, s, se)?;
        let fail = |e: ConformanceError| spindle_api::PluginException::operation_failed(e.to_string());
        let st = self.fake.state().map_err(fail)?;
        let snap = &st.elements[st.find(s, "snap_se_record")?];
        let members: Vec<u64> = match se {
            Some(se) => vec![st.elements[st.find(se, "se_record")?].serial],
            None => snap.members.iter().map(|m| m.serial).collect(),
        };
        for m in members {
            self.fake.restored(snap.serial, m).map_err(fail)?;
        }
        Ok(())
    }
    forward_to_sim!(
        implemented_optional,
        validate,
        get_capabilities,
        get_info,
        get_storage_names,
        get_access_groups,
        create_access_groups,
        remove_access_groups,
        rename_access_group,
        add_to_access_group,
        remove_from_access_group,
        discover,
        start,
        stop,
        refresh,
        list,
        update_se_records,
        get_status,
        online,
        offline,
        create,
        start_present,
        stop_present,
        resize,
        remove,
        get_clone_limits,
        is_cloneable,
        clone_element,
        is_splittable,
        split_clone,
        get_current_clones,
        get_snap_limits,
        is_snapable,
        create_snap,
        create_multi_snap,
        is_restorable,
        snap_remove,
        get_current_snaps,
        get_qos_list,
        set_qos,
        get_async_progress,
    );
}

async fn run_with(wrong_capacity: bool, driver: bool) -> spindle_conformance::Report {
    run_full(wrong_capacity, driver, false).await
}

async fn run_full(wrong_capacity: bool, driver: bool, clone_of_current: bool) -> spindle_conformance::Report {
    let state = tempfile::tempdir().expect("tempdir");
    let scratch = tempfile::tempdir().expect("tempdir");
    let fake = Arc::new(FakeInitiator {
        state_dir: state.path().to_path_buf(),
        data: Mutex::new(Data::default()),
        wrong_capacity,
    });
    let sim = Arc::new(DataSim {
        fake: Arc::clone(&fake),
        clone_of_current,
    });
    let m = manager(vec![sim], vec![], scratch.path()).await;
    let p = plugin(&m, "conformance.datapath.Sim");
    let mut opts = options(sim_ss(state.path(), "iSCSIStorage"));
    let mut dp =
        DataPathOptions::new("iqn.2024-01.org.example.host:initiator", "127.0.0.1:3260").expect("data path");
    if driver {
        dp = dp.with_driver(fake);
    }
    opts.data_path = Some(dp);
    spindle_conformance::run(&m, p, &opts).await
}

const DATAPATH: [&str; 10] = [
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
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_path_checks_pass_through_an_initiator() {
    let report = run_with(false, true).await;
    check_report(&report, !report.failed(), "no failure");
    for id in DATAPATH {
        let c = report.check(id).expect("reported");
        check_report(&report, c.verdict == Verdict::Pass, &format!("{id} passes"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_capacity_fails_only_the_capacity_check() {
    let report = run_with(true, true).await;
    check_report(
        &report,
        failing(&report) == ["datapath.capacity"],
        "only datapath.capacity fails",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_initiator_the_checks_are_skipped_with_the_reason() {
    let report = run_with(false, false).await;
    for id in DATAPATH {
        let c = report.check(id).expect("reported");
        check_report(
            &report,
            c.verdict == Verdict::Skip && c.reason.contains("no iSCSI initiator is plugged in"),
            &format!("{id} is skipped with the reason"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_of_the_snapshot_made_from_the_current_lun_fails_only_snapshot_freezes() {
    let report = run_full(false, true, true).await;
    check_report(
        &report,
        failing(&report) == ["datapath.snapshot_freezes"],
        "only datapath.snapshot_freezes fails",
    );
    let c = report.check("datapath.snapshot_freezes").expect("reported");
    check_report(
        &report,
        c.reason.contains("holds pattern B instead of pattern A"),
        "the reason says the clone holds B",
    );
}
