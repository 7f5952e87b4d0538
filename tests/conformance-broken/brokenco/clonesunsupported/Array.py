"""clone is declared UNSUPPORTED, yet clone makes a copy (the guides say: NoSuchOperationEx)."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo clone-despite-unsupported"

    @staticmethod
    def clone(ss_record, se_record, dest_se_record=None, qos=None):
        with _base._Array(ss_record, write=True) as a:
            src = a.element(se_record)
            name = "%s-copy%d" % (src["name"], a.state["next_id"])
            return _base._record(ss_record, a.new(_base.LUN, name, src["size"]), dest_se_record)
