"""remove deletes an element that is still presented (the guides say: refuse)."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo remove-while-presented"

    @staticmethod
    def remove(ss_record, se_record):
        with _base._Array(ss_record, write=True) as a:
            el = a.element(se_record)
            if a.snaps_of(el):
                raise StorageElementBusyEx("%s still has snapshots" % el["name"])
            del a.state["elements"][el["id"]]
