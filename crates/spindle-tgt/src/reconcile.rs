//! Bringing tgtd to the desired state with the fewest changes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::desired::{DesiredState, DesiredTarget};
use crate::error::TgtError;
use crate::names::{InitiatorAddress, Iqn, UserName};
use crate::show::{tgt_size_mb, LunInfo, TargetInfo};
use crate::tgtadm::{CachePolicy, LunSpec, Tgtadm};

/// One change made to tgtd. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A missing target was created.
    CreateTarget {
        /// Target id.
        tid: u32,
        /// Name.
        name: String,
    },
    /// An owned target that is not desired was deleted (with `--force`).
    DeleteTarget {
        /// Target id.
        tid: u32,
        /// Name.
        name: String,
    },
    /// An initiator name was added to a target's ACL.
    BindInitiator {
        /// Target id.
        tid: u32,
        /// Initiator.
        initiator: String,
    },
    /// An initiator name was removed from a target's ACL.
    UnbindInitiator {
        /// Target id.
        tid: u32,
        /// Initiator.
        initiator: String,
    },
    /// An initiator-address rule (such as `ALL`) was removed from a target's ACL.
    UnbindAddress {
        /// Target id.
        tid: u32,
        /// The rule.
        address: String,
    },
    /// A missing CHAP account was created.
    CreateAccount {
        /// Account name.
        user: String,
    },
    /// An account whose secret this client cannot vouch for was deleted and created again
    /// with the desired secret, and bound to the targets it was bound to.
    RecreateAccount {
        /// Account name.
        user: String,
    },
    /// An account that only owned targets used, and that is not desired, was deleted.
    DeleteAccount {
        /// Account name.
        user: String,
    },
    /// An account was bound to a target.
    BindAccount {
        /// Target id.
        tid: u32,
        /// Account name.
        user: String,
    },
    /// An account was unbound from a target.
    UnbindAccount {
        /// Target id.
        tid: u32,
        /// Account name.
        user: String,
    },
    /// A missing logical unit was created and configured.
    AddLun {
        /// Target id.
        tid: u32,
        /// LUN.
        lun: u64,
    },
    /// A logical unit whose parameters were wrong was deleted and created again.
    RecreateLun {
        /// Target id.
        tid: u32,
        /// LUN.
        lun: u64,
        /// What differed.
        reason: String,
    },
    /// A logical unit that is not desired was deleted.
    DeleteLun {
        /// Target id.
        tid: u32,
        /// LUN.
        lun: u64,
    },
    /// A logical unit was put online or offline.
    SetOnline {
        /// Target id.
        tid: u32,
        /// LUN.
        lun: u64,
        /// New state.
        online: bool,
    },
    /// tgt's idea of a logical unit's size was out of date; the backing file was reopened.
    RefreshSize {
        /// Target id.
        tid: u32,
        /// LUN.
        lun: u64,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateTarget { tid, name } => write!(f, "create target {tid} {name}"),
            Action::DeleteTarget { tid, name } => write!(f, "delete target {tid} {name}"),
            Action::BindInitiator { tid, initiator } => write!(f, "target {tid}: allow {initiator}"),
            Action::UnbindInitiator { tid, initiator } => write!(f, "target {tid}: disallow {initiator}"),
            Action::UnbindAddress { tid, address } => {
                write!(f, "target {tid}: remove address rule {address}")
            }
            Action::CreateAccount { user } => write!(f, "create account {user}"),
            Action::RecreateAccount { user } => write!(f, "re-create account {user}"),
            Action::DeleteAccount { user } => write!(f, "delete account {user}"),
            Action::BindAccount { tid, user } => write!(f, "target {tid}: bind account {user}"),
            Action::UnbindAccount { tid, user } => write!(f, "target {tid}: unbind account {user}"),
            Action::AddLun { tid, lun } => write!(f, "target {tid}: add LUN {lun}"),
            Action::RecreateLun { tid, lun, reason } => {
                write!(f, "target {tid}: re-create LUN {lun} ({reason})")
            }
            Action::DeleteLun { tid, lun } => write!(f, "target {tid}: delete LUN {lun}"),
            Action::SetOnline { tid, lun, online } => {
                write!(
                    f,
                    "target {tid}: LUN {lun} {}",
                    if *online { "online" } else { "offline" }
                )
            }
            Action::RefreshSize { tid, lun } => write!(f, "target {tid}: refresh size of LUN {lun}"),
        }
    }
}

/// An action that failed, with the (secret-free) error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What was attempted.
    pub action: Action,
    /// Why it failed.
    pub error: String,
}

/// What a reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Changes made, in order.
    pub actions: Vec<Action>,
    /// Changes attempted that failed (reconciliation goes on with the rest).
    pub failures: Vec<Failure>,
    /// The tid of every desired target that exists now.
    pub tids: BTreeMap<String, u32>,
    /// Targets outside the owned prefix, left alone.
    pub foreign_targets: Vec<String>,
}

impl Report {
    /// Nothing was changed and nothing failed.
    pub fn is_noop(&self) -> bool {
        self.actions.is_empty() && self.failures.is_empty()
    }

    /// Nothing failed.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }

    fn apply(&mut self, action: Action, op: impl FnOnce() -> Result<(), TgtError>) -> bool {
        match op() {
            Ok(()) => {
                tracing::info!(%action, "tgt reconcile");
                self.actions.push(action);
                true
            }
            Err(e) => {
                tracing::warn!(%action, error = %e, "tgt reconcile step failed");
                self.failures.push(Failure {
                    action,
                    error: e.to_string(),
                });
                false
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_noop() {
            return f.write_str("nothing to do");
        }
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        for x in &self.failures {
            writeln!(f, "FAILED {}: {}", x.action, x.error)?;
        }
        Ok(())
    }
}

/// Why the existing logical unit `lu` must be re-created to become `spec`, if it must:
/// device and backing-store type, backing file, identity (scsi_id, scsi_sn), cache policy.
/// (Vendor and product ids are not shown by tgtadm, so they cannot be compared.)
pub fn lun_mismatch(lu: &LunInfo, spec: &LunSpec) -> Option<String> {
    let mut why = Vec::new();
    if lu.device_type != "disk" {
        why.push(format!("type {} instead of disk", lu.device_type));
    }
    if lu.backing_store_type != "rdwr" {
        why.push(format!("backing store {} instead of rdwr", lu.backing_store_type));
    }
    if lu.backing_path.as_deref() != Some(spec.backing.as_str()) {
        why.push(format!(
            "backing file {} instead of {}",
            lu.backing_path.as_deref().unwrap_or("none"),
            spec.backing
        ));
    }
    if lu.scsi_id != spec.scsi_id.as_str() {
        why.push(format!("scsi_id {} instead of {}", lu.scsi_id, spec.scsi_id));
    }
    if lu.scsi_sn != spec.scsi_sn.as_str() {
        why.push(format!("scsi_sn {} instead of {}", lu.scsi_sn, spec.scsi_sn));
    }
    let cache = CachePolicy::from_oflags(lu.oflag_sync, lu.oflag_direct);
    if cache != spec.cache {
        why.push(format!("cache policy {cache:?} instead of {:?}", spec.cache));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// Reads tgtd's state through `adm` and makes the fewest changes that give it `desired`:
///
/// 1. owned targets (name under `owner_prefix`) that are not desired are deleted;
/// 2. missing accounts are created; an existing account whose secret this [`Tgtadm`] did
///    not set itself is re-created (tgtd never reveals secrets) and re-bound — unless a
///    foreign target uses it too, which is reported as a failure instead; accounts that are
///    not desired and were bound only to owned targets (or created by this client) are
///    deleted;
/// 3. for each desired target, the existing one (its tid reused) is corrected — address
///    rules such as `ALL` and extra initiators and accounts removed first, logical units
///    added, deleted, re-created when backing file, scsi_id, scsi_sn or cache policy
///    differ, reopened when tgt's size figure no longer matches the file, put on- or
///    offline, then missing accounts and initiators bound; a missing target is created with
///    its pinned tid or the smallest free one, given accounts and logical units, and its
///    initiators bound last, so nobody can log in to a half-built target.
///
/// Targets outside the prefix, and accounts bound to them, are never touched. Vendor and
/// product ids and the WCE bit are set whenever a unit is created, but tgtadm does not show
/// them, so they are not compared afterwards. A failed step is recorded in
/// [`Report::failures`] and the rest goes on; an error is returned only when the desired
/// state is invalid or tgtd's state cannot be read.
pub fn reconcile(adm: &Tgtadm, desired: &DesiredState) -> Result<Report, TgtError> {
    desired.validate()?;
    let snapshot = adm.targets()?;
    let accounts = adm.accounts()?;
    adm.forget_secrets_except(&accounts);

    let mut report = Report::default();
    let prefix = &desired.owner_prefix;
    let (owned, foreign): (Vec<TargetInfo>, Vec<TargetInfo>) =
        snapshot.into_iter().partition(|t| prefix.owns(&t.name));
    report.foreign_targets = foreign.iter().map(|t| t.name.clone()).collect();
    let wanted_names: BTreeSet<&str> = desired.targets.keys().map(Iqn::as_str).collect();

    // 1. Owned targets that are not desired.
    let mut live_owned = Vec::new();
    for t in &owned {
        if wanted_names.contains(t.name.as_str()) {
            live_owned.push(t.clone());
            continue;
        }
        let action = Action::DeleteTarget {
            tid: t.tid,
            name: t.name.clone(),
        };
        if !report.apply(action, || adm.delete_target(t.tid, true)) {
            live_owned.push(t.clone());
        }
    }

    // 2. Accounts.
    let wanted_accounts = desired.accounts();
    let mut deleted_accounts = BTreeSet::new();
    // Desired accounts whose secret cannot be vouched for: never bound to owned targets.
    let mut refused_accounts = BTreeSet::new();
    for (user, secret) in &wanted_accounts {
        if !accounts.iter().any(|a| a == user.as_str()) {
            let action = Action::CreateAccount {
                user: user.to_string(),
            };
            report.apply(action, || adm.new_account(user, secret));
        } else if !adm.knows_secret(user.as_str(), secret) {
            let action = Action::RecreateAccount {
                user: user.to_string(),
            };
            let foreign_users: Vec<&str> = foreign
                .iter()
                .filter(|t| t.accounts.iter().any(|a| a == user.as_str()))
                .map(|t| t.name.as_str())
                .collect();
            if !foreign_users.is_empty() {
                // tgt's accounts are global: resetting the secret would change it for
                // targets spindle does not own.
                report.failures.push(Failure {
                    action,
                    error: format!(
                        "account {user} is also bound to {}, outside {prefix}; its secret is left alone",
                        foreign_users.join(", ")
                    ),
                });
                refused_accounts.insert(user.to_string());
                continue;
            }
            let bound_to: Vec<u32> = live_owned
                .iter()
                .filter(|t| t.accounts.iter().any(|a| a == user.as_str()))
                .map(|t| t.tid)
                .collect();
            report.apply(action, || {
                adm.delete_account(user.as_str())?;
                adm.new_account(user, secret)?;
                for tid in bound_to {
                    adm.bind_account(tid, user)?;
                }
                Ok(())
            });
        }
    }
    for user in &accounts {
        if wanted_accounts.keys().any(|u| u.as_str() == user) {
            continue;
        }
        let on = |ts: &[TargetInfo]| ts.iter().any(|t| t.accounts.iter().any(|a| a == user));
        if on(&foreign) {
            continue;
        }
        if on(&owned) || adm.created_account(user) {
            let action = Action::DeleteAccount { user: user.clone() };
            if report.apply(action, || adm.delete_account(user)) {
                deleted_accounts.insert(user.clone());
            }
        }
    }

    // 3. Desired targets, in name order.
    let mut used: BTreeSet<u32> = foreign.iter().chain(&live_owned).map(|t| t.tid).collect();
    for (name, want) in &desired.targets {
        let tid = match live_owned.iter().find(|t| t.name == name.as_str()) {
            Some(have) => {
                correct_target(adm, &mut report, have, want, &deleted_accounts, &refused_accounts);
                have.tid
            }
            None => {
                let reserved: BTreeSet<u32> = desired
                    .targets
                    .iter()
                    .filter(|(n, _)| *n != name)
                    .filter_map(|(_, t)| t.tid)
                    .collect();
                let tid = match want.tid {
                    Some(pin) if !used.contains(&pin) => pin,
                    pin => {
                        if let Some(pin) = pin {
                            tracing::warn!(%name, pin, "pinned tid is taken; using another");
                        }
                        match (1..=i32::MAX as u32).find(|t| !used.contains(t) && !reserved.contains(t)) {
                            Some(t) => t,
                            None => return Err(TgtError::NoFreeTid(name.to_string())),
                        }
                    }
                };
                let action = Action::CreateTarget {
                    tid,
                    name: name.to_string(),
                };
                if !report.apply(action, || adm.new_target(tid, name)) {
                    continue;
                }
                used.insert(tid);
                build_target(adm, &mut report, tid, want, &refused_accounts);
                tid
            }
        };
        report.tids.insert(name.to_string(), tid);
    }
    Ok(report)
}

fn add_lun(adm: &Tgtadm, report: &mut Report, tid: u32, lun: u64, spec: &LunSpec) {
    report.apply(Action::AddLun { tid, lun }, || adm.add_lun(tid, lun, spec));
}

fn bind_accounts(adm: &Tgtadm, report: &mut Report, tid: u32, users: impl Iterator<Item = UserName>) {
    for user in users {
        let action = Action::BindAccount {
            tid,
            user: user.to_string(),
        };
        report.apply(action, || adm.bind_account(tid, &user));
    }
}

fn bind_initiators(adm: &Tgtadm, report: &mut Report, tid: u32, initiators: impl Iterator<Item = Iqn>) {
    for initiator in initiators {
        let action = Action::BindInitiator {
            tid,
            initiator: initiator.to_string(),
        };
        report.apply(action, || adm.bind_initiator(tid, &initiator));
    }
}

/// A freshly created target: accounts, units, and the ACL last.
fn build_target(
    adm: &Tgtadm,
    report: &mut Report,
    tid: u32,
    want: &DesiredTarget,
    refused_accounts: &BTreeSet<String>,
) {
    let users = want
        .accounts
        .keys()
        .filter(|u| !refused_accounts.contains(u.as_str()));
    bind_accounts(adm, report, tid, users.cloned());
    for (lun, spec) in &want.luns {
        add_lun(adm, report, tid, *lun, spec);
    }
    bind_initiators(adm, report, tid, want.initiators.iter().cloned());
}

/// An existing owned target: revoke first, then units, then grant.
fn correct_target(
    adm: &Tgtadm,
    report: &mut Report,
    have: &TargetInfo,
    want: &DesiredTarget,
    deleted_accounts: &BTreeSet<String>,
    refused_accounts: &BTreeSet<String>,
) {
    let tid = have.tid;
    for address in &have.acl_addresses {
        let action = Action::UnbindAddress {
            tid,
            address: address.clone(),
        };
        report.apply(action, || {
            adm.unbind_address(tid, &InitiatorAddress::new(address.as_str())?)
        });
    }
    for initiator in &have.acl_initiators {
        if !want.initiators.iter().any(|i| i.as_str() == initiator) {
            let action = Action::UnbindInitiator {
                tid,
                initiator: initiator.clone(),
            };
            report.apply(action, || adm.unbind_initiator(tid, initiator));
        }
    }
    for user in &have.accounts {
        if !want.accounts.keys().any(|u| u.as_str() == user) && !deleted_accounts.contains(user) {
            let action = Action::UnbindAccount {
                tid,
                user: user.clone(),
            };
            report.apply(action, || adm.unbind_account(tid, user));
        }
    }

    for lu in &have.luns {
        if lu.lun != 0 && !want.luns.contains_key(&lu.lun) {
            let action = Action::DeleteLun { tid, lun: lu.lun };
            report.apply(action, || adm.delete_lu(tid, lu.lun));
        }
    }
    for (lun, spec) in &want.luns {
        let Some(lu) = have.lun(*lun) else {
            add_lun(adm, report, tid, *lun, spec);
            continue;
        };
        if let Some(reason) = lun_mismatch(lu, spec) {
            let action = Action::RecreateLun {
                tid,
                lun: *lun,
                reason,
            };
            report.apply(action, || {
                adm.delete_lu(tid, *lun)?;
                adm.add_lun(tid, *lun, spec)
            });
            continue;
        }
        let file_len = std::fs::metadata(spec.backing.as_path()).map(|m| m.len());
        match file_len {
            Ok(len) if tgt_size_mb(len) != lu.size_mb => {
                let action = Action::RefreshSize { tid, lun: *lun };
                report.apply(action, || {
                    adm.refresh_lu_size(tid, *lun, &spec.backing, spec.online)
                });
            }
            Err(e) => {
                report.failures.push(Failure {
                    action: Action::RefreshSize { tid, lun: *lun },
                    error: TgtError::Io {
                        path: spec.backing.as_path().to_path_buf(),
                        source: e,
                    }
                    .to_string(),
                });
            }
            Ok(_) if lu.online != spec.online => {
                let action = Action::SetOnline {
                    tid,
                    lun: *lun,
                    online: spec.online,
                };
                report.apply(action, || adm.set_lu_online(tid, *lun, spec.online));
            }
            Ok(_) => {}
        }
    }

    let missing_accounts = want
        .accounts
        .keys()
        .filter(|u| !have.accounts.iter().any(|a| a == u.as_str()) && !refused_accounts.contains(u.as_str()))
        .cloned()
        .collect::<Vec<_>>();
    bind_accounts(adm, report, tid, missing_accounts.into_iter());
    let missing_initiators = want
        .initiators
        .iter()
        .filter(|i| !have.acl_initiators.iter().any(|a| a == i.as_str()))
        .cloned()
        .collect::<Vec<_>>();
    bind_initiators(adm, report, tid, missing_initiators.into_iter());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{BackingPath, ScsiId, ScsiSn};

    fn spec() -> LunSpec {
        LunSpec {
            backing: BackingPath::new("/srv/a.img").expect("valid"),
            scsi_id: ScsiId::new("6001405abcdef0123456789abcdef012").expect("valid"),
            scsi_sn: ScsiSn::new("SN1").expect("valid"),
            vendor_id: Default::default(),
            product_id: Default::default(),
            online: true,
            cache: CachePolicy::WriteThrough,
        }
    }

    fn info() -> LunInfo {
        LunInfo {
            lun: 1,
            device_type: "disk".into(),
            scsi_id: "6001405abcdef0123456789abcdef012".into(),
            scsi_sn: "SN1".into(),
            backing_store_type: "rdwr".into(),
            backing_path: Some("/srv/a.img".into()),
            oflag_sync: true,
            online: true,
            ..LunInfo::default()
        }
    }

    #[test]
    fn mismatches() {
        assert_eq!(lun_mismatch(&info(), &spec()), None);
        let mut lu = info();
        lu.scsi_id = "IET     00010001".into();
        assert!(lun_mismatch(&lu, &spec()).expect("valid").contains("scsi_id"));
        let mut lu = info();
        lu.oflag_sync = false;
        assert!(lun_mismatch(&lu, &spec())
            .expect("valid")
            .contains("cache policy"));
        let mut lu = info();
        lu.backing_path = None;
        assert!(lun_mismatch(&lu, &spec())
            .expect("valid")
            .contains("backing file none"));
        let mut lu = info();
        lu.online = false;
        assert_eq!(
            lun_mismatch(&lu, &spec()),
            None,
            "online is fixed in place, not by re-creating"
        );
    }
}
