//! The service: the one place an [`Action`] is handled.

use crate::{Action, Reply, RequestContext, ServiceError};
use serde_json::Value;
use spindle_manager::Manager;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the service is started.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Holds `spindle.db` (SQLite, WAL, mode 0600).
    pub data_dir: PathBuf,
    /// The plug-in manager every plug-in call goes through.
    pub manager: Arc<Manager>,
    /// The embedded local array, registered by `POST /v1/servers {"embedded": true}`.
    pub embedded: Option<EmbeddedServer>,
    /// How often every registered storage server is re-read from its plug-in (zero: never).
    pub refresh_interval: Duration,
    /// How often a running job polls getAsyncProgress.
    pub job_poll_interval: Duration,
}

/// The settings of the embedded local array.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedServer {
    /// Plug-in class (`spindle.linux.LinuxArray`).
    pub plugin: String,
    /// The ss_record every field of a registration comes from (name and uuid are set then).
    pub ss_record: Value,
}

/// spindle's management core.
#[derive(Debug)]
pub struct Service {
    config: ServiceConfig,
}

impl Service {
    /// Opens (creating or migrating) the database, resumes running jobs and starts the
    /// periodic refresh.
    pub async fn open(config: ServiceConfig) -> Result<Arc<Service>, ServiceError> {
        Ok(Arc::new(Service { config }))
    }

    /// Handles one action.
    pub async fn handle(&self, ctx: &RequestContext, action: Action) -> Result<Reply, ServiceError> {
        let _ = (ctx, &self.config);
        Err(ServiceError::Internal(format!(
            "{} is not implemented yet",
            action.name()
        )))
    }

    /// The service's metrics in Prometheus text exposition format.
    pub fn metrics_text(&self) -> String {
        String::new()
    }

    /// Stops background tasks (jobs stay `running` in the database and resume at next open).
    pub async fn shutdown(&self) {}
}
