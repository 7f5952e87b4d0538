"""checkRequired and destroyMPDev, run against stand-in rpm / dpkg-query / multipath tools."""

import os
import shutil
import stat
import sys
import tempfile
import unittest

from spindlehost import SRC

sys.path.insert(0, SRC)

from OSCPlugin import (  # noqa: E402
    InvalidValueEx,
    OperationFailedEx,
    OperationPreReqNotMetEx,
)
import OSCPluginUtils  # noqa: E402

RPM = """#!/bin/sh
PATH=/usr/bin:/bin
printf '%s\\n' "$*" >> "{log}"
[ "$1" = "-q" ] && [ "$2" = "--quiet" ] || exit 2
grep -qx "$3" "{db}"
"""

DPKG_QUERY = """#!/bin/sh
PATH=/usr/bin:/bin
printf '%s\\n' "$*" >> "{log}"
if grep -qx "$3" "{db}"; then printf 'install ok installed'; exit 0; fi
if [ "$3" = "half-removed" ]; then printf 'deinstall ok config-files'; exit 0; fi
echo "dpkg-query: no packages found matching $3" >&2
exit 1
"""

MULTIPATH = """#!/bin/sh
PATH=/usr/bin:/bin
printf '%s\\n' "$*" >> "{log}"
if [ "$2" = "busy" ]; then echo "busy: map in use" >&2; exit 1; fi
echo "flushed $2"
exit 0
"""


class ToolsTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="spindle-osc-tools-")
        self.bin = os.path.join(self.dir, "bin")
        os.mkdir(self.bin)
        self.log = os.path.join(self.dir, "calls.log")
        self.db = os.path.join(self.dir, "installed")
        with open(self.db, "w") as f:
            f.write("acme-fast-requirer\nlibacme\n")
        self.saved_path = os.environ.get("PATH")
        os.environ["PATH"] = self.bin

    def tearDown(self):
        if self.saved_path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = self.saved_path
        shutil.rmtree(self.dir)

    def tool(self, name, script):
        path = os.path.join(self.bin, name)
        with open(path, "w") as f:
            f.write(script.format(log=self.log, db=self.db))
        os.chmod(path, stat.S_IRWXU)

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return f.read().splitlines()


class CheckRequiredTest(ToolsTestCase):
    def test_with_rpm(self):
        self.tool("rpm", RPM)
        OSCPluginUtils.checkRequired("acme-fast-requirer")
        OSCPluginUtils.checkRequired("acme-fast-requirer", "libacme")
        OSCPluginUtils.checkRequired(["libacme"])
        with self.assertRaises(OperationPreReqNotMetEx) as ctx:
            OSCPluginUtils.checkRequired("libacme", "acme-slow-requirer")
        self.assertIn("acme-slow-requirer", ctx.exception.message)
        self.assertIn("-q --quiet acme-fast-requirer", self.calls())

    def test_with_dpkg_query(self):
        self.tool("dpkg-query", DPKG_QUERY)
        OSCPluginUtils.checkRequired("acme-fast-requirer")
        for absent in ("acme-slow-requirer", "half-removed"):
            with self.assertRaises(OperationPreReqNotMetEx) as ctx:
                OSCPluginUtils.checkRequired(absent)
            self.assertIn(absent, ctx.exception.message)
        self.assertEqual(self.calls()[0], "-W -f=${Status} acme-fast-requirer")

    def test_either_tool_may_know_the_package(self):
        self.tool("dpkg-query", DPKG_QUERY)
        with open(self.db + ".rpm", "w") as f:
            f.write("only-in-rpm\n")
        self.tool("rpm", RPM.replace("{db}", self.db + ".rpm"))
        OSCPluginUtils.checkRequired("only-in-rpm")
        OSCPluginUtils.checkRequired("libacme")

    def test_without_any_package_tool(self):
        with self.assertRaises(OperationPreReqNotMetEx) as ctx:
            OSCPluginUtils.checkRequired("libacme")
        self.assertIn("neither rpm nor dpkg-query", ctx.exception.message)

    def test_names_are_arguments_never_shell(self):
        self.tool("rpm", RPM)
        for bad in ("libacme; touch /tmp/x", "$(id)", "-qa", "a b", "../x", "", None):
            with self.assertRaises(InvalidValueEx):
                OSCPluginUtils.checkRequired(bad)
        with self.assertRaises(InvalidValueEx):
            OSCPluginUtils.checkRequired()
        self.assertEqual(self.calls(), [])


class DestroyMPDevTest(ToolsTestCase):
    def test_flushes_the_map(self):
        self.tool("multipath", MULTIPATH)
        OSCPluginUtils.destroyMPDev("mpatha")
        OSCPluginUtils.destroyMPDev("/dev/mapper/3600144f0deadbeefdeadbeefdeadbeef")
        self.assertEqual(self.calls(), ["-f mpatha", "-f 3600144f0deadbeefdeadbeefdeadbeef"])

    def test_failure_is_reported(self):
        self.tool("multipath", MULTIPATH)
        with self.assertRaises(OperationFailedEx) as ctx:
            OSCPluginUtils.destroyMPDev("busy")
        self.assertIn("map in use", ctx.exception.message)
        self.assertIn("exit status 1", ctx.exception.message)

    def test_without_the_multipath_tool(self):
        with self.assertRaises(OperationFailedEx) as ctx:
            OSCPluginUtils.destroyMPDev("mpatha")
        self.assertIn("multipath tool is not installed", ctx.exception.message)

    def test_device_names_are_checked(self):
        self.tool("multipath", MULTIPATH)
        for bad in ("../../etc/passwd", "/dev/mapper/../sda", "/dev/sda", "a;b", "a b",
                    "-f", "..", "", "/dev/mapper/", None, 7, "$(reboot)"):
            with self.assertRaises(InvalidValueEx, msg=repr(bad)):
                OSCPluginUtils.destroyMPDev(bad)
        self.assertEqual(self.calls(), [])


class RealToolsTest(unittest.TestCase):
    """The real package tool of this machine, if it has one."""

    def test_an_installed_and_an_absent_package(self):
        if shutil.which("dpkg-query"):
            present = "dpkg"
        elif shutil.which("rpm"):
            present = "rpm"
        else:
            self.skipTest("no package tool here")
        OSCPluginUtils.checkRequired(present)
        with self.assertRaises(OperationPreReqNotMetEx):
            OSCPluginUtils.checkRequired("spindle-no-such-package-anywhere")


if __name__ == "__main__":
    unittest.main()
