"""Every module of tests/python-plugins-broken is reported at hello with an explanation that
names the class and the file."""

import os
import unittest

from spindlehost import BROKEN, Host

VENDOR = os.path.join(BROKEN, "faulty")


def hello(module):
    host = Host(BROKEN, "faulty." + module)
    try:
        result = host.hello()
    finally:
        code = host.close()
    assert code == 0, code
    assert host.warnings == [], host.warnings
    return result


class BrokenModulesTest(unittest.TestCase):
    def only_error(self, module):
        result = hello(module)
        self.assertEqual(result["classes"], [])
        (error,) = result["errors"]
        return error

    def test_module_import_error_carries_the_traceback(self):
        error = self.only_error("importerror")
        self.assertEqual(error["class"], "faulty.importerror")
        self.assertEqual(error["file"], os.path.join(VENDOR, "importerror", "helpers.py"))
        message = error["message"]
        self.assertIn("importing module faulty.importerror failed", message)
        self.assertIn("Traceback (most recent call last)", message)
        self.assertIn("importerror/__init__.py\", line 5", message)
        self.assertIn("ModuleNotFoundError: No module named 'faulty_array_sdk'", message)
        self.assertNotIn("spindle_osc_runner", message)
        self.assertNotIn("importlib", message)

    def test_class_file_import_error(self):
        error = self.only_error("classimport")
        self.assertEqual(error["class"], "faulty.classimport.Array.Array")
        self.assertEqual(error["file"], os.path.join(VENDOR, "classimport", "Array.py"))
        self.assertIn("importing faulty.classimport.Array failed", error["message"])
        self.assertIn("NameError: name 'POOL_NAMES' is not defined", error["message"])

    def test_class_paths_that_do_not_resolve(self):
        result = hello("unresolved")
        self.assertEqual(result["classes"], [])
        errors = {e["class"]: e for e in result["errors"]}
        self.assertEqual(sorted(errors), ["faulty.unresolved.Array.FastArray",
                                          "faulty.unresolved.NoSuchFile.Thing"])
        misspelt = errors["faulty.unresolved.Array.FastArray"]
        self.assertEqual(misspelt["file"], os.path.join(VENDOR, "unresolved", "Array.py"))
        self.assertIn("does not resolve", misspelt["message"])
        self.assertIn("has no attribute FastArray", misspelt["message"])
        self.assertIn(os.path.join(VENDOR, "unresolved", "__init__.py"), misspelt["message"])
        absent = errors["faulty.unresolved.NoSuchFile.Thing"]
        self.assertIn("does not resolve", absent["message"])
        self.assertIn("NoSuchFile.py", absent["message"])

    def test_missing_class_variable(self):
        error = self.only_error("missingvar")
        self.assertEqual(error["class"], "faulty.missingvar.Array.Array")
        self.assertEqual(error["file"], os.path.join(VENDOR, "missingvar", "Array.py"))
        self.assertIn("does not set the class variable plugin_ability", error["message"])
        self.assertIn(error["file"], error["message"])

    def test_bad_version(self):
        error = self.only_error("badversion")
        self.assertEqual(error["class"], "faulty.badversion.Array.Array")
        self.assertIn("plugin_version '1.0.1'", error["message"])
        self.assertIn("Major.Minor.Patch-Release", error["message"])
        self.assertIn(os.path.join(VENDOR, "badversion", "Array.py"), error["message"])

    def test_two_versions_in_one_module(self):
        result = hello("mixedversions")
        self.assertEqual([c["class"] for c in result["classes"]],
                         ["faulty.mixedversions.First.First"])
        (error,) = result["errors"]
        self.assertEqual(error["class"], "faulty.mixedversions.Second.Second")
        self.assertEqual(error["file"], os.path.join(VENDOR, "mixedversions", "Second.py"))
        self.assertIn("1.2.1-1", error["message"])
        self.assertIn("faulty.mixedversions.First.First", error["message"])
        self.assertIn("1.2.0-1", error["message"])

    def test_wrong_base_class(self):
        result = hello("wrongbase")
        self.assertEqual(result["classes"], [])
        errors = {e["class"]: e for e in result["errors"]}
        plain = errors["faulty.wrongbase.Array.NotAPlugin"]
        self.assertIn("does not derive from OSCPlugin.IStorageArrayPlugin", plain["message"])
        self.assertIn("builtins.object", plain["message"])
        self.assertEqual(plain["file"], os.path.join(VENDOR, "wrongbase", "Array.py"))
        fs = errors["faulty.wrongbase.Array.FileSystemThing"]
        self.assertIn("declare it in osc_ifs_plugins", fs["message"])

    def test_every_broken_module_is_covered(self):
        modules = sorted(d for d in os.listdir(VENDOR)
                         if os.path.isdir(os.path.join(VENDOR, d)) and not d.startswith("_"))
        tested = sorted(name[len("test_"):] for name in dir(self) if name.startswith("test_"))
        self.assertEqual(modules, ["badversion", "classimport", "importerror", "missingvar",
                                   "mixedversions", "unresolved", "wrongbase"])
        self.assertTrue(len(tested) >= len(modules))
        for module in modules:
            self.assertTrue(hello(module)["errors"], module)


if __name__ == "__main__":
    unittest.main()
