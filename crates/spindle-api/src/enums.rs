//! The guides' enumerations and type constants. On the wire each is the identifier's name.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in the guides' order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used on the wire and by the guides.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses the wire name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// `ABILITY_TYPES`: every value an ability key can name (`INVALID` is a placeholder that a
    /// plug-in never returns).
    AbilityType {
        Unsupported = "UNSUPPORTED",
        Offline = "OFFLINE",
        Online = "ONLINE",
        No = "NO",
        Yes = "YES",
        Invalid = "INVALID",
    }
);

wire_enum!(
    /// `BACKING_DEVICE_TYPES`: how a file system plug-in's file systems sit on devices.
    BackingDeviceType {
        Unsupported = "UNSUPPORTED",
        DeviceSingle = "DEVICE_SINGLE",
        DeviceMulti = "DEVICE_MULTI",
        PluginSingle = "PLUGIN_SINGLE",
        PluginMulti = "PLUGIN_MULTI",
        Invalid = "INVALID",
    }
);

wire_enum!(
    /// `SE_STATES`: the state of a storage element.
    SeState {
        Unknown = "UNKNOWN",
        Offline = "OFFLINE",
        BusyCreate = "BUSY_CREATE",
        BusyClone = "BUSY_CLONE",
        BusyCopy = "BUSY_COPY",
        BusyChildren = "BUSY_CHILDREN",
        Error = "ERROR",
        Online = "ONLINE",
    }
);

wire_enum!(
    /// `FS_STATES`: the state of a file system.
    FsState {
        Unknown = "UNKNOWN",
        Unmounted = "UNMOUNTED",
        Mounted = "MOUNTED",
        MountedReadonly = "MOUNTED_READONLY",
        Error = "ERROR",
    }
);

wire_enum!(
    /// The storage element types (`IStorageArrayPlugin.LUNType` and so on).
    SeType {
        Lun = "LUNType",
        GhostLun = "GhostLUNType",
        Snap = "SnapType",
        SnapClone = "SnapCloneType",
    }
);

impl SeType {
    /// Snapshots are never listed by `list`.
    pub fn is_snapshot(self) -> bool {
        matches!(self, SeType::Snap)
    }
}

wire_enum!(
    /// The storage types a Storage Array plug-in can serve (`storage_types`).
    StorageType {
        San = "SANStorage",
        Iscsi = "iSCSIStorage",
    }
);

wire_enum!(
    /// The storage types of a File System plug-in.
    FsStorageType {
        NetworkFileSystem = "NetworkFileSystem",
        BlockBasedFileSystem = "BlockBasedFileSystem",
    }
);

wire_enum!(
    /// `file_record.fr_type`.
    FileType {
        File = "FileType",
        Dir = "DirType",
        SymLink = "SymLinkType",
        CharDev = "CharDevType",
        BlkDev = "BlkDevType",
        Fifo = "FifoType",
        SockFile = "SockFileType",
        Snap = "SnapType",
        SnapClone = "SnapCloneType",
    }
);
