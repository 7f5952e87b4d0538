//! spindle's management core (the role the guides give "the Manager" of records): it keeps
//! storage servers, their elements and access groups, jobs and the audit log in SQLite, and
//! handles one [`Action`] at a time against the plug-in manager. Transports only translate.
//!
//! Invariants kept here:
//! - input is checked before any plug-in call; bad input changes nothing;
//! - reads are answered from the store, never from a plug-in (except capabilities and the
//!   QoS list, which the store does not keep), and never wait for a mutation;
//! - mutations of one storage server are serialised here too, so that the stored records
//!   follow the array's changes in order;
//! - an asynchronous operation's handle lives only in the jobs table, so a job resumes after a
//!   restart and the handle is never returned;
//! - secrets (`passwd`, `admin_passwd`, secret-looking `extra_info` keys) are stored but never
//!   returned, logged or exported in metrics;
//! - every mutating action writes one audit entry, success or not.

pub mod action;
pub mod error;
mod handlers;
mod jobs;
mod metrics;
pub mod service;
pub mod store;
mod sync;
pub mod time;
pub mod views;

pub use action::{Action, AddServer, CreateLun, Reply, RequestContext, ServerSettings, UpdateServer};
pub use error::ServiceError;
pub use service::{EmbeddedServer, Service, ServiceConfig};
