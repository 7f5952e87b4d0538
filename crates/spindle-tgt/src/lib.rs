//! spindle's driver for **tgt**, the Linux userspace iSCSI target (`tgtd`, `tgtadm`).
//!
//! spindle's software storage array exports its LUNs — sparse files — through tgtd. tgtd
//! keeps its configuration only in memory, and its own dump/restore loses CHAP secrets and
//! can open a target to everyone, so the caller keeps the export state itself and brings
//! tgtd to it with this crate, after every change and after every tgtd restart (the Linux
//! array does so in `plugins/linux/src/tgt.rs`).
//!
//! - [`Tgtd`] starts one tgtd instance (`tgtd -f -C N --iscsi portal=ADDR:PORT`), checks
//!   that it really listens on that portal, watches it, restarts it, and stops it the only
//!   way tgtd allows (delete every target with `--force`, then `--op delete --mode system`).
//! - [`Tgtadm`] is a typed client for instance N: targets, initiator-name ACLs, logical
//!   units (identity, online state, cache policy, size refresh), CHAP accounts, and parsed
//!   `--op show` listings ([`TargetInfo`], [`LunInfo`]); [`lun_mismatch`] tells why an
//!   existing logical unit must be re-created to match a [`LunSpec`].
//!
//! Every program runs from an argument vector, never a shell; every name is validated
//! ([`names`]); initiator-address rules (`-I ALL`) can be removed but never added; CHAP
//! secrets are redacted from `Debug`, errors and logs and, by default, reach tgtd over its
//! management socket rather than a command line ([`SecretChannel`]).

pub mod error;
mod ipc;
pub mod names;
pub mod show;
pub mod tgtadm;
pub mod tgtd;

pub use error::{AdmError, TgtError};
pub use names::{BackingPath, InitiatorAddress, Iqn, ProductId, ScsiId, ScsiSn, Secret, UserName, VendorId};
pub use show::{tgt_size_mb, LunInfo, SessionInfo, SystemInfo, TargetInfo};
pub use tgtadm::{lun_mismatch, CachePolicy, LunSpec, SecretChannel, Tgtadm};
pub use tgtd::{log_tail, Tgtd, TgtdConfig};
