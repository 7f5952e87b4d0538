"""list returns a dict keyed by uuid instead of a list of se_records: the kit cannot see
what is left on the array, so cleanup.nothing_left must not pass."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo list-as-dict"

    @staticmethod
    def list(ss_record, se_type=[IStorageArrayPlugin.LUNType, IStorageArrayPlugin.SnapCloneType]):
        records = _base.CorrectArray.list(ss_record, se_type)
        return dict((r["uuid"], r) for r in records)
