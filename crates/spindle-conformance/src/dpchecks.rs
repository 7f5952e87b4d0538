//! The data-path checks: what a host sees of the LUNs the plug-in presents, through the
//! [`DataPath`] trait.

use crate::datapath::{DataPath, LunRef};
use crate::kit::{Kit, ObjId};
use spindle_api::{make_mp_page83_from_raw_page83, StorageType};
use std::sync::Arc;

const ALL: [&str; 4] = [
    "datapath.visible_when_presented",
    "datapath.capacity",
    "datapath.write_read",
    "datapath.invisible_when_unpresented",
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The LUN among those `initiator` sees whose VPD page 0x83 formats to `page83`, and the ids
/// of all it saw.
pub(crate) fn find(
    dp: &dyn DataPath,
    portal: &str,
    initiator: &str,
    page83: &str,
) -> Result<(Option<LunRef>, Vec<String>), String> {
    let luns = dp.visible_luns(portal, initiator).map_err(|e| e.to_string())?;
    let mut seen = Vec::new();
    for lun in luns {
        let page = dp
            .read_vpd_page83(portal, initiator, &lun)
            .map_err(|e| format!("VPD page 0x83 of {lun}: {e}"))?;
        match make_mp_page83_from_raw_page83(&hex(&page)) {
            Ok(id) if id.eq_ignore_ascii_case(page83) => return Ok((Some(lun), seen)),
            Ok(id) => seen.push(format!("{lun}: {id}")),
            Err(e) => seen.push(format!("{lun}: {e}")),
        }
    }
    Ok((None, seen))
}

impl Kit<'_> {
    /// The plugged-in data path, or why there is none to use.
    pub(crate) fn data_path(&self) -> Result<(Arc<dyn DataPath>, String, String), String> {
        let Some(d) = &self.opts.data_path else {
            return Err("no data path configured (give the initiator IQN and the portal HOST:PORT)".into());
        };
        let Some(driver) = &d.driver else {
            return Err("a data path is configured, but no iSCSI initiator is plugged in to the kit".into());
        };
        if self.storage_type != Some(StorageType::Iscsi) {
            return Err("the data-path checks need an iSCSI array".into());
        }
        if !self.caps.access_control.is_yes() {
            return Err("access_control is NO: the kit cannot present a LUN to the initiator".into());
        }
        Ok((Arc::clone(driver), d.portal.clone(), d.initiator.clone()))
    }

    pub(crate) fn page83_of(&self, o: ObjId) -> String {
        self.objs[o]
            .rec
            .get("page83_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    /// While `o` is presented: visible with the right page 83, capacity, write and read back.
    pub(crate) async fn datapath_presented(&mut self, o: ObjId) {
        let (dp, portal, init) = match self.data_path() {
            Ok(x) => x,
            Err(why) => {
                self.skip_all(&ALL, &why);
                return;
            }
        };
        if self.objs[o].presented.is_empty() {
            self.skip_all(
                &ALL,
                "L1 could not be presented (see startPresent.returns_groups)",
            );
            return;
        }
        let page83 = self.page83_of(o);
        let found = self.blocking(|| find(dp.as_ref(), &portal, &init, &page83));
        match found {
            Ok((Some(lun), _)) => {
                self.pass(
                    "datapath.visible_when_presented",
                    format!("{init} sees L1 as {lun}, VPD page 0x83 {page83}"),
                );
                self.dp_lun = Some(lun);
            }
            Ok((None, seen)) => {
                self.fail(
                    "datapath.visible_when_presented",
                    format!(
                        "L1 is presented, but no LUN {init} sees through {portal} has page 83 id {page83} (it sees: {})",
                        if seen.is_empty() { "nothing".to_string() } else { seen.join("; ") }
                    ),
                );
                self.skip_all(&ALL[1..3], "L1 is not visible to the initiator");
                return;
            }
            Err(e) => {
                self.fail("datapath.visible_when_presented", e);
                self.skip_all(&ALL[1..3], "the initiator could not list its LUNs");
                return;
            }
        }
        self.datapath_capacity(o, "after create").await;
        let Some(lun) = self.dp_lun.clone() else { return };
        let cap = self.blocking(|| dp.read_capacity(&portal, &init, &lun));
        let block = match cap {
            Ok(c) if c.block_size > 0 => c.block_size as usize,
            Ok(_) => {
                self.fail("datapath.write_read", "READ CAPACITY reports a block size of 0");
                return;
            }
            Err(e) => {
                self.fail("datapath.write_read", e.to_string());
                return;
            }
        };
        let stamp = format!("spindle-conformance {} {}", self.run_hex, self.opts.prefix);
        let pattern: Vec<u8> = stamp.bytes().cycle().take(block).collect();
        let wrote = self.blocking(|| dp.write_pattern(&portal, &init, &lun, 1, &pattern));
        if let Err(e) = wrote {
            self.fail("datapath.write_read", format!("writing block 1 of L1: {e}"));
            return;
        }
        let read = self.blocking(|| dp.read_back(&portal, &init, &lun, 1, 1));
        match read {
            Ok(data) if data == pattern => self.pass(
                "datapath.write_read",
                format!("a {block}-byte pattern written to block 1 of L1 read back unchanged"),
            ),
            Ok(data) => self.fail(
                "datapath.write_read",
                format!(
                    "block 1 of L1 read back {} bytes that differ from the {block} written",
                    data.len()
                ),
            ),
            Err(e) => self.fail("datapath.write_read", format!("reading block 1 of L1: {e}")),
        }
    }

    /// READ CAPACITY of `o` against its reported size.
    pub(crate) async fn datapath_capacity(&mut self, o: ObjId, when: &str) {
        let Ok((dp, portal, init)) = self.data_path() else {
            return;
        };
        let Some(lun) = self.dp_lun.clone() else { return };
        if self.objs[o].presented.is_empty() {
            return;
        }
        let size = self.objs[o].rec.get("size").and_then(serde_json::Value::as_i64);
        let cap = self.blocking(|| dp.read_capacity(&portal, &init, &lun));
        match cap {
            Ok(c) => {
                let bytes = c.bytes();
                self.verdict(
                    "datapath.capacity",
                    size.is_some_and(|s| u128::try_from(s).is_ok_and(|s| s == bytes)),
                    format!("{when}: READ CAPACITY says {bytes} bytes, as the plug-in reports"),
                    format!(
                        "{when}: READ CAPACITY says {bytes} bytes ({} blocks of {}), but the plug-in reports size {size:?}",
                        c.blocks, c.block_size
                    ),
                );
            }
            Err(e) => self.fail("datapath.capacity", format!("{when}: {e}")),
        }
    }

    /// After stopPresent: `o` is no longer visible.
    pub(crate) async fn datapath_unpresented(&mut self, o: ObjId) {
        let Ok((dp, portal, init)) = self.data_path() else {
            return;
        };
        if self.dp_lun.is_none() {
            self.skip(
                "datapath.invisible_when_unpresented",
                "L1 was never seen by the initiator (see datapath.visible_when_presented)",
            );
            return;
        }
        if !self.objs[o].presented.is_empty() {
            self.skip(
                "datapath.invisible_when_unpresented",
                "L1 could not be unpresented (see stopPresent.returns_groups)",
            );
            return;
        }
        let page83 = self.page83_of(o);
        let found = self.blocking(|| find(dp.as_ref(), &portal, &init, &page83));
        match found {
            Ok((None, _)) => self.pass(
                "datapath.invisible_when_unpresented",
                format!("{init} no longer sees L1"),
            ),
            Ok((Some(lun), _)) => self.fail(
                "datapath.invisible_when_unpresented",
                format!("L1 is no longer presented, but {init} still sees it as {lun}"),
            ),
            Err(e) => self.fail("datapath.invisible_when_unpresented", e),
        }
    }
}
