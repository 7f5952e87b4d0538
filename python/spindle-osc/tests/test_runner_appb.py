"""A vendor package whose __init__.py is the Python 2 file the General guide's Appendix B RPM
%post writes (tests/python-plugins-appb): the runner imports the vendor directory as a
namespace package instead, says so once in hello's warnings, and the module's classes load."""

import os
import unittest

from spindlehost import REPO, Host

APPB = os.path.join(REPO, "tests", "python-plugins-appb")
CLASS = "appbco.minimal.Array.Array"
SS = {"name": "a", "uuid": "ss-appb", "storage_type": "iSCSIStorage"}


class AppendixBVendorInitTest(unittest.TestCase):
    def setUp(self):
        self.host = Host(APPB, "appbco.minimal")
        self.addCleanup(self.host.close)

    def test_the_module_loads_and_the_vendor_init_is_noted(self):
        result = self.host.hello()
        self.assertEqual(result["errors"], [])
        self.assertEqual([c["class"] for c in result["classes"]], [CLASS])
        (warning,) = result["warnings"]
        self.assertIn("vendor package appbco:", warning)
        self.assertIn("is not Python 3 (the guide's generated file?)", warning)
        self.assertIn("ignored", warning)

    def test_calls_work(self):
        self.host.hello()
        response = self.host.call(CLASS, "getStorageNames", {"ss_record": SS})
        self.assertEqual(response.get("result"), {"value": []})


if __name__ == "__main__":
    unittest.main()
