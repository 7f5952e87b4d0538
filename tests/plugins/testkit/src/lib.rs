//! spindle's test kit: an out-of-process test plug-in program (`spindle-testplugin`) whose
//! classes behave well or badly on purpose, and fixtures that lay out plug-in roots for it.
//!
//! - [`plugins`] holds the classes the program offers and its `main`.
//! - [`fixture`] builds temporary plug-in roots whose modules run the program, managers over
//!   them, and the records the tests pass.
//!
//! The integration tests in `tests/` use both to prove what the manager promises: normal calls,
//! the cache, temporary files, crashes, hangs, stdout pollution, asynchronous operations, every
//! contract rule, input checks, validation, discovery and per-server serialisation.

pub mod fixture;
pub mod plugins;

/// The path of the test plug-in program, for integration tests and benchmarks of this package
/// (Cargo sets `CARGO_BIN_EXE_spindle-testplugin` only when it builds those).
#[macro_export]
macro_rules! testplugin_exe {
    () => {
        env!("CARGO_BIN_EXE_spindle-testplugin")
    };
}
