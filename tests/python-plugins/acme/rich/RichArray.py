"""ACME rich: a Storage Array plug-in for a (simulated) array reachable over Fibre Channel or
iSCSI, with thin clones, snapshots, QoS, and clone splits that run in the background.

How it is built:

- The array is simulated by the file acme-rich.json in the directory named by
  ss_record['extra_info'] (state_dir=/some/dir). A real plug-in would talk to the array; the
  plug-in itself keeps nothing between calls (each call runs in a fresh process).
- Reads are served from the host's cache when it has the inventory (IPlugin.cache); every
  change writes the array first, then refreshes the cached inventory.
- splitClone starts a background copy and returns at once with async_progress; the progress
  of the copy lives only in the host's cache, and getAsyncProgress advances it.
- getInfo has the array's "CLI" write a report into a temporary file obtained from
  IPlugin.getNamedTemporaryFile() and reads it back.
- Both storage types are served, so every method looks at ss_record['storage_type'].
"""

import fcntl
import json
import os
import uuid

import OSCPlugin
from OSCPlugin import *
import OSCPluginUtils

STATE_FILE = "acme-rich.json"
INVENTORY_KEY = "acme-rich:inventory"
SPLIT_KEY = "acme-rich:split:%s"
POOLS = {"fast": 1 << 40, "capacity": 8 << 40}
DEFAULT_POOL = "capacity"
QOS = [
    {"priority": 0, "value": "gold", "description": "lowest latency"},
    {"priority": 1, "value": "silver", "description": "balanced"},
    {"priority": 2, "value": "bronze", "description": "best effort"},
]
DEFAULT_QOS = "silver"
MAX_ENTRIES = 16
SNAP_LIMIT = 64
CLONE_LIMIT = 128

SAN = IStorageArrayPlugin.SANStorage
ISCSI = IStorageArrayPlugin.iSCSIStorage
LUN = IStorageArrayPlugin.LUNType
SNAP = IStorageArrayPlugin.SnapType
SNAPCLONE = IStorageArrayPlugin.SnapCloneType

log = IPlugin.logger


# --------------------------------------------------------------------------------------------
# extra_info and storage type
# --------------------------------------------------------------------------------------------


def _options(ss_record):
    """extra_info: key=value pairs separated by spaces or semicolons."""
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


def _split_step(ss_record):
    raw = _options(ss_record).get("split_step", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise InvalidValueEx("split_step in extra_info must be a whole number from 1 to 100, "
                             "not %r" % raw)
    return int(raw)


def _storage_type(ss_record):
    """The transport of this array: every method starts here."""
    storage_type = ss_record.get("storage_type")
    if storage_type not in (SAN, ISCSI):
        raise InvalidValueEx("storage_type %r is neither %s nor %s" % (storage_type, SAN, ISCSI))
    return storage_type


def _ss_uuid(ss_record):
    ss_uuid = ss_record.get("uuid")
    if not ss_uuid:
        raise MissingKeyEx("the ss_record has no uuid", "uuid")
    return ss_uuid


# --------------------------------------------------------------------------------------------
# The simulated array
# --------------------------------------------------------------------------------------------


def _new_state():
    serial = uuid.uuid4().hex[:10].upper()
    return {"serial": serial, "next_id": 1, "groups": {}, "elements": {}}


class _Array(object):
    """The array opened for a change: the file, under an exclusive lock. On success the new
    contents are written and the cached inventory refreshed."""

    def __init__(self, ss_record):
        self.storage_type = _storage_type(ss_record)
        self.ss_uuid = _ss_uuid(ss_record)
        self.dir = _state_dir(ss_record)

    def __enter__(self):
        self.lock = open(os.path.join(self.dir, ".acme-rich.lock"), "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.state = _read_state(self.dir)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                path = os.path.join(self.dir, STATE_FILE)
                tmp = "%s.%d" % (path, os.getpid())
                with open(tmp, "w") as f:
                    json.dump(self.state, f, indent=1, sort_keys=True)
                os.replace(tmp, path)
                IPlugin.cache.set(self.ss_uuid, INVENTORY_KEY, json.dumps(self.state))
        finally:
            self.lock.close()
        return False


def _read_state(state_dir):
    try:
        with open(os.path.join(state_dir, STATE_FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return _new_state()
    except ValueError as e:
        raise OperationFailedEx("the array's state file is damaged: %s" % e)


def _inventory(ss_record):
    """The array's contents for reading: the cached inventory if the host still has it,
    otherwise read from the array and cached for the next calls."""
    _storage_type(ss_record)
    ss_uuid = _ss_uuid(ss_record)
    cached = IPlugin.cache.get(ss_uuid, INVENTORY_KEY)
    if cached is not None:
        IPlugin.cache.extend(ss_uuid, INVENTORY_KEY, 30)
        return json.loads(cached)
    state_dir = _state_dir(ss_record)
    with open(os.path.join(state_dir, ".acme-rich.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        state = _read_state(state_dir)
    IPlugin.cache.set(ss_uuid, INVENTORY_KEY, json.dumps(state))
    return state


def _find(state, se_record, what="element"):
    elements = state["elements"]
    if se_record is None:
        raise MissingKeyEx("no %s record given" % what, "se_record")
    key = se_record.get("id")
    if key in elements:
        return elements[key]
    page83 = se_record.get("page83_id")
    for el in elements.values():
        if page83 and el["page83_id"] == page83:
            return el
    if key is None and page83 is None:
        raise MissingKeyEx("the %s record carries neither id nor page83_id" % what, "id")
    raise InvalidValueEx("the array has no %s %r" % (what, se_record.get("name", key)))


def _group(state, name):
    if name not in state["groups"]:
        raise InvalidValueEx("the array has no access group %r" % name)
    return state["groups"][name]


def _new_element(state, se_type, name, size, pool, qos, parent=None):
    if not isinstance(name, str) or not name or len(name) > 64 or "/" in name or ".." in name \
            or any(ord(c) < 32 or c in "\\$`;|&<>\"'*?" for c in name):
        raise ValueFormatEx("name %r is not a usable element name (1-64 printable characters, "
                            "no '/', '..' or shell metacharacters)" % (name,), "name")
    if any(el["name"] == name for el in state["elements"].values()):
        raise InvalidValueEx("the array has an element called %r already" % name)
    el_id = "%04d" % state["next_id"]
    state["next_id"] += 1
    raw = "600100ff" + uuid.uuid4().hex[8:]  # an NAA-6 identifier; fixed head bytes, so it never reads as a descriptor or page
    el = {"id": el_id, "name": name, "uuid": str(uuid.uuid4()), "size": size,
          "se_type": se_type, "pool": pool, "qos": qos, "groups": [], "online": True,
          "parent": parent, "busy": None,
          "page83_id": OSCPluginUtils.makeMPPage83FromRawPage83(raw)}
    state["elements"][el_id] = el
    return el


def _pool_used(state, pool):
    return sum(el["size"] for el in state["elements"].values()
               if el["pool"] == pool and el["se_type"] != SNAP and el["parent"] is None)


def _record(ss_record, el, base=None):
    """An se_record for ``el``. Keys of ``base`` the array does not know are kept; name and
    ss_uuid are only filled in when empty; extra_info is never touched."""
    rec = dict(base or {})
    if el["busy"]:
        state = el["busy"]
    else:
        state = SE_STATES.ONLINE if el["online"] else SE_STATES.OFFLINE
    rec.update({
        "se_type": el["se_type"],
        "uuid": el["uuid"],
        "page83_id": el["page83_id"],
        "id": el["id"],
        "vendor": "ACME",
        "product_id": "RICH9000",
        "array_path": "/%s/%s" % (el["pool"], el["id"]),
        "size": el["size"],
        "status": state.lower(),
        "vol_group_name": el["pool"],
        "access_grp_names": list(el["groups"]),
        "qos": el["qos"],
        "state": state,
    })
    rec["ss_uuid"] = rec.get("ss_uuid") or ss_record.get("uuid")
    rec["name"] = rec.get("name") or el["name"]
    return rec


def _grp(name, group):
    return {"grp_name": name, "grp_entries": list(group["entries"])}


def _check_entries(storage_type, entries):
    """Fibre Channel entries are port WWNs (0x + 16 hex digits); iSCSI ones initiator names."""
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise ValueFormatEx("grp_entries must be a list, not %r" % (entries,), "grp_entries")
    for entry in entries:
        if storage_type == SAN:
            ok = (isinstance(entry, str) and len(entry) == 18 and entry.startswith("0x")
                  and all(c in "0123456789abcdefABCDEF" for c in entry[2:]))
            form = "a port WWN such as 0x21000024ff3c2a10"
        else:
            ok = isinstance(entry, str) and entry.split(".", 1)[0] in ("iqn", "eui", "naa") \
                and "." in entry
            form = "an initiator name such as iqn.1994-05.com.example:host1"
        if not ok:
            raise ValueFormatEx("access entry %r is not %s" % (entry, form), "grp_entries")


def _qos(qos):
    if qos is None:
        return DEFAULT_QOS
    if qos not in [q["value"] for q in QOS]:
        raise InvalidValueEx("QoS %r is not one of %s" % (qos, ", ".join(q["value"] for q in QOS)))
    return qos


def _targets(state):
    return ["iqn.2001-04.com.acme:rich.%s.tgt%d" % (state["serial"].lower(), n) for n in (0, 1)]


def _ports(state):
    return ["0x500a0c3e%08x" % n for n in (0, 1)]


# --------------------------------------------------------------------------------------------
# The array's "CLI" writes reports to a file (the case for a temporary file)
# --------------------------------------------------------------------------------------------


def _cli_report(state, storage_type, out):
    """Writes the array report the way the vendor's CLI would: 'key: value' lines."""
    lines = ["model: ACME Rich 9000", "serial: %s" % state["serial"], "firmware: 4.2.1",
             "transport: %s" % ("FC" if storage_type == SAN else "iSCSI")]
    for pool, capacity in sorted(POOLS.items()):
        lines.append("pool: %s %d %d" % (pool, capacity, _pool_used(state, pool)))
    out.write(("\n".join(lines) + "\n").encode("utf-8"))
    out.flush()


def _read_report(state, storage_type):
    report = IPlugin.getNamedTemporaryFile()
    report_name = report.name
    try:
        _cli_report(state, storage_type, report)
        report.seek(0)
        fields = {"pool": []}
        for line in report.read().decode("utf-8").splitlines():
            key, _, value = line.partition(": ")
            if key == "pool":
                name, capacity, used = value.split()
                fields["pool"].append((name, int(capacity), int(used)))
            else:
                fields[key] = value
        return fields
    finally:
        report.close()
        if os.path.exists(report_name):
            os.remove(report_name)


# --------------------------------------------------------------------------------------------


class RichArray(IStorageArrayPlugin):
    """Simulated ACME Rich 9000 array, over Fibre Channel or iSCSI."""

    plugin_name = "ACME Rich 9000"
    vendor_name = "ACME"
    plugin_version = "2.1.0-3"
    plugin_desc = ("Sample plug-in: a simulated array with thin clones, snapshots, QoS and "
                   "background clone splits, over Fibre Channel or iSCSI.")
    ss_extra_info_help = (
        "state_dir=<absolute directory> (required): where this simulated array keeps its "
        "contents, in the file acme-rich.json. split_step=<1-100> (optional, default 50): "
        "how many percent a background clone split advances each time its progress is "
        "asked for. Separate the settings with spaces or semicolons.")
    storage_types = [IStorageArrayPlugin.SANStorage, IStorageArrayPlugin.iSCSIStorage]
    plugin_ability = {
        "snapshot": ABILITY_TYPES.ONLINE,
        "custom_snap_name": ABILITY_TYPES.YES,
        "snap_is_sync": ABILITY_TYPES.YES,
        "clone": ABILITY_TYPES.ONLINE,
        "custom_clone_name": ABILITY_TYPES.YES,
        "clone_is_sync": ABILITY_TYPES.YES,
        "resize": ABILITY_TYPES.ONLINE,
        "resize_is_sync": ABILITY_TYPES.YES,
        "splitclone": ABILITY_TYPES.ONLINE,
        "splitclone_is_sync": ABILITY_TYPES.NO,
        "splitclone_while_open": ABILITY_TYPES.YES,
        "snapclone": ABILITY_TYPES.ONLINE,
        "snapclone_is_sync": ABILITY_TYPES.YES,
        "require_storage_name": ABILITY_TYPES.NO,
        "access_control": ABILITY_TYPES.YES,
        "max_access_entries": MAX_ENTRIES,
    }

    # ---- the array -------------------------------------------------------------------------

    @staticmethod
    def validate(ss_record):
        storage_type = ss_record.get("storage_type")
        if storage_type not in RichArray.storage_types:
            raise InvalidStorageArrayEx("this plug-in serves %s arrays, not %r" % (
                " and ".join(RichArray.storage_types), storage_type))
        if storage_type == ISCSI and not ss_record.get("access_host"):
            raise MissingKeyEx("an iSCSI array needs the address of its target portal",
                               "access_host")
        if not ss_record.get("admin_host"):
            raise MissingKeyEx("the array's management address is needed", "admin_host")
        try:
            _state_dir(ss_record)
            _split_step(ss_record)
        except InvalidValueEx as e:
            raise InvalidStorageArrayEx("extra_info: %s" % e)
        log.info("validated %s array at %s", storage_type, ss_record.get("admin_host"))

    @staticmethod
    def getCapabilities(ss_record):
        _storage_type(ss_record)
        return dict(RichArray.plugin_ability)

    @staticmethod
    def getInfo(ss_record, se_record=None):
        storage_type = _storage_type(ss_record)
        state = _inventory(ss_record)
        if se_record is not None:
            return _record(ss_record, _find(state, se_record), se_record)
        report = _read_report(state, storage_type)
        total = sum(p[1] for p in report["pool"])
        used = sum(p[2] for p in report["pool"])
        info = dict(ss_record)
        info.update({
            "storage_desc": "%s, serial %s, firmware %s, over %s" % (
                report["model"], report["serial"], report["firmware"], report["transport"]),
            "status": "online",
            "total_sz": total,
            "used_sz": used,
            "free_sz": total - used,
            "alloc_sz": used,
            "vol_groups": [{"vol_name": name, "vol_total_sz": cap, "vol_used_sz": u,
                            "vol_free_sz": cap - u, "vol_desc": "%s pool" % name}
                           for name, cap, u in report["pool"]],
            "storage_id": _targets(state) if storage_type == ISCSI else _ports(state),
        })
        return info

    @staticmethod
    def getStorageNames(ss_record):
        _storage_type(ss_record)
        return []

    @staticmethod
    def refresh(ss_record):
        # Rescanning the array: forget everything cached about it.
        _storage_type(ss_record)
        IPlugin.cache.clear(_ss_uuid(ss_record))

    @staticmethod
    def discover(ss_record):
        if _storage_type(ss_record) != ISCSI:
            raise NoSuchOperationEx("target discovery is for iSCSI arrays only")
        state = _inventory(ss_record)
        found = dict(ss_record)
        found["storage_id"] = _targets(state)
        return found

    # ---- access groups ---------------------------------------------------------------------

    @staticmethod
    def getAccessGroups(ss_record, se_record=None):
        state = _inventory(ss_record)
        names = sorted(state["groups"])
        if se_record is not None:
            names = _find(state, se_record)["groups"]
        return [_grp(name, state["groups"][name]) for name in names]

    @staticmethod
    def createAccessGroups(ss_record, access_grps):
        result = [dict(g) for g in ss_record.get("access_grps") or []]
        with _Array(ss_record) as array:
            for grp in access_grps:
                name = grp.get("grp_name")
                if not name:
                    raise MissingKeyEx("an access group needs a name", "grp_name")
                entries = grp.get("grp_entries") or []
                _check_entries(array.storage_type, entries)
                if len(entries) > MAX_ENTRIES:
                    raise InvalidValueEx("access group %r has %d entries; at most %d fit"
                                         % (name, len(entries), MAX_ENTRIES))
                if name in array.state["groups"]:
                    raise InvalidValueEx("access group %r exists already" % name)
                array.state["groups"][name] = {"entries": list(entries)}
                result.append(_grp(name, array.state["groups"][name]))
        return result

    @staticmethod
    def removeAccessGroups(ss_record, access_grps):
        names = set(g.get("grp_name") for g in access_grps)
        with _Array(ss_record) as array:
            for name in names:
                _group(array.state, name)
                busy = [el["name"] for el in array.state["elements"].values()
                        if name in el["groups"]]
                if busy:
                    raise StorageElementBusyEx("access group %r is still in use by %s"
                                               % (name, ", ".join(sorted(busy))))
            for name in names:
                del array.state["groups"][name]
        return [dict(g) for g in ss_record.get("access_grps") or []
                if g.get("grp_name") not in names]

    @staticmethod
    def renameAccessGroup(ss_record, access_grp_name, new_access_grp_name):
        with _Array(ss_record) as array:
            groups = array.state["groups"]
            _group(array.state, access_grp_name)
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
        with _Array(ss_record) as array:
            _check_entries(array.storage_type, grp_entries)
            group = _group(array.state, access_grp_name)
            entries = group["entries"] + [e for e in grp_entries if e not in group["entries"]]
            if len(entries) > MAX_ENTRIES:
                raise InvalidValueEx("access group %r would hold %d entries; at most %d fit"
                                     % (access_grp_name, len(entries), MAX_ENTRIES))
            group["entries"] = entries
            return _grp(access_grp_name, group)

    @staticmethod
    def removeFromAccessGroup(ss_record, access_grp_name, grp_entries):
        with _Array(ss_record) as array:
            group = _group(array.state, access_grp_name)
            group["entries"] = [e for e in group["entries"] if e not in grp_entries]
            return _grp(access_grp_name, group)

    # ---- storage elements ------------------------------------------------------------------

    @staticmethod
    def list(ss_record, se_type=[LUN, SNAPCLONE]):
        if isinstance(se_type, str):
            se_type = [se_type]
        state = _inventory(ss_record)
        return [_record(ss_record, el) for el in state["elements"].values()
                if el["se_type"] in se_type and el["se_type"] != SNAP]

    @staticmethod
    def updateSERecords(ss_record, se_records, append_allowed=False):
        state = _inventory(ss_record)
        try:
            known = [_find(state, rec) for rec in se_records]
        except InvalidValueEx as e:
            raise ListFailedEx(str(e))
        result = [_record(ss_record, el, rec) for el, rec in zip(known, se_records)]
        if append_allowed:
            ids = set(el["id"] for el in known)
            result.extend(_record(ss_record, el) for el in state["elements"].values()
                          if el["id"] not in ids and el["se_type"] != SNAP)
        for rec in result:
            # Presented elements are visible on this server as multipath devices named
            # after their WWID.
            if rec["access_grp_names"]:
                rec["path"] = [IPlugin.dev_path_prefix + rec["page83_id"]]
        return result

    @staticmethod
    def getStatus(ss_record, se_record=None):
        state = _inventory(ss_record)
        if se_record is None:
            return "online"
        return _record(ss_record, _find(state, se_record))["status"]

    @staticmethod
    def online(ss_record, se_record):
        with _Array(ss_record) as array:
            _find(array.state, se_record)["online"] = True

    @staticmethod
    def offline(ss_record, se_record):
        with _Array(ss_record) as array:
            _find(array.state, se_record)["online"] = False

    @staticmethod
    def create(ss_record, se_record, thin_provision=True, qos=None):
        if "size" not in se_record:
            raise MissingKeyEx("create needs the size of the new element in bytes", "size")
        size = se_record["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueFormatEx("size must be a positive whole number of bytes, not %r"
                                % (size,), "size")
        pool = se_record.get("vol_group_name") or DEFAULT_POOL
        if pool not in POOLS:
            raise InvalidValueEx("the array has no volume group %r (it has %s)"
                                 % (pool, ", ".join(sorted(POOLS))))
        qos = _qos(qos)
        with _Array(ss_record) as array:
            free = POOLS[pool] - _pool_used(array.state, pool)
            if not thin_provision and size > free:
                raise OperationFailedEx("pool %s has %d bytes free; %d were asked for"
                                        % (pool, free, size))
            name = se_record.get("name") or "vol%04d" % array.state["next_id"]
            el = _new_element(array.state, LUN, name, size, pool, qos)
            log.info("created %s (%d bytes) in pool %s", name, size, pool)
            return _record(ss_record, el, se_record)

    @staticmethod
    def startPresent(ss_record, se_record, access_grp_names):
        with _Array(ss_record) as array:
            el = _find(array.state, se_record)
            for name in access_grp_names:
                _group(array.state, name)
                if name not in el["groups"]:
                    el["groups"].append(name)
            return _record(ss_record, el, se_record)

    @staticmethod
    def stopPresent(ss_record, se_record, access_grp_names):
        with _Array(ss_record) as array:
            el = _find(array.state, se_record)
            el["groups"] = [g for g in el["groups"] if g not in access_grp_names]
            return _record(ss_record, el, se_record)

    @staticmethod
    def resize(ss_record, se_record, new_size):
        if isinstance(new_size, bool) or not isinstance(new_size, int) or new_size <= 0:
            raise ValueFormatEx("new_size must be a positive whole number of bytes, not %r"
                                % (new_size,), "new_size")
        with _Array(ss_record) as array:
            el = _find(array.state, se_record)
            if el["se_type"] == SNAP:
                raise InvalidValueEx("snapshots cannot be resized")
            el["size"] = new_size
            return _record(ss_record, el, se_record)

    @staticmethod
    def remove(ss_record, se_record):
        with _Array(ss_record) as array:
            el = _find(array.state, se_record)
            if el["groups"]:
                raise StorageElementBusyEx("%s is still presented to %s; stop presenting it "
                                           "first" % (el["name"], ", ".join(el["groups"])))
            children = [c["name"] for c in array.state["elements"].values()
                        if c["parent"] == el["id"]]
            if children:
                raise StorageElementBusyEx("%s still has snapshots or clones: %s"
                                           % (el["name"], ", ".join(sorted(children))))
            if el["busy"]:
                raise StorageElementBusyEx("%s is busy (%s)" % (el["name"], el["busy"]))
            del array.state["elements"][el["id"]]
            IPlugin.cache.set(array.ss_uuid, SPLIT_KEY % el["id"], None)

    # ---- clones ----------------------------------------------------------------------------

    @staticmethod
    def getCloneLimits(ss_record, se_record=None):
        _storage_type(ss_record)
        return CLONE_LIMIT

    @staticmethod
    def isCloneable(ss_record, se_record):
        state = _inventory(ss_record)
        el = _find(state, se_record)
        clones = [c for c in state["elements"].values()
                  if c["parent"] == el["id"] and c["se_type"] != SNAP]
        return el["se_type"] != SNAP and not el["busy"] and len(clones) < CLONE_LIMIT

    @staticmethod
    def clone(ss_record, se_record, dest_se_record=None, qos=None):
        qos = _qos(qos)
        with _Array(ss_record) as array:
            source = _find(array.state, se_record)
            if source["se_type"] == SNAP:
                raise CloneFailedEx("%s is a snapshot: use cloneFromSnap" % source["name"])
            if source["busy"]:
                raise CloneFailedEx("%s is busy (%s) and cannot be cloned now"
                                    % (source["name"], source["busy"]))
            name = (dest_se_record or {}).get("name") or "%s-clone%04d" % (
                source["name"], array.state["next_id"])
            el = _new_element(array.state, LUN, name, source["size"], source["pool"], qos,
                              parent=source["id"])
            return _record(ss_record, el, dest_se_record)

    @staticmethod
    def isSplittable(ss_record, se_record):
        el = _find(_inventory(ss_record), se_record)
        return el["parent"] is not None and el["se_type"] != SNAP and not el["busy"]

    @staticmethod
    def splitClone(ss_record, se_record):
        step = _split_step(ss_record)
        with _Array(ss_record) as array:
            el = _find(array.state, se_record)
            if el["parent"] is None or el["se_type"] == SNAP:
                raise InvalidValueEx("%s is not a clone, so there is nothing to split"
                                     % el["name"])
            if el["busy"]:
                raise StorageElementBusyEx("%s is busy (%s)" % (el["name"], el["busy"]))
            el["busy"] = SE_STATES.BUSY_COPY
            # The copy runs on the array; its progress is remembered by the host's cache only.
            IPlugin.cache.set(array.ss_uuid, SPLIT_KEY % el["id"], "0", expire_time=3600)
            log.info("split of %s started (%d%% per progress check)", el["name"], step)
            rec = _record(ss_record, el, se_record)
        rec["async_progress"] = 0
        rec["async_handle"] = el["id"]
        return rec

    @staticmethod
    def cloneFromSnap(ss_record, se_record, snap_se_record, dest_se_record=None, qos=None):
        qos = _qos(qos)
        with _Array(ss_record) as array:
            source = _find(array.state, se_record)
            snap = _find(array.state, snap_se_record, "snapshot")
            if snap["se_type"] != SNAP or snap["parent"] != source["id"]:
                raise CloneFailedEx("%s is not a snapshot of %s" % (snap["name"], source["name"]))
            name = (dest_se_record or {}).get("name") or "%s-clone%04d" % (
                snap["name"], array.state["next_id"])
            el = _new_element(array.state, SNAPCLONE, name, snap["size"], snap["pool"], qos,
                              parent=snap["id"])
            return _record(ss_record, el, dest_se_record)

    @staticmethod
    def getCurrentClones(ss_record, se_record=None):
        state = _inventory(ss_record)
        elements = state["elements"]
        clones = [el for el in elements.values() if el["parent"] and el["se_type"] != SNAP]
        if se_record is not None:
            source = _find(state, se_record)
            clones = [c for c in clones if c["parent"] == source["id"]
                      or elements.get(c["parent"], {}).get("parent") == source["id"]]
        return [_record(ss_record, c) for c in clones]

    # ---- snapshots -------------------------------------------------------------------------

    @staticmethod
    def getSnapLimits(ss_record, se_record=None):
        _storage_type(ss_record)
        return SNAP_LIMIT

    @staticmethod
    def isSnapable(ss_record, se_record=None):
        state = _inventory(ss_record)
        if se_record is None:
            return True
        el = _find(state, se_record)
        snaps = [s for s in state["elements"].values() if s["parent"] == el["id"]
                 and s["se_type"] == SNAP]
        return el["se_type"] != SNAP and len(snaps) < SNAP_LIMIT

    @staticmethod
    def createSnap(ss_record, se_record, snap_se_record=None):
        with _Array(ss_record) as array:
            el = _find(array.state, se_record)
            if el["se_type"] == SNAP:
                raise CreateSnapFailedEx("%s is itself a snapshot" % el["name"])
            name = (snap_se_record or {}).get("name") or "%s-snap%04d" % (
                el["name"], array.state["next_id"])
            snap = _new_element(array.state, SNAP, name, el["size"], el["pool"], el["qos"],
                                parent=el["id"])
            return _record(ss_record, snap, snap_se_record)

    @staticmethod
    def createMultiSnap(ss_record, se_records, snap_se_record=None):
        _storage_type(ss_record)
        raise NoSuchOperationEx("this array takes snapshots of one element at a time")

    @staticmethod
    def isRestorable(ss_record, snap_se_record, se_record=None):
        state = _inventory(ss_record)
        snap = _find(state, snap_se_record, "snapshot")
        if se_record is not None and _find(state, se_record)["id"] != snap["parent"]:
            return False
        newer = [s for s in state["elements"].values() if s["parent"] == snap["parent"]
                 and s["se_type"] == SNAP and s["id"] > snap["id"]]
        return not newer

    @staticmethod
    def snapRestore(ss_record, snap_se_record, se_record=None):
        with _Array(ss_record) as array:
            snap = _find(array.state, snap_se_record, "snapshot")
            if se_record is not None and _find(array.state, se_record)["id"] != snap["parent"]:
                raise SnapRestoreNotSafeEx("%s is not a snapshot of %s"
                                           % (snap["name"], se_record.get("name")))
            newer = sorted(s["name"] for s in array.state["elements"].values()
                           if s["parent"] == snap["parent"] and s["se_type"] == SNAP
                           and s["id"] > snap["id"])
            if newer:
                raise SnapRestoreNotSafeEx("rolling back to %s would destroy the newer "
                                           "snapshots %s" % (snap["name"], ", ".join(newer)))
            array.state["elements"][snap["parent"]]["size"] = snap["size"]

    @staticmethod
    def snapRemove(ss_record, snap_se_record):
        with _Array(ss_record) as array:
            snap = _find(array.state, snap_se_record, "snapshot")
            if snap["se_type"] != SNAP:
                raise InvalidValueEx("%s is not a snapshot" % snap["name"])
            clones = [c["name"] for c in array.state["elements"].values()
                      if c["parent"] == snap["id"]]
            if clones:
                raise StorageElementBusyEx("snapshot %s still has clones: %s"
                                           % (snap["name"], ", ".join(sorted(clones))))
            del array.state["elements"][snap["id"]]

    @staticmethod
    def getCurrentSnaps(ss_record, se_record=None):
        state = _inventory(ss_record)
        parent = _find(state, se_record)["id"] if se_record is not None else None
        return [_record(ss_record, s) for s in state["elements"].values()
                if s["se_type"] == SNAP and (parent is None or s["parent"] == parent)]

    # ---- QoS -------------------------------------------------------------------------------

    @staticmethod
    def getQoSList(ss_record):
        _storage_type(ss_record)
        return [dict(q) for q in QOS]

    @staticmethod
    def setQoS(ss_record, se_record, qos):
        qos = _qos(qos)
        with _Array(ss_record) as array:
            el = _find(array.state, se_record)
            if el["busy"]:
                raise StorageElementBusyEx("%s is busy (%s)" % (el["name"], el["busy"]))
            el["qos"] = qos

    # ---- asynchronous operations -----------------------------------------------------------

    @staticmethod
    def getAsyncProgress(ss_record, some_record):
        handle = some_record.get("async_handle")
        if not handle:
            raise MissingKeyEx("the record carries no async_handle, so there is no operation "
                               "to follow", "async_handle")
        ss_uuid = _ss_uuid(ss_record)
        key = SPLIT_KEY % handle
        progress = IPlugin.cache.get(ss_uuid, key)
        with _Array(ss_record) as array:
            el = array.state["elements"].get(handle)
            if el is None:
                raise InvalidValueEx("the array has no element %r any more" % handle)
            if el["busy"] != SE_STATES.BUSY_COPY:
                done = True  # finished earlier
            elif progress is None:
                # The cache forgot how far the copy got: start counting again, and say the
                # percentage is unknown for now.
                IPlugin.cache.set(ss_uuid, key, "0", expire_time=3600)
                rec = _record(ss_record, el, some_record)
                rec["async_progress"] = -1
                return rec
            else:
                percent = int(progress) + _split_step(ss_record)
                done = percent >= 100
                if not done:
                    IPlugin.cache.set(ss_uuid, key, str(percent), expire_time=3600)
                    rec = _record(ss_record, el, some_record)
                    rec["async_progress"] = percent
                    return rec
            if el["busy"] == SE_STATES.BUSY_COPY:
                el["busy"] = None
                el["parent"] = None
                el["se_type"] = LUN
                log.info("split of %s finished", el["name"])
            IPlugin.cache.set(ss_uuid, key, None)
            rec = _record(ss_record, el, some_record)
        rec["async_progress"] = None
        return rec
