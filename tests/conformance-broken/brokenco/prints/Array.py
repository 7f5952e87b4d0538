"""getStorageNames print()s a debug line: the runner keeps it off the protocol channel and
reports it, and the kit must fail getStorageNames.returns for it."""

from OSCPlugin import *

from brokenco import _base


class Array(_base.CorrectArray):
    plugin_name = "BrokenCo prints"

    @staticmethod
    def getStorageNames(ss_record):
        print("debug: getStorageNames called")
        return _base.CorrectArray.getStorageNames(ss_record)
