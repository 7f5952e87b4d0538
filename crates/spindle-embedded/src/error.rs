//! What can go wrong while preparing the embedded array. Every message says what failed and
//! what to do about it.

use std::path::PathBuf;

/// Why [`crate::prepare`] or [`crate::release`] could not do its work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// The portal is not `ADDRESS:PORT`.
    #[error("embedded array portal {portal:?} is not usable: {reason}; give an IP address and port such as 127.0.0.1:3260 (IPv6 as [::1]:3260)")]
    InvalidPortal {
        /// The portal as given.
        portal: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The portal cannot be had: something else listens there, or the address is not this
    /// host's (`reason` says which, and what to do).
    #[error("embedded array portal {portal} cannot be served: {reason}")]
    PortalUnavailable {
        /// The portal.
        portal: String,
        /// What binding it said.
        reason: String,
    },
    /// A setting other than the portal is out of range.
    #[error("embedded array setting {setting} is invalid: {reason}")]
    InvalidSetting {
        /// The setting (`tgt_control`, `pool_size`, ...).
        setting: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The data directory cannot hold the array.
    #[error("embedded array data directory {path:?} cannot be used: {reason}")]
    InvalidDataDir {
        /// The directory.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// The array program `spindle-array` was not found.
    #[error("the array program spindle-array was not found ({looked}); `cargo build --release --workspace --bins` builds it beside spindle (target/release/spindle-array), or install it on PATH")]
    ArrayProgramMissing {
        /// Where it was looked for.
        looked: String,
    },
    /// The array program's path cannot be passed to the plug-in.
    #[error("the array program {path:?} cannot be used: {reason}")]
    ArrayProgramInvalid {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Programs are missing and spindle will not (or cannot) install them.
    #[error("the embedded array needs programs that are not installed: {}{why}; install them with `{command}`", .missing.join(", "))]
    MissingTools {
        /// The missing programs.
        missing: Vec<String>,
        /// Why spindle did not install them itself (empty when it tried).
        why: String,
        /// The command that installs them.
        command: String,
    },
    /// Something needs root and spindle does not run as root.
    #[error("preparing the embedded array needs root to {what}; run spindle serve as root, or set up the pool yourself and add the array with spindle server add")]
    NotRoot {
        /// What needed root.
        what: String,
    },
    /// A program spindle ran failed (apt-get, mkfs.xfs, mount, losetup, umount).
    #[error("`{command}` failed ({status}) while {doing}; {advice}; its output ended with:\n{tail}")]
    CommandFailed {
        /// The command line, for the message.
        command: String,
        /// How it ended.
        status: String,
        /// What prepare was doing.
        doing: String,
        /// What to do.
        advice: String,
        /// The last lines of its output.
        tail: String,
    },
    /// A file-system operation failed.
    #[error("cannot {what} {path:?}: {source}; check that the data directory is writable and its file system has room")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The pool directory is not on a file system that can reflink.
    #[error("pool {path:?} is on {fs}, which cannot reflink (FICLONE was refused); unmount it, or mount an XFS (mkfs.xfs -m reflink=1) or btrfs file system there")]
    PoolNotReflink {
        /// The pool directory.
        path: PathBuf,
        /// The file system's name.
        fs: String,
    },
    /// The existing pool image is not an XFS file system; it is never reformatted.
    #[error("pool image {path:?} exists but is not an XFS file system; spindle never reformats an existing image: move it aside (or repair it with xfs_repair) and start again")]
    ImageNotXfs {
        /// The image.
        path: PathBuf,
    },
    /// The pool directory holds files and is not a mount, so mounting over it would hide them.
    #[error("pool directory {path:?} is not a mount point but holds files; mounting the pool image there would hide them: move them away and start again")]
    PoolDirNotEmpty {
        /// The pool directory.
        path: PathBuf,
    },
    /// The generated iSCSI name prefix is not a valid iSCSI name.
    #[error("the target name prefix {prefix:?} made from this host's name is not a valid iSCSI name: {reason}; give the host a simple name (letters, digits, '-')")]
    InvalidIqnPrefix {
        /// The prefix.
        prefix: String,
        /// Why.
        reason: String,
    },
    /// The resident array program cannot be started.
    #[error("the embedded array's resident program cannot be started: {0}")]
    Resident(String),
    /// The Linux plug-in's own parser refused the generated configuration.
    #[error("the Linux array refuses the embedded configuration {extra_info:?}: {message}; choose a data directory whose path has only letters, digits and '/._+@-'")]
    Rejected {
        /// The generated `extra_info`.
        extra_info: String,
        /// The plug-in's message.
        message: String,
    },
    /// The pool is still in use and cannot be unmounted.
    #[error("pool {path:?} cannot be unmounted: {reason}; stop the tgtd that exports its LUNs (`tgtadm -C N --op delete --mode system`) and anything else using it, then retry")]
    PoolBusy {
        /// The pool directory.
        path: PathBuf,
        /// umount's complaint.
        reason: String,
    },
}

impl EmbeddedError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EmbeddedError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
