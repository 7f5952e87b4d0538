"""createAccessGroups reads grp["grp_name"] and lets Python's KeyError out (the guides say:
MissingKeyEx naming the key; no exception outside the guides)."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo key-error"

    @staticmethod
    def createAccessGroups(ss_record, access_grps):
        result = [dict(g) for g in ss_record.get("access_grps") or []]
        with _base._Array(ss_record, write=True) as a:
            for grp in access_grps:
                name = grp["grp_name"]
                _base._check_name(name, "grp_name")
                entries = list(grp.get("grp_entries") or [])
                if len(entries) > _base.MAX_ENTRIES:
                    raise InvalidValueEx("at most %d entries fit in a group" % _base.MAX_ENTRIES)
                if name in a.state["groups"]:
                    raise InvalidValueEx("access group %r exists already" % name)
                a.state["groups"][name] = {"entries": entries}
                result.append(_base._grp(name, a.state["groups"][name]))
        return result
