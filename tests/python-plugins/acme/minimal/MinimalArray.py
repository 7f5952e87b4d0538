"""ACME minimal: an iSCSI Storage Array plug-in doing only what every plug-in must.

The "array" is simulated: its contents live in the file acme-minimal.json in the directory
named by ss_record['extra_info'] (state_dir=/some/dir), so that every call -- each one runs in
a fresh process -- sees what the calls before it did. The plug-in itself keeps nothing.
"""

import fcntl
import json
import os
import uuid

import OSCPlugin
from OSCPlugin import *
import OSCPluginUtils

STATE_FILE = "acme-minimal.json"
CAPACITY = 1 << 40  # 1 TiB
POOL = "pool0"


def _check_name(name, key):
    """An element or group name: printable, no path separators, at most 64 characters."""
    if not isinstance(name, str) or not name or len(name) > 64 or "/" in name or ".." in name \
            or any(ord(c) < 32 or c in "\\$`;|&<>\"'*?" for c in name):
        raise ValueFormatEx("%s %r is not a usable name (1-64 printable characters, "
                            "no '/', '..' or shell metacharacters)" % (key, name), key)
    return name


def _options(ss_record):
    """extra_info holds key=value pairs separated by spaces or semicolons."""
    options = {}
    for item in (ss_record.get("extra_info") or "").replace(";", " ").split():
        if "=" in item:
            key, value = item.split("=", 1)
            options[key.strip()] = value.strip()
    return options


def _state_dir(ss_record):
    state_dir = _options(ss_record).get("state_dir")
    if not state_dir:
        raise InvalidValueEx("extra_info must name the array's directory: state_dir=/path")
    if not os.path.isabs(state_dir) or not os.path.isdir(state_dir):
        raise InvalidValueEx("state_dir %r is not an existing absolute directory" % state_dir)
    return state_dir


class _Array(object):
    """The simulated array, opened for reading or for a change (under a file lock)."""

    def __init__(self, ss_record, write=False):
        self.dir = _state_dir(ss_record)
        self.write = write

    def __enter__(self):
        self.lock = open(os.path.join(self.dir, ".acme-minimal.lock"), "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX if self.write else fcntl.LOCK_SH)
        try:
            with open(os.path.join(self.dir, STATE_FILE)) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            self.state = {"serial": uuid.uuid4().hex[:12].upper(), "next_id": 1,
                          "groups": {}, "elements": {}}
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.write and exc_type is None:
                path = os.path.join(self.dir, STATE_FILE)
                tmp = "%s.%d" % (path, os.getpid())
                with open(tmp, "w") as f:
                    json.dump(self.state, f, indent=1, sort_keys=True)
                os.replace(tmp, path)
        finally:
            self.lock.close()
        return False

    # helpers -----------------------------------------------------------------------------
    def element(self, se_record):
        elements = self.state["elements"]
        key = se_record.get("id")
        if key in elements:
            return elements[key]
        for el in elements.values():
            if se_record.get("page83_id") and el["page83_id"] == se_record.get("page83_id"):
                return el
        raise InvalidValueEx("the array has no element %r" % se_record.get("name", key))

    def group(self, name):
        if name not in self.state["groups"]:
            raise InvalidValueEx("the array has no access group %r" % name)
        return self.state["groups"][name]

    def new_element(self, se_type, name, size, parent=None):
        _check_name(name, "name")
        if any(e["name"] == name for e in self.state["elements"].values()):
            raise InvalidValueEx("the array has an element called %r already" % name)
        el_id = str(self.state["next_id"])
        self.state["next_id"] += 1
        raw = "600100ff" + uuid.uuid4().hex[8:]  # an NAA-6 identifier; fixed head bytes, so it never reads as a descriptor or page
        el = {"id": el_id, "name": name, "uuid": str(uuid.uuid4()), "size": size,
              "se_type": se_type, "page83_id": OSCPluginUtils.makeMPPage83FromRawPage83(raw),
              "groups": [], "online": True, "parent": parent}
        self.state["elements"][el_id] = el
        return el

    def used(self):
        return sum(el["size"] for el in self.state["elements"].values()
                   if el["se_type"] != IStorageArrayPlugin.SnapType)


def _record(ss_record, el, base=None):
    """An se_record for ``el``; keys of ``base`` the array knows nothing about are kept."""
    rec = dict(base or {})
    rec.update({
        "se_type": el["se_type"],
        "uuid": el["uuid"],
        "page83_id": el["page83_id"],
        "id": el["id"],
        "vendor": "ACME",
        "product_id": "MINIMAL",
        "array_path": "%s/%s" % (POOL, el["name"]),
        "size": el["size"],
        "status": "online" if el["online"] else "offline",
        "vol_group_name": POOL,
        "access_grp_names": list(el["groups"]),
        "state": SE_STATES.ONLINE if el["online"] else SE_STATES.OFFLINE,
    })
    rec["ss_uuid"] = rec.get("ss_uuid") or ss_record.get("uuid")
    rec["name"] = rec.get("name") or el["name"]
    return rec


def _grp(name, group):
    return {"grp_name": name, "grp_entries": list(group["entries"])}


class MinimalArray(IStorageArrayPlugin):
    """Small iSCSI array: volumes, snapshots, access groups."""

    plugin_name = "ACME Minimal iSCSI Array"
    vendor_name = "ACME"
    plugin_version = "1.0.0-1"
    plugin_desc = "Sample plug-in: a simulated iSCSI array with volumes and snapshots."
    ss_extra_info_help = ("state_dir=<absolute directory> (required): where this simulated "
                          "array keeps its contents, in the file acme-minimal.json")
    storage_types = [IStorageArrayPlugin.iSCSIStorage]
    plugin_ability = {
        "snapshot": ABILITY_TYPES.ONLINE,
        "custom_snap_name": ABILITY_TYPES.YES,
        "snap_is_sync": ABILITY_TYPES.YES,
        "clone": ABILITY_TYPES.UNSUPPORTED,
        "custom_clone_name": ABILITY_TYPES.NO,
        "clone_is_sync": ABILITY_TYPES.YES,
        "resize": ABILITY_TYPES.ONLINE,
        "resize_is_sync": ABILITY_TYPES.YES,
        "splitclone": ABILITY_TYPES.UNSUPPORTED,
        "splitclone_is_sync": ABILITY_TYPES.YES,
        "splitclone_while_open": ABILITY_TYPES.NO,
        "snapclone": ABILITY_TYPES.UNSUPPORTED,
        "snapclone_is_sync": ABILITY_TYPES.YES,
        "require_storage_name": ABILITY_TYPES.NO,
        "access_control": ABILITY_TYPES.YES,
        "max_access_entries": -1,
    }

    @staticmethod
    def validate(ss_record):
        if ss_record.get("storage_type") != IStorageArrayPlugin.iSCSIStorage:
            raise InvalidStorageArrayEx("this plug-in serves iSCSI arrays only, not %r"
                                        % ss_record.get("storage_type"))
        try:
            _state_dir(ss_record)
        except InvalidValueEx as e:
            raise InvalidStorageArrayEx(str(e))

    @staticmethod
    def getCapabilities(ss_record):
        return dict(MinimalArray.plugin_ability)

    @staticmethod
    def getInfo(ss_record, se_record=None):
        with _Array(ss_record) as array:
            if se_record is not None:
                return _record(ss_record, array.element(se_record), se_record)
            used = array.used()
            info = dict(ss_record)
            info.update({
                "storage_desc": "ACME minimal array, serial %s" % array.state["serial"],
                "status": "online",
                "total_sz": CAPACITY,
                "used_sz": used,
                "free_sz": CAPACITY - used,
                "alloc_sz": used,
                "vol_groups": [{"vol_name": POOL, "vol_total_sz": CAPACITY, "vol_used_sz": used,
                                "vol_free_sz": CAPACITY - used}],
            })
            return info

    @staticmethod
    def getStorageNames(ss_record):
        return []

    @staticmethod
    def getAccessGroups(ss_record, se_record=None):
        with _Array(ss_record) as array:
            groups = array.state["groups"]
            names = sorted(groups)
            if se_record is not None:
                names = array.element(se_record)["groups"]
            return [_grp(name, groups[name]) for name in names]

    @staticmethod
    def createAccessGroups(ss_record, access_grps):
        result = list(ss_record.get("access_grps") or [])
        with _Array(ss_record, write=True) as array:
            for grp in access_grps:
                if not grp.get("grp_name"):
                    raise MissingKeyEx("an access group needs a name", "grp_name")
                name = _check_name(grp["grp_name"], "grp_name")
                if name in array.state["groups"]:
                    raise InvalidValueEx("access group %r exists already" % name)
                array.state["groups"][name] = {"entries": list(grp.get("grp_entries") or [])}
                result.append(_grp(name, array.state["groups"][name]))
        return result

    @staticmethod
    def removeAccessGroups(ss_record, access_grps):
        names = set(grp["grp_name"] for grp in access_grps)
        with _Array(ss_record, write=True) as array:
            for name in names:
                array.group(name)
                if any(name in el["groups"] for el in array.state["elements"].values()):
                    raise StorageElementBusyEx("access group %r still has elements presented "
                                               "to it" % name)
            for name in names:
                del array.state["groups"][name]
        return [g for g in (ss_record.get("access_grps") or []) if g.get("grp_name") not in names]

    @staticmethod
    def renameAccessGroup(ss_record, access_grp_name, new_access_grp_name):
        with _Array(ss_record, write=True) as array:
            groups = array.state["groups"]
            array.group(access_grp_name)
            if new_access_grp_name in groups:
                raise InvalidValueEx("access group %r exists already" % new_access_grp_name)
            groups[new_access_grp_name] = groups.pop(access_grp_name)
            for el in array.state["elements"].values():
                el["groups"] = [new_access_grp_name if g == access_grp_name else g
                                for g in el["groups"]]
        result = []
        for grp in ss_record.get("access_grps") or []:
            grp = dict(grp)
            if grp.get("grp_name") == access_grp_name:
                grp["grp_name"] = new_access_grp_name
            result.append(grp)
        return result

    @staticmethod
    def addToAccessGroup(ss_record, access_grp_name, grp_entries):
        with _Array(ss_record, write=True) as array:
            group = array.group(access_grp_name)
            for entry in grp_entries:
                if entry not in group["entries"]:
                    group["entries"].append(entry)
            return _grp(access_grp_name, group)

    @staticmethod
    def removeFromAccessGroup(ss_record, access_grp_name, grp_entries):
        with _Array(ss_record, write=True) as array:
            group = array.group(access_grp_name)
            group["entries"] = [e for e in group["entries"] if e not in grp_entries]
            return _grp(access_grp_name, group)

    @staticmethod
    def list(ss_record, se_type=[IStorageArrayPlugin.LUNType, IStorageArrayPlugin.SnapCloneType]):
        if isinstance(se_type, str):
            se_type = [se_type]
        with _Array(ss_record) as array:
            return [_record(ss_record, el) for el in array.state["elements"].values()
                    if el["se_type"] in se_type and el["se_type"] != IStorageArrayPlugin.SnapType]

    @staticmethod
    def getStatus(ss_record, se_record=None):
        with _Array(ss_record) as array:
            if se_record is None:
                return "online"
            return "online" if array.element(se_record)["online"] else "offline"

    @staticmethod
    def online(ss_record, se_record):
        with _Array(ss_record, write=True) as array:
            array.element(se_record)["online"] = True

    @staticmethod
    def offline(ss_record, se_record):
        with _Array(ss_record, write=True) as array:
            array.element(se_record)["online"] = False

    @staticmethod
    def create(ss_record, se_record, thin_provision=True, qos=None):
        size = se_record.get("size")
        if size is None:
            raise MissingKeyEx("create needs the size of the new volume in bytes", "size")
        if not isinstance(size, int) or size <= 0:
            raise ValueFormatEx("size must be a positive number of bytes, not %r" % (size,), "size")
        pool = se_record.get("vol_group_name")
        if pool and pool != POOL:
            raise InvalidValueEx("the array has no volume group %r (it has %s)" % (pool, POOL))
        with _Array(ss_record, write=True) as array:
            if array.used() + size > CAPACITY:
                raise OperationFailedEx("not enough space: %d bytes free, %d asked for"
                                        % (CAPACITY - array.used(), size))
            name = se_record.get("name") or "vol%d" % array.state["next_id"]
            el = array.new_element(IStorageArrayPlugin.LUNType, name, size)
            return _record(ss_record, el, se_record)

    @staticmethod
    def startPresent(ss_record, se_record, access_grp_names):
        with _Array(ss_record, write=True) as array:
            el = array.element(se_record)
            for name in access_grp_names:
                array.group(name)
                if name not in el["groups"]:
                    el["groups"].append(name)
            return _record(ss_record, el, se_record)

    @staticmethod
    def stopPresent(ss_record, se_record, access_grp_names):
        with _Array(ss_record, write=True) as array:
            el = array.element(se_record)
            el["groups"] = [g for g in el["groups"] if g not in access_grp_names]
            return _record(ss_record, el, se_record)

    @staticmethod
    def resize(ss_record, se_record, new_size):
        if not isinstance(new_size, int) or new_size <= 0:
            raise ValueFormatEx("new_size must be a positive number of bytes, not %r"
                                % (new_size,), "new_size")
        with _Array(ss_record, write=True) as array:
            el = array.element(se_record)
            if array.used() - el["size"] + new_size > CAPACITY:
                raise OperationFailedEx("not enough space to grow to %d bytes" % new_size)
            el["size"] = new_size
            return _record(ss_record, el, se_record)

    @staticmethod
    def remove(ss_record, se_record):
        with _Array(ss_record, write=True) as array:
            el = array.element(se_record)
            if el["groups"]:
                raise StorageElementBusyEx("%s is still presented to %s"
                                           % (el["name"], ", ".join(el["groups"])))
            if any(s["parent"] == el["id"] for s in array.state["elements"].values()):
                raise StorageElementBusyEx("%s still has snapshots" % el["name"])
            del array.state["elements"][el["id"]]

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
        return 32

    @staticmethod
    def isSnapable(ss_record, se_record=None):
        with _Array(ss_record) as array:
            if se_record is None:
                return True
            el = array.element(se_record)
            snaps = [s for s in array.state["elements"].values() if s["parent"] == el["id"]]
            return len(snaps) < 32

    @staticmethod
    def createSnap(ss_record, se_record, snap_se_record=None):
        with _Array(ss_record, write=True) as array:
            el = array.element(se_record)
            name = (snap_se_record or {}).get("name") or "%s-snap%d" % (
                el["name"], array.state["next_id"])
            snap = array.new_element(IStorageArrayPlugin.SnapType, name, el["size"], el["id"])
            return _record(ss_record, snap, snap_se_record)

    @staticmethod
    def createMultiSnap(ss_record, se_records, snap_se_record=None):
        raise NoSuchOperationEx("this array snapshots one volume at a time")

    @staticmethod
    def isRestorable(ss_record, snap_se_record, se_record=None):
        with _Array(ss_record) as array:
            snap = array.element(snap_se_record)
            return se_record is None or array.element(se_record)["id"] == snap["parent"]

    @staticmethod
    def snapRestore(ss_record, snap_se_record, se_record=None):
        with _Array(ss_record, write=True) as array:
            snap = array.element(snap_se_record)
            if se_record is not None and array.element(se_record)["id"] != snap["parent"]:
                raise SnapRestoreNotSafeEx("snapshot %s is not a snapshot of %s"
                                           % (snap["name"], se_record.get("name")))
            array.state["elements"][snap["parent"]]["size"] = snap["size"]

    @staticmethod
    def snapRemove(ss_record, snap_se_record):
        with _Array(ss_record, write=True) as array:
            snap = array.element(snap_se_record)
            if snap["se_type"] != IStorageArrayPlugin.SnapType:
                raise InvalidValueEx("%s is not a snapshot" % snap["name"])
            del array.state["elements"][snap["id"]]

    @staticmethod
    def getCurrentSnaps(ss_record, se_record=None):
        with _Array(ss_record) as array:
            parent = array.element(se_record)["id"] if se_record is not None else None
            return [_record(ss_record, s) for s in array.state["elements"].values()
                    if s["se_type"] == IStorageArrayPlugin.SnapType
                    and (parent is None or s["parent"] == parent)]

    @staticmethod
    def getQoSList(ss_record):
        return []

    @staticmethod
    def setQoS(ss_record, se_record, qos):
        raise NoSuchOperationEx("this array has no quality-of-service settings")
