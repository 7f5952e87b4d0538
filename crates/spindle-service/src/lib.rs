//! spindle's management core (the role the guides give "the Manager" of records): it keeps
//! storage servers, their elements and access groups, jobs and the audit log in SQLite, and
//! handles one [`Action`] at a time against the plug-in manager. Transports only translate.

pub mod action;
pub mod error;

pub use action::{Action, AddServer, CreateLun, Reply, RequestContext};
pub use error::ServiceError;
pub mod service;

pub use service::{EmbeddedServer, Service, ServiceConfig};
