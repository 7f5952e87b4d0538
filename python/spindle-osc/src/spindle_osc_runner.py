"""spindle's runner for Python plug-in modules.

spindle starts it once per call as::

    python3 -s -m spindle_osc_runner --root ROOT --module VENDOR.MODULE

and speaks the plug-in protocol (docs/protocol.md: one JSON-RPC 2.0 message per line) over
its standard input and output. The runner imports ``ROOT/VENDOR/MODULE/__init__.py``, reads
its ``osc_isa_plugins`` / ``osc_ifs_plugins`` lists, answers ``spindle.hello`` with the
classes it found (and every mistake it found, explained), and answers ``plugin.call`` by
calling the class's static method.

The plug-in can never corrupt the channel: before any plug-in code runs, the runner keeps
private copies of file descriptors 0 and 1 for the protocol, points fd 0 at /dev/null and
fd 1 at an anonymous file. Whatever the plug-in (or a program it starts) prints lands there
and is reported to spindle as a ``host.warning`` notification.

Start-up is kept lean: only ``os``, ``sys`` and ``json`` are imported up front.
"""

import json
import os
import sys

from spindle_osc import PROTOCOL_VERSIONS
from spindle_osc import host as _host

MAX_LINE_BYTES = 256 * 1024 * 1024

CODE_PARSE_ERROR = -32700
CODE_INVALID_REQUEST = -32600
CODE_METHOD_NOT_FOUND = -32601
CODE_INVALID_PARAMS = -32602
CODE_INTERNAL_ERROR = -32603
CODE_PLUGIN_EXCEPTION = -32000

# Class variables reported as metadata, per kind; the first six must be set by every class.
_REQUIRED_VARS = ("plugin_name", "vendor_name", "plugin_version", "plugin_desc",
                  "storage_types", "plugin_ability")
_ISA_VARS = ("plugin_name", "vendor_name", "plugin_version", "plugin_desc",
             "ss_extra_info_help", "se_extra_info_help", "storage_types", "plugin_ability")
_IFS_VARS = ("plugin_name", "vendor_name", "plugin_version", "plugin_desc",
             "ss_extra_info_help", "fs_extra_info_help", "file_extra_info_help",
             "storage_types", "plugin_ability")

_EXCERPT = 200
_STDERR_COPY_LIMIT = 64 * 1024

_USAGE = "usage: python3 -s -m spindle_osc_runner --root ROOT --module VENDOR.MODULE\n"


class _Usage(Exception):
    pass


class HostGone(Exception):
    """spindle closed the channel."""


def _excerpt(text, limit=_EXCERPT):
    return text if len(text) <= limit else text[:limit] + "..."


def _quote(text):
    return json.dumps(_excerpt(text), ensure_ascii=False)


def _format_exception(exc, skip_files=()):
    """The traceback of ``exc`` as text, without the runner's own frames."""
    import traceback

    importlib = sys.modules.get("importlib")
    machinery = os.path.dirname(importlib.__file__) + os.sep if importlib else None
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        name = tb.tb_frame.f_code.co_filename
        if not (name in skip_files or name.startswith("<frozen")
                or (machinery and name.startswith(machinery))):
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


_OWN_FILES = (os.path.abspath(__file__), __file__)


# --------------------------------------------------------------------------------------------
# The channel
# --------------------------------------------------------------------------------------------


def _capture_fd():
    """An anonymous file to receive the plug-in's standard output."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        try:
            return memfd_create("spindle-osc-stdout", getattr(os, "MFD_CLOEXEC", 1))
        except OSError:
            pass
    o_tmpfile = getattr(os, "O_TMPFILE", None)
    if o_tmpfile is not None:
        try:
            fd = os.open(os.environ.get("TMPDIR") or "/tmp", o_tmpfile | os.O_RDWR, 0o600)
            os.set_inheritable(fd, False)
            return fd
        except OSError:
            pass
    import tempfile

    f = tempfile.TemporaryFile()
    fd = os.dup(f.fileno())
    f.close()
    return fd


class Channel(object):
    """The protocol channel, and the host facilities forwarded over it."""

    def __init__(self, in_fd, out_fd, capture_fd):
        import _thread

        self._in = open(in_fd, "rb", buffering=1 << 16)
        self._out_fd = out_fd
        self._capture_fd = capture_fd
        self._write_lock = _thread.allocate_lock()
        self._request_lock = _thread.allocate_lock()
        self._next_id = 0
        self.eof = False

    @classmethod
    def take_over_stdio(cls):
        """Keeps private copies of fds 0 and 1 for the protocol; points fd 0 at /dev/null
        and fd 1 at a capture file, so that nothing the plug-in does can reach the
        channel."""
        in_fd = os.dup(0)  # os.dup makes non-inheritable descriptors
        out_fd = os.dup(1)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.close(null)
        capture = _capture_fd()
        os.dup2(capture, 1)
        return cls(in_fd, out_fd, capture)

    # framing -----------------------------------------------------------------------------
    def _write_line(self, data):
        with self._write_lock:
            view = memoryview(data)
            while view:
                n = os.write(self._out_fd, view)
                view = view[n:]

    def send(self, message):
        self._write_line(json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n")

    def send_raw_response(self, req_id, result_json):
        """Sends a response whose result is already JSON text."""
        line = '{"jsonrpc":"2.0","id":%s,"result":%s}\n' % (
            json.dumps(req_id, separators=(",", ":")), result_json)
        self._write_line(line.encode("ascii"))

    def respond(self, req_id, result):
        self.send({"jsonrpc": "2.0", "id": req_id, "result": result})

    def respond_error(self, req_id, code, message, data=None):
        error = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self.send({"jsonrpc": "2.0", "id": req_id, "error": error})

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def read_message(self):
        """The next message: a dict, or ``(code, text, id)`` for a line that is not one, or
        ``None`` at end of input."""
        if self.eof:
            return None
        line = self._in.readline(MAX_LINE_BYTES + 1)
        if not line:
            self.eof = True
            return None
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the line
                more = self._in.readline(1 << 20)
                if not more or more.endswith(b"\n"):
                    break
            return (CODE_INVALID_REQUEST,
                    "line longer than %d bytes refused" % MAX_LINE_BYTES, None)
        if not line.strip():
            return (CODE_INVALID_REQUEST, "empty line", None)
        try:
            message = json.loads(line)
        except ValueError as e:
            return (CODE_PARSE_ERROR, "not JSON (%s): %r" % (e, line[:_EXCERPT]), None)
        if not isinstance(message, dict):
            return (CODE_INVALID_REQUEST, "not a JSON-RPC 2.0 message: %r" % line[:_EXCERPT],
                    None)
        if message.get("jsonrpc") != "2.0" or ("method" in message and not isinstance(
                message["method"], str)):
            req_id = message.get("id")
            if "method" in message and isinstance(req_id, (int, str)) \
                    and not isinstance(req_id, bool):
                return (CODE_INVALID_REQUEST, "not a JSON-RPC 2.0 request", req_id)
            return (CODE_INVALID_REQUEST, "not a JSON-RPC 2.0 message: %r" % line[:_EXCERPT],
                    None)
        return message

    def refuse(self, bad):
        """Answers a malformed request if it has an id to answer to. Without one, an answer
        (id null) would itself not be a message spindle accepts, so it is only logged."""
        code, text, req_id = bad
        if req_id is not None:
            self.respond_error(req_id, code, text)
        else:
            try:
                sys.stderr.write("spindle_osc_runner: ignored input: %s\n" % text)
                sys.stderr.flush()
            except Exception:
                pass

    # captured standard output ------------------------------------------------------------
    def restore_capture(self):
        """Points fd 1 back at the capture file (in case the plug-in closed or moved it)."""
        try:
            os.dup2(self._capture_fd, 1)
        except OSError:
            pass

    def take_captured(self):
        """What was written to fd 1 since the last look: (bytes, total size)."""
        for stream in (sys.stdout, sys.__stdout__):
            try:
                if stream is not None:
                    stream.flush()
            except Exception:
                pass
        try:
            size = os.fstat(self._capture_fd).st_size
            if size == 0:
                return b"", 0
            data = os.pread(self._capture_fd, min(size, _STDERR_COPY_LIMIT), 0)
            os.ftruncate(self._capture_fd, 0)
            os.lseek(self._capture_fd, 0, os.SEEK_SET)
        except OSError:
            return b"", 0
        return data, size

    def report_captured(self, during):
        data, size = self.take_captured()
        if not size:
            return
        text = data.decode("utf-8", "replace")
        self.notify("host.warning", {"kind": "stdout", "message": (
            "the plug-in wrote %d byte%s to standard output %s; plug-ins must never print "
            "(log through IPlugin.logger instead). The output was kept off the protocol "
            "channel; it began: %s" % (size, "" if size == 1 else "s", during, _quote(text)))})
        try:
            sys.stderr.write("spindle_osc_runner: standard output of the plug-in %s:\n%s%s\n"
                             % (during, text, "" if size <= len(data) else "\n[...]"))
            sys.stderr.flush()
        except Exception:
            pass

    # host requests -----------------------------------------------------------------------
    def request(self, method, params):
        """Sends a request to spindle and waits for its answer."""
        with self._request_lock:
            self._next_id += 1
            req_id = "c%d" % self._next_id
            self.send({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
            while True:
                message = self.read_message()
                if message is None:
                    raise HostGone("spindle closed the channel while the plug-in waited for "
                                   "the answer to %s" % method)
                if isinstance(message, tuple):
                    self.refuse(message)
                    continue
                if "method" in message:
                    if "id" in message:
                        self.respond_error(message["id"], CODE_INTERNAL_ERROR,
                                           "the plug-in is waiting for the answer to %s "
                                           "(request %s) and cannot take %s now"
                                           % (method, req_id, message.get("method")))
                    continue
                if message.get("id") != req_id:
                    continue
                if "error" in message:
                    error = message.get("error") or {}
                    raise _host.HostError("%s failed: %s" % (method, error.get("message", error)
                                                             if isinstance(error, dict)
                                                             else error))
                return message.get("result")


class ChannelHost(object):
    """The host facilities of ``IPlugin``, forwarded to spindle over the channel."""

    def __init__(self, channel):
        self.channel = channel

    def _request(self, method, params):
        from OSCPlugin import OperationFailedEx

        try:
            return self.channel.request(method, params)
        except (_host.HostError, HostGone) as e:
            raise OperationFailedEx(str(e))

    def cache_get(self, ss_uuid, cache_key):
        value = self._request("host.cache.get", {"ss_uuid": ss_uuid, "cache_key": cache_key})
        if value is not None and not isinstance(value, str):
            from OSCPlugin import OperationFailedEx

            raise OperationFailedEx("host.cache.get answered %r, not a string" % (value,))
        return value

    def cache_set(self, ss_uuid, cache_key, cache_value, expire_time):
        self._request("host.cache.set", {"ss_uuid": ss_uuid, "cache_key": cache_key,
                                         "cache_value": cache_value,
                                         "expire_time": expire_time})

    def cache_extend(self, ss_uuid, cache_key, extend_time):
        self._request("host.cache.extend", {"ss_uuid": ss_uuid, "cache_key": cache_key,
                                            "extend_time": extend_time})

    def cache_clear(self, ss_uuid):
        self._request("host.cache.clear", {"ss_uuid": ss_uuid})

    def temp_file(self):
        result = self._request("host.tempfile", {})
        path = result.get("path") if isinstance(result, dict) else None
        if not isinstance(path, str) or not os.path.isabs(path):
            from OSCPlugin import OperationFailedEx

            raise OperationFailedEx("host.tempfile answered %r, not {\"path\": an absolute "
                                    "path}" % (result,))
        return path

    def log(self, level, message):
        try:
            self.channel.notify("host.log", {"level": level, "message": message})
        except OSError:
            pass

    def warning(self, message):
        try:
            self.channel.notify("host.warning", {"message": message})
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# Loading a plug-in module
# --------------------------------------------------------------------------------------------


def _valid_version(version):
    """True for Major.Minor.Patch-Release, four decimal numbers (as spindle-api parses it)."""
    if not isinstance(version, str) or "-" not in version:
        return False
    mmp, release = version.split("-", 1)
    parts = mmp.split(".")
    if len(parts) != 3:
        return False
    for part in parts + [release]:
        if not part or any(c not in "0123456789" for c in part) or int(part) > 0xFFFFFFFF:
            return False
    return True


def _source_of(obj):
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if path else None


def _describe_bases(cls):
    return ", ".join("%s.%s" % (b.__module__, b.__qualname__) for b in cls.__bases__)


class Loaded(object):
    """What loading a plug-in module found."""

    def __init__(self):
        self.classes = {}  # class path -> (cls, kind)
        self.descriptors = []
        self.errors = []
        self.error_by_class = {}
        self.warnings = []

    def error(self, class_path, file, message):
        self.errors.append({"class": class_path, "file": file, "message": message})
        self.error_by_class.setdefault(class_path, message)


class Loader(object):
    """Imports ``VENDOR.MODULE`` from the root and checks what it declares."""

    def __init__(self, root, module_name):
        self.root = root
        self.module_name = module_name
        self.module_dir = os.path.join(root, *module_name.split("."))
        self.result = Loaded()

    def _innermost_plugin_file(self, exc):
        """The innermost traceback frame in a file under the plug-in root, if any."""
        if isinstance(exc, SyntaxError) and exc.filename:
            return os.path.abspath(exc.filename)
        found = None
        root = os.path.realpath(self.root) + os.sep
        tb = exc.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if os.path.realpath(name).startswith(root):
                found = os.path.abspath(name)
            tb = tb.tb_next
        return found

    def _tolerate_vendor_init(self):
        """The General guide's Appendix B RPM %post writes ``<root>/<vendor>/__init__.py`` in
        Python 2 (``print "..."``), only to make the vendor directory importable. When the
        vendor package's ``__init__.py`` does not compile under Python 3, the directory is
        imported as a namespace package instead (the file is ignored) and a warning says so."""
        import importlib.machinery
        import types

        vendor = self.module_name.split(".")[0]
        if vendor in sys.modules:
            return
        vendor_dir = os.path.join(self.root, vendor)
        init_file = os.path.join(vendor_dir, "__init__.py")
        try:
            with open(init_file, "rb") as f:
                source = f.read()
        except OSError:
            return
        try:
            compile(source, init_file, "exec", dont_inherit=True)
        except SyntaxError as e:
            spec = importlib.machinery.ModuleSpec(vendor, None, is_package=True)
            spec.submodule_search_locations = [vendor_dir]
            package = types.ModuleType(vendor)
            package.__spec__ = spec
            package.__path__ = spec.submodule_search_locations
            package.__package__ = vendor
            sys.modules[vendor] = package
            self.result.warnings.append(
                "vendor package %s: %s is not Python 3 (the guide's generated file?): %s at "
                "line %s; ignored, %s imported as a namespace package" % (
                    vendor, init_file, e.msg, e.lineno, vendor_dir))
        except (ValueError, TypeError):
            return

    def load(self):
        import importlib

        OSCPlugin = importlib.import_module("OSCPlugin")
        result = self.result
        init_file = os.path.join(self.module_dir, "__init__.py")
        self._tolerate_vendor_init()
        try:
            module = importlib.import_module(self.module_name)
        except (Exception, SystemExit) as e:
            if (isinstance(e, ImportError) and getattr(e, "name", None) in
                    (self.module_name, self.module_name.split(".")[0])):
                result.error(self.module_name, init_file, (
                    "module %s cannot be imported: there is no %s under the plug-in root %s "
                    "(expected %s, and %s beside it)" % (
                        self.module_name, e.name, self.root, init_file,
                        os.path.join(self.root, self.module_name.split(".")[0],
                                     "__init__.py"))))
            else:
                result.error(self.module_name, self._innermost_plugin_file(e) or init_file, (
                    "importing module %s failed, so none of its plug-ins can be loaded:\n%s"
                    % (self.module_name, _format_exception(e, _OWN_FILES))))
            return result

        module_file = os.path.abspath(getattr(module, "__file__", None) or "")
        real_root = os.path.realpath(self.root) + os.sep
        if not getattr(module, "__file__", None) or \
                not os.path.realpath(module_file).startswith(real_root):
            result.error(self.module_name, module_file or None, (
                "module %s was found at %s, outside the plug-in root %s; a vendor or module "
                "name must not shadow another Python module" % (
                    self.module_name, module_file or "(no file)", self.root)))
            return result

        declared = []
        for variable, kind in (("osc_isa_plugins", "storage_array"),
                               ("osc_ifs_plugins", "file_system")):
            if not hasattr(module, variable):
                continue
            value = getattr(module, variable)
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                result.error(self.module_name, module_file, (
                    "%s in %s must be a list of class paths such as \"%s.File.Class\", not %r"
                    % (variable, module_file, self.module_name, value)))
                continue
            for entry in value:
                declared.append((variable, kind, entry))
        if not declared and not result.errors:
            result.error(self.module_name, module_file, (
                "module %s (%s) declares no plug-in classes: set osc_isa_plugins (Storage "
                "Array plug-ins) and/or osc_ifs_plugins (File System plug-ins) to a list of "
                "class paths such as \"%s.File.Class\"" % (
                    self.module_name, module_file, self.module_name)))

        seen = set()
        first_version = None  # (class path, version)
        for variable, kind, entry in declared:
            if not isinstance(entry, str):
                result.error(self.module_name, module_file, (
                    "%s in %s holds %r, which is not a class path string"
                    % (variable, module_file, entry)))
                continue
            if entry in seen:
                result.error(entry, module_file, (
                    "class %s is declared more than once in %s; it is loaded only once"
                    % (entry, module_file)))
                continue
            seen.add(entry)
            cls = self._resolve(entry, variable, module_file)
            if cls is None:
                continue
            source = _source_of(cls)
            where = "class %s (%s)" % (entry, source or module_file)
            problems = []
            if kind == "storage_array":
                base, other, other_var = (OSCPlugin.IStorageArrayPlugin,
                                          OSCPlugin.IFileSystemPlugin, "osc_ifs_plugins")
            else:
                base, other, other_var = (OSCPlugin.IFileSystemPlugin,
                                          OSCPlugin.IStorageArrayPlugin, "osc_isa_plugins")
            if not issubclass(cls, base):
                hint = ""
                if issubclass(cls, other):
                    hint = "; it derives from %s, so declare it in %s instead" % (
                        other.__name__, other_var)
                result.error(entry, source, (
                    "%s is declared in %s but does not derive from OSCPlugin.%s (its bases: "
                    "%s)%s" % (where, variable, base.__name__, _describe_bases(cls), hint)))
                continue
            api_bases = (OSCPlugin.IStorageArrayPlugin, OSCPlugin.IFileSystemPlugin,
                         OSCPlugin.IPlugin, object)
            missing = [name for name in _REQUIRED_VARS
                       if not any(name in vars(k) for k in cls.__mro__ if k not in api_bases)]
            if missing:
                problems.append(
                    "does not set the class variable%s %s (every plug-in class sets %s)" % (
                        "" if len(missing) == 1 else "s", ", ".join(missing),
                        ", ".join(_REQUIRED_VARS)))
            version = getattr(cls, "plugin_version", None)
            if "plugin_version" not in missing:
                if not _valid_version(version):
                    problems.append(
                        "has plugin_version %r, which is not of the form "
                        "Major.Minor.Patch-Release with decimal numbers (for example "
                        "\"1.0.1-1\")" % (version,))
                elif first_version is None:
                    first_version = (entry, version)
                elif version != first_version[1]:
                    problems.append(
                        "has plugin_version %s, but %s, declared before it in the same module, "
                        "has %s; every plug-in class of one module has the same version (the "
                        "package's)" % (version, first_version[0], first_version[1]))
            variables = _ISA_VARS if kind == "storage_array" else _IFS_VARS
            metadata = dict((name, getattr(cls, name, None)) for name in variables)
            try:
                json.dumps(metadata, allow_nan=False)
            except (TypeError, ValueError) as e:
                problems.append("has class variables that cannot be encoded as JSON (%s)" % e)
            if problems:
                result.error(entry, source, "%s %s" % (where, "; and ".join(problems)))
                continue
            if kind == "storage_array":
                implemented = [name for name in OSCPlugin.STORAGE_ARRAY_METHODS
                               if _defining_class(cls, name) not in api_bases]
            else:
                implemented = sorted(
                    name for name in dir(cls)
                    if not name.startswith("_") and callable(getattr(cls, name, None))
                    and _defining_class(cls, name) not in api_bases
                    and not isinstance(getattr(cls, name), type))
            result.classes[entry] = (cls, kind)
            result.descriptors.append({"class": entry, "kind": kind, "metadata": metadata,
                                       "implemented": implemented, "source": source})
        return result

    def _resolve(self, entry, variable, module_file):
        """The object a class path names, or None (with the error recorded)."""
        import importlib

        result = self.result
        prefix = self.module_name + "."
        if not entry.startswith(prefix) or len(entry) == len(prefix):
            result.error(entry, module_file, (
                "%s in %s names %s, which is not inside this module: class paths start with "
                "\"%s\" (for example \"%sFile.Class\")" % (
                    variable, module_file, entry, prefix, prefix)))
            return None
        parts = entry[len(prefix):].split(".")
        if not all(p.isidentifier() for p in parts):
            result.error(entry, module_file, (
                "%s in %s names %r, which is not a dotted Python path" % (
                    variable, module_file, entry)))
            return None
        obj = sys.modules[self.module_name]
        path = self.module_name
        for part in parts:
            if hasattr(obj, part):
                obj = getattr(obj, part)
                path = path + "." + part
                continue
            file = getattr(obj, "__file__", None)
            if isinstance(obj, type(sys)) and hasattr(obj, "__path__"):
                full = path + "." + part
                try:
                    obj = importlib.import_module(full)
                    path = full
                    continue
                except ImportError as e:
                    if getattr(e, "name", None) == full:
                        result.error(entry, module_file, (
                            "%s in %s names %s, which does not resolve: package %s (%s) has "
                            "no attribute or file %s (no %s.py)" % (
                                variable, module_file, entry, path, file, part,
                                os.path.join(os.path.dirname(file or ""), part))))
                        return None
                    err = e
                except (Exception, SystemExit) as e:
                    err = e
                result.error(entry, self._innermost_plugin_file(err) or file, (
                    "%s in %s names %s, but importing %s failed:\n%s" % (
                        variable, module_file, entry, full,
                        _format_exception(err, _OWN_FILES))))
                return None
            what = "module %s (%s)" % (path, file) if isinstance(obj, type(sys)) \
                else "%s (%s)" % (path, type(obj).__name__)
            result.error(entry, file or _source_of(obj) or module_file, (
                "%s in %s names %s, which does not resolve: %s has no attribute %s" % (
                    variable, module_file, entry, what, part)))
            return None
        if not isinstance(obj, type):
            result.error(entry, _source_of(obj) or module_file, (
                "%s in %s names %s, which is a %s, not a class" % (
                    variable, module_file, entry, type(obj).__name__)))
            return None
        return obj


def _defining_class(cls, name):
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    return None


# --------------------------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------------------------


def exception_error(exc, OSCPlugin, include_traceback=True):
    """The protocol's error object for an exception a plug-in raised."""
    cls = type(exc)
    name = cls.__name__
    guide_class = getattr(OSCPlugin, name, None) if name in OSCPlugin.__all__ else None
    if guide_class is not None and guide_class is not cls:
        # Not the API's class, only its name: report it so that spindle does not mistake it.
        name = "%s.%s" % (cls.__module__, cls.__qualname__)
    if isinstance(exc, OSCPlugin.IPluginException):
        message = exc.message
    else:
        try:
            message = str(exc)
        except Exception:
            message = repr(exc)
    data = {"exception": name, "message": message}
    text = "%s: %s" % (name, message)
    if isinstance(exc, (OSCPlugin.MissingKeyEx, OSCPlugin.ValueFormatEx)):
        key = exc.key if exc.key is None or isinstance(exc.key, str) else str(exc.key)
        data["key"] = key
        if key is not None:
            text += " (key: %s)" % key
    if include_traceback:
        data["traceback"] = _format_exception(exc, _OWN_FILES)
    return {"code": CODE_PLUGIN_EXCEPTION, "message": text, "data": data}


class Runner(object):
    def __init__(self, channel, root, module_name):
        self.channel = channel
        self.root = root
        self.module_name = module_name
        self.loaded = None
        self._root_handler = None

    # -------------------------------------------------------------------------------------
    def ensure_loaded(self):
        if self.loaded is None:
            self.channel.restore_capture()
            try:
                self.loaded = Loader(self.root, self.module_name).load()
            finally:
                self.channel.report_captured("while module %s was imported" % self.module_name)
        return self.loaded

    def _hook_root_logger(self):
        """Sends records of the root logger (a plug-in calling logging.warning(...)) to
        spindle too, once the plug-in has loaded the logging package."""
        if self._root_handler is not None or "logging" not in sys.modules:
            return
        import logging

        class _RootHandler(logging.Handler):
            def emit(self, record):
                try:
                    _host.current.log(_host.level_name(record.levelno), self.format(record))
                except Exception:
                    self.handleError(record)

        handler = _RootHandler(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        self._root_handler = handler

    # -------------------------------------------------------------------------------------
    def serve(self):
        channel = self.channel
        while True:
            message = channel.read_message()
            if message is None:
                return 0
            if isinstance(message, tuple):
                channel.refuse(message)
                continue
            method = message.get("method")
            if method is None:
                continue  # a stray response
            if "id" not in message:
                continue  # a notification: nothing to do
            req_id = message["id"]
            params = message.get("params")
            if method == "spindle.hello":
                self.hello(req_id, params)
            elif method == "plugin.call":
                self.call(req_id, params)
            else:
                channel.respond_error(req_id, CODE_METHOD_NOT_FOUND,
                                      "the plug-in runner does not know the method %r" % method)

    def hello(self, req_id, params):
        versions = params.get("protocol_versions") if isinstance(params, dict) else None
        if not isinstance(versions, list):
            self.channel.respond_error(req_id, CODE_INVALID_PARAMS,
                                       "spindle.hello needs protocol_versions, a list")
            return
        common = [v for v in versions
                  if isinstance(v, int) and not isinstance(v, bool) and v in PROTOCOL_VERSIONS]
        if not common:
            self.channel.respond_error(
                req_id, CODE_INVALID_PARAMS,
                "no common protocol version: spindle speaks %s, this runner speaks %s" % (
                    versions, list(PROTOCOL_VERSIONS)),
                {"protocol_versions": list(PROTOCOL_VERSIONS)})
            return
        loaded = self.ensure_loaded()
        self._hook_root_logger()
        self.channel.respond(req_id, {
            "protocol": max(common),
            "runtime": "python %d.%d.%d" % sys.version_info[:3],
            "classes": loaded.descriptors,
            "errors": loaded.errors,
            "warnings": loaded.warnings,
        })

    def call(self, req_id, params):
        channel = self.channel
        if not isinstance(params, dict):
            channel.respond_error(req_id, CODE_INVALID_PARAMS, "plugin.call needs params")
            return
        for name, types in (("class", str), ("method", str), ("args", dict),
                            ("call_id", str), ("dev_path_prefix", str)):
            if not isinstance(params.get(name), types):
                channel.respond_error(req_id, CODE_INVALID_PARAMS,
                                      "plugin.call parameter %r is missing or has the wrong "
                                      "type" % name)
                return
        class_path, method, args = params["class"], params["method"], params["args"]
        loaded = self.ensure_loaded()
        import OSCPlugin

        entry = loaded.classes.get(class_path)
        if entry is None:
            reason = loaded.error_by_class.get(class_path) or loaded.error_by_class.get(
                self.module_name)
            channel.respond_error(req_id, CODE_INVALID_PARAMS, (
                "module %s offers no class %s%s" % (
                    self.module_name, class_path, (": " + reason) if reason else "")))
            return
        cls, kind = entry
        if kind == "storage_array":
            if method not in OSCPlugin.STORAGE_ARRAY_METHODS:
                channel.respond_error(req_id, CODE_METHOD_NOT_FOUND,
                                      "%s is not a method of the Storage Array API" % method)
                return
            stub = vars(OSCPlugin.IStorageArrayPlugin)[method].__func__.__code__
            names = stub.co_varnames[:stub.co_argcount]
            defaults = vars(OSCPlugin.IStorageArrayPlugin)[method].__func__.__defaults__ or ()
            required = names[:len(names) - len(defaults)]
            unknown = sorted(set(args) - set(names))
            missing = [n for n in required if n not in args]
            if unknown or missing:
                channel.respond_error(req_id, CODE_INVALID_PARAMS, "%s takes %s; %s" % (
                    method, ", ".join(names),
                    "; ".join(filter(None, [
                        unknown and "unknown: %s" % ", ".join(unknown),
                        missing and "missing: %s" % ", ".join(missing)]))))
                return
        elif method.startswith("_") or not callable(getattr(cls, method, None)):
            channel.respond_error(req_id, CODE_METHOD_NOT_FOUND,
                                  "%s has no public method %s" % (class_path, method))
            return
        function = getattr(cls, method)

        OSCPlugin.IPlugin.dev_path_prefix = params["dev_path_prefix"]
        self._hook_root_logger()
        channel.restore_capture()
        error = None
        value_json = None
        try:
            value = function(**args)
        except (Exception, SystemExit) as e:
            error = exception_error(e, OSCPlugin)
        else:
            try:
                value_json = json.dumps(value, allow_nan=False, separators=(",", ":"))
            except (TypeError, ValueError, RecursionError) as e:
                error = {"code": CODE_PLUGIN_EXCEPTION,
                         "message": "OperationFailedEx: %s.%s returned a value that cannot be "
                                    "encoded as JSON" % (class_path, method),
                         "data": {"exception": "OperationFailedEx", "message": (
                             "%s.%s returned a value that cannot be encoded as JSON (%s: %s); a "
                             "plug-in returns dicts, lists, tuples, strings, numbers, booleans "
                             "or None" % (class_path, method, type(e).__name__, e))}}
        self._hook_root_logger()
        channel.report_captured("during %s.%s (call %s)" % (class_path, method,
                                                            params["call_id"]))
        if error is not None:
            channel.send({"jsonrpc": "2.0", "id": req_id, "error": error})
        else:
            channel.send_raw_response(req_id, '{"value":%s}' % value_json)


# --------------------------------------------------------------------------------------------


def parse_args(argv):
    root = module = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            raise _Usage("")
        if arg.startswith("--root="):
            root = arg[len("--root="):]
        elif arg.startswith("--module="):
            module = arg[len("--module="):]
        elif arg in ("--root", "--module") and i + 1 < len(argv):
            i += 1
            if arg == "--root":
                root = argv[i]
            else:
                module = argv[i]
        else:
            raise _Usage("unexpected argument %r" % arg)
        i += 1
    if not root or not module:
        raise _Usage("--root and --module are required")
    parts = module.split(".")
    if len(parts) != 2 or not all(p.isidentifier() for p in parts):
        raise _Usage("--module must be VENDOR.MODULE (two Python identifiers), not %r" % module)
    import keyword

    if any(keyword.iskeyword(p) for p in parts):
        raise _Usage("--module %r uses a Python keyword as a name" % module)
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise _Usage("plug-in root %s is not a directory" % root)
    return root, module


def _fix_sys_path(root):
    """The plug-in root first; the current directory (which ``-m`` adds) never, unless the
    runner itself lives there."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    sys.path[:] = [p for p in sys.path
                   if not ((p == "" or p == cwd) and os.path.abspath(p or ".") != here)]
    sys.path.insert(0, root)


def main(argv=None):
    try:
        root, module = parse_args(sys.argv[1:] if argv is None else argv)
    except _Usage as e:
        sys.stderr.write(("spindle_osc_runner: %s\n" % e if str(e) else "") + _USAGE)
        return 2
    _fix_sys_path(root)
    channel = Channel.take_over_stdio()
    _host.current = ChannelHost(channel)
    try:
        return Runner(channel, root, module).serve()
    except BrokenPipeError:
        sys.stderr.write("spindle_osc_runner: spindle closed the channel\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
