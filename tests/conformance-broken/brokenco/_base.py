"""CorrectArray: a small simulated iSCSI array plug-in that follows the guides.

The array lives in the file brokenco.json in the directory named by
ss_record['extra_info'] (state_dir=/some/dir); each call runs in a fresh process and keeps
nothing. It has one pool, snapshots (restorable while no newer snapshot exists), resizing and
access groups of at most MAX_ENTRIES entries; clones, splits and QoS are not supported.
The modules beside this file subclass it and break one rule each.
"""

import fcntl
import json
import os
import uuid

import OSCPlugin
from OSCPlugin import *
import OSCPluginUtils

# The first four bytes of every made-up NAA-6 id: random ones are sometimes read by
# makeMPPage83FromRawPage83 as a designation descriptor or a whole VPD page (byte 1 0x83, or
# byte 3 a length that fits), which gives another id; 0x01 and 0xff rule both out.
NAA6_HEAD = "600100ff"

STATE_FILE = "brokenco.json"
POOL = "pool0"
CAPACITY = 1 << 40
MAX_ENTRIES = 8
SNAP_LIMIT = 16

LUN = IStorageArrayPlugin.LUNType
SNAP = IStorageArrayPlugin.SnapType
ISCSI = IStorageArrayPlugin.iSCSIStorage


def _state_dir(ss_record):
    for item in (ss_record.get("extra_info") or "").replace(";", " ").split():
        key, _, value = item.partition("=")
        if key == "state_dir" and value:
            if not os.path.isabs(value) or not os.path.isdir(value):
                raise InvalidValueEx("state_dir %r is not an existing absolute directory" % value)
            return value
    raise MissingKeyEx("extra_info must name the array's directory: state_dir=/path",
                       "extra_info")


def _check_name(name, key):
    if not isinstance(name, str) or not name:
        raise MissingKeyEx("%s is empty" % key, key)
    if "/" in name or ".." in name or any(c.isspace() for c in name) or len(name) > 64:
        raise ValueFormatEx("%s %r is not a usable name" % (key, name), key)


class _Array(object):
    """The array file under an exclusive lock; written back when the block succeeds."""

    def __init__(self, ss_record, write=False):
        if ss_record.get("storage_type") != ISCSI:
            raise InvalidValueEx("this array is iSCSI only")
        self.dir = _state_dir(ss_record)
        self.write = write

    def __enter__(self):
        self.lock = open(os.path.join(self.dir, ".brokenco.lock"), "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            with open(os.path.join(self.dir, STATE_FILE)) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            self.state = {"next_id": 1, "groups": {}, "elements": {}}
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.write and exc_type is None:
                path = os.path.join(self.dir, STATE_FILE)
                tmp = "%s.%d" % (path, os.getpid())
                with open(tmp, "w") as f:
                    json.dump(self.state, f, sort_keys=True)
                os.replace(tmp, path)
        finally:
            self.lock.close()
        return False

    def element(self, rec, key="se_record"):
        if not isinstance(rec, dict):
            raise ValueFormatEx("%s is not a record" % key, key)
        elements = self.state["elements"]
        if rec.get("id") in elements:
            return elements[rec["id"]]
        for el in elements.values():
            if rec.get("page83_id") and el["page83_id"] == rec.get("page83_id"):
                return el
        if not rec.get("id") and not rec.get("page83_id"):
            raise MissingKeyEx("%s carries neither id nor page83_id" % key, "id")
        raise InvalidValueEx("%s names no element of the array" % key)

    def group(self, name, key="access_grp_name"):
        if name not in self.state["groups"]:
            raise InvalidValueEx("%s %r names no access group" % (key, name))
        return self.state["groups"][name]

    def name_taken(self, name):
        return any(el["name"] == name for el in self.state["elements"].values())

    def new(self, se_type, name, size, parent=None):
        el_id = str(self.state["next_id"])
        self.state["next_id"] += 1
        el = {"id": el_id, "name": name, "uuid": str(uuid.uuid4()), "size": size,
              "se_type": se_type, "groups": [], "online": True, "parent": parent,
              "page83_id": OSCPluginUtils.makeMPPage83FromRawPage83(NAA6_HEAD + uuid.uuid4().hex[8:])}
        self.state["elements"][el_id] = el
        return el

    def snaps_of(self, el):
        return [s for s in self.state["elements"].values()
                if s["se_type"] == SNAP and s["parent"] == el["id"]]


def _record(ss_record, el, base=None):
    rec = dict(base or {})
    rec.update({
        "se_type": el["se_type"], "uuid": el["uuid"], "page83_id": el["page83_id"],
        "id": el["id"], "vendor": "BROKENCO", "product_id": "CORRECT",
        "array_path": "%s/%s" % (POOL, el["id"]), "size": el["size"],
        "status": "online" if el["online"] else "offline", "vol_group_name": POOL,
        "access_grp_names": list(el["groups"]),
        "state": SE_STATES.ONLINE if el["online"] else SE_STATES.OFFLINE,
    })
    rec["ss_uuid"] = rec.get("ss_uuid") or ss_record.get("uuid")
    rec["name"] = rec.get("name") or el["name"]
    return rec


def _newer(a, snap):
    """Snapshots of the same element taken after ``snap``."""
    return [s for s in a.state["elements"].values() if s["se_type"] == SNAP
            and s["parent"] == snap["parent"] and int(s["id"]) > int(snap["id"])]


def _grp(name, group):
    return {"grp_name": name, "grp_entries": list(group["entries"])}


def _size(value, key):
    if value is None:
        raise MissingKeyEx("%s is required" % key, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueFormatEx("%s must be a whole number of bytes" % key, key)
    if value <= 0:
        raise InvalidValueEx("%s %d is not a positive number of bytes" % (key, value))
    return value


class CorrectArray(IStorageArrayPlugin):
    """A simulated iSCSI array that follows the guides."""

    plugin_name = "BrokenCo correct array"
    vendor_name = "BrokenCo"
    plugin_version = "1.0.0-1"
    plugin_desc = "A simulated iSCSI array that follows the guides (conformance kit tests)."
    ss_extra_info_help = "state_dir=<absolute directory> (required)"
    storage_types = [ISCSI]
    plugin_ability = {
        "snapshot": ABILITY_TYPES.ONLINE, "custom_snap_name": ABILITY_TYPES.YES,
        "snap_is_sync": ABILITY_TYPES.YES, "clone": ABILITY_TYPES.UNSUPPORTED,
        "custom_clone_name": ABILITY_TYPES.NO, "clone_is_sync": ABILITY_TYPES.YES,
        "resize": ABILITY_TYPES.ONLINE, "resize_is_sync": ABILITY_TYPES.YES,
        "splitclone": ABILITY_TYPES.UNSUPPORTED, "splitclone_is_sync": ABILITY_TYPES.YES,
        "splitclone_while_open": ABILITY_TYPES.NO, "snapclone": ABILITY_TYPES.UNSUPPORTED,
        "snapclone_is_sync": ABILITY_TYPES.YES, "require_storage_name": ABILITY_TYPES.NO,
        "access_control": ABILITY_TYPES.YES, "max_access_entries": MAX_ENTRIES,
    }

    @staticmethod
    def validate(ss_record):
        if ss_record.get("storage_type") != ISCSI:
            raise InvalidStorageArrayEx("this plug-in serves iSCSI arrays only, not %r"
                                        % ss_record.get("storage_type"))
        try:
            _state_dir(ss_record)
        except (InvalidValueEx, MissingKeyEx) as e:
            raise InvalidStorageArrayEx(str(e))

    @staticmethod
    def getCapabilities(ss_record):
        return dict(CorrectArray.plugin_ability)

    @staticmethod
    def getInfo(ss_record, se_record=None):
        with _Array(ss_record) as a:
            if se_record is not None:
                return _record(ss_record, a.element(se_record), se_record)
            used = sum(e["size"] for e in a.state["elements"].values() if e["se_type"] == LUN)
            info = dict(ss_record)
            info.update({"status": "online", "storage_desc": "BrokenCo simulated array",
                         "total_sz": CAPACITY, "used_sz": used, "free_sz": CAPACITY - used,
                         "vol_groups": [{"vol_name": POOL, "vol_total_sz": CAPACITY,
                                         "vol_used_sz": used, "vol_free_sz": CAPACITY - used}]})
            return info

    @staticmethod
    def getStorageNames(ss_record):
        return []

    @staticmethod
    def getAccessGroups(ss_record, se_record=None):
        with _Array(ss_record) as a:
            groups = a.state["groups"]
            names = sorted(groups) if se_record is None else a.element(se_record)["groups"]
            return [_grp(n, groups[n]) for n in names]

    @staticmethod
    def createAccessGroups(ss_record, access_grps):
        result = [dict(g) for g in ss_record.get("access_grps") or []]
        with _Array(ss_record, write=True) as a:
            for grp in access_grps:
                name = grp.get("grp_name")
                _check_name(name, "grp_name")
                entries = list(grp.get("grp_entries") or [])
                if len(entries) > MAX_ENTRIES:
                    raise InvalidValueEx("at most %d entries fit in a group" % MAX_ENTRIES)
                if name in a.state["groups"]:
                    raise InvalidValueEx("access group %r exists already" % name)
                a.state["groups"][name] = {"entries": entries}
                result.append(_grp(name, a.state["groups"][name]))
        return result

    @staticmethod
    def removeAccessGroups(ss_record, access_grps):
        names = [g.get("grp_name") for g in access_grps]
        with _Array(ss_record, write=True) as a:
            for name in names:
                a.group(name, "grp_name")
                if any(name in e["groups"] for e in a.state["elements"].values()):
                    raise StorageElementBusyEx("access group %r is in use" % name)
            for name in names:
                del a.state["groups"][name]
        return [dict(g) for g in ss_record.get("access_grps") or []
                if g.get("grp_name") not in names]

    @staticmethod
    def renameAccessGroup(ss_record, access_grp_name, new_access_grp_name):
        _check_name(new_access_grp_name, "new_access_grp_name")
        with _Array(ss_record, write=True) as a:
            groups = a.state["groups"]
            a.group(access_grp_name)
            if new_access_grp_name in groups:
                raise InvalidValueEx("access group %r exists already" % new_access_grp_name)
            groups[new_access_grp_name] = groups.pop(access_grp_name)
            for e in a.state["elements"].values():
                e["groups"] = [new_access_grp_name if g == access_grp_name else g
                               for g in e["groups"]]
        result = []
        for g in ss_record.get("access_grps") or []:
            g = dict(g)
            if g.get("grp_name") == access_grp_name:
                g["grp_name"] = new_access_grp_name
            result.append(g)
        return result

    @staticmethod
    def addToAccessGroup(ss_record, access_grp_name, grp_entries):
        with _Array(ss_record, write=True) as a:
            group = a.group(access_grp_name)
            entries = group["entries"] + [e for e in grp_entries if e not in group["entries"]]
            if len(entries) > MAX_ENTRIES:
                raise InvalidValueEx("at most %d entries fit in a group" % MAX_ENTRIES)
            group["entries"] = entries
            return _grp(access_grp_name, group)

    @staticmethod
    def removeFromAccessGroup(ss_record, access_grp_name, grp_entries):
        with _Array(ss_record, write=True) as a:
            group = a.group(access_grp_name)
            group["entries"] = [e for e in group["entries"] if e not in grp_entries]
            return _grp(access_grp_name, group)

    @staticmethod
    def list(ss_record, se_type=[LUN, IStorageArrayPlugin.SnapCloneType]):
        if isinstance(se_type, str):
            se_type = [se_type]
        with _Array(ss_record) as a:
            return [_record(ss_record, e) for e in a.state["elements"].values()
                    if e["se_type"] in se_type and e["se_type"] != SNAP]

    @staticmethod
    def getStatus(ss_record, se_record=None):
        with _Array(ss_record) as a:
            if se_record is None:
                return "online"
            return "online" if a.element(se_record)["online"] else "offline"

    @staticmethod
    def online(ss_record, se_record):
        with _Array(ss_record, write=True) as a:
            a.element(se_record)["online"] = True

    @staticmethod
    def offline(ss_record, se_record):
        with _Array(ss_record, write=True) as a:
            a.element(se_record)["online"] = False

    @staticmethod
    def create(ss_record, se_record, thin_provision=True, qos=None):
        name = se_record.get("name")
        _check_name(name, "name")
        size = _size(se_record.get("size"), "size")
        pool = se_record.get("vol_group_name") or POOL
        if pool != POOL:
            raise InvalidValueEx("the array has no volume group %r" % pool)
        with _Array(ss_record, write=True) as a:
            if a.name_taken(name):
                raise InvalidValueEx("an element named %r exists already" % name)
            return _record(ss_record, a.new(LUN, name, size), se_record)

    @staticmethod
    def startPresent(ss_record, se_record, access_grp_names):
        with _Array(ss_record, write=True) as a:
            el = a.element(se_record)
            for name in access_grp_names:
                a.group(name, "access_grp_names")
            for name in access_grp_names:
                if name not in el["groups"]:
                    el["groups"].append(name)
            return _record(ss_record, el, se_record)

    @staticmethod
    def stopPresent(ss_record, se_record, access_grp_names):
        with _Array(ss_record, write=True) as a:
            el = a.element(se_record)
            el["groups"] = [g for g in el["groups"] if g not in access_grp_names]
            return _record(ss_record, el, se_record)

    @staticmethod
    def resize(ss_record, se_record, new_size):
        new_size = _size(new_size, "new_size")
        with _Array(ss_record, write=True) as a:
            el = a.element(se_record)
            if el["se_type"] == SNAP:
                raise InvalidValueEx("snapshots cannot be resized")
            el["size"] = new_size
            return _record(ss_record, el, se_record)

    @staticmethod
    def remove(ss_record, se_record):
        with _Array(ss_record, write=True) as a:
            el = a.element(se_record)
            if el["se_type"] == SNAP:
                raise InvalidValueEx("snapRemove removes snapshots")
            if el["groups"]:
                raise StorageElementBusyEx("%s is still presented to %s"
                                           % (el["name"], ", ".join(el["groups"])))
            if a.snaps_of(el):
                raise StorageElementBusyEx("%s still has snapshots" % el["name"])
            del a.state["elements"][el["id"]]

    @staticmethod
    def getCloneLimits(ss_record, se_record=None):
        return 0

    @staticmethod
    def isCloneable(ss_record, se_record):
        return False

    @staticmethod
    def clone(ss_record, se_record, dest_se_record=None, qos=None):
        raise NoSuchOperationEx("this array cannot clone")

    @staticmethod
    def isSplittable(ss_record, se_record):
        return False

    @staticmethod
    def splitClone(ss_record, se_record):
        raise NoSuchOperationEx("this array has no clones to split")

    @staticmethod
    def cloneFromSnap(ss_record, se_record, snap_se_record, dest_se_record=None, qos=None):
        raise NoSuchOperationEx("this array cannot clone snapshots")

    @staticmethod
    def getCurrentClones(ss_record, se_record=None):
        return []

    @staticmethod
    def getSnapLimits(ss_record, se_record=None):
        return SNAP_LIMIT

    @staticmethod
    def isSnapable(ss_record, se_record=None):
        with _Array(ss_record) as a:
            if se_record is None:
                return True
            el = a.element(se_record)
            return el["se_type"] != SNAP and len(a.snaps_of(el)) < SNAP_LIMIT

    @staticmethod
    def createSnap(ss_record, se_record, snap_se_record=None):
        with _Array(ss_record, write=True) as a:
            el = a.element(se_record)
            if el["se_type"] == SNAP:
                raise CreateSnapFailedEx("%s is itself a snapshot" % el["name"])
            name = (snap_se_record or {}).get("name") or "%s-snap%d" % (el["name"],
                                                                       a.state["next_id"])
            _check_name(name, "name")
            if a.name_taken(name):
                raise InvalidValueEx("an element named %r exists already" % name)
            return _record(ss_record, a.new(SNAP, name, el["size"], el["id"]), snap_se_record)

    @staticmethod
    def createMultiSnap(ss_record, se_records, snap_se_record=None):
        raise NoSuchOperationEx("this array snapshots one element at a time")

    @staticmethod
    def isRestorable(ss_record, snap_se_record, se_record=None):
        with _Array(ss_record) as a:
            snap = a.element(snap_se_record, "snap_se_record")
            if se_record is not None and a.element(se_record)["id"] != snap["parent"]:
                return False
            return not _newer(a, snap)

    @staticmethod
    def snapRestore(ss_record, snap_se_record, se_record=None):
        with _Array(ss_record, write=True) as a:
            snap = a.element(snap_se_record, "snap_se_record")
            if se_record is not None and a.element(se_record)["id"] != snap["parent"]:
                raise SnapRestoreNotSafeEx("%s is not a snapshot of that element" % snap["name"])
            if _newer(a, snap):
                raise SnapRestoreNotSafeEx("newer snapshots would be lost")
            a.state["elements"][snap["parent"]]["size"] = snap["size"]

    @staticmethod
    def snapRemove(ss_record, snap_se_record):
        with _Array(ss_record, write=True) as a:
            snap = a.element(snap_se_record, "snap_se_record")
            if snap["se_type"] != SNAP:
                raise InvalidValueEx("%s is not a snapshot" % snap["name"])
            del a.state["elements"][snap["id"]]

    @staticmethod
    def getCurrentSnaps(ss_record, se_record=None):
        with _Array(ss_record) as a:
            parent = a.element(se_record)["id"] if se_record is not None else None
            return [_record(ss_record, s) for s in a.state["elements"].values()
                    if s["se_type"] == SNAP and (parent is None or s["parent"] == parent)]

    @staticmethod
    def getQoSList(ss_record):
        return []

    @staticmethod
    def setQoS(ss_record, se_record, qos):
        raise NoSuchOperationEx("this array has no quality-of-service settings")
