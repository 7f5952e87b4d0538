"""A stand-in for spindle in the tests: starts the runner as a child process, speaks the
plug-in protocol to it, and answers its host requests (cache, temporary files).

Every line the runner writes on its standard output must be a JSON-RPC 2.0 message; anything
else fails the test at once (that is what spindle's strict mode does).
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.dirname(HERE)
SRC = os.path.join(PACKAGE, "src")
REPO = os.path.dirname(os.path.dirname(PACKAGE))
SAMPLES = os.path.join(REPO, "tests", "python-plugins")
BROKEN = os.path.join(REPO, "tests", "python-plugins-broken")
FIXTURES = os.path.join(HERE, "fixtures", "plugins")
PYTHON = os.environ.get("SPINDLE_OSC_TEST_PYTHON", sys.executable)
TIMEOUT = 60


class ProtocolError(AssertionError):
    pass


PYCACHE = os.path.join(tempfile.gettempdir(), "spindle-osc-test-pycache")


def runner_env(extra=None):
    """The environment spindle gives the runner (crates/spindle-manager: python_launcher)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONSTARTUP", None)
    # With a pycache prefix and no bytecode writing, no .pyc is ever found (the standard
    # library's included) and every start compiles everything: twice as slow.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if extra:
        env.update(extra)
    return env


def _classify(msg):
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        return None
    has_id, has_method = "id" in msg, "method" in msg
    has_result, has_error = "result" in msg, "error" in msg
    if has_method and not has_result and not has_error:
        return "request" if has_id else "notification"
    if has_id and not has_method and (has_result != has_error):
        return "response"
    return None


class Host(object):
    """One runner process, as spindle starts it for one call."""

    def __init__(self, root, module, cache=None, python=PYTHON, env=None, args=None,
                 cwd=None):
        self.cache = cache if cache is not None else {}
        self.tempdir = tempfile.mkdtemp(prefix="spindle-osc-test-")
        self.notifications = []
        self.host_requests = []
        self.temp_files = []
        self.stderr_lines = []
        self.refuse = set()  # host methods to answer with an error
        argv = [python, "-s", "-m", "spindle_osc_runner"]
        argv += args if args is not None else ["--root", root, "--module", module]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd or root or self.tempdir,
                                     env=env or runner_env())
        self._lines = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_thread.start()

    # plumbing ----------------------------------------------------------------------------
    def _pump_stdout(self):
        traffic = os.environ.get("SPINDLE_OSC_TRAFFIC_LOG")  # every line, for interop checks
        log = open(traffic, "ab") if traffic else None
        try:
            for line in iter(self.proc.stdout.readline, b""):
                if log is not None:
                    log.write(line)
                self._lines.put(line)
        finally:
            if log is not None:
                log.close()
        self._lines.put(None)

    def _pump_stderr(self):
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    @property
    def stderr(self):
        return "".join(self.stderr_lines)

    def send(self, message):
        self.send_line(json.dumps(message).encode("utf-8"))

    def send_line(self, data):
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def read_message(self, timeout=TIMEOUT):
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise ProtocolError("no message from the runner within %ss; stderr:\n%s"
                                % (timeout, self.stderr))
        if line is None:
            time.sleep(0.1)
            raise ProtocolError("the runner closed its standard output; stderr:\n%s"
                                % self.stderr)
        if not line.endswith(b"\n"):
            raise ProtocolError("unterminated line on stdout: %r" % line[:200])
        try:
            message = json.loads(line.decode("utf-8"))
        except ValueError:
            raise ProtocolError("a non-protocol line on the runner's stdout: %r" % line[:200])
        if _classify(message) is None:
            raise ProtocolError("not a JSON-RPC 2.0 message: %r" % line[:200])
        return message

    # spindle's side ----------------------------------------------------------------------
    def request(self, method, params, timeout=TIMEOUT):
        self._next_id += 1
        req_id = self._next_id
        self.send({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
        return self.wait_response(req_id, timeout)

    def wait_response(self, req_id, timeout=TIMEOUT):
        while True:
            message = self.read_message(timeout)
            kind = _classify(message)
            if kind == "notification":
                self.notifications.append(message)
            elif kind == "request":
                self.host_requests.append(message)
                self._answer(message)
            else:
                if message["id"] != req_id:
                    raise ProtocolError("response to %r while waiting for %r"
                                        % (message["id"], req_id))
                return message

    def hello(self, versions=(1,)):
        response = self.request("spindle.hello", {"protocol_versions": list(versions),
                                                  "host": "spindle 0.1.0"})
        if "error" in response:
            raise AssertionError("hello failed: %r" % response["error"])
        return response["result"]

    def call(self, cls, method, args, dev_path_prefix="/dev/mapper/", call_id="3f2a"):
        return self.request("plugin.call", {"class": cls, "method": method, "args": args,
                                            "call_id": call_id,
                                            "dev_path_prefix": dev_path_prefix})

    def close(self, timeout=TIMEOUT):
        """Closes stdin as spindle does; returns the exit status. Nothing more may arrive."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        code = self.proc.wait(timeout)
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                break
            if line is None:
                break
            message = self.read_message_from(line)
            if _classify(message) == "notification":
                self.notifications.append(message)
            else:
                raise ProtocolError("unexpected message after the last response: %r" % line)
        self._stderr_thread.join(timeout)
        self._close_pipes()
        for path in self.temp_files:  # "removed when the call ends"
            if os.path.exists(path):
                os.remove(path)
        shutil.rmtree(self.tempdir, ignore_errors=True)
        return code

    def read_message_from(self, line):
        try:
            return json.loads(line.decode("utf-8"))
        except ValueError:
            raise ProtocolError("a non-protocol line on the runner's stdout: %r" % line[:200])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr_thread.join(TIMEOUT)
        self._close_pipes()
        shutil.rmtree(self.tempdir, ignore_errors=True)

    def _close_pipes(self):
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except (OSError, ValueError):
                pass

    # host services -----------------------------------------------------------------------
    def _answer(self, message):
        method, params, req_id = message["method"], message.get("params") or {}, message["id"]
        if not isinstance(req_id, str):
            raise ProtocolError("the child's request ids are strings, not %r" % (req_id,))
        if method in self.refuse:
            self.send({"jsonrpc": "2.0", "id": req_id,
                       "error": {"code": -32000, "message": "refused by the test host"}})
            return
        now = time.monotonic()
        result = None
        if method == "host.cache.get":
            entry = self.cache.get((params["ss_uuid"], params["cache_key"]))
            result = entry[0] if entry and entry[1] > now else None
        elif method == "host.cache.set":
            key = (params["ss_uuid"], params["cache_key"])
            if params.get("cache_value") is None:
                self.cache.pop(key, None)
            else:
                self.cache[key] = (params["cache_value"], now + params.get("expire_time", 30))
        elif method == "host.cache.extend":
            key = (params["ss_uuid"], params["cache_key"])
            if key in self.cache:
                self.cache[key] = (self.cache[key][0], self.cache[key][1] + params["extend_time"])
        elif method == "host.cache.clear":
            for key in [k for k in self.cache if k[0] == params["ss_uuid"]]:
                del self.cache[key]
        elif method == "host.tempfile":
            fd, path = tempfile.mkstemp(dir=self.tempdir, prefix="call-")
            os.close(fd)
            self.temp_files.append(path)
            result = {"path": path}
        else:
            self.send({"jsonrpc": "2.0", "id": req_id,
                       "error": {"code": -32601, "message": "unknown host method"}})
            return
        self.send({"jsonrpc": "2.0", "id": req_id, "result": result})

    # what the child said -----------------------------------------------------------------
    @property
    def warnings(self):
        return [n["params"]["message"] for n in self.notifications
                if n["method"] == "host.warning"]

    @property
    def logs(self):
        return [(n["params"]["level"], n["params"]["message"]) for n in self.notifications
                if n["method"] == "host.log"]

    def host_methods(self):
        return [r["method"] for r in self.host_requests]


def value_of(response):
    if "error" in response:
        raise AssertionError("the call failed: %s" % json.dumps(response["error"], indent=1))
    return response["result"]["value"]


def call_once(root, module, cls, method, args, cache=None, dev_path_prefix="/dev/mapper/"):
    """What spindle does for one call: a fresh process, hello, the call, stdin closed.
    Returns (response, host)."""
    host = Host(root, module, cache=cache)
    try:
        host.hello()
        response = host.call(cls, method, args, dev_path_prefix=dev_path_prefix)
        code = host.close()
    except BaseException:
        host.kill()
        raise
    if code != 0:
        raise AssertionError("the runner exited with %s; stderr:\n%s" % (code, host.stderr))
    return response, host
