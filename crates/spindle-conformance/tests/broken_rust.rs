//! "The kit proves it can fail": in-process plug-ins that delegate to the simulated array and
//! break exactly one behaviour each. Every one must fail the check for that rule, and only it.

mod common;

use common::*;
use serde_json::Value;
use spindle_api::{
    Abilities, AccessGrp, ExceptionKind, Field, Flag, Host, Info, MaxEntries, OpAbility, PluginException,
    PluginMetadata, PluginResult, SeRecord, SeType, SsRecord, StorageArrayPlugin,
};
use spindle_plugin_sim::SimArray;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a wrapper breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breakage {
    /// createSnap refuses a bad snapshot name with a key the call was not given.
    SnapNameKeyNotGiven,
    /// remove stops presenting the element and removes it.
    RemoveWhilePresented,
    /// remove refuses, but stops presenting the element first.
    RemoveUnpresents,
    /// list names every element twice.
    ListTwice,
    /// snapshot is declared UNSUPPORTED, yet createSnap works.
    SnapshotUnsupportedButWorks,
    /// max_access_entries is declared 4; nothing enforces it (the sim allows 64).
    MaxEntriesNotEnforced,
    /// getAccessGroups(se) lists every group.
    AccessGroupsIgnoreSe,
    /// isRestorable says True; snapRestore always refuses.
    RestoreDisagrees,
    /// create under a name in use hands back the existing element.
    DuplicateLunName,
    /// createAccessGroups of an existing name silently does nothing.
    DuplicateGroupName,
    /// create of a negative size makes a 1 MiB LUN.
    NegativeSizeAccepted,
    /// create of size 0 makes a 1 MiB LUN (rounds it up to one extent).
    ZeroSizeAccepted,
    /// create makes an element of size 0 (as 1 MiB), then refuses the call.
    ZeroSizeRefusedAfterCreating,
    /// create hands a name to a shell and a file system unchecked: shell metacharacters and
    /// names over 255 bytes fail with OperationFailedEx instead of being refused as invalid.
    NameReachesShell,
    /// getCurrentSnaps() leaves out the newest snapshot.
    CurrentSnapsMissing,
    /// resize is ONLINE, but refused while the element is presented.
    ResizeRefusedWhilePresented,
    /// splitclone_is_sync is declared YES; the split runs asynchronously.
    SplitDeclaredSync,
    /// getAsyncProgress reports a split at 90%, then at 10% or less.
    ProgressBackwards,
    /// create changes the ss_uuid it was given.
    CreateBreaksUpdateRules,
    /// remove of an element that does not exist raises the validate-only InvalidStorageArrayEx.
    ValidateOnlyExceptionFromRemove,
    /// startPresent ignores group names it does not know.
    UnknownGroupIgnored,
    /// offline also stops presenting the element.
    OfflineUnpresents,
    /// create ignores a vol_group_name it does not know and uses the first pool.
    UnknownPoolIgnored,
    /// list leaves out page83_id.
    ListWithoutPage83,
    /// resize is declared UNSUPPORTED, yet resize works.
    ResizeUnsupportedButWorks,
    /// create refuses a negative size with ValueFormatEx naming `volume_size`, a key of its
    /// own making, instead of the se_record's `size`.
    NegativeSizeKeyNotGiven,
    /// getInfo of an element it does not have raises MissingKeyEx naming `lun_id`, a key no
    /// record carries (neither the guides' nor the plug-in's own).
    UnknownElementKeyNotGiven,
}

use Breakage::*;

#[derive(Debug)]
struct Broken(Breakage);

fn abilities(b: Breakage) -> Abilities {
    let mut a = SimArray::abilities();
    match b {
        SnapshotUnsupportedButWorks => a.snapshot = OpAbility::Unsupported,
        MaxEntriesNotEnforced => a.max_access_entries = MaxEntries::Limited(4),
        SplitDeclaredSync => a.splitclone_is_sync = Flag::Yes,
        ResizeUnsupportedButWorks => a.resize = OpAbility::Unsupported,
        _ => {}
    }
    a
}

fn presented_to(host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> Vec<String> {
    match SIM.get_info(host, ss, Some(se)) {
        Ok(Info::Element(r)) => r.access_grp_names.into_value().unwrap_or_default(),
        _ => Vec::new(),
    }
}

impl StorageArrayPlugin for Broken {
    fn class_name(&self) -> &'static str {
        "conformance.broken.Sim"
    }
    fn metadata(&self) -> PluginMetadata {
        let mut m = SimArray::plugin_metadata();
        m.plugin_ability = abilities(self.0);
        m
    }
    fn get_capabilities(&self, h: &dyn Host, ss: &SsRecord) -> PluginResult<Abilities> {
        SIM.get_capabilities(h, ss)?;
        Ok(abilities(self.0))
    }
    fn get_access_groups(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<AccessGrp>> {
        if self.0 == AccessGroupsIgnoreSe {
            return SIM.get_access_groups(h, ss, None);
        }
        SIM.get_access_groups(h, ss, se)
    }
    fn create_access_groups(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        g: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>> {
        if self.0 == DuplicateGroupName {
            let have: Vec<String> = SIM
                .get_access_groups(h, ss, None)?
                .into_iter()
                .filter_map(|x| x.grp_name.into_value())
                .collect();
            let new: Vec<AccessGrp> = g
                .iter()
                .filter(|x| x.grp_name.value().is_none_or(|n| !have.contains(n)))
                .cloned()
                .collect();
            if new.is_empty() {
                return SIM.get_access_groups(h, ss, None);
            }
            return SIM.create_access_groups(h, ss, &new);
        }
        SIM.create_access_groups(h, ss, g)
    }
    fn list(&self, h: &dyn Host, ss: &SsRecord, t: &[SeType]) -> PluginResult<Vec<SeRecord>> {
        let mut v = SIM.list(h, ss, t)?;
        match self.0 {
            ListTwice => {
                let again = v.clone();
                v.extend(again);
            }
            ListWithoutPage83 => {
                for r in &mut v {
                    r.page83_id = Field::Absent;
                }
            }
            _ => {}
        }
        Ok(v)
    }
    fn get_info(&self, h: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<Info> {
        match SIM.get_info(h, ss, se) {
            Err(e) if self.0 == UnknownElementKeyNotGiven && se.is_some() => {
                Err(PluginException::missing_key("lun_id", e.message))
            }
            other => other,
        }
    }
    fn offline(&self, h: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()> {
        if self.0 == OfflineUnpresents {
            let groups = presented_to(h, ss, se);
            if !groups.is_empty() {
                SIM.stop_present(h, ss, se, &groups)?;
            }
        }
        SIM.offline(h, ss, se)
    }
    fn create(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        thin: bool,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord> {
        let mut se = se.clone();
        match self.0 {
            DuplicateLunName => {
                if let Some(name) = se.name.value() {
                    let existing = SIM
                        .list(h, ss, &[SeType::Lun, SeType::SnapClone])?
                        .into_iter()
                        .find(|r| r.name.value() == Some(name));
                    if let Some(r) = existing {
                        return Ok(r);
                    }
                }
            }
            NegativeSizeAccepted if se.size.value().is_some_and(|s| *s < 0) => {
                se.size = Field::Value(1 << 20);
            }
            ZeroSizeAccepted if se.size.value() == Some(&0) => {
                se.size = Field::Value(1 << 20);
            }
            ZeroSizeRefusedAfterCreating if se.size.value() == Some(&0) => {
                se.size = Field::Value(1 << 20);
                SIM.create(h, ss, &se, thin, qos)?;
                return Err(PluginException::invalid_value("size 0 holds no block"));
            }
            NameReachesShell => {
                if let Some(name) = se.name.value() {
                    if name.contains(spindle_api::names::SHELL_META) {
                        return Err(PluginException::operation_failed(format!(
                            "sh: 1: {}: not found",
                            name.rsplit(';').next().unwrap_or(name)
                        )));
                    }
                    if name.len() > 255 {
                        return Err(PluginException::operation_failed("File name too long"));
                    }
                }
            }
            NegativeSizeKeyNotGiven if se.size.value().is_some_and(|s| *s < 0) => {
                return Err(PluginException::value_format(
                    "volume_size",
                    "the volume size must be positive",
                ));
            }
            UnknownPoolIgnored => {
                if let Some(p) = se.vol_group_name.value() {
                    let known = match SIM.get_info(h, ss, None)? {
                        Info::Server(s) => s
                            .vol_groups
                            .into_value()
                            .unwrap_or_default()
                            .iter()
                            .any(|v| v.vol_name.value() == Some(p)),
                        Info::Element(_) => true,
                    };
                    if !known {
                        se.vol_group_name = Field::Absent;
                    }
                }
            }
            _ => {}
        }
        let mut r = SIM.create(h, ss, &se, thin, qos)?;
        if self.0 == CreateBreaksUpdateRules {
            r.ss_uuid = Field::Value("some-other-array".into());
        }
        Ok(r)
    }
    fn start_present(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        g: &[String],
    ) -> PluginResult<SeRecord> {
        if self.0 == UnknownGroupIgnored {
            let have: Vec<String> = SIM
                .get_access_groups(h, ss, None)?
                .into_iter()
                .filter_map(|x| x.grp_name.into_value())
                .collect();
            let known: Vec<String> = g.iter().filter(|n| have.contains(n)).cloned().collect();
            return SIM.start_present(h, ss, se, &known);
        }
        SIM.start_present(h, ss, se, g)
    }
    fn resize(&self, h: &dyn Host, ss: &SsRecord, se: &SeRecord, n: i64) -> PluginResult<SeRecord> {
        if self.0 == ResizeRefusedWhilePresented && !presented_to(h, ss, se).is_empty() {
            return Err(PluginException::busy("cannot resize while presented"));
        }
        SIM.resize(h, ss, se, n)
    }
    fn remove(&self, h: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()> {
        match self.0 {
            RemoveWhilePresented | RemoveUnpresents => {
                let groups = presented_to(h, ss, se);
                if !groups.is_empty() {
                    SIM.stop_present(h, ss, se, &groups)?;
                    if self.0 == RemoveUnpresents {
                        return Err(PluginException::busy("the element was presented"));
                    }
                }
            }
            ValidateOnlyExceptionFromRemove if SIM.get_info(h, ss, Some(se)).is_err() => {
                return Err(PluginException::new(
                    ExceptionKind::InvalidStorageArrayEx,
                    "no such element",
                ));
            }
            _ => {}
        }
        SIM.remove(h, ss, se)
    }
    fn is_snapable(&self, h: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<bool> {
        if self.0 == SnapshotUnsupportedButWorks {
            return Ok(false);
        }
        SIM.is_snapable(h, ss, se)
    }
    fn create_multi_snap(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        r: &[SeRecord],
        s: Option<&SeRecord>,
    ) -> PluginResult<SeRecord> {
        if self.0 == SnapshotUnsupportedButWorks {
            return Err(PluginException::no_such_operation("snapshots are not supported"));
        }
        SIM.create_multi_snap(h, ss, r, s)
    }
    fn create_snap(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        s: Option<&SeRecord>,
    ) -> PluginResult<SeRecord> {
        if self.0 == SnapNameKeyNotGiven && s.and_then(|s| s.name.value()).is_some_and(|n| n.contains('/')) {
            return Err(PluginException::value_format("snap_name", "snap_name holds '/'"));
        }
        SIM.create_snap(h, ss, se, s)
    }
    fn get_async_progress(&self, h: &dyn Host, ss: &SsRecord, rec: &Value) -> PluginResult<Value> {
        let mut v = SIM.get_async_progress(h, ss, rec)?;
        if self.0 == ProgressBackwards {
            static REPORTED_HIGH: AtomicBool = AtomicBool::new(false);
            if let Some(p) = v.get("async_progress").and_then(Value::as_i64) {
                let high = !REPORTED_HIGH.swap(true, Ordering::SeqCst);
                v["async_progress"] = Value::from(if high { 90 } else { p.min(10) });
            }
        }
        Ok(v)
    }
    fn is_restorable(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        s: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<bool> {
        if self.0 == RestoreDisagrees {
            return Ok(true);
        }
        SIM.is_restorable(h, ss, s, se)
    }
    fn snap_restore(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        s: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<()> {
        if self.0 == RestoreDisagrees {
            return Err(PluginException::new(
                ExceptionKind::SnapRestoreNotSafeEx,
                "never safe",
            ));
        }
        SIM.snap_restore(h, ss, s, se)
    }
    fn get_current_snaps(
        &self,
        h: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>> {
        let mut v = SIM.get_current_snaps(h, ss, se)?;
        if self.0 == CurrentSnapsMissing && se.is_none() {
            v.pop();
        }
        Ok(v)
    }
    forward_to_sim!(
        implemented_optional,
        validate,
        get_storage_names,
        remove_access_groups,
        rename_access_group,
        add_to_access_group,
        remove_from_access_group,
        discover,
        start,
        stop,
        refresh,
        update_se_records,
        get_status,
        online,
        stop_present,
        get_clone_limits,
        is_cloneable,
        clone_element,
        is_splittable,
        split_clone,
        clone_from_snap,
        get_current_clones,
        get_snap_limits,
        snap_remove,
        get_qos_list,
        set_qos,
    );
}

/// Runs the kit against the wrapper and compares the failing checks with `expected`, exactly.
async fn expect_only(b: Breakage, expected: &[&str]) {
    let state = tempfile::tempdir().expect("tempdir");
    let scratch = tempfile::tempdir().expect("tempdir");
    let m = manager(vec![Arc::new(Broken(b))], vec![], scratch.path()).await;
    let p = plugin(&m, "conformance.broken.Sim");
    let mut ss = sim_ss(state.path(), "iSCSIStorage");
    if b == ProgressBackwards {
        // Two seconds of split: several polls while it runs.
        ss["extra_info"] = Value::String(format!(
            "state_dir={};split_ms_per_gib=2000",
            state.path().display()
        ));
    }
    if b == SplitDeclaredSync {
        // The split the manager refuses goes on in the array; let it end before the removals.
        ss["extra_info"] = Value::String(format!("state_dir={};split_ms_per_gib=1", state.path().display()));
    }
    let opts = options(ss.clone());
    let report = spindle_conformance::run(&m, p, &opts).await;
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let got = failing(&report);
    check_report(
        &report,
        got == want,
        &format!("{b:?}: expected exactly {want:?} to fail, got {got:?}"),
    );
    if b == ProgressBackwards {
        check_report(
            &report,
            report.to_text().contains("progress went backwards"),
            "ProgressBackwards: failed for another reason",
        );
    }
    check_report(
        &report,
        report.leftovers.is_empty(),
        &format!("{b:?}: left behind"),
    );
    let left = remaining(&m, p, &ss, &opts.prefix).await;
    assert!(
        left.is_empty(),
        "{b:?}: left on the array: {left:?}\n{}",
        report.to_text()
    );
}

macro_rules! broken {
    ($($test:ident: $b:ident => [$($id:literal),+];)+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            expect_only($b, &[$($id),+]).await;
        }
    )+};
}

broken! {
    remove_while_presented: RemoveWhilePresented => ["remove.refused_while_presented"];
    remove_unpresents: RemoveUnpresents => ["refusals.change_nothing", "remove.never_unpresents"];
    list_twice: ListTwice => ["list.no_duplicates"];
    snapshot_unsupported_but_works: SnapshotUnsupportedButWorks => ["createSnap.unsupported"];
    max_entries_not_enforced: MaxEntriesNotEnforced => ["addToAccessGroup.max_access_entries"];
    access_groups_ignore_se: AccessGroupsIgnoreSe => ["getAccessGroups.of_element"];
    restore_disagrees: RestoreDisagrees => ["isRestorable.agrees_with_snapRestore"];
    duplicate_lun_name: DuplicateLunName => ["create.duplicate_name_refused"];
    duplicate_group_name: DuplicateGroupName => ["createAccessGroups.duplicate_refused"];
    negative_size_accepted: NegativeSizeAccepted => ["create.negative_size_refused"];
    zero_size_accepted: ZeroSizeAccepted => ["create.zero_size_refused"];
    zero_size_refused_after_creating: ZeroSizeRefusedAfterCreating => ["refusals.change_nothing"];
    name_reaches_shell: NameReachesShell => ["create.unusual_name_kept_or_refused"];
    current_snaps_missing: CurrentSnapsMissing => ["getCurrentSnaps.lists_snapshot"];
    resize_refused_while_presented: ResizeRefusedWhilePresented => ["resize.online"];
    split_declared_sync: SplitDeclaredSync => ["splitClone.sync"];
    progress_backwards: ProgressBackwards => ["splitClone.progress"];
    create_breaks_update_rules: CreateBreaksUpdateRules => ["create.update_rules"];
    validate_only_exception_from_remove: ValidateOnlyExceptionFromRemove => ["remove.exceptions"];
    unknown_group_ignored: UnknownGroupIgnored => ["startPresent.unknown_group_refused"];
    offline_unpresents: OfflineUnpresents => ["offline.keeps_presentation"];
    unknown_pool_ignored: UnknownPoolIgnored => ["create.unknown_pool_refused"];
    list_without_page83: ListWithoutPage83 => ["list.page83_id"];
    resize_unsupported_but_works: ResizeUnsupportedButWorks => ["resize.unsupported"];
    negative_size_key_not_given: NegativeSizeKeyNotGiven => ["create.negative_size_refused"];
    unknown_element_key_not_given: UnknownElementKeyNotGiven => ["getInfo.unknown_element_refused"];
    snap_name_key_not_given: SnapNameKeyNotGiven => ["createSnap.bad_name_refused"];
}
