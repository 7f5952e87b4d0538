"""The runner's side of the protocol: framing, hello, calls, host services, exceptions, and a
plug-in that misbehaves in every way it can (tests/fixtures/plugins/testvendor/quirks)."""

import os
import shutil
import subprocess
import tempfile
import unittest

from spindlehost import FIXTURES, PYTHON, SAMPLES, SRC, Host, runner_env, value_of

MODULE = "testvendor.quirks"
QUIRKS = "testvendor.quirks.Quirks.Quirks"
FILES = "testvendor.quirks.Files.Files"
SS = {"name": "a", "uuid": "ss-9", "storage_type": "SANStorage", "admin_host": "h",
      "admin_user": "u", "admin_passwd": "p", "status": "", "access_grps": [],
      "storage_desc": ""}


class QuirksTestCase(unittest.TestCase):
    def setUp(self):
        self.host = Host(FIXTURES, MODULE)
        self.hello = self.host.hello()

    def tearDown(self):
        if self.host.proc.poll() is None:
            self.assertEqual(self.host.close(), 0)
        else:
            self.host.kill()

    def call(self, method, **args):
        return self.host.call(QUIRKS, method, args)

    def exception(self, method, **args):
        response = self.call(method, **args)
        self.assertIn("error", response, response)
        self.assertEqual(response["error"]["code"], -32000)
        return response["error"]


class HelloTest(QuirksTestCase):
    def test_both_kinds_are_offered(self):
        classes = {c["class"]: c for c in self.hello["classes"]}
        self.assertEqual(sorted(classes), [FILES, QUIRKS])
        self.assertEqual(classes[QUIRKS]["kind"], "storage_array")
        self.assertEqual(classes[FILES]["kind"], "file_system")
        self.assertEqual(classes[FILES]["implemented"], ["listFileSystems"])
        self.assertIn("fs_extra_info_help", classes[FILES]["metadata"])
        self.assertIn("getAsyncProgress", classes[QUIRKS]["implemented"])
        self.assertNotIn("start", classes[QUIRKS]["implemented"])
        self.assertEqual(self.hello["errors"], [])

    def test_printing_during_import_is_diverted_and_reported(self):
        (warning,) = self.host.warnings
        self.assertIn("while module testvendor.quirks was imported", warning)
        self.assertIn('"quirks: hello from module import\\n"', warning)
        self.assertIn("IPlugin.logger", warning)
        self.assertEqual(self.host.close(), 0)  # stderr is complete once the runner exits
        self.assertIn("quirks: hello from module import", self.host.stderr)


class CallTest(QuirksTestCase):
    def test_file_system_plug_in_call(self):
        response = self.host.call(FILES, "listFileSystems", {"ss_record": SS})
        self.assertEqual(value_of(response), [{"name": "fs1", "state": "MOUNTED"}])

    def test_stdout_pollution_during_a_call_never_reaches_the_channel(self):
        before = len(self.host.warnings)
        self.assertIsNone(value_of(self.call("validate", ss_record=SS)))
        (warning,) = self.host.warnings[before:]
        self.assertIn("during %s.validate (call 3f2a)" % QUIRKS, warning)
        # Marked as printed output, so that spindle can fail the method for it.
        kinds = [n["params"].get("kind") for n in self.host.notifications
                 if n["method"] == "host.warning"]
        self.assertEqual(kinds[-1], "stdout")
        self.assertIn("quirks: print from validate", warning)
        # The whole output is in spindle's log (stderr), in the order it was written.
        self.host.close()
        log = self.host.stderr
        for text in ("quirks: print from validate", "more text", "quirks: raw write to fd 1",
                     "quirks: echo from a child process"):
            self.assertIn(text, log)

    def test_a_long_output_is_quoted_as_an_excerpt(self):
        response = self.host.call(QUIRKS, "validate", {"ss_record": SS})
        value_of(response)
        warning = self.host.warnings[-1]
        self.assertLess(len(warning), 600)

    def test_values_travel_as_json(self):
        self.assertEqual(value_of(self.call("getStatus", ss_record=SS)), ["ok", 1, None])
        self.assertEqual(value_of(self.call("getCapabilities", ss_record=SS)),
                         {"text": "caf\u00e9 \u2603", "nested": [1, 2.5, True, None, {"x": []}]})
        self.assertEqual(value_of(self.call("updateSERecords", ss_record=SS, se_records=[])),
                         {"se_records": [], "append_allowed": False})  # the default applies
        self.assertEqual(value_of(self.call("updateSERecords", ss_record=SS, se_records=[{}],
                                            append_allowed=True)),
                         {"se_records": [{}], "append_allowed": True})

    def test_a_big_answer(self):
        records = value_of(self.call("getAsyncProgress", ss_record=SS,
                                     some_record={"name": "x" * 100}))
        self.assertEqual(len(records), 20000)
        self.assertEqual(records[-1], {"name": "x" * 100, "n": 19999})

    def test_a_value_that_is_not_json(self):
        for method in ("list", "getSnapLimits"):
            error = self.exception(method, ss_record=SS)
            self.assertEqual(error["data"]["exception"], "OperationFailedEx")
            self.assertIn("cannot be encoded as JSON", error["data"]["message"])
            self.assertIn(method, error["data"]["message"])

    def test_guide_exceptions_carry_message_and_key(self):
        error = self.exception("create", ss_record=SS, se_record={})
        self.assertEqual(error["message"], "MissingKeyEx: size is required (key: size)")
        data = error["data"]
        self.assertEqual((data["exception"], data["message"], data["key"]),
                         ("MissingKeyEx", "size is required", "size"))
        self.assertIn("Quirks.py", data["traceback"])
        self.assertNotIn("spindle_osc_runner", data["traceback"])
        data = self.exception("resize", ss_record=SS, se_record={}, new_size=-1)["data"]
        self.assertEqual((data["exception"], data["key"]), ("ValueFormatEx", "new_size"))
        data = self.exception("online", ss_record=SS, se_record={})["data"]
        self.assertEqual(data["exception"], "IPluginException")
        self.assertNotIn("key", data)

    def test_other_exceptions_keep_their_own_names(self):
        data = self.exception("getInfo", ss_record=SS)["data"]
        self.assertEqual((data["exception"], data["message"]), ("KeyError", "'no_such_key'"))
        self.assertNotIn("key", data)
        self.assertEqual(self.exception("clone", ss_record=SS, se_record={})["data"]
                         ["exception"], "AcmeSpecialEx")
        # Same name as the API's class but not the API's class: qualified, so that spindle
        # cannot take it for the real one.
        data = self.exception("cloneFromSnap", ss_record=SS, se_record={},
                              snap_se_record={})["data"]
        self.assertEqual(data["exception"], "testvendor.quirks.Quirks.MissingKeyEx")
        self.assertNotIn("key", data)
        data = self.exception("remove", ss_record=SS, se_record={})["data"]
        self.assertEqual((data["exception"], data["message"]), ("SystemExit", "3"))
        # The runner survived all of it.
        self.assertEqual(value_of(self.call("getStatus", ss_record=SS)), ["ok", 1, None])

    def test_the_base_class_refuses_what_the_plug_in_does_not_implement(self):
        data = self.exception("start", ss_record=SS)["data"]
        self.assertEqual(data["exception"], "NoSuchOperationEx")

    def test_cache_round_trips(self):
        self.host.cache[("ss-9", "stale")] = ("old", 0)
        self.assertEqual(value_of(self.call("getCloneLimits", ss_record=SS)),
                         ["v1", None, None])
        requests = self.host.host_requests
        self.assertEqual([r["method"] for r in requests], [
            "host.cache.set", "host.cache.set", "host.cache.get", "host.cache.extend",
            "host.cache.set", "host.cache.get", "host.cache.clear", "host.cache.get"])
        self.assertEqual([r["id"] for r in requests], ["c%d" % i for i in range(1, 9)])
        self.assertEqual(requests[0]["params"], {"ss_uuid": "ss-9", "cache_key": "k1",
                                                 "cache_value": "v1", "expire_time": 30})
        self.assertEqual(requests[1]["params"]["expire_time"], 120)
        self.assertEqual(requests[3]["params"], {"ss_uuid": "ss-9", "cache_key": "k1",
                                                 "extend_time": 15})
        self.assertEqual(requests[4]["params"]["cache_value"], None)
        self.assertEqual(requests[6]["params"], {"ss_uuid": "ss-9"})
        self.assertEqual(self.host.cache, {})

    def test_a_cache_value_that_is_not_a_string(self):
        data = self.exception("isCloneable", ss_record=SS, se_record={})["data"]
        self.assertEqual(data["exception"], "TypeError")
        self.assertIn("cache_value must be a string", data["message"])
        self.assertEqual(self.host.host_requests, [])

    def test_the_host_refusing_a_request(self):
        self.host.refuse.add("host.cache.get")
        data = self.exception("isSnapable", ss_record=SS)["data"]
        self.assertEqual(data["exception"], "OperationFailedEx")
        self.assertIn("host.cache.get failed: refused by the test host", data["message"])

    def test_temporary_file(self):
        result = value_of(self.call("getCurrentClones", ss_record=SS))
        (path,) = self.host.temp_files
        self.assertEqual(result["name"], path)
        self.assertEqual(result["content"], "written by the plug-in")
        self.assertIn("+", result["mode"])
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"written by the plug-in")
        self.assertEqual(self.host.host_requests[0]["params"], {})

    def test_logging(self):
        value_of(self.call("getCurrentSnaps", ss_record=SS))
        self.assertEqual(self.host.logs, [
            ("debug", "a debug record"), ("info", "an info record"),
            ("warning", "a warning record"), ("error", "an error record"),
            ("critical", "a critical record"), ("warning", "thirdparty: from another logger")])

    def test_dev_path_prefix_is_set_per_call(self):
        response = self.host.call(QUIRKS, "getQoSList", {"ss_record": SS},
                                  dev_path_prefix="/dev/disk/by-id/")
        self.assertEqual(value_of(response), ["/dev/disk/by-id/"])

    def test_reading_stdin_gets_nothing(self):
        self.assertEqual(value_of(self.call("getStorageNames", ss_record=SS)), ["", ""])
        # And the host's next message still reaches the runner.
        self.assertEqual(value_of(self.call("getStatus", ss_record=SS)), ["ok", 1, None])


class BadRequestsTest(QuirksTestCase):
    def test_unknown_class_method_and_parameters(self):
        response = self.host.call("testvendor.quirks.Quirks.Nope", "validate",
                                  {"ss_record": SS})
        self.assertEqual(response["error"]["code"], -32602)
        self.assertIn("offers no class", response["error"]["message"])
        response = self.call("noSuchMethod", ss_record=SS)
        self.assertEqual(response["error"]["code"], -32601)
        response = self.host.call(FILES, "_private", {})
        self.assertEqual(response["error"]["code"], -32601)
        response = self.call("validate", ss_record=SS, extra=1)
        self.assertEqual(response["error"]["code"], -32602)
        self.assertIn("unknown: extra", response["error"]["message"])
        response = self.call("resize", ss_record=SS)
        self.assertEqual(response["error"]["code"], -32602)
        self.assertIn("missing: se_record, new_size", response["error"]["message"])
        response = self.host.request("plugin.call", {"class": QUIRKS})
        self.assertEqual(response["error"]["code"], -32602)

    def test_unknown_method_and_garbage(self):
        response = self.host.request("spindle.nonsense", {})
        self.assertEqual(response["error"]["code"], -32601)
        # Garbage without an id is not answered: an answer with id null is not a message
        # spindle accepts. It is logged instead.
        self.host.send_line(b"this is not json")
        self.host.send_line(b'{"id": 5}')
        self.host.send_line(b'[1, 2]')
        # A request that is malformed but has an id gets an error answer.
        self.host.send_line(b'{"jsonrpc": "1.0", "id": 6, "method": "spindle.hello"}')
        message = self.host.read_message()
        self.assertEqual((message["id"], message["error"]["code"]), (6, -32600))
        # Notifications and stray responses are ignored.
        self.host.send({"jsonrpc": "2.0", "method": "spindle.tick", "params": {}})
        self.host.send({"jsonrpc": "2.0", "id": "c99", "result": None})
        self.assertEqual(value_of(self.call("getStatus", ss_record=SS)), ["ok", 1, None])
        self.assertEqual(self.host.close(), 0)
        self.assertEqual(self.host.stderr.count("spindle_osc_runner: ignored input"), 3)
        self.assertIn("this is not json", self.host.stderr)

    def test_protocol_version_negotiation(self):
        response = self.host.request("spindle.hello", {"protocol_versions": [2, 3],
                                                       "host": "spindle 9"})
        self.assertEqual(response["error"]["code"], -32602)
        self.assertIn("no common protocol version", response["error"]["message"])
        response = self.host.request("spindle.hello", {"protocol_versions": [True]})
        self.assertEqual(response["error"]["code"], -32602)
        self.assertEqual(self.host.hello([1, 2])["protocol"], 1)


class ProcessTest(unittest.TestCase):
    def test_discovery_is_hello_then_eof(self):
        host = Host(SAMPLES, "acme.minimal")
        host.hello()
        self.assertEqual(host.close(), 0)

    def test_call_without_hello_loads_the_module(self):
        host = Host(FIXTURES, MODULE)
        try:
            response = host.call(QUIRKS, "getStatus", {"ss_record": SS})
            self.assertEqual(value_of(response), ["ok", 1, None])
            self.assertEqual(len(host.warnings), 1)  # the import-time print
        finally:
            self.assertEqual(host.close(), 0)

    def test_usage_errors(self):
        for args in ([], ["--root", SAMPLES], ["--root", SAMPLES, "--module", "acme"],
                     ["--root", SAMPLES, "--module", "../etc.passwd"],
                     ["--root", SAMPLES, "--module", "acme.minimal.extra"],
                     ["--root", SAMPLES, "--module", "acme.class"],
                     ["--root", "/nonexistent", "--module", "acme.minimal"],
                     ["--bogus"]):
            proc = subprocess.run([PYTHON, "-s", "-m", "spindle_osc_runner"] + args,
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  env=runner_env())
            self.assertEqual(proc.returncode, 2, args)
            self.assertEqual(proc.stdout, b"", args)
            self.assertIn(b"usage:", proc.stderr)

    def test_equals_forms_of_the_options(self):
        host = Host(None, None, args=["--root=%s" % SAMPLES, "--module=acme.minimal"])
        try:
            self.assertEqual(len(host.hello()["classes"]), 1)
        finally:
            self.assertEqual(host.close(), 0)

    def test_a_module_that_is_not_there(self):
        host = Host(SAMPLES, "acme.nothing")
        try:
            hello = host.hello()
        finally:
            self.assertEqual(host.close(), 0)
        (error,) = hello["errors"]
        self.assertEqual(error["class"], "acme.nothing")
        self.assertIn("there is no acme.nothing under the plug-in root", error["message"])

    def test_a_module_shadowed_by_another_python_module(self):
        host = Host(SAMPLES, "json.decoder")
        try:
            hello = host.hello()
        finally:
            self.assertEqual(host.close(), 0)
        (error,) = hello["errors"]
        self.assertIn("outside the plug-in root", error["message"])

    def test_current_directory_is_not_on_the_path(self):
        # A file in the working directory must not shadow the plug-in's imports.
        cwd = tempfile.mkdtemp(prefix="spindle-osc-cwd-")
        self.addCleanup(shutil.rmtree, cwd)
        for name in ("acme.py", "OSCPlugin.py"):
            with open(os.path.join(cwd, name), "w") as f:
                f.write("raise SystemExit('imported from the working directory')\n")
        host = Host(SAMPLES, "acme.minimal", cwd=cwd)
        try:
            self.assertEqual(host.hello()["errors"], [])
        finally:
            self.assertEqual(host.close(), 0)

    def test_no_heavy_imports_at_start_up(self):
        code = ("import sys; before = set(sys.modules); import spindle_osc_runner, OSCPlugin, "
                "OSCPluginUtils; print(' '.join(sorted(set(sys.modules) - before)))")
        out = subprocess.run([PYTHON, "-s", "-c", code], capture_output=True, check=True,
                             env=runner_env()).stdout.decode().split()
        for heavy in ("logging", "traceback", "inspect", "subprocess", "tempfile", "argparse",
                      "threading", "shutil"):
            self.assertNotIn(heavy, out)


if __name__ == "__main__":
    unittest.main()
