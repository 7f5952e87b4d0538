"""The sample plug-ins (tests/python-plugins) driven through the runner the way spindle drives
them: one process per call, hello first, stdin closed after the answer. The "array" lives in a
state directory, and the host's cache is shared between the processes as spindle's is."""

import json
import os
import shutil
import tempfile
import unittest

from spindlehost import SAMPLES, Host, call_once, value_of

MINIMAL = "acme.minimal.MinimalArray.MinimalArray"
RICH = "acme.rich.RichArray.RichArray"
GIB = 1 << 30


class SampleTestCase(unittest.TestCase):
    module = None
    cls = None

    def setUp(self):
        self.state_dir = tempfile.mkdtemp(prefix="spindle-osc-array-")
        self.cache = {}
        self.hosts = []

    def tearDown(self):
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def ss(self, storage_type="iSCSIStorage", **extra):
        record = {"name": "array1", "uuid": "ss-0001", "storage_type": storage_type,
                  "access_host": "192.0.2.10", "admin_host": "192.0.2.11",
                  "admin_user": "admin", "admin_passwd": "secret", "status": "",
                  "access_grps": [], "storage_desc": "",
                  "extra_info": "state_dir=%s" % self.state_dir}
        record.update(extra)
        return record

    def call(self, method, **args):
        response, host = call_once(SAMPLES, self.module, self.cls, method, args, self.cache)
        self.hosts.append(host)
        self.assertEqual(host.warnings, [], "the sample printed to stdout")
        return response

    def value(self, method, **args):
        return value_of(self.call(method, **args))

    def error(self, method, **args):
        response = self.call(method, **args)
        self.assertIn("error", response, "expected %s to fail" % method)
        error = response["error"]
        self.assertEqual(error["code"], -32000)
        return error["data"]


class MinimalTest(SampleTestCase):
    module = "acme.minimal"
    cls = MINIMAL

    def test_hello(self):
        host = Host(SAMPLES, self.module)
        try:
            hello = host.hello()
        finally:
            self.assertEqual(host.close(), 0)
        self.assertEqual(hello["protocol"], 1)
        self.assertTrue(hello["runtime"].startswith("python 3."))
        self.assertEqual(hello["errors"], [])
        (desc,) = hello["classes"]
        self.assertEqual(desc["class"], MINIMAL)
        self.assertEqual(desc["kind"], "storage_array")
        self.assertEqual(desc["source"], os.path.join(SAMPLES, "acme", "minimal",
                                                      "MinimalArray.py"))
        meta = desc["metadata"]
        self.assertEqual(meta["storage_types"], ["iSCSIStorage"])
        self.assertEqual(meta["plugin_version"], "1.0.0-1")
        self.assertIsNone(meta["se_extra_info_help"])
        self.assertIn("state_dir=", meta["ss_extra_info_help"])
        self.assertEqual(len(meta["plugin_ability"]), 16)
        # Every required method, none of the optional ones.
        self.assertNotIn("discover", desc["implemented"])
        self.assertNotIn("getAsyncProgress", desc["implemented"])
        self.assertEqual(len(desc["implemented"]), 36)

    def test_lifecycle_across_processes(self):
        ss = self.ss()
        self.assertIsNone(self.value("validate", ss_record=ss))
        bad = self.error("validate", ss_record=self.ss("SANStorage"))
        self.assertEqual(bad["exception"], "InvalidStorageArrayEx")
        self.assertEqual(self.value("getStorageNames", ss_record=ss), [])

        info = self.value("getInfo", ss_record=ss)
        self.assertIn("ACME minimal array", info["storage_desc"])
        self.assertEqual(info["free_sz"], info["total_sz"])

        grps = self.value("createAccessGroups", ss_record=ss, access_grps=[
            {"grp_name": "hosts", "grp_entries": ["iqn.1994-05.com.example:h1"]}])
        self.assertEqual([g["grp_name"] for g in grps], ["hosts"])
        ss["access_grps"] = grps
        grp = self.value("addToAccessGroup", ss_record=ss, access_grp_name="hosts",
                         grp_entries=["iqn.1994-05.com.example:h2"])
        self.assertEqual(len(grp["grp_entries"]), 2)

        vol = self.value("create", ss_record=ss,
                         se_record={"se_type": "LUNType", "ss_uuid": "ss-0001", "size": 4 * GIB,
                                    "name": "vol1", "vol_group_name": "pool0",
                                    "extra_info": "keep me", "x_custom": [1, 2]})
        self.assertTrue(vol["page83_id"].startswith("36"))
        self.assertEqual(len(vol["page83_id"]), 33)
        self.assertEqual((vol["extra_info"], vol["x_custom"]), ("keep me", [1, 2]))

        listed = self.value("list", ss_record=ss)
        self.assertEqual([v["name"] for v in listed], ["vol1"])
        self.assertEqual(listed[0]["page83_id"], vol["page83_id"])

        presented = self.value("startPresent", ss_record=ss, se_record=vol,
                               access_grp_names=["hosts"])
        self.assertEqual(presented["access_grp_names"], ["hosts"])
        busy = self.error("remove", ss_record=ss, se_record=presented)
        self.assertEqual(busy["exception"], "StorageElementBusyEx")

        snap = self.value("createSnap", ss_record=ss, se_record=vol,
                          snap_se_record={"se_type": "SnapType", "ss_uuid": "ss-0001",
                                          "name": "before-upgrade"})
        self.assertEqual((snap["se_type"], snap["name"]), ("SnapType", "before-upgrade"))
        self.assertEqual([s["name"] for s in self.value("getCurrentSnaps", ss_record=ss)],
                         ["before-upgrade"])
        self.assertEqual([v["name"] for v in self.value("list", ss_record=ss)], ["vol1"])
        self.assertTrue(self.value("isRestorable", ss_record=ss, snap_se_record=snap,
                                   se_record=vol))

        grown = self.value("resize", ss_record=ss, se_record=presented, new_size=8 * GIB)
        self.assertEqual(grown["size"], 8 * GIB)
        self.assertIsNone(self.value("offline", ss_record=ss, se_record=vol))
        self.assertEqual(self.value("getStatus", ss_record=ss, se_record=vol), "offline")

        nope = self.error("clone", ss_record=ss, se_record=vol)
        self.assertEqual(nope["exception"], "NoSuchOperationEx")

        self.value("stopPresent", ss_record=ss, se_record=vol, access_grp_names=["hosts"])
        self.assertEqual(self.error("remove", ss_record=ss, se_record=vol)["exception"],
                         "StorageElementBusyEx")  # it still has a snapshot
        self.value("snapRemove", ss_record=ss, snap_se_record=snap)
        self.assertIsNone(self.value("remove", ss_record=ss, se_record=vol))
        self.assertEqual(self.value("list", ss_record=ss), [])

        with open(os.path.join(self.state_dir, "acme-minimal.json")) as f:
            self.assertEqual(json.load(f)["elements"], {})

    def test_an_unimplemented_optional_method_says_so(self):
        data = self.error("discover", ss_record=self.ss())
        self.assertEqual(data["exception"], "NoSuchOperationEx")
        self.assertIn("discover is not implemented", data["message"])


class RichTest(SampleTestCase):
    module = "acme.rich"
    cls = RICH

    def new_volume(self, ss, name="vol1", size=10 * GIB, **extra):
        se = {"se_type": "LUNType", "ss_uuid": ss["uuid"], "size": size, "name": name,
              "vol_group_name": "fast"}
        se.update(extra)
        return self.value("create", ss_record=ss, se_record=se, qos="gold")

    def test_hello(self):
        host = Host(SAMPLES, self.module)
        try:
            hello = host.hello()
        finally:
            self.assertEqual(host.close(), 0)
        (desc,) = hello["classes"]
        self.assertEqual(desc["metadata"]["storage_types"], ["SANStorage", "iSCSIStorage"])
        for method in ("discover", "refresh", "updateSERecords", "getAsyncProgress"):
            self.assertIn(method, desc["implemented"])
        self.assertNotIn("start", desc["implemented"])
        self.assertEqual(desc["metadata"]["plugin_ability"]["splitclone_is_sync"], "NO")

    def test_validate_names_missing_keys(self):
        ss = self.ss()
        self.assertIsNone(self.value("validate", ss_record=ss))
        del ss["access_host"]
        data = self.error("validate", ss_record=ss)
        self.assertEqual((data["exception"], data["key"]), ("MissingKeyEx", "access_host"))
        self.assertIn("target portal", data["message"])
        # A SAN array does not need one.
        self.assertIsNone(self.value("validate", ss_record=self.ss("SANStorage",
                                                                    access_host=None)))
        data = self.error("validate", ss_record=self.ss(extra_info=""))
        self.assertEqual(data["exception"], "InvalidStorageArrayEx")

    def test_create_reports_bad_and_missing_size_with_the_key(self):
        ss = self.ss()
        data = self.error("create", ss_record=ss, se_record={"se_type": "LUNType",
                                                             "ss_uuid": "ss-0001",
                                                             "name": "x"})
        self.assertEqual((data["exception"], data["key"]), ("MissingKeyEx", "size"))
        self.assertIn("traceback", data)
        self.assertIn("RichArray.py", data["traceback"])
        data = self.error("create", ss_record=ss, se_record={"se_type": "LUNType",
                                                             "ss_uuid": "ss-0001",
                                                             "name": "x", "size": "big"})
        self.assertEqual((data["exception"], data["key"]), ("ValueFormatEx", "size"))
        data = self.error("create", ss_record=ss, se_record={"se_type": "LUNType",
                                                             "ss_uuid": "ss-0001",
                                                             "name": "x", "size": 1},
                          qos="platinum")
        self.assertEqual(data["exception"], "InvalidValueEx")

    def test_storage_type_decides_access_entries_and_discovery(self):
        san, iscsi = self.ss("SANStorage"), self.ss("iSCSIStorage")
        wwn, iqn = "0x21000024ff3c2a10", "iqn.1994-05.com.example:h1"
        grps = self.value("createAccessGroups", ss_record=san,
                          access_grps=[{"grp_name": "fc", "grp_entries": [wwn]}])
        self.assertEqual(grps, [{"grp_name": "fc", "grp_entries": [wwn]}])
        data = self.error("addToAccessGroup", ss_record=san, access_grp_name="fc",
                          grp_entries=[iqn])
        self.assertEqual((data["exception"], data["key"]), ("ValueFormatEx", "grp_entries"))
        data = self.error("createAccessGroups", ss_record=iscsi,
                          access_grps=[{"grp_name": "ip", "grp_entries": [wwn]}])
        self.assertEqual((data["exception"], data["key"]), ("ValueFormatEx", "grp_entries"))
        self.value("createAccessGroups", ss_record=iscsi,
                   access_grps=[{"grp_name": "ip", "grp_entries": [iqn]}])

        found = self.value("discover", ss_record=iscsi)
        self.assertTrue(all(t.startswith("iqn.2001-04.com.acme:") for t in found["storage_id"]))
        self.assertEqual(found["extra_info"], iscsi["extra_info"])
        self.assertEqual(self.error("discover", ss_record=san)["exception"],
                         "NoSuchOperationEx")
        self.assertIn("over FC", self.value("getInfo", ss_record=san)["storage_desc"])
        self.assertIn("over iSCSI", self.value("getInfo", ss_record=iscsi)["storage_desc"])
        self.assertEqual(self.error("list", ss_record=self.ss("NFS"))["exception"],
                         "InvalidValueEx")

    def test_reads_come_from_the_cache(self):
        ss = self.ss()
        vol = self.new_volume(ss)
        key = ("ss-0001", "acme-rich:inventory")
        self.assertIn(key, self.cache)  # the change refreshed the cached inventory
        self.assertEqual(self.value("list", ss_record=ss)[0]["name"], "vol1")
        self.assertEqual(self.hosts[-1].host_methods(), ["host.cache.get", "host.cache.extend"])

        # The array changes behind the plug-in's back: the cached inventory still answers...
        os.remove(os.path.join(self.state_dir, "acme-rich.json"))
        self.assertEqual(self.value("getStatus", ss_record=ss, se_record=vol), "online")
        # ...until refresh drops everything cached for this array.
        self.assertIsNone(self.value("refresh", ss_record=ss))
        self.assertEqual(self.hosts[-1].host_methods(), ["host.cache.clear"])
        self.assertNotIn(key, self.cache)
        self.assertEqual(self.value("list", ss_record=ss), [])
        self.assertEqual(self.hosts[-1].host_methods(), ["host.cache.get", "host.cache.set"])

    def test_get_info_uses_a_host_temporary_file(self):
        ss = self.ss("SANStorage")
        self.new_volume(ss, size=GIB)
        info = self.value("getInfo", ss_record=ss)
        host = self.hosts[-1]
        self.assertIn("host.tempfile", host.host_methods())
        self.assertEqual(len(host.temp_files), 1)
        self.assertIn("ACME Rich 9000, serial", info["storage_desc"])
        self.assertIn("over FC", info["storage_desc"])
        self.assertEqual(info["used_sz"], GIB)
        self.assertEqual(sorted(v["vol_name"] for v in info["vol_groups"]),
                         ["capacity", "fast"])
        self.assertEqual(info["access_grps"], ss["access_grps"])  # never changed by getInfo

    def test_clone_and_asynchronous_split(self):
        ss = self.ss(extra_info="state_dir=%s; split_step=40" % self.state_dir)
        vol = self.new_volume(ss)
        self.assertTrue(self.value("isCloneable", ss_record=ss, se_record=vol))
        clone = self.value("clone", ss_record=ss, se_record=vol,
                           dest_se_record={"se_type": "LUNType", "ss_uuid": "ss-0001",
                                           "name": "vol1-copy"}, qos="bronze")
        self.assertEqual((clone["name"], clone["qos"]), ("vol1-copy", "bronze"))
        self.assertTrue(clone["page83_id"].startswith("36"))
        self.assertEqual([c["name"] for c in self.value("getCurrentClones", ss_record=ss,
                                                         se_record=vol)], ["vol1-copy"])
        self.assertTrue(self.value("isSplittable", ss_record=ss, se_record=clone))

        record = self.value("splitClone", ss_record=ss, se_record=clone)
        self.assertEqual((record["async_progress"], record["state"]), (0, "BUSY_COPY"))
        handle = record["async_handle"]
        self.assertEqual(self.cache[("ss-0001", "acme-rich:split:%s" % handle)][0], "0")
        # While the copy runs the clone is busy.
        self.assertEqual(self.error("setQoS", ss_record=ss, se_record=clone,
                                    qos="gold")["exception"], "StorageElementBusyEx")

        seen = []
        while record.get("async_progress") is not None:
            record = self.value("getAsyncProgress", ss_record=ss, some_record=record)
            seen.append(record["async_progress"])
            self.assertLess(len(seen), 10)
        self.assertEqual(seen, [40, 80, None])
        self.assertEqual(record["state"], "ONLINE")
        self.assertEqual(record["name"], "vol1-copy")
        self.assertNotIn(("ss-0001", "acme-rich:split:%s" % handle), self.cache)
        self.assertEqual(self.value("getCurrentClones", ss_record=ss), [])
        self.assertFalse(self.value("isSplittable", ss_record=ss, se_record=clone))

    def test_async_progress_survives_a_forgetful_cache(self):
        ss = self.ss()
        vol = self.new_volume(ss)
        clone = self.value("clone", ss_record=ss, se_record=vol)
        record = self.value("splitClone", ss_record=ss, se_record=clone)
        self.cache.clear()  # the cache expired
        record = self.value("getAsyncProgress", ss_record=ss, some_record=record)
        self.assertEqual(record["async_progress"], -1)
        record = self.value("getAsyncProgress", ss_record=ss, some_record=record)
        self.assertEqual(record["async_progress"], 50)
        record = self.value("getAsyncProgress", ss_record=ss, some_record=record)
        self.assertIsNone(record["async_progress"])
        del record["async_handle"]
        data = self.error("getAsyncProgress", ss_record=ss, some_record=record)
        self.assertEqual((data["exception"], data["key"]), ("MissingKeyEx", "async_handle"))

    def test_snapshots_restore_safety_and_snap_clones(self):
        ss = self.ss()
        vol = self.new_volume(ss)
        other = self.new_volume(ss, name="vol2")
        s1 = self.value("createSnap", ss_record=ss, se_record=vol,
                        snap_se_record={"se_type": "SnapType", "ss_uuid": "ss-0001",
                                        "name": "s1"})
        s2 = self.value("createSnap", ss_record=ss, se_record=vol)
        self.assertFalse(self.value("isRestorable", ss_record=ss, snap_se_record=s1,
                                    se_record=vol))
        data = self.error("snapRestore", ss_record=ss, snap_se_record=s1, se_record=vol)
        self.assertEqual(data["exception"], "SnapRestoreNotSafeEx")
        data = self.error("snapRestore", ss_record=ss, snap_se_record=s2, se_record=other)
        self.assertEqual(data["exception"], "SnapRestoreNotSafeEx")
        self.assertIsNone(self.value("snapRestore", ss_record=ss, snap_se_record=s2,
                                     se_record=vol))
        sc = self.value("cloneFromSnap", ss_record=ss, se_record=vol, snap_se_record=s1,
                        dest_se_record={"se_type": "SnapCloneType", "ss_uuid": "ss-0001",
                                        "name": "from-s1"})
        self.assertEqual(sc["se_type"], "SnapCloneType")
        self.assertEqual(sorted(v["name"] for v in self.value("list", ss_record=ss)),
                         ["from-s1", "vol1", "vol2"])
        self.assertEqual([v["name"] for v in self.value("list", ss_record=ss,
                                                        se_type=["SnapCloneType"])],
                         ["from-s1"])
        data = self.error("snapRemove", ss_record=ss, snap_se_record=s1)
        self.assertEqual(data["exception"], "StorageElementBusyEx")
        data = self.error("createMultiSnap", ss_record=ss, se_records=[vol, other])
        self.assertEqual(data["exception"], "NoSuchOperationEx")

    def test_update_se_records_uses_the_device_prefix(self):
        ss = self.ss()
        vol = self.new_volume(ss)
        self.new_volume(ss, name="vol2")
        self.value("createAccessGroups", ss_record=ss, access_grps=[
            {"grp_name": "h", "grp_entries": ["iqn.1994-05.com.example:h1"]}])
        vol = self.value("startPresent", ss_record=ss, se_record=vol, access_grp_names=["h"])
        response, _host = call_once(SAMPLES, self.module, RICH, "updateSERecords",
                                    {"ss_record": ss, "se_records": [vol],
                                     "append_allowed": True}, self.cache,
                                    dev_path_prefix="/dev/disk/by-id/scsi-")
        records = value_of(response)
        self.assertEqual([r["name"] for r in records], ["vol1", "vol2"])
        self.assertEqual(records[0]["path"], ["/dev/disk/by-id/scsi-" + vol["page83_id"]])
        self.assertNotIn("path", records[1])

    def test_qos(self):
        ss = self.ss()
        self.assertEqual([q["value"] for q in self.value("getQoSList", ss_record=ss)],
                         ["gold", "silver", "bronze"])
        vol = self.new_volume(ss)
        self.assertEqual(vol["qos"], "gold")
        self.assertIsNone(self.value("setQoS", ss_record=ss, se_record=vol, qos="bronze"))
        self.assertEqual(self.value("getInfo", ss_record=ss, se_record=vol)["qos"], "bronze")

    def test_logs_reach_the_host(self):
        ss = self.ss()
        self.new_volume(ss)
        self.assertIn(("info", "created vol1 (10737418240 bytes) in pool fast"),
                      self.hosts[-1].logs)


if __name__ == "__main__":
    unittest.main()
