"""OSCPlugin as a plug-in sees it, checked in-process; and checked against the Rust API crate
(methods.rs, exception.rs, enums.rs) so that the two never drift apart."""

import logging
import os
import re
import sys
import unittest

from spindlehost import REPO, SRC

sys.path.insert(0, SRC)

import OSCPlugin  # noqa: E402
from OSCPlugin import (  # noqa: E402
    ABILITY_TYPES,
    BACKING_DEVICE_TYPES,
    FS_STATES,
    SE_STATES,
    IFileSystemPlugin,
    IPlugin,
    IPluginException,
    IStorageArrayPlugin,
    MissingKeyEx,
    NoSuchOperationEx,
    ValueFormatEx,
)
from spindle_osc import host as _host  # noqa: E402

API_SRC = os.path.join(REPO, "crates", "spindle-api", "src")

GUIDE_EXCEPTIONS = [
    "IPluginException", "NoSuchOperationEx", "OperationFailedEx", "MissingKeyEx",
    "ValueFormatEx", "StorageArrayLicenseEx", "TargetDiscoveryEx", "LoginFailedEx",
    "LogoutFailedEx", "RefreshFailedEx", "ListFailedEx", "CreateSnapFailedEx",
    "ListSnapFailedEx", "SnapRestoreNotSafeEx", "CloneFailedEx", "InvalidStorageArrayEx",
    "InvalidValueEx", "StorageElementBusyEx", "PermissionDeniedEx", "OperationPreReqNotMetEx",
    "StorageNameRequiredEx", "InvalidFSTypeEx", "FileSystemBusyEx",
    "FileSystemAlreadyMountedEx",
]


class RecordingHost(_host.LocalHost):
    def __init__(self):
        _host.LocalHost.__init__(self)
        self.records = []

    def log(self, level, message):
        self.records.append((level, message))


class ConstantsTest(unittest.TestCase):
    def test_storage_array_constants_are_their_wire_values(self):
        for name in ("SANStorage", "iSCSIStorage", "LUNType", "GhostLUNType", "SnapType",
                     "SnapCloneType"):
            self.assertEqual(getattr(IStorageArrayPlugin, name), name)

    def test_file_system_constants_are_their_wire_values(self):
        for name in ("NetworkFileSystem", "BlockBasedFileSystem", "FileType", "DirType",
                     "SymLinkType", "CharDevType", "BlkDevType", "FifoType", "SockFileType",
                     "SnapType", "SnapCloneType"):
            self.assertEqual(getattr(IFileSystemPlugin, name), name)

    def test_enumerations_give_identifier_strings(self):
        self.assertEqual(ABILITY_TYPES.ONLINE, "ONLINE")
        self.assertEqual(ABILITY_TYPES.values(),
                         ("UNSUPPORTED", "OFFLINE", "ONLINE", "NO", "YES", "INVALID"))
        self.assertEqual(BACKING_DEVICE_TYPES.values(),
                         ("UNSUPPORTED", "DEVICE_SINGLE", "DEVICE_MULTI", "PLUGIN_SINGLE",
                          "PLUGIN_MULTI", "INVALID"))
        self.assertEqual(SE_STATES.values(),
                         ("UNKNOWN", "OFFLINE", "BUSY_CREATE", "BUSY_CLONE", "BUSY_COPY",
                          "BUSY_CHILDREN", "ERROR", "ONLINE"))
        self.assertEqual(FS_STATES.values(),
                         ("UNKNOWN", "UNMOUNTED", "MOUNTED", "MOUNTED_READONLY", "ERROR"))
        with self.assertRaises(TypeError):
            ABILITY_TYPES()

    def test_class_variable_defaults(self):
        for var in ("plugin_name", "vendor_name", "plugin_version", "plugin_desc",
                    "ss_extra_info_help", "se_extra_info_help"):
            self.assertIsNone(getattr(IStorageArrayPlugin, var))
        self.assertEqual(IStorageArrayPlugin.storage_types, [])
        self.assertEqual(len(IStorageArrayPlugin.plugin_ability), 16)
        self.assertEqual(IStorageArrayPlugin.plugin_ability["max_access_entries"], 0)
        for var in ("fs_extra_info_help", "file_extra_info_help"):
            self.assertIsNone(getattr(IFileSystemPlugin, var))
        self.assertEqual(IPlugin.dev_path_prefix, "/dev/mapper/")


class ExceptionsTest(unittest.TestCase):
    def test_the_closed_set(self):
        self.assertEqual([e.__name__ for e in OSCPlugin.EXCEPTIONS], GUIDE_EXCEPTIONS)
        for exc in OSCPlugin.EXCEPTIONS:
            self.assertTrue(issubclass(exc, IPluginException))
            self.assertTrue(issubclass(exc, Exception))
            self.assertIn(exc.__name__, OSCPlugin.__all__)

    def test_message_and_key(self):
        e = MissingKeyEx("size is required", "size")
        self.assertEqual((e.message, e.key), ("size is required", "size"))
        self.assertEqual(str(e), "size is required (key: size)")
        e = ValueFormatEx("bad WWN", "grp_entries")
        self.assertEqual(e.key, "grp_entries")
        e = NoSuchOperationEx("not here")
        self.assertEqual((e.message, str(e)), ("not here", "not here"))
        self.assertFalse(hasattr(e, "key"))
        with self.assertRaises(OSCPlugin.StorageElementBusyEx) as ctx:
            raise OSCPlugin.StorageElementBusyEx("still presented")
        self.assertEqual(ctx.exception.message, "still presented")

    def test_non_text_messages_become_text(self):
        self.assertEqual(OSCPlugin.OperationFailedEx(42).message, "42")


class StarImportTest(unittest.TestCase):
    def test_star_import_gives_what_the_guides_use(self):
        namespace = {}
        exec("from OSCPlugin import *", namespace)
        for name in ["IPlugin", "IStorageArrayPlugin", "IFileSystemPlugin", "ABILITY_TYPES",
                     "BACKING_DEVICE_TYPES", "SE_STATES", "FS_STATES"] + GUIDE_EXCEPTIONS:
            self.assertIn(name, namespace)
        self.assertNotIn("_host", namespace)
        for name in OSCPlugin.__all__:
            self.assertTrue(hasattr(OSCPlugin, name), name)


class BaseClassTest(unittest.TestCase):
    def test_no_instances(self):
        class Mine(IStorageArrayPlugin):
            pass

        for cls in (IPlugin, IStorageArrayPlugin, IFileSystemPlugin, Mine):
            with self.assertRaises(TypeError):
                cls()
        with self.assertRaises(TypeError):
            object.__new__(Mine).__init__()

    def test_every_method_is_static_and_refuses(self):
        self.assertEqual(len(OSCPlugin.STORAGE_ARRAY_METHODS), 42)
        for name in OSCPlugin.STORAGE_ARRAY_METHODS:
            self.assertIsInstance(vars(IStorageArrayPlugin)[name], staticmethod, name)
            code = getattr(IStorageArrayPlugin, name).__code__
            args = code.co_varnames[:code.co_argcount]
            with self.assertRaises(NoSuchOperationEx) as ctx:
                getattr(IStorageArrayPlugin, name)(*[{} for _ in args])
            self.assertIn(name, ctx.exception.message)

    def test_list_default_is_lun_and_snapclone(self):
        self.assertEqual(IStorageArrayPlugin.list.__defaults__,
                         (["LUNType", "SnapCloneType"],))


class HostFacilitiesTest(unittest.TestCase):
    def setUp(self):
        self.saved = _host.current
        self.host = _host.current = RecordingHost()

    def tearDown(self):
        _host.current = self.saved

    def test_logger_is_a_logger_sending_to_the_host(self):
        logger = IPlugin.logger
        self.assertIsInstance(logger, logging.Logger)
        self.assertIs(IStorageArrayPlugin.logger, logger)
        logger.info("hello %s", "there")
        logger.debug("fine detail")
        logger.critical("bad")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
        self.assertEqual(self.host.records[:3], [("info", "hello there"),
                                                 ("debug", "fine detail"),
                                                 ("critical", "bad")])
        level, text = self.host.records[3]
        self.assertEqual(level, "error")
        self.assertIn("ValueError: boom", text)

    def test_cache_without_spindle(self):
        cache = IPlugin.cache
        cache.set("ss1", "k", "v")
        self.assertEqual(cache.get("ss1", "k"), "v")
        cache.extend("ss1", "k", 10)
        cache.set("ss1", "gone", "x", expire_time=0)
        self.assertIsNone(cache.get("ss1", "gone"))
        cache.set("ss1", "k", None)
        self.assertIsNone(cache.get("ss1", "k"))
        cache.set("ss1", "a", "1")
        cache.set("ss2", "a", "2")
        cache.clear("ss1")
        self.assertIsNone(cache.get("ss1", "a"))
        self.assertEqual(cache.get("ss2", "a"), "2")

    def test_cache_refuses_what_is_not_a_string(self):
        with self.assertRaises(TypeError):
            IPlugin.cache.set("ss1", "k", {"a": 1})
        with self.assertRaises(TypeError):
            IPlugin.cache.set("ss1", "k", b"bytes")
        with self.assertRaises(TypeError):
            IPlugin.cache.get(None, "k")
        with self.assertRaises(ValueError):
            IPlugin.cache.set("ss1", "k", "v", expire_time=-1)
        with self.assertRaises(TypeError):
            IPlugin.cache.extend("ss1", "k", "10")

    def test_named_temporary_file_without_spindle(self):
        f = IPlugin.getNamedTemporaryFile()
        try:
            # open(path, "w+b") reports its mode as "rb+", as tempfile's files do.
            self.assertTrue(f.readable() and f.writable() and "b" in f.mode)
            self.assertTrue(os.path.isabs(f.name))
            f.write(b"abc")
            f.seek(0)
            self.assertEqual(f.read(), b"abc")
        finally:
            f.close()
            os.remove(f.name)


# --------------------------------------------------------------------------------------------
# Agreement with the Rust crate
# --------------------------------------------------------------------------------------------


def _read(name):
    path = os.path.join(API_SRC, name)
    if not os.path.exists(path):
        raise unittest.SkipTest("%s is not available" % path)
    with open(path) as f:
        return f.read()


def _rust_method_table():
    """[(wire name, requirement, [(param, default or None)])] from methods.rs."""
    text = _read("methods.rs")
    consts = {
        "SS": ("ss_record", None),
        "SE": ("se_record", None),
        "OPT_SE": ("se_record", "None"),
        "QOS": ("qos", "None"),
    }
    body = text[text.index("methods! {"):]
    rows = re.findall(r'(\w+) = "(\w+)", (\w+),\s*\[(.*?)\],', body, re.S)
    table = []
    for _variant, name, requirement, params in rows:
        parsed = []
        for token in re.findall(r'req\("\w+", [\w:]+\)|opt\("\w+", [\w:]+, [\w:]+\)|\b[A-Z_]+\b',
                                params):
            if token.startswith("req("):
                parsed.append((re.search(r'"(\w+)"', token).group(1), None))
            elif token.startswith("opt("):
                pname = re.search(r'"(\w+)"', token).group(1)
                default = token.rsplit("ParamDefault::", 1)[1].rstrip(")")
                parsed.append((pname, default))
            else:
                parsed.append(consts[token])
        table.append((name, requirement, parsed))
    return table


_DEFAULTS = {"None": None, "True": True, "False": False,
             "LunAndSnapCloneTypes": ["LUNType", "SnapCloneType"]}


class RustAgreementTest(unittest.TestCase):
    def test_method_table_matches_methods_rs(self):
        table = _rust_method_table()
        self.assertEqual(len(table), 42)
        self.assertEqual([row[0] for row in table], list(OSCPlugin.STORAGE_ARRAY_METHODS))
        for name, _requirement, params in table:
            function = vars(IStorageArrayPlugin)[name].__func__
            code = function.__code__
            names = list(code.co_varnames[:code.co_argcount])
            self.assertEqual(names, [p for p, _ in params], name)
            defaults = list(function.__defaults__ or ())
            expected = [_DEFAULTS[d] for _, d in params if d is not None]
            self.assertEqual(defaults, expected, name)
            self.assertEqual(len(defaults), sum(1 for _, d in params if d is not None), name)
            # Optional parameters come last, so Python defaults line up with the table.
            self.assertEqual([d is not None for _, d in params],
                             sorted(d is not None for _, d in params), name)

    def test_docstrings_say_required_or_optional_as_the_table_does(self):
        words = {"Required": "REQUIRED.", "Optional": "OPTIONAL.",
                 "OptionalIscsiOnly": "OPTIONAL, iSCSI only.",
                 "RequiredIfAsync": "REQUIRED when"}
        for name, requirement, _params in _rust_method_table():
            doc = getattr(IStorageArrayPlugin, name).__doc__
            self.assertTrue(doc.startswith(words[requirement]), name)

    def test_exception_set_matches_exception_rs(self):
        text = _read("exception.rs")
        block = text[text.index("exception_kinds!("):text.index(");", text.index(
            "exception_kinds!("))]
        names = re.findall(r"^\s*(\w+),\s*$", block, re.M)
        self.assertEqual(names, GUIDE_EXCEPTIONS)

    def test_enumerations_match_enums_rs(self):
        text = _read("enums.rs")

        def wire(enum):
            block = text[text.index("    %s {" % enum):]
            block = block[:block.index("}")]
            return tuple(re.findall(r'= "(\w+)"', block))

        self.assertEqual(wire("AbilityType"), ABILITY_TYPES.values())
        self.assertEqual(wire("BackingDeviceType"), BACKING_DEVICE_TYPES.values())
        self.assertEqual(wire("SeState"), SE_STATES.values())
        self.assertEqual(wire("FsState"), FS_STATES.values())
        self.assertEqual(wire("SeType"), ("LUNType", "GhostLUNType", "SnapType",
                                          "SnapCloneType"))
        self.assertEqual(wire("StorageType"), (IStorageArrayPlugin.SANStorage,
                                               IStorageArrayPlugin.iSCSIStorage))
        self.assertEqual(wire("FileType"), tuple(getattr(IFileSystemPlugin, n) for n in (
            "FileType", "DirType", "SymLinkType", "CharDevType", "BlkDevType", "FifoType",
            "SockFileType", "SnapType", "SnapCloneType")))


if __name__ == "__main__":
    unittest.main()
