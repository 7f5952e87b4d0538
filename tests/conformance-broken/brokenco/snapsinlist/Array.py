"""list returns the snapshots too, disguised as LUNs (the guides say: never snapshots)."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo snapshots-in-list"

    @staticmethod
    def list(ss_record, se_type=[IStorageArrayPlugin.LUNType, IStorageArrayPlugin.SnapCloneType]):
        if isinstance(se_type, str):
            se_type = [se_type]
        with _base._Array(ss_record) as a:
            out = []
            for e in a.state["elements"].values():
                disguised = e["se_type"] == _base.SNAP and _base.LUN in se_type
                if e["se_type"] in se_type or disguised:
                    rec = _base._record(ss_record, e)
                    rec["se_type"] = IStorageArrayPlugin.LUNType
                    out.append(rec)
            return out
