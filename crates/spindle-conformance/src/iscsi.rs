//! The kit's data path through a real iSCSI initiator (`spindle-iscsi`): what a host sees.

use crate::datapath::{Capacity, DataPath, LunRef};
use crate::error::ConformanceError;
use spindle_iscsi::{Chap, Discovery, LoginOptions, Lun, Session};

/// Logs in as the configured initiator for every operation (one session per call, as a host
/// that rescans would), with the array's CHAP credentials when it requires them.
#[derive(Debug, Clone)]
pub struct IscsiDataPath {
    chap: Option<(String, String)>,
}

impl IscsiDataPath {
    /// A data path; `chap` is `(username, secret)` from the ss_record when `chap` is set.
    pub fn new(chap: Option<(String, String)>) -> Self {
        IscsiDataPath { chap }
    }

    /// The credentials of an ss_record: `Some` when `chap` is true and a username is set.
    pub fn from_ss_record(ss: &serde_json::Value) -> Self {
        let chap = (ss.get("chap").and_then(|c| c.as_bool()) == Some(true))
            .then(|| {
                let user = ss.get("username").and_then(|u| u.as_str())?;
                let secret = ss.get("passwd").and_then(|p| p.as_str()).unwrap_or_default();
                Some((user.to_string(), secret.to_string()))
            })
            .flatten();
        IscsiDataPath { chap }
    }

    fn options(&self, initiator: &str) -> LoginOptions {
        let opts = LoginOptions::new(initiator);
        match &self.chap {
            Some((user, secret)) => opts.with_chap(Chap::new(user.clone(), secret.as_bytes().to_vec())),
            None => opts,
        }
    }

    fn session(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
    ) -> Result<(Session, Lun), ConformanceError> {
        let l = Lun::from_number(lun.lun)
            .ok_or_else(|| ConformanceError::DataPath(format!("LUN {} cannot be addressed", lun.lun)))?;
        let s = Session::login_with(portal, &lun.target, &self.options(initiator)).map_err(|e| {
            ConformanceError::DataPath(format!("login to {} as {initiator}: {e}", lun.target))
        })?;
        Ok((s, l))
    }
}

fn fail(what: &str, lun: &LunRef, e: spindle_iscsi::IscsiError) -> ConformanceError {
    ConformanceError::DataPath(format!("{what} on {} LUN {}: {e}", lun.target, lun.lun))
}

impl DataPath for IscsiDataPath {
    fn visible_luns(&self, portal: &str, initiator: &str) -> Result<Vec<LunRef>, ConformanceError> {
        // Discovery sessions carry no CHAP (tgt, like most targets, authenticates logins to a
        // target, not discovery); each target is then logged in to with the array's credentials.
        let targets = Discovery::send_targets_with(portal, &LoginOptions::new(initiator))
            .map_err(|e| ConformanceError::DataPath(format!("discovery at {portal} as {initiator}: {e}")))?;
        let mut out = Vec::new();
        for t in targets {
            // A target the initiator may not log in to shows it nothing.
            let Ok(mut s) = Session::login_with(portal, &t.name, &self.options(initiator)) else {
                continue;
            };
            let luns = s.report_luns();
            let _ = s.logout();
            for l in luns.unwrap_or_default() {
                // LUN 0 of a tgt target is its controller, not storage.
                match l.number() {
                    Some(0) | None => {}
                    Some(n) => out.push(LunRef {
                        target: t.name.clone(),
                        lun: u64::from(n),
                    }),
                }
            }
        }
        Ok(out)
    }

    fn read_capacity(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
    ) -> Result<Capacity, ConformanceError> {
        let (mut s, l) = self.session(portal, initiator, lun)?;
        let c = s
            .read_capacity16(l)
            .map_err(|e| fail("READ CAPACITY(16)", lun, e))?;
        let _ = s.logout();
        Ok(Capacity {
            block_size: c.block_length,
            blocks: c.last_lba + 1,
        })
    }

    fn read_vpd_page83(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
    ) -> Result<Vec<u8>, ConformanceError> {
        let (mut s, l) = self.session(portal, initiator, lun)?;
        let id = s.inquiry_vpd83(l).map_err(|e| fail("INQUIRY VPD 0x83", lun, e))?;
        let _ = s.logout();
        Ok(id.page)
    }

    fn write_pattern(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
        lba: u64,
        data: &[u8],
    ) -> Result<(), ConformanceError> {
        let (mut s, l) = self.session(portal, initiator, lun)?;
        s.write(l, lba, data).map_err(|e| fail("WRITE(16)", lun, e))?;
        s.synchronize_cache(l)
            .map_err(|e| fail("SYNCHRONIZE CACHE", lun, e))?;
        let _ = s.logout();
        Ok(())
    }

    fn read_back(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
        lba: u64,
        blocks: u32,
    ) -> Result<Vec<u8>, ConformanceError> {
        let (mut s, l) = self.session(portal, initiator, lun)?;
        let data = s
            .read(l, lba, u64::from(blocks))
            .map_err(|e| fail("READ(16)", lun, e))?;
        let _ = s.logout();
        Ok(data)
    }
}
