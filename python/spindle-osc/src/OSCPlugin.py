"""The storage plug-in API as plug-ins import it.

A plug-in module does::

    import OSCPlugin
    from OSCPlugin import *

    class FastArray(IStorageArrayPlugin):
        plugin_name = "..."
        ...

        @staticmethod
        def validate(ss_record):
            ...

and gets the base classes (``IPlugin``, ``IStorageArrayPlugin``, ``IFileSystemPlugin``), the
enumerations (``ABILITY_TYPES``, ``BACKING_DEVICE_TYPES``, ``SE_STATES``, ``FS_STATES``) and the
closed set of exception classes.

Plug-in classes are never instantiated: every method is a ``@staticmethod`` and a plug-in
keeps no state of its own between calls. spindle runs each call in a fresh process; whatever
a plug-in wants to remember goes through ``IPlugin.cache``.

This module is part of spindle (package ``spindle-osc``); only the standard library is used.
"""

from spindle_osc import host as _host

__all__ = [
    "IPlugin",
    "IStorageArrayPlugin",
    "IFileSystemPlugin",
    "ABILITY_TYPES",
    "BACKING_DEVICE_TYPES",
    "SE_STATES",
    "FS_STATES",
    "IPluginException",
    "NoSuchOperationEx",
    "OperationFailedEx",
    "MissingKeyEx",
    "ValueFormatEx",
    "StorageArrayLicenseEx",
    "TargetDiscoveryEx",
    "LoginFailedEx",
    "LogoutFailedEx",
    "RefreshFailedEx",
    "ListFailedEx",
    "CreateSnapFailedEx",
    "ListSnapFailedEx",
    "SnapRestoreNotSafeEx",
    "CloneFailedEx",
    "InvalidStorageArrayEx",
    "InvalidValueEx",
    "StorageElementBusyEx",
    "PermissionDeniedEx",
    "OperationPreReqNotMetEx",
    "StorageNameRequiredEx",
    "InvalidFSTypeEx",
    "FileSystemBusyEx",
    "FileSystemAlreadyMountedEx",
]


# --------------------------------------------------------------------------------------------
# Enumerations: each value is the identifier's own name, which is also its wire form.
# --------------------------------------------------------------------------------------------


class _Enumeration(object):
    """Base of the enumeration namespaces; never instantiated."""

    def __new__(cls, *args, **kwargs):
        raise TypeError("%s is an enumeration; use its attributes, e.g. %s.%s"
                        % (cls.__name__, cls.__name__, cls.values()[0]))

    @classmethod
    def values(cls):
        """Every identifier, in declaration order."""
        return tuple(v for k, v in vars(cls).items()
                     if not k.startswith("_") and isinstance(v, str))


class ABILITY_TYPES(_Enumeration):
    """Values of the ability dict (``plugin_ability`` and ``getCapabilities``)."""

    UNSUPPORTED = "UNSUPPORTED"
    OFFLINE = "OFFLINE"
    ONLINE = "ONLINE"
    NO = "NO"
    YES = "YES"
    INVALID = "INVALID"


class BACKING_DEVICE_TYPES(_Enumeration):
    """How a file system plug-in's file systems sit on their devices."""

    UNSUPPORTED = "UNSUPPORTED"
    DEVICE_SINGLE = "DEVICE_SINGLE"
    DEVICE_MULTI = "DEVICE_MULTI"
    PLUGIN_SINGLE = "PLUGIN_SINGLE"
    PLUGIN_MULTI = "PLUGIN_MULTI"
    INVALID = "INVALID"


class SE_STATES(_Enumeration):
    """``se_record['state']``."""

    UNKNOWN = "UNKNOWN"
    OFFLINE = "OFFLINE"
    BUSY_CREATE = "BUSY_CREATE"
    BUSY_CLONE = "BUSY_CLONE"
    BUSY_COPY = "BUSY_COPY"
    BUSY_CHILDREN = "BUSY_CHILDREN"
    ERROR = "ERROR"
    ONLINE = "ONLINE"


class FS_STATES(_Enumeration):
    """``fs_record['state']``."""

    UNKNOWN = "UNKNOWN"
    UNMOUNTED = "UNMOUNTED"
    MOUNTED = "MOUNTED"
    MOUNTED_READONLY = "MOUNTED_READONLY"
    ERROR = "ERROR"


# --------------------------------------------------------------------------------------------
# Exceptions: the closed set. Plug-ins raise these and no others.
# --------------------------------------------------------------------------------------------


class IPluginException(Exception):
    """Base class of every plug-in exception; a plug-in never raises it directly.

    ``message`` says what went wrong, for a person.
    """

    def __init__(self, message="", *args):
        Exception.__init__(self, message, *args)
        self.message = message if isinstance(message, str) else str(message)

    def __str__(self):
        return self.message


class _KeyedException(IPluginException):
    """An exception about one key of a record: constructed with a message and the key."""

    def __init__(self, message="", key=None):
        IPluginException.__init__(self, message, key)
        self.key = key

    def __str__(self):
        if self.key is None:
            return self.message
        return "%s (key: %s)" % (self.message, self.key)


class NoSuchOperationEx(IPluginException):
    """The plug-in, or the array, does not support the operation."""


class OperationFailedEx(IPluginException):
    """Last resort when no more specific class fits; give a descriptive message."""


class MissingKeyEx(_KeyedException):
    """A record lacks a key the plug-in needs: ``MissingKeyEx(message, key)``."""


class ValueFormatEx(_KeyedException):
    """A key is present but its value is malformed: ``ValueFormatEx(message, key)``."""


class StorageArrayLicenseEx(IPluginException):
    """The requested feature is not licensed on the array."""


class TargetDiscoveryEx(IPluginException):
    """iSCSI target discovery failed."""


class LoginFailedEx(IPluginException):
    """Logging in to the iSCSI targets failed."""


class LogoutFailedEx(IPluginException):
    """Logging out of the iSCSI targets failed."""


class RefreshFailedEx(IPluginException):
    """The SCSI bus of the array could not be refreshed."""


class ListFailedEx(IPluginException):
    """Listing (``list``) or completing (``updateSERecords``) storage elements failed."""


class CreateSnapFailedEx(IPluginException):
    """A snapshot could not be created."""


class ListSnapFailedEx(IPluginException):
    """The snapshots on the array could not be listed."""


class SnapRestoreNotSafeEx(IPluginException):
    """Rolling back the snapshot would affect more than the element asked for."""


class CloneFailedEx(IPluginException):
    """A clone (``clone`` or ``cloneFromSnap``) could not be created."""


class InvalidStorageArrayEx(IPluginException):
    """The ss_record failed validation; only ``validate`` raises it."""


class InvalidValueEx(IPluginException):
    """A value in a record (``extra_info`` included) is not acceptable."""


class StorageElementBusyEx(IPluginException):
    """The array cannot do this while the element is online, presented or in use."""


class PermissionDeniedEx(IPluginException):
    """The array refused the operation; the message carries the array's words."""


class OperationPreReqNotMetEx(IPluginException):
    """A prerequisite of the operation is not met."""


class StorageNameRequiredEx(IPluginException):
    """The plug-in needs ``storage_name`` in the ss_record; only ``validate`` raises it."""


class InvalidFSTypeEx(IPluginException):
    """The file system type does not suit the plug-in; only ``validate`` raises it."""


class FileSystemBusyEx(IPluginException):
    """The file system is online or mounted, and the operation needs it not to be."""


class FileSystemAlreadyMountedEx(IPluginException):
    """The file system is mounted already."""


#: Every exception class of the closed set, base first.
EXCEPTIONS = (
    IPluginException,
    NoSuchOperationEx,
    OperationFailedEx,
    MissingKeyEx,
    ValueFormatEx,
    StorageArrayLicenseEx,
    TargetDiscoveryEx,
    LoginFailedEx,
    LogoutFailedEx,
    RefreshFailedEx,
    ListFailedEx,
    CreateSnapFailedEx,
    ListSnapFailedEx,
    SnapRestoreNotSafeEx,
    CloneFailedEx,
    InvalidStorageArrayEx,
    InvalidValueEx,
    StorageElementBusyEx,
    PermissionDeniedEx,
    OperationPreReqNotMetEx,
    StorageNameRequiredEx,
    InvalidFSTypeEx,
    FileSystemBusyEx,
    FileSystemAlreadyMountedEx,
)


# --------------------------------------------------------------------------------------------
# Host facilities
# --------------------------------------------------------------------------------------------


def _text(name, value):
    if isinstance(value, str):
        return value
    if type(value).__name__ == "UUID":
        return str(value)
    raise TypeError("%s must be a string, not %s" % (name, type(value).__name__))


def _seconds(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be a whole number of seconds, not %r" % (name, value))
    if value < 0:
        raise ValueError("%s must not be negative (got %d)" % (name, value))
    return value


class _Cache(object):
    """``IPlugin.cache``: strings kept by the host per storage server, with an expiry."""

    __slots__ = ()

    def set(self, ss_uuid, cache_key, cache_value, expire_time=_host.DEFAULT_EXPIRE_TIME):
        """Stores ``cache_value`` (a string) for ``expire_time`` seconds; ``None`` clears the
        key."""
        ss_uuid = _text("ss_uuid", ss_uuid)
        cache_key = _text("cache_key", cache_key)
        if cache_value is not None and not isinstance(cache_value, str):
            raise TypeError(
                "cache_value must be a string or None, not %s (serialise it first, e.g. with "
                "json.dumps; pickle protocol 0 output is bytes: .decode('ascii') it, and "
                ".encode('ascii') what cache.get returns before unpickling)"
                % type(cache_value).__name__)
        expire_time = _seconds("expire_time", expire_time)
        _host.current.cache_set(ss_uuid, cache_key, cache_value, expire_time)

    def get(self, ss_uuid, cache_key):
        """The cached string, or ``None`` if absent or expired."""
        return _host.current.cache_get(_text("ss_uuid", ss_uuid), _text("cache_key", cache_key))

    def extend(self, ss_uuid, cache_key, extend_time):
        """Adds ``extend_time`` seconds to the entry's lifetime."""
        _host.current.cache_extend(_text("ss_uuid", ss_uuid), _text("cache_key", cache_key),
                                   _seconds("extend_time", extend_time))

    def clear(self, ss_uuid):
        """Drops every entry of the storage server."""
        _host.current.cache_clear(_text("ss_uuid", ss_uuid))

    def __repr__(self):
        return "<IPlugin.cache>"


_logger = None


def _get_logger():
    """Creates the plug-in logger on first use (keeps ``logging`` out of start-up)."""
    global _logger
    if _logger is None:
        import logging

        class _HostHandler(logging.Handler):
            def emit(self, record):
                try:
                    message = self.format(record)
                    _host.current.log(_host.level_name(record.levelno), message)
                except Exception:  # never let logging break a call
                    self.handleError(record)

        logger = logging.getLogger("spindle.plugin")
        handler = _HostHandler(logging.DEBUG)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        _logger = logger
    return _logger


class _IPluginType(type):
    """Metaclass of the plug-in base classes: provides ``IPlugin.logger`` lazily."""

    @property
    def logger(cls):
        """The plug-in logger (a :class:`logging.Logger`); records go to spindle's log."""
        return _get_logger()


def _refuse_instances(cls):
    raise TypeError(
        "%s is a plug-in class and is never instantiated: plug-ins keep no state, so every "
        "method is a @staticmethod; call them on the class" % cls.__name__)


class IPlugin(metaclass=_IPluginType):
    """Base of every plug-in class, and the host facilities a plug-in may use.

    - ``IPlugin.logger``: a pre-configured :class:`logging.Logger`; do not reconfigure it, and
      never print to standard output or read standard input.
    - ``IPlugin.cache``: ``set(ss_uuid, cache_key, cache_value, expire_time=30)``,
      ``get(ss_uuid, cache_key)``, ``extend(ss_uuid, cache_key, extend_time)``,
      ``clear(ss_uuid)``.
    - ``IPlugin.getNamedTemporaryFile()``: the only way to get a temporary file.
    - ``IPlugin.dev_path_prefix``: the prefix of local device paths for this call (it depends
      on whether multipath is in use).
    """

    cache = _Cache()
    dev_path_prefix = "/dev/mapper/"

    def __new__(cls, *args, **kwargs):
        _refuse_instances(cls)

    def __init__(self, *args, **kwargs):
        _refuse_instances(type(self))

    @staticmethod
    def getNamedTemporaryFile():
        """A new, empty temporary file opened in ``'w+b'`` mode; its ``.name`` is the path.

        spindle removes the file when the call ends; closing it and removing it yourself
        when done is good manners all the same."""
        path = _host.current.temp_file()
        try:
            return open(path, "w+b")
        except OSError as e:
            raise OperationFailedEx("could not open the temporary file %s: %s" % (path, e))


def _not_implemented(name):
    raise NoSuchOperationEx("%s is not implemented by this plug-in" % name)


class IStorageArrayPlugin(IPlugin):
    """Base class of Storage Array (block storage: SAN or iSCSI) plug-ins.

    Set the class variables and override the methods the plug-in implements, each as a
    ``@staticmethod``. A method left alone raises :class:`NoSuchOperationEx`.
    """

    # Storage types (ss_record['storage_type'], class variable storage_types).
    SANStorage = "SANStorage"
    iSCSIStorage = "iSCSIStorage"

    # Storage element types (se_record['se_type']).
    LUNType = "LUNType"
    GhostLUNType = "GhostLUNType"
    SnapType = "SnapType"
    SnapCloneType = "SnapCloneType"

    # Class variables every plug-in sets (the help texts only when it reads that extra_info).
    plugin_name = None
    vendor_name = None
    plugin_version = None
    plugin_desc = None
    ss_extra_info_help = None
    se_extra_info_help = None
    storage_types = []
    plugin_ability = {
        "snapshot": ABILITY_TYPES.INVALID,
        "custom_snap_name": ABILITY_TYPES.INVALID,
        "snap_is_sync": ABILITY_TYPES.INVALID,
        "clone": ABILITY_TYPES.INVALID,
        "custom_clone_name": ABILITY_TYPES.INVALID,
        "clone_is_sync": ABILITY_TYPES.INVALID,
        "resize": ABILITY_TYPES.INVALID,
        "resize_is_sync": ABILITY_TYPES.INVALID,
        "splitclone": ABILITY_TYPES.INVALID,
        "splitclone_is_sync": ABILITY_TYPES.INVALID,
        "splitclone_while_open": ABILITY_TYPES.INVALID,
        "snapclone": ABILITY_TYPES.INVALID,
        "snapclone_is_sync": ABILITY_TYPES.INVALID,
        "require_storage_name": ABILITY_TYPES.INVALID,
        "access_control": ABILITY_TYPES.INVALID,
        "max_access_entries": 0,
    }

    # The methods, in the order of the method table (crates/spindle-api/src/methods.rs).

    @staticmethod
    def validate(ss_record):
        """REQUIRED. Checks a new ss_record (and, if it can, the array behind it); returns
        nothing. The only method that may raise InvalidStorageArrayEx or
        StorageNameRequiredEx."""
        _not_implemented("validate")

    @staticmethod
    def getCapabilities(ss_record):
        """REQUIRED. The ability dict for this array as it is now (all 16 keys)."""
        _not_implemented("getCapabilities")

    @staticmethod
    def getInfo(ss_record, se_record=None):
        """REQUIRED. The ss_record updated from the array or, given an se_record, that
        se_record updated."""
        _not_implemented("getInfo")

    @staticmethod
    def getStorageNames(ss_record):
        """REQUIRED. Names of the arrays behind a management appliance, or []."""
        _not_implemented("getStorageNames")

    @staticmethod
    def getAccessGroups(ss_record, se_record=None):
        """REQUIRED. The array's access groups, or those the se_record is presented to."""
        _not_implemented("getAccessGroups")

    @staticmethod
    def createAccessGroups(ss_record, access_grps):
        """REQUIRED. Creates the groups; returns ss_record's access_grps with them added."""
        _not_implemented("createAccessGroups")

    @staticmethod
    def removeAccessGroups(ss_record, access_grps):
        """REQUIRED. Deletes the groups; returns ss_record's access_grps without them."""
        _not_implemented("removeAccessGroups")

    @staticmethod
    def renameAccessGroup(ss_record, access_grp_name, new_access_grp_name):
        """REQUIRED. Renames a group; returns the updated access_grps list."""
        _not_implemented("renameAccessGroup")

    @staticmethod
    def addToAccessGroup(ss_record, access_grp_name, grp_entries):
        """REQUIRED. Adds entries to a group; returns the updated access_grp."""
        _not_implemented("addToAccessGroup")

    @staticmethod
    def removeFromAccessGroup(ss_record, access_grp_name, grp_entries):
        """REQUIRED. Removes entries from a group; returns the updated access_grp."""
        _not_implemented("removeFromAccessGroup")

    @staticmethod
    def discover(ss_record):
        """OPTIONAL, iSCSI only. The ss_record with storage_id set to the reachable
        targets."""
        _not_implemented("discover")

    @staticmethod
    def start(ss_record):
        """OPTIONAL, iSCSI only. Logs in to the targets; returns nothing."""
        _not_implemented("start")

    @staticmethod
    def stop(ss_record):
        """OPTIONAL, iSCSI only. Tears down multipath, then logs out; returns nothing."""
        _not_implemented("stop")

    @staticmethod
    def refresh(ss_record):
        """OPTIONAL. Rescans what changed on the array; returns nothing."""
        _not_implemented("refresh")

    @staticmethod
    def list(ss_record, se_type=[LUNType, SnapCloneType]):
        """REQUIRED. se_records of the given types (never snapshots), page83_id filled in."""
        _not_implemented("list")

    @staticmethod
    def updateSERecords(ss_record, se_records, append_allowed=False):
        """OPTIONAL. The se_records completed, local device paths (IPlugin.dev_path_prefix)
        included; may add newly found elements only when append_allowed."""
        _not_implemented("updateSERecords")

    @staticmethod
    def getStatus(ss_record, se_record=None):
        """REQUIRED. A status string for the array or the element (cheaper than getInfo)."""
        _not_implemented("getStatus")

    @staticmethod
    def online(ss_record, se_record):
        """REQUIRED. Brings the element online without changing its presentation."""
        _not_implemented("online")

    @staticmethod
    def offline(ss_record, se_record):
        """REQUIRED. Takes the element offline without changing its presentation."""
        _not_implemented("offline")

    @staticmethod
    def create(ss_record, se_record, thin_provision=True, qos=None):
        """REQUIRED. Creates an element; returns its se_record (page83_id and qos filled
        in)."""
        _not_implemented("create")

    @staticmethod
    def startPresent(ss_record, se_record, access_grp_names):
        """REQUIRED. Presents the element to the groups; returns the se_record with its
        current access_grp_names."""
        _not_implemented("startPresent")

    @staticmethod
    def stopPresent(ss_record, se_record, access_grp_names):
        """REQUIRED. Stops presenting the element to the groups; returns the se_record with
        its current access_grp_names."""
        _not_implemented("stopPresent")

    @staticmethod
    def resize(ss_record, se_record, new_size):
        """REQUIRED. Grows or shrinks the element; returns the se_record with its actual
        size."""
        _not_implemented("resize")

    @staticmethod
    def remove(ss_record, se_record):
        """REQUIRED. Deletes the element; refuses (raises) while it is still presented."""
        _not_implemented("remove")

    @staticmethod
    def getCloneLimits(ss_record, se_record=None):
        """REQUIRED. Most thin clones possible (-1: no limit)."""
        _not_implemented("getCloneLimits")

    @staticmethod
    def isCloneable(ss_record, se_record):
        """REQUIRED. True if the element can be thin-cloned right now."""
        _not_implemented("isCloneable")

    @staticmethod
    def clone(ss_record, se_record, dest_se_record=None, qos=None):
        """REQUIRED. Creates a thin clone; returns its se_record (page83_id filled in)."""
        _not_implemented("clone")

    @staticmethod
    def isSplittable(ss_record, se_record):
        """REQUIRED. True if a split would leave the element sharing no blocks, for good."""
        _not_implemented("isSplittable")

    @staticmethod
    def splitClone(ss_record, se_record):
        """REQUIRED. Turns a clone into a full copy; returns nothing (or, if it goes on in
        the background, the se_record with async_progress)."""
        _not_implemented("splitClone")

    @staticmethod
    def cloneFromSnap(ss_record, se_record, snap_se_record, dest_se_record=None, qos=None):
        """REQUIRED. Creates a thin clone of a snapshot; returns its se_record."""
        _not_implemented("cloneFromSnap")

    @staticmethod
    def getCurrentClones(ss_record, se_record=None):
        """REQUIRED. se_records of the clones on the array, or of one element."""
        _not_implemented("getCurrentClones")

    @staticmethod
    def getSnapLimits(ss_record, se_record=None):
        """REQUIRED. Most snapshots possible (-1: no limit)."""
        _not_implemented("getSnapLimits")

    @staticmethod
    def isSnapable(ss_record, se_record=None):
        """REQUIRED. True if a snapshot (of the element, or at all) can be taken now."""
        _not_implemented("isSnapable")

    @staticmethod
    def createSnap(ss_record, se_record, snap_se_record=None):
        """REQUIRED. Takes a snapshot; returns its se_record."""
        _not_implemented("createSnap")

    @staticmethod
    def createMultiSnap(ss_record, se_records, snap_se_record=None):
        """REQUIRED. One snapshot of several elements at once; returns its se_record."""
        _not_implemented("createMultiSnap")

    @staticmethod
    def isRestorable(ss_record, snap_se_record, se_record=None):
        """REQUIRED. True if rolling back to the snapshot affects nothing else."""
        _not_implemented("isRestorable")

    @staticmethod
    def snapRestore(ss_record, snap_se_record, se_record=None):
        """REQUIRED. Rolls back to the snapshot; raises SnapRestoreNotSafeEx rather than
        touch anything else."""
        _not_implemented("snapRestore")

    @staticmethod
    def snapRemove(ss_record, snap_se_record):
        """REQUIRED. Deletes the snapshot (StorageElementBusyEx if it is busy)."""
        _not_implemented("snapRemove")

    @staticmethod
    def getCurrentSnaps(ss_record, se_record=None):
        """REQUIRED. se_records of the snapshots on the array, or of one element."""
        _not_implemented("getCurrentSnaps")

    @staticmethod
    def getQoSList(ss_record):
        """REQUIRED. The array's qos_vals dicts."""
        _not_implemented("getQoSList")

    @staticmethod
    def setQoS(ss_record, se_record, qos):
        """REQUIRED. Sets the element's QoS value; returns nothing."""
        _not_implemented("setQoS")

    @staticmethod
    def getAsyncProgress(ss_record, some_record):
        """REQUIRED when an operation can finish asynchronously. The record the operation
        returned, with async_progress updated (None once finished)."""
        _not_implemented("getAsyncProgress")


#: The Storage Array method table's names, in table order.
STORAGE_ARRAY_METHODS = tuple(
    name for name, value in vars(IStorageArrayPlugin).items() if isinstance(value, staticmethod)
)


class IFileSystemPlugin(IPlugin):
    """Base class of File System (NFS or block-based file system) plug-ins.

    spindle does not define the File System method table yet: a File System plug-in's public
    static methods are offered as they are.
    """

    # Storage types.
    NetworkFileSystem = "NetworkFileSystem"
    BlockBasedFileSystem = "BlockBasedFileSystem"

    # file_record['fr_type'] values.
    FileType = "FileType"
    DirType = "DirType"
    SymLinkType = "SymLinkType"
    CharDevType = "CharDevType"
    BlkDevType = "BlkDevType"
    FifoType = "FifoType"
    SockFileType = "SockFileType"
    SnapType = "SnapType"
    SnapCloneType = "SnapCloneType"

    plugin_name = None
    vendor_name = None
    plugin_version = None
    plugin_desc = None
    ss_extra_info_help = None
    fs_extra_info_help = None
    file_extra_info_help = None
    storage_types = []
    plugin_ability = {}
