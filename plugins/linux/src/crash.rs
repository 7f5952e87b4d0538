//! The test-only fault hook: `SPINDLE_ARRAY_CRASH_AT=<step>` makes the program (one-shot or
//! resident) abort (`std::process::abort`, as abrupt as SIGKILL: no destructors, no flushing)
//! when it reaches that step, so tests can check recovery after a crash at every step.
//!
//! Step names are `<operation>.<phase>`; [`STEPS`] lists them all. For operations that change
//! or remove existing files (resize, remove, restore, split) the phases are:
//! - `intent`: the intent row is committed, no file has been touched;
//! - `partial`: the new files are complete and fsynced (temporaries `.<op>.partial`);
//! - `prepared`: the intent is marked prepared (from here recovery rolls forward);
//! - `renamed` / `applied`: the files are in their final place (directory fsynced), the
//!   database not yet updated;
//! - for splits, `spawned` (request side, worker started) and `copied` (worker side, copy
//!   complete and fsynced, not yet prepared).
//!
//! For operations that add elements (create, snapshot, multi-snapshot, clone, clone of a
//! snapshot; see the engine's module docs), the same names mark:
//! - `intent`: the in-flight marker names the operation, no file has been touched;
//! - `partial`: the new files are complete and marked, under their final names, not yet
//!   fsynced, and no row names them (from here recovery rolls forward);
//! - `renamed`: files and directories fsynced, nothing committed yet (the resident program
//!   answers here);
//! - `prepared`: the intent (`applied`) and the rows are committed, the marker not yet
//!   cleared (in the resident program, after the answer);
//! - for multi-snapshots on btrfs, which take the first protocol, `subvol`: the btrfs
//!   subvolume snapshot exists.

/// The environment variable naming the step to crash at.
pub const CRASH_ENV: &str = "SPINDLE_ARRAY_CRASH_AT";

/// Every step name, per operation.
pub const STEPS: &[(&str, &[&str])] = &[
    (
        "create",
        &[
            "create.intent",
            "create.partial",
            "create.renamed",
            "create.prepared",
        ],
    ),
    ("resize", &["resize.intent", "resize.prepared", "resize.applied"]),
    ("remove", &["remove.intent", "remove.prepared", "remove.applied"]),
    (
        "snapshot",
        &[
            "snapshot.intent",
            "snapshot.partial",
            "snapshot.renamed",
            "snapshot.prepared",
        ],
    ),
    (
        "multisnap",
        &[
            "multisnap.intent",
            "multisnap.subvol",
            "multisnap.partial",
            "multisnap.prepared",
            "multisnap.renamed",
        ],
    ),
    (
        "snapremove",
        &["snapremove.intent", "snapremove.prepared", "snapremove.applied"],
    ),
    (
        "clone",
        &["clone.intent", "clone.partial", "clone.renamed", "clone.prepared"],
    ),
    (
        "snapclone",
        &[
            "snapclone.intent",
            "snapclone.partial",
            "snapclone.renamed",
            "snapclone.prepared",
        ],
    ),
    (
        "restore",
        &[
            "restore.intent",
            "restore.partial",
            "restore.prepared",
            "restore.renamed",
        ],
    ),
    (
        "split",
        &[
            "split.intent",
            "split.spawned",
            "split.copied",
            "split.prepared",
            "split.renamed",
        ],
    ),
];

/// Aborts the process if `SPINDLE_ARRAY_CRASH_AT` names `step`.
pub fn point(step: &str) {
    if std::env::var_os(CRASH_ENV).is_some_and(|v| v == step) {
        std::process::abort();
    }
}
