//! Helpers shared by the integration tests.
#![allow(dead_code)]

use spindle_manager::{CallError, ContractFailure, Mode};
use spindle_testkit::fixture::Harness;

/// A harness over the default module, strict mode.
pub async fn strict() -> Harness {
    harness(Mode::Strict).await
}

/// A harness over the default module, lenient mode.
pub async fn lenient() -> Harness {
    harness(Mode::Lenient).await
}

/// A harness over the default module.
pub async fn harness(mode: Mode) -> Harness {
    match Harness::start(spindle_testkit::testplugin_exe!(), mode).await {
        Ok(h) => h,
        Err(e) => panic!("cannot start the test harness: {e}"),
    }
}

/// The contract failure inside `r`, or a panic naming what came instead.
pub fn contract<T: std::fmt::Debug>(r: Result<T, CallError>) -> ContractFailure {
    match r {
        Err(CallError::Contract(c)) => c,
        other => panic!("expected a contract failure, got {other:?}"),
    }
}
