//! The conformance kit: shows a plug-in author exactly where a storage plug-in breaks the
//! guides.
//!
//! [`run`] drives one plug-in through the [`Manager`] (so every call passes the manager's own
//! contract checks too), creating LUNs, snapshots, clones and access groups whose names all
//! start with a run prefix, and judges each behaviour against one rule of the guides. What it
//! tries follows the method table ([`spindle_api::METHODS`]) and the plug-in's declarations
//! (its class variables and what getCapabilities says the array can do now): an UNSUPPORTED
//! operation must raise NoSuchOperationEx, an ONLINE one must work while the element is
//! presented, every parameter of every method is tried missing and malformed, and so on.
//! Everything the run created is removed at the end, in dependency order, failures or not;
//! whatever could not be removed is reported.
//!
//! Each check has a stable id (`create.page83_id`, `remove.refused_while_presented`, ...), the
//! rule it enforces, and a verdict: pass, fail (what was expected, what happened, and which
//! layer refused: the manager or the plug-in) or skip (why). [`catalogue`] lists them all.
//!
//! The kit expects a manager in strict mode (the default): a contract breach then fails the
//! call and is reported under the check for that rule, once; the functional check that made
//! the call is skipped with a pointer to it. In lenient mode the breaches the manager
//! tolerated are reported the same way.
//!
//! The data-path checks (what a host sees of a presented LUN) use the [`DataPath`] trait; they
//! are skipped, with the reason, until an initiator is plugged in through
//! [`DataPathOptions::with_driver`].

mod catalogue;
mod cleanup;
mod datapath;
mod derived;
mod dpchecks;
mod dpscenario;
mod elements;
mod error;
mod groups;
mod iscsi;
mod kit;
mod options;
mod params;
mod preamble;
mod refusals;
mod report;
mod unfinished;

pub use catalogue::{catalogue, CheckInfo};
pub use datapath::{Capacity, DataPath, LunRef};
pub use error::ConformanceError;
pub use iscsi::IscsiDataPath;
pub use options::{default_prefix, load_ss_record, DataPathOptions, Options};
pub use report::{CheckResult, Report, Verdict};

use spindle_manager::{Manager, PluginEntry};

/// Runs the kit against `plugin` through `manager` and reports every check `options` selects.
///
/// Never panics on what a plug-in does; a plug-in that crashes, hangs (up to the manager's
/// deadline) or breaks the contract fails the checks concerned. Call [`Options::check`] first
/// to refuse unusable options before anything reaches the array.
pub async fn run(manager: &Manager, plugin: &PluginEntry, options: &Options) -> Report {
    let cat = catalogue();
    let mut kit = kit::Kit::new(manager, plugin, options, &cat);
    kit.declarations();
    kit.parameter_checks().await;
    if kit.validate().await {
        kit.capabilities().await;
        let needs_array = cat
            .iter()
            .any(|c| !catalogue::is_preamble(&c.id) && options.wants(&c.id));
        if needs_array {
            kit.array_info().await;
            let groups = kit.access_groups().await;
            kit.elements(&groups).await;
            kit.datapath_scenario(&groups).await;
            kit.cleanup().await;
        } else {
            kit.fallback = Some("not selected".into());
        }
    } else {
        kit.fallback =
            Some("not exercised: validate refused the kit's ss_record (see validate.accepts_record)".into());
    }
    kit.derive();
    kit.report(&cat)
}

/// The report for a plug-in the manager found but did not load (discovery skipped it with
/// `reason`, e.g. a misspelled ability key): the declarations check the reason concerns fails
/// with it (`declarations.class_variables` when it concerns none in particular: an import
/// error, a missing class variable), and every other check is skipped. The failing check is
/// reported even when `options.only` leaves it out, since it is why nothing else ran.
pub fn not_loaded(plugin: &str, reason: &str, options: &Options) -> Report {
    let failing = if reason.contains("plugin_ability") {
        "declarations.plugin_ability"
    } else if reason.contains("plugin_version") {
        "declarations.plugin_version"
    } else if reason.contains("storage_types") {
        "declarations.storage_types"
    } else {
        "declarations.class_variables"
    };
    let checks = catalogue()
        .into_iter()
        .filter(|c| c.id == failing || options.wants(&c.id))
        .map(|c| {
            let (verdict, reason) = if c.id == failing {
                (
                    Verdict::Fail,
                    format!(
                        "plug-in {} was found but not loaded: {reason}",
                        spindle_api::names::shown(plugin)
                    ),
                )
            } else {
                (
                    Verdict::Skip,
                    format!("not exercised: the plug-in was found but not loaded (see {failing})"),
                )
            };
            CheckResult {
                id: c.id,
                verdict,
                reason,
                rule: c.rule,
            }
        })
        .collect();
    Report {
        plugin: plugin.to_string(),
        prefix: options.prefix.clone(),
        checks,
        leftovers: Vec::new(),
    }
}
