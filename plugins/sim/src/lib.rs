//! spindle's built-in **simulated** storage array plug-in (`spindle.sim.SimArray`).
//!
//! It implements every method of [`StorageArrayPlugin`] over a simulated array whose whole state
//! lives in one JSON file per array, so that plug-in authors, the manager, the server and the
//! conformance kit have a fast, fully featured backend without hardware. It stores no data and
//! presents no real devices; it says so in its descriptions.
//!
//! Use [`plugin`] (or the unit struct [`SimArray`]) to get the plug-in.
//!
//! # `ss_record.extra_info`
//! `key=value` settings separated by `;` (see [`config`]):
//! `state_dir=/abs/dir` (required), `capacity=1T` (per pool), `pools=pool0[,more]`,
//! `split_ms_per_gib=1000`. Example: `state_dir=/var/lib/spindle/sim/a1;capacity=2T;pools=fast,bulk`.
//!
//! # Rules the simulated array follows
//! - One array per `state_dir`. Its storage type (SAN or iSCSI) is fixed by the first record
//!   that addresses it; `validate` refuses a record of the other type. Access-group entries are
//!   WWNs (`0x` + 16 hex digits) on SAN arrays and initiator names (`iqn.`, `eui.`, `naa.`) on
//!   iSCSI arrays.
//! - The plug-in keeps nothing in the process: every call locks the array's state file, reads
//!   it, and writes it back atomically if the call changed something (see [`store`]). A call
//!   that raises changes nothing.
//! - Sizes are rounded up to whole MiB. A new LUN, or the growth of a resize, must fit in the
//!   pool's free space (thin or thick); thick elements keep that space reserved, thin ones,
//!   snapshots and unsplit clones reserve nothing.
//! - Limits: 256 snapshots and 256 dependent clones per element, 64 entries per access group.
//! - `splitClone` is the only asynchronous operation: it returns the clone's record with
//!   `async_progress` 0 and an `async_handle`; the copy takes `split_ms_per_gib` per started
//!   GiB (at least that much, at most an hour), measured by the wall clock from the start time
//!   kept in the state file. When it is done the clone is an ordinary LUN.
//! - `remove` refuses (StorageElementBusyEx) an element that is presented, being split, covered
//!   by snapshots or shared by unsplit clones; it never stops presenting on its own.
//! - Restore rule: `snapRestore` rolls an element back to the snapshot's image (its size at the
//!   snapshot). It refuses with SnapRestoreNotSafeEx when the element is presented *and*
//!   online (a host could be using it: take it offline or stop presenting it first), when it is
//!   being split, or when an unsplit clone was made directly from it after the snapshot (that
//!   clone shares blocks the roll-back would overwrite). Clones made from snapshots share the
//!   snapshots' frozen blocks and do not block a restore; neither do later snapshots, which
//!   keep their images.
//! - Page 83 ids are NAA-6: a random, locally administered company id and a random vendor id
//!   per array, then a serial number that never decreases, so no id is ever reused.
//!
//! # Fault injection (for tests of callers)
//! While a file [`store::FAIL_AFTER_CHANGE`] exists in `state_dir`, the next call that changes
//! the array makes and saves its change, removes the file, and then raises
//! OperationFailedEx: what a real array does when a change took effect but a later step of
//! it failed (the Linux array's "the change was recorded, but tgtd could not be brought to
//! it"). Callers must not assume that such a failure changed nothing.

pub mod config;
pub mod names;
mod sim;
pub mod state;
pub mod store;

#[cfg(test)]
mod tests;

pub use sim::SimArray;

use spindle_api::StorageArrayPlugin;

/// The fully qualified class name.
pub const CLASS_NAME: &str = "spindle.sim.SimArray";

/// `plugin_version`: the package version with release 1.
pub const PLUGIN_VERSION: &str = "0.1.0-1";

/// The simulated array plug-in as a trait object.
pub fn plugin() -> Box<dyn StorageArrayPlugin> {
    Box::new(SimArray)
}
