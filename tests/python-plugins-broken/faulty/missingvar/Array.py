from OSCPlugin import *


class Array(IStorageArrayPlugin):
    plugin_name = "Faulty Array"
    vendor_name = "Faulty"
    plugin_version = "1.0.0-1"
    plugin_desc = "A plug-in with a mistake in it."
    storage_types = [IStorageArrayPlugin.iSCSIStorage]

    @staticmethod
    def validate(ss_record):
        pass
