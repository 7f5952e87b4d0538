"""resize takes any integer, negative ones too (the guides say: InvalidValueEx)."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo negative-resize"

    @staticmethod
    def resize(ss_record, se_record, new_size):
        with _base._Array(ss_record, write=True) as a:
            el = a.element(se_record)
            el["size"] = new_size
            return _base._record(ss_record, el, se_record)
