"""asyncstuck, and an array that refuses (StorageElementBusyEx) the first snapRemove of each
snapshot, as one still busy with its unfinished creation would. The kit must fail createSnap's
check only: remove of the LUN that still has that snapshot is refused when the kit first
tries, which is not the plug-in's fault; the cleanup's second try removes everything."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo stuck asynchronous snapshot, busy at first"
    plugin_ability = dict(_base.CorrectArray.plugin_ability,
                          snap_is_sync=ABILITY_TYPES.NO)

    @staticmethod
    def getCapabilities(ss_record):
        return dict(Array.plugin_ability)

    @staticmethod
    def createSnap(ss_record, se_record, snap_se_record=None):
        r = _base.CorrectArray.createSnap(ss_record, se_record, snap_se_record)
        r["async_progress"] = 0
        r["async_handle"] = "snap-" + r["uuid"]
        return r

    @staticmethod
    def getAsyncProgress(ss_record, some_record):
        r = dict(some_record)
        r["async_progress"] = 50
        return r

    @staticmethod
    def snapRemove(ss_record, snap_se_record):
        with _base._Array(ss_record, write=True) as a:
            snap = a.element(snap_se_record, "snap_se_record")
            refused = a.state.setdefault("snap_remove_refused", [])
            first = snap["id"] not in refused
            if first:
                refused.append(snap["id"])
        if first:
            raise StorageElementBusyEx("%s is still being created" % snap["name"])
        return _base.CorrectArray.snapRemove(ss_record, snap_se_record)
