"""makeMPPage83FromRawPage83: the tests of spindle-api's page83.rs, ported, and more."""

import sys
import unittest

from spindlehost import SRC

sys.path.insert(0, SRC)

from OSCPlugin import ValueFormatEx  # noqa: E402
from OSCPluginUtils import makeMPPage83FromRawPage83 as mp  # noqa: E402


def hexs(data):
    return data.hex()


def descriptor(code_set, kind, body, association=0):
    return "%02x%02x00%02x%s" % (code_set, (association << 4) | kind, len(body), hexs(body))


def page(*descriptors):
    body = "".join(descriptors)
    return "0083%04x%s" % (len(body) // 2, body)


class PortedFromRustTest(unittest.TestCase):
    def test_bare_naa_gets_the_naa_type_digit(self):
        self.assertEqual(mp("60014056E0B1E3A4B9E4A57A1D7C5E9B"),
                         "360014056e0b1e3a4b9e4a57a1d7c5e9b")

    def test_whole_page_prefers_naa_6_over_t10_and_naa_3(self):
        # A page as tgt builds it: T10 (type 1), NAA-6 (type 3), NAA-3 (type 3).
        t10 = "0201001c" + hexs(b"IET     deadbeefdeadbeefdead")
        naa6 = "01030010600144f0deadbeefdeadbeefdeadbeef"
        naa3 = "0103000830000000000000001"
        naa3 = naa3[:-1]
        body = t10 + naa6 + naa3
        whole = "0083%04x%s" % (len(body) // 2, body)
        self.assertEqual(mp(whole), "3600144f0deadbeefdeadbeefdeadbeef")

    def test_formatted_ids_are_kept_and_garbage_is_refused(self):
        self.assertEqual(mp("3600144F0DEADBEEFDEADBEEFDEADBEEF"),
                         "3600144f0deadbeefdeadbeefdeadbeef")
        for bad in ("zz", "", "0000"):
            with self.assertRaises(ValueFormatEx):
                mp(bad)


class MoreCasesTest(unittest.TestCase):
    def test_separators_and_prefix_are_ignored(self):
        self.assertEqual(mp("0x60:01:40:56-e0b1 e3a4\tb9e4a57a1d7c5e9b\n"),
                         "360014056e0b1e3a4b9e4a57a1d7c5e9b")
        # As in Rust: repeated "0x" prefixes go first, then repeated "0X" ones.
        self.assertEqual(mp("  0x0X6001405600000000  "), "36001405600000000")
        with self.assertRaises(ValueFormatEx):
            mp("0X0x6001405600000000")

    def test_one_descriptor(self):
        self.assertEqual(mp(descriptor(1, 3, bytes.fromhex("5000c50012345678"))),
                         "35000c50012345678")
        self.assertEqual(mp(descriptor(1, 2, bytes.fromhex("0011223344556677"))),
                         "20011223344556677")

    def test_preference_order(self):
        naa5 = descriptor(1, 3, bytes.fromhex("5000c50012345678"))
        naa3 = descriptor(1, 3, bytes.fromhex("3000000000000001"))
        eui = descriptor(1, 2, bytes.fromhex("0011223344556677"))
        t10 = descriptor(2, 1, b"ACME    RICH9000 0001")
        name = descriptor(3, 8, b"iqn.2001-04.com.acme:lun1\0\0\0")
        self.assertEqual(mp(page(t10, eui, naa3, naa5)), "35000c50012345678")
        self.assertEqual(mp(page(t10, eui, naa3)), "33000000000000001")
        self.assertEqual(mp(page(name, t10, eui)), "20011223344556677")
        self.assertEqual(mp(page(name, t10)), "1ACME____RICH9000_0001")
        self.assertEqual(mp(page(name)), "8iqn.2001-04.com.acme:lun1")

    def test_first_of_equal_rank_wins(self):
        a = descriptor(1, 3, bytes.fromhex("600a0b800000000000000000000000aa"))
        b = descriptor(1, 3, bytes.fromhex("600a0b800000000000000000000000bb"))
        self.assertEqual(mp(page(a, b)), "3600a0b800000000000000000000000aa")

    def test_port_designators_are_ignored(self):
        port_naa = descriptor(1, 3, bytes.fromhex("5000c50012345678"), association=1)
        t10 = descriptor(2, 1, b"ACME LUN")
        self.assertEqual(mp(page(port_naa, t10)), "1ACME_LUN")
        with self.assertRaises(ValueFormatEx) as ctx:
            mp(page(port_naa))
        self.assertIn("holds no NAA", ctx.exception.message)
        self.assertEqual(ctx.exception.key, "page83_id")

    def test_already_formatted_forms(self):
        self.assertEqual(mp("35000C50012345678"), "35000c50012345678")
        self.assertEqual(mp("20011223344556677"), "20011223344556677")
        for bad in ("3", "31000000000000000", "4600144f0deadbeef"):
            with self.assertRaises(ValueFormatEx):
                mp(bad)

    def test_unrecognised_hex(self):
        with self.assertRaises(ValueFormatEx) as ctx:
            mp("1234567890")
        self.assertIn("neither a VPD page 0x83", ctx.exception.message)
        with self.assertRaises(ValueFormatEx):
            mp("7000000000000000")  # NAA 7 is not a valid NAA
        with self.assertRaises(ValueFormatEx) as ctx:
            mp("0x")
        self.assertIn("not hexadecimal", ctx.exception.message)

    def test_truncated_page_falls_back(self):
        # The page length says more than there is, so it is not read as a page.
        with self.assertRaises(ValueFormatEx):
            mp("00830020" + "0103000830000000")

    def test_bytes_are_accepted(self):
        self.assertEqual(mp(b"6001405600000000"), "36001405600000000")
        with self.assertRaises(ValueFormatEx):
            mp(12345)


if __name__ == "__main__":
    unittest.main()
