//! The data-path checks, through a fake initiator that sees the simulated array's state: a LUN
//! is visible to an initiator when it is presented to a group holding it; its VPD page 0x83
//! carries the page 83 id; its capacity is its size; blocks written read back.

mod common;

use common::*;
use spindle_conformance::{Capacity, ConformanceError, DataPath, DataPathOptions, LunRef, Verdict};
use spindle_plugin_sim::state::State;
use spindle_plugin_sim::store::STATE_FILE;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const BLOCK: u32 = 512;

struct FakeInitiator {
    state_dir: PathBuf,
    blocks: Mutex<HashMap<(u64, u64), Vec<u8>>>,
    /// Reports one block more than there is.
    wrong_capacity: bool,
}

impl FakeInitiator {
    fn state(&self) -> Result<State, ConformanceError> {
        let bytes = std::fs::read(self.state_dir.join(STATE_FILE))
            .map_err(|e| ConformanceError::DataPath(e.to_string()))?;
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
        let mut b = self
            .blocks
            .lock()
            .map_err(|_| ConformanceError::DataPath("poisoned".into()))?;
        for (i, chunk) in data.chunks(BLOCK as usize).enumerate() {
            b.insert((lun.lun, lba + i as u64), chunk.to_vec());
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
        let b = self
            .blocks
            .lock()
            .map_err(|_| ConformanceError::DataPath("poisoned".into()))?;
        let mut out = Vec::new();
        for i in 0..u64::from(blocks) {
            out.extend(
                b.get(&(lun.lun, lba + i))
                    .cloned()
                    .unwrap_or_else(|| vec![0; BLOCK as usize]),
            );
        }
        Ok(out)
    }
}

async fn run_with(wrong_capacity: bool, driver: bool) -> spindle_conformance::Report {
    let state = tempfile::tempdir().expect("tempdir");
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = manager(
        vec![Arc::new(spindle_plugin_sim::SimArray)],
        vec![],
        scratch.path(),
    )
    .await;
    let p = plugin(&m, "spindle.sim.SimArray");
    let mut opts = options(sim_ss(state.path(), "iSCSIStorage"));
    let mut dp =
        DataPathOptions::new("iqn.2024-01.org.example.host:initiator", "127.0.0.1:3260").expect("data path");
    if driver {
        dp = dp.with_driver(Arc::new(FakeInitiator {
            state_dir: state.path().to_path_buf(),
            blocks: Mutex::new(HashMap::new()),
            wrong_capacity,
        }));
    }
    opts.data_path = Some(dp);
    spindle_conformance::run(&m, p, &opts).await
}

const DATAPATH: [&str; 4] = [
    "datapath.visible_when_presented",
    "datapath.capacity",
    "datapath.write_read",
    "datapath.invisible_when_unpresented",
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
