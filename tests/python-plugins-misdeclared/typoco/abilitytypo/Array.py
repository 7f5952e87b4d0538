from OSCPlugin import *


class Array(IStorageArrayPlugin):
    plugin_name = "Faulty Array"
    vendor_name = "Faulty"
    plugin_version = "1.0.0-1"
    plugin_desc = "A plug-in with a misspelt ability key."
    storage_types = [IStorageArrayPlugin.iSCSIStorage]
    plugin_ability = {
        "snapshot": ABILITY_TYPES.UNSUPPORTED, "custom_snap_name": ABILITY_TYPES.NO,
        "snap_is_synch": ABILITY_TYPES.YES, "clone": ABILITY_TYPES.UNSUPPORTED,
        "custom_clone_name": ABILITY_TYPES.NO, "clone_is_sync": ABILITY_TYPES.YES,
        "resize": ABILITY_TYPES.UNSUPPORTED, "resize_is_sync": ABILITY_TYPES.YES,
        "splitclone": ABILITY_TYPES.UNSUPPORTED, "splitclone_is_sync": ABILITY_TYPES.YES,
        "splitclone_while_open": ABILITY_TYPES.NO, "snapclone": ABILITY_TYPES.UNSUPPORTED,
        "snapclone_is_sync": ABILITY_TYPES.YES, "require_storage_name": ABILITY_TYPES.NO,
        "access_control": ABILITY_TYPES.NO, "max_access_entries": 0,
    }

    @staticmethod
    def validate(ss_record):
        pass

    @staticmethod
    def getCapabilities(ss_record):
        return dict(Array.plugin_ability)
