"""createSnap answers with async_progress, and getAsyncProgress keeps answering 50: the
operation never finishes. The manager must give up (its async limits) and the kit must fail
createSnap's checks, go on, and still clean up (the snapshot exists on the array)."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo stuck asynchronous snapshot"
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
