//! The kit's one error type: what can go wrong before a run starts (options, files) and what a
//! data path reports.

use std::path::PathBuf;

/// Why the kit cannot start, or why a data-path operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// The ss_record file cannot be read.
    #[error("cannot read the ss_record file {path}: {source}")]
    ReadSsRecord {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The ss_record file is not JSON.
    #[error("the ss_record file {path} is not JSON: {source}")]
    ParseSsRecord {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// An option has a value the kit cannot use.
    #[error("{option}: {reason}")]
    BadOption {
        /// The option, as the command line spells it (e.g. `--prefix`).
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A data-path operation failed (raised by a [`crate::DataPath`] implementation).
    #[error("data path: {0}")]
    DataPath(String),
}
