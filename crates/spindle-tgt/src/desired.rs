//! The export state spindle wants tgtd to have, persisted by spindle (tgtd forgets
//! everything when it stops, and its own dump loses CHAP secrets).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::TgtError;
use crate::names::{BackingPath, Iqn, IqnPrefix, Secret, UserName};
use crate::tgtadm::{LunSpec, MAX_LUN};

/// Every target spindle exports through one tgtd instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    /// spindle owns the targets whose names start with this; reconciliation never touches
    /// any other target (nor accounts bound to one).
    pub owner_prefix: IqnPrefix,
    /// If set, every backing file must lie under this directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing_root: Option<BackingPath>,
    /// Targets by name.
    #[serde(default)]
    pub targets: BTreeMap<Iqn, DesiredTarget>,
}

/// One target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DesiredTarget {
    /// Target id to use when the target has to be created (keeps the NAA-3 designator tgt
    /// derives from the tid stable across tgtd restarts). Without it, the smallest free tid
    /// is taken, targets being created in name order. An existing target keeps its tid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// Initiator names allowed to log in (the IQN ACL). Empty: nobody.
    #[serde(default)]
    pub initiators: BTreeSet<Iqn>,
    /// Incoming CHAP accounts. Non-empty: initiators must authenticate with one of them.
    /// tgt's accounts are global, so a user name used by several targets must have the same
    /// secret everywhere.
    #[serde(default)]
    pub accounts: BTreeMap<UserName, Secret>,
    /// Logical units by LUN (1..=16383; LUN 0 is tgt's controller).
    #[serde(default)]
    pub luns: BTreeMap<u64, LunSpec>,
}

impl DesiredState {
    /// An empty state owning `owner_prefix`.
    pub fn new(owner_prefix: IqnPrefix) -> DesiredState {
        DesiredState {
            owner_prefix,
            backing_root: None,
            targets: BTreeMap::new(),
        }
    }

    /// Checks what the types cannot: names under the prefix, LUN range, unique pinned tids,
    /// scsi_ids, serial numbers and backing files, one secret per account name, backing
    /// files under `backing_root`.
    pub fn validate(&self) -> Result<(), TgtError> {
        let bad = |s: String| Err(TgtError::InvalidDesiredState(s));
        let mut tids = BTreeMap::new();
        let mut ids = BTreeMap::new();
        let mut sns = BTreeMap::new();
        let mut files = BTreeMap::new();
        let mut secrets: BTreeMap<&UserName, (&Secret, &Iqn)> = BTreeMap::new();
        for (name, target) in &self.targets {
            if !self.owner_prefix.owns(name.as_str()) {
                return bad(format!(
                    "target {name} is not under the owned prefix {}",
                    self.owner_prefix
                ));
            }
            if let Some(tid) = target.tid {
                if tid == 0 || tid > i32::MAX as u32 {
                    return bad(format!("target {name}: tid {tid} is out of range"));
                }
                if let Some(other) = tids.insert(tid, name) {
                    return bad(format!("targets {other} and {name} both pin tid {tid}"));
                }
            }
            for (user, secret) in &target.accounts {
                match secrets.get(user) {
                    Some((s, other)) if *s != secret => {
                        return bad(format!(
                            "account {user} has different secrets on targets {other} and {name} (tgt's accounts are global)"
                        ))
                    }
                    Some(_) => {}
                    None => {
                        secrets.insert(user, (secret, name));
                    }
                }
            }
            for (lun, spec) in &target.luns {
                let at = format!("{name} LUN {lun}");
                if *lun == 0 || *lun > MAX_LUN {
                    return bad(format!("{at}: LUN must be between 1 and {MAX_LUN}"));
                }
                if let Some(root) = &self.backing_root {
                    if !spec.backing.is_under(root) {
                        return bad(format!("{at}: backing file {} is not under {root}", spec.backing));
                    }
                }
                if let Some(other) = ids.insert(spec.scsi_id.as_str(), at.clone()) {
                    return bad(format!("{other} and {at} have the same scsi_id {}", spec.scsi_id));
                }
                if let Some(other) = sns.insert(spec.scsi_sn.as_str(), at.clone()) {
                    return bad(format!("{other} and {at} have the same scsi_sn {}", spec.scsi_sn));
                }
                if let Some(other) = files.insert(spec.backing.as_str(), at.clone()) {
                    return bad(format!(
                        "{other} and {at} share the backing file {}",
                        spec.backing
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every desired account with its secret (validated consistent by [`Self::validate`]).
    pub fn accounts(&self) -> BTreeMap<&UserName, &Secret> {
        self.targets.values().flat_map(|t| t.accounts.iter()).collect()
    }

    /// Pins every target's tid to the one it has now (from a reconcile report), so that
    /// after a tgtd restart each target gets the same tid back.
    pub fn pin_tids(&mut self, tids: &BTreeMap<String, u32>) {
        for (name, target) in &mut self.targets {
            if let Some(tid) = tids.get(name.as_str()) {
                target.tid = Some(*tid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{ScsiId, ScsiSn};
    use crate::tgtadm::CachePolicy;

    fn lun(path: &str, id: &str, sn: &str) -> LunSpec {
        LunSpec {
            backing: BackingPath::new(path).expect("valid"),
            scsi_id: ScsiId::new(id).expect("valid"),
            scsi_sn: ScsiSn::new(sn).expect("valid"),
            vendor_id: Default::default(),
            product_id: Default::default(),
            online: true,
            cache: CachePolicy::WriteBack,
        }
    }

    fn state() -> DesiredState {
        let mut s = DesiredState::new(IqnPrefix::new("iqn.2024-01.io.spindle:").expect("valid"));
        let mut t = DesiredTarget::default();
        t.initiators
            .insert(Iqn::new("iqn.2024-01.io.host:a").expect("valid"));
        t.accounts.insert(
            UserName::new("alice").expect("valid"),
            Secret::new("alice-secret-1").expect("valid"),
        );
        t.luns
            .insert(1, lun("/srv/l/1.img", "6001405abcdef0123456789abcdef012", "SN1"));
        s.targets
            .insert(Iqn::new("iqn.2024-01.io.spindle:t1").expect("valid"), t);
        s
    }

    #[test]
    fn round_trips_through_json_with_its_secrets() {
        let s = state();
        s.validate().expect("valid");
        let json = serde_json::to_string(&s).expect("valid");
        assert!(
            json.contains("alice-secret-1"),
            "the persisted form keeps the secret"
        );
        let back: DesiredState = serde_json::from_str(&json).expect("valid");
        assert_eq!(back, s);
        assert!(
            !format!("{s:?}").contains("alice-secret-1"),
            "Debug never shows it"
        );
    }

    #[test]
    fn refuses_contradictions() {
        let mut s = state();
        s.targets.insert(
            Iqn::new("iqn.2024-01.io.other:x").expect("valid"),
            DesiredTarget::default(),
        );
        assert!(s.validate().is_err());

        let mut s = state();
        let mut t2 = DesiredTarget::default();
        t2.accounts.insert(
            UserName::new("alice").expect("valid"),
            Secret::new("another-secret-2").expect("valid"),
        );
        s.targets
            .insert(Iqn::new("iqn.2024-01.io.spindle:t2").expect("valid"), t2);
        let err = s.validate().expect_err("invalid").to_string();
        assert!(
            err.contains("different secrets") && !err.contains("another-secret"),
            "{err}"
        );

        let mut s = state();
        let t = s.targets.values_mut().next().expect("valid");
        t.luns
            .insert(2, lun("/srv/l/2.img", "6001405abcdef0123456789abcdef012", "SN2"));
        assert!(s.validate().is_err(), "duplicate scsi_id");

        let mut s = state();
        s.backing_root = Some(BackingPath::new("/elsewhere").expect("valid"));
        assert!(s.validate().is_err(), "outside the backing root");

        let mut s = state();
        s.targets
            .values_mut()
            .next()
            .expect("valid")
            .luns
            .insert(0, lun("/srv/l/0.img", "6001405abcdef0123456789abcdef000", "SN0"));
        assert!(s.validate().is_err(), "LUN 0");

        let bad = r#"{"owner_prefix":"iqn.2024-01.io.spindle:","targets":{"iqn.2024-01.io.spindle:t":{"luns":{"1":{"backing":"/a/../etc/shadow","scsi_id":"6001405abcdef0123456789abcdef012","scsi_sn":"S"}}}}}"#;
        assert!(
            serde_json::from_str::<DesiredState>(bad).is_err(),
            "traversal refused at load"
        );
    }
}
