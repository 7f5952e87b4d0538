//! Every check the kit can report, with the rule it enforces.
//!
//! Checks about behaviour are written out here; the checks every method gets (parameters,
//! return shape, exceptions, update rules, and for methods an ability governs: UNSUPPORTED,
//! ONLINE and `*_is_sync`) are generated from the method table, so a method added to the table
//! is checked without touching the kit.

use spindle_api::{Method, MethodSpec, METHODS};

/// A check and the rule it enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInfo {
    /// Stable id.
    pub id: String,
    /// The rule, one sentence.
    pub rule: String,
}

/// Areas that are not methods.
pub(crate) const DECLARATIONS: &str = "declarations";
pub(crate) const REFUSALS: &str = "refusals";
pub(crate) const DATAPATH: &str = "datapath";
pub(crate) const CLEANUP: &str = "cleanup";

/// Behaviour checks, grouped by the method (or area) before the dot.
///
/// Every check here that expects a refusal (the `*_refused` and `*.missing_key` ones,
/// `remove.refused_while_*`) also requires a MissingKeyEx or ValueFormatEx to name what the
/// call was given: a parameter or a key of a record parameter (for MissingKeyEx, which names
/// an absent key, also a key the guides define for that record or one the plug-in's own records
/// carry). It is part of those checks, not one of its own per method, because it judges the
/// refusal itself, and only where the kit knows exactly what it passed.
const STATIC: &[(&str, &str)] = &[
    // Declarations (class variables).
    ("declarations.class_variables", "A plug-in class names itself: plugin_name, vendor_name and plugin_desc are non-empty text, and an extra_info help text, when set, is text."),
    ("declarations.plugin_version", "plugin_version has the form Major.Minor.Patch-Release, each part a whole number."),
    ("declarations.storage_types", "storage_types names SANStorage, iSCSIStorage or both, each once."),
    ("declarations.plugin_ability", "plugin_ability holds the 16 ability keys with legal values: operations ONLINE, OFFLINE or UNSUPPORTED, flags YES or NO, max_access_entries -1 or a count."),
    ("declarations.required_methods", "Every method the method table marks required is implemented, and getAsyncProgress too when any operation may finish asynchronously."),
    // validate
    ("validate.accepts_record", "validate accepts a correct storage-server record without raising."),
    ("validate.refuses_unserved_storage_type", "validate refuses a record whose storage_type the plug-in does not serve."),
    // getCapabilities
    ("getCapabilities.legal", "getCapabilities returns all 16 ability keys with legal values."),
    ("getCapabilities.agrees_with_plugin_ability", "An array can do no more than its plug-in class declares: an operation is no more available (UNSUPPORTED < OFFLINE < ONLINE), a feature flag is not YES where the class says NO, an always-synchronous operation stays synchronous, and max_access_entries is within the class's."),
    // getInfo
    ("getInfo.ss_record", "getInfo without an element returns the storage-server record with status and storage_desc filled in."),
    ("getInfo.se_record", "getInfo with an element returns that element's record: the same element, its name and its current size."),
    ("getInfo.access_grp_names", "An element's record lists in access_grp_names exactly the groups it is presented to."),
    ("getInfo.unknown_element_refused", "getInfo about an element the array does not have is refused with InvalidValueEx (or MissingKeyEx / ValueFormatEx naming the key)."),
    // getStorageNames
    ("getStorageNames.list", "getStorageNames returns a list of names, not empty when the plug-in requires a storage name."),
    // getAccessGroups
    ("getAccessGroups.lists_created", "getAccessGroups without an element lists every group of the array, a new one with its entries."),
    ("getAccessGroups.of_element", "getAccessGroups with an element lists exactly the groups that element is presented to."),
    // createAccessGroups
    ("createAccessGroups.returns_created", "createAccessGroups returns the updated access_grps list, holding each new group with its entries."),
    ("createAccessGroups.duplicate_refused", "Creating an access group under a name the array already has is refused."),
    ("createAccessGroups.missing_key", "An access group without grp_name is refused with MissingKeyEx naming grp_name."),
    // removeAccessGroups
    ("removeAccessGroups.removes", "removeAccessGroups returns access_grps without the removed group, and the array no longer lists it."),
    ("removeAccessGroups.twice_refused", "Removing an access group that no longer exists is refused with one of the guides' exceptions."),
    // renameAccessGroup
    ("renameAccessGroup.renames", "renameAccessGroup returns access_grps with the group under its new name, and the array knows it by that name only."),
    ("renameAccessGroup.unknown_group_refused", "Renaming a group the array does not have is refused with InvalidValueEx or ValueFormatEx."),
    // addToAccessGroup
    ("addToAccessGroup.adds", "addToAccessGroup returns the group with the entries added, and the array keeps them."),
    ("addToAccessGroup.max_access_entries", "No access group holds more entries than max_access_entries: a group filled to the limit takes no further entry, and a group created over it is refused."),
    ("addToAccessGroup.unknown_group_refused", "Adding entries to a group the array does not have is refused with InvalidValueEx or ValueFormatEx."),
    // removeFromAccessGroup
    ("removeFromAccessGroup.removes", "removeFromAccessGroup returns the group without the removed entries, and the array drops them."),
    ("removeFromAccessGroup.unknown_group_refused", "Removing entries from a group the array does not have is refused with InvalidValueEx or ValueFormatEx."),
    // discover
    ("discover.storage_id", "discover returns the storage-server record with storage_id listing the iSCSI targets."),
    // list
    ("list.lists_created", "list shows every element the kit created and has not removed (LUNs and clones)."),
    ("list.no_duplicates", "list names each element once."),
    ("list.never_snapshots", "list never returns a snapshot, whatever se_type it is labelled with."),
    ("list.honours_se_type", "list returns only elements of the se_type asked for."),
    // updateSERecords
    ("updateSERecords.keeps_records", "updateSERecords returns the elements it was given, completed, and adds none when append_allowed is False."),
    // getStatus
    ("getStatus.status_text", "getStatus returns a non-empty status text for the array and for an element."),
    // online / offline
    ("online.keeps_presentation", "Setting an element online leaves its presentation as it was."),
    ("offline.keeps_presentation", "Setting an element offline leaves its presentation as it was."),
    // create
    ("create.returns_element", "create returns the new element's record: a LUNType element with the name asked for, the array's ss_uuid and at least the size asked for."),
    ("create.qos_filled", "create fills in the new element's qos with one of the array's QoS values when the array has any."),
    ("create.duplicate_name_refused", "Creating an element under a name the array already uses is refused."),
    ("create.negative_size_refused", "create refuses a negative size with InvalidValueEx or ValueFormatEx."),
    ("create.zero_size_refused", "create refuses a size of 0 with InvalidValueEx or ValueFormatEx: it asks for an element that holds no block, which no host could use (READ CAPACITY cannot report zero blocks)."),
    ("create.unknown_pool_refused", "create refuses a vol_group_name the array does not have instead of carving the element elsewhere."),
    ("create.bad_name_refused", "create refuses a name holding '/' or '..' with InvalidValueEx or ValueFormatEx: plug-ins run as root, so a name must never reach a path or a command unchecked."),
    ("create.unusual_name_kept_or_refused", "create either refuses a name holding a shell metacharacter ('a;b', '$(x)'), a control character (tab, newline) or 300 characters with InvalidValueEx or ValueFormatEx, or makes the element under exactly that name, which getInfo then reports. The guides set no rule on what a name may hold, so an array may take any of these; it may not fail them another way (OperationFailedEx, a crash) or serve the element under another name."),
    ("create.missing_key", "create without the size key raises MissingKeyEx naming size."),
    // startPresent / stopPresent
    ("startPresent.returns_groups", "startPresent returns the element's record whose access_grp_names includes the groups it is now presented to."),
    ("startPresent.unknown_group_refused", "Presenting to a group the array does not have is refused with InvalidValueEx or ValueFormatEx."),
    ("stopPresent.returns_groups", "stopPresent returns the element's record whose access_grp_names no longer holds the groups it stopped being presented to."),
    // resize
    ("resize.grow", "resize grows an element and returns its record with the actual new size (at least the size asked for), which getInfo then reports."),
    ("resize.negative_size_refused", "resize refuses a negative new_size with InvalidValueEx or ValueFormatEx."),
    // remove
    ("remove.refused_while_presented", "remove refuses with StorageElementBusyEx an element that is still presented."),
    ("remove.never_unpresents", "A refused remove leaves the element in place and still presented: remove never stops presenting on its own."),
    ("remove.refused_while_snapshots", "remove refuses with StorageElementBusyEx an element that snapshots depend on."),
    ("remove.refused_while_clones", "remove refuses with StorageElementBusyEx an element that unsplit clones depend on."),
    ("remove.removes", "remove deletes the element: list no longer shows it."),
    ("remove.twice_refused", "Removing an element that is already gone is refused with one of the guides' exceptions."),
    // clones
    ("isCloneable.consistent", "isCloneable says False when clone is UNSUPPORTED, and does not deny a clone that clone then makes."),
    ("isCloneable.snapshot_consistent", "isCloneable of a snapshot predicts clone of it: an array that says True must then clone the snapshot (one that clones snapshots only by cloneFromSnap says False)."),
    ("isSplittable.consistent", "isSplittable says False for an element that is not a clone, and for every element when splitclone is UNSUPPORTED."),
    ("clone.returns_clone", "clone returns the new clone's record: not a snapshot, the source's size, under the name asked for when custom_clone_name is YES."),
    ("clone.duplicate_name_refused", "A clone name already in use is refused when clone names can be chosen."),
    ("splitClone.progress", "A split that may run asynchronously (splitclone_is_sync = NO) reports its progress until it finishes, never going back (-1, not known, aside)."),
    ("splitClone.independent", "After splitClone the clone no longer depends on its source: getCurrentClones of the source omits it and the source can be removed before it."),
    ("cloneFromSnap.returns_clone", "cloneFromSnap returns the new clone's record: not a snapshot, the snapshot's size, under the name asked for when custom_clone_name is YES."),
    ("getCurrentClones.lists_clone", "getCurrentClones lists a new clone for the whole array and for its source (or raises NoSuchOperationEx when the array cannot tell)."),
    ("getCurrentClones.only_of_element", "getCurrentClones for an element lists no clone of another element."),
    // snapshots
    ("isSnapable.consistent", "isSnapable says False when snapshots are UNSUPPORTED, and does not deny a snapshot that createSnap then takes."),
    ("createSnap.returns_snapshot", "createSnap returns the new snapshot's SnapType record, under the name asked for when custom_snap_name is YES."),
    ("createSnap.duplicate_name_refused", "A snapshot name already in use is refused when snapshot names can be chosen."),
    ("createSnap.bad_name_refused", "createSnap refuses a snapshot name (snap_se_record.name) holding '/' or '..' with InvalidValueEx or ValueFormatEx, whose key names an input (name, not a key of the plug-in's own)."),
    ("createMultiSnap.works_or_no_such_operation", "createMultiSnap takes one snapshot covering several elements, listed for each of them, or raises NoSuchOperationEx."),
    ("isRestorable.agrees_with_snapRestore", "isRestorable and snapRestore agree: when isRestorable says True the restore succeeds, when it says False the restore does not happen."),
    ("snapRemove.removes", "snapRemove deletes the snapshot: getCurrentSnaps no longer lists it."),
    ("snapRemove.twice_refused", "Removing a snapshot that is already gone is refused with one of the guides' exceptions."),
    ("getCurrentSnaps.lists_snapshot", "getCurrentSnaps lists a new snapshot both for the whole array and for its element."),
    ("getCurrentSnaps.only_of_element", "getCurrentSnaps for an element lists only that element's snapshots."),
    // QoS
    ("getQoSList.values", "getQoSList returns qos_vals with distinct value names and priorities of 0 or more."),
    ("setQoS.listed_value", "setQoS accepts a value getQoSList offered, or raises NoSuchOperationEx when QoS cannot be changed; the element then reports that QoS."),
    ("setQoS.unlisted_value_refused", "setQoS refuses a QoS value the array did not offer."),
    // Data path
    ("datapath.visible_when_presented", "A LUN presented to a group holding the initiator is visible to it, and its VPD page 0x83 matches the page83_id the plug-in reported."),
    ("datapath.capacity", "READ CAPACITY of a presented LUN equals the size the plug-in reports, before and after resize."),
    ("datapath.write_read", "Data written to a presented LUN reads back unchanged."),
    ("datapath.invisible_when_unpresented", "After stopPresent the LUN is no longer visible to the initiator."),
    ("datapath.snapshot_freezes", "A snapshot freezes the data: a clone of a snapshot taken after pattern A was written holds A, though B has been written to the LUN since, and the LUN holds B."),
    ("datapath.clone_diverges", "A clone starts with its source's data and then goes its own way: data written to the clone reads back from it, and the source keeps its own."),
    ("datapath.restore_brings_data_back", "snapRestore (once isRestorable says True, presented, unpresented or offline) brings back the data the LUN held when the snapshot was taken."),
    ("datapath.split_keeps_data", "splitClone leaves the clone's data as it was, and its source's too."),
    ("datapath.outsider_sees_nothing", "An initiator in no access group sees none of the LUNs the kit presents."),
    ("datapath.page83_stable", "The VPD page 0x83 of a LUN holds the page83_id the plug-in reports, before and after a resize, and two LUNs have different ids."),
    // Refusals
    ("refusals.change_nothing", "Every call the kit expects to be refused (bad names, sizes, pools, keys; a busy element; a call twice) that is refused leaves the run's part of the array as it was: list, getCurrentSnaps and getAccessGroups show the same elements (type, name, size, groups), snapshots and access groups (name, entries) before and after."),
    // Cleanup
    ("cleanup.nothing_left", "Everything the kit created is removed at the end, in dependency order (unpresent, clones, snapshots, LUNs, groups), and nothing carrying the run prefix remains."),
];

/// The checks every method gets, with their rules, generated from its row of the table.
fn generated(spec: &MethodSpec) -> Vec<(String, String)> {
    let m = spec.name;
    let mut out = Vec::new();
    if let Some(op) = spec.ability {
        let key = op.as_str();
        out.push((
            format!("{m}.unsupported"),
            format!("When the array's {key} ability is UNSUPPORTED, {m} raises NoSuchOperationEx."),
        ));
        out.push((
            format!("{m}.online"),
            format!("When the array's {key} ability is ONLINE, {m} works while the element is presented and online."),
        ));
        out.push((
            format!("{m}.sync"),
            format!(
                "When {} is YES, {m} never returns async_progress (checked by the manager).",
                op.sync_key().as_str()
            ),
        ));
    }
    if spec.page83_required {
        out.push((
            format!("{m}.page83_id"),
            format!("Every se_record {m} returns carries a page83_id in multipath form, unique among the array's elements (presence checked by the manager)."),
        ));
    }
    if spec.update_base.is_some() || spec.method == Method::GetInfo {
        out.push((
            format!("{m}.update_rules"),
            format!("A record {m} returns changes only what the records' \"Allow update\" column permits (checked by the manager in strict mode)."),
        ));
    }
    out.push((
        format!("{m}.returns"),
        format!("{m} returns what the method table says it returns, and writes nothing to standard output (checked by the manager)."),
    ));
    out.push((
        format!("{m}.exceptions"),
        format!("{m} raises only the guides' exceptions: never IPluginException itself, never a validate-only exception outside validate, and MissingKeyEx / ValueFormatEx with the key (checked by the manager; where the kit expects a refusal, the check that expects it also requires the key to name a parameter of the call or a key of a record it was given)."),
    ));
    out.push((
        format!("{m}.missing_parameters"),
        format!(
            "A call of {m} without one of its required parameters is refused with MissingKeyEx naming it."
        ),
    ));
    out.push((
        format!("{m}.malformed_parameters"),
        format!("A call of {m} with a parameter of the wrong kind is refused with ValueFormatEx naming it (or InvalidValueEx)."),
    ));
    out
}

/// Every check, in report order: declarations, then method by method in the table's order
/// (behaviour first, then the generated checks), then the refusals, the data path and the
/// clean-up.
pub fn catalogue() -> Vec<CheckInfo> {
    let mut out = Vec::new();
    let push_area = |area: &str, out: &mut Vec<CheckInfo>| {
        for (id, rule) in STATIC.iter().filter(|(id, _)| area_of(id) == area) {
            out.push(CheckInfo {
                id: (*id).to_string(),
                rule: (*rule).to_string(),
            });
        }
    };
    push_area(DECLARATIONS, &mut out);
    for spec in METHODS {
        push_area(spec.name, &mut out);
        for (id, rule) in generated(spec) {
            out.push(CheckInfo { id, rule });
        }
    }
    push_area(REFUSALS, &mut out);
    push_area(DATAPATH, &mut out);
    push_area(CLEANUP, &mut out);
    out
}

/// The part of an id before the first dot.
pub(crate) fn area_of(id: &str) -> &str {
    id.split_once('.').map_or(id, |(a, _)| a)
}

/// Checks that need no plug-in call beyond validate and getCapabilities (a run whose selected
/// checks are all of this kind creates nothing on the array).
pub(crate) fn is_preamble(id: &str) -> bool {
    let area = area_of(id);
    area == DECLARATIONS
        || area == "validate"
        || area == "getCapabilities"
        || id.ends_with(".missing_parameters")
        || id.ends_with(".malformed_parameters")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_belong_to_a_method_or_area() {
        let all = catalogue();
        let mut seen = HashSet::new();
        for c in &all {
            assert!(seen.insert(c.id.clone()), "duplicate id {}", c.id);
            let area = area_of(&c.id);
            assert!(
                [DECLARATIONS, REFUSALS, DATAPATH, CLEANUP].contains(&area) || Method::parse(area).is_some(),
                "{} is neither a method nor an area",
                c.id
            );
            assert!(c.rule.ends_with('.'), "{}: rule is a sentence", c.id);
        }
        assert_eq!(
            all.len(),
            STATIC.len() + METHODS.iter().map(|m| generated(m).len()).sum::<usize>()
        );
    }

    #[test]
    fn the_readme_lists_every_behaviour_check() {
        let readme = include_str!("../README.md");
        for (id, _) in STATIC {
            assert!(
                readme.contains(&format!("`{id}`")),
                "README.md does not list {id}"
            );
        }
    }

    #[test]
    fn every_method_of_the_table_gets_its_parameter_checks() {
        let ids: HashSet<String> = catalogue().into_iter().map(|c| c.id).collect();
        for m in METHODS {
            assert!(ids.contains(&format!("{}.missing_parameters", m.name)));
            assert!(ids.contains(&format!("{}.malformed_parameters", m.name)));
        }
        assert!(ids.contains("createSnap.unsupported"));
        assert!(ids.contains("splitClone.sync"));
        assert!(ids.contains("create.page83_id"));
        assert!(ids.contains("resize.update_rules"));
    }
}
