//! Jobs: asynchronous plug-in operations, followed with getAsyncProgress by spindle itself so
//! that they survive a restart. The async record (with its handle) lives only in the jobs
//! table while the job runs.

use crate::metrics::JobState;
use crate::service::{args, q, Inner, JOB_DEADLINE, JOB_POLL_RETRIES};
use crate::store::{self, ElementRow, JobRow, ServerRow};
use crate::views::{element_view, job_view};
use crate::ServiceError;
use serde_json::{json, Value};
use spindle_api::Method;
use std::sync::Arc;
use tracing::Instrument;

/// How a finished job changes the stored elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The operation made a new element (create, clone, cloneFromSnap, createSnap,
    /// createMultiSnap).
    Insert,
    /// The operation changed an element (resize, splitClone).
    Replace,
}

impl Finish {
    fn as_str(self) -> &'static str {
        match self {
            Finish::Insert => "insert",
            Finish::Replace => "replace",
        }
    }
}

/// The async progress of a record, if the operation is still running: `Some(None)` for
/// "unknown" (-1), `Some(Some(p))` for a percentage.
pub(crate) fn progress_of(v: &Value) -> Option<Option<i64>> {
    match v.get("async_progress") {
        None | Some(Value::Null) => None,
        Some(p) => Some(p.as_i64().filter(|p| *p >= 0).map(|p| p.min(100))),
    }
}

fn strip_async(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("async_progress");
        m.remove("async_handle");
    }
    v
}

/// What [`Inner::start_job`] needs.
pub(crate) struct NewJob<'a> {
    pub srv: &'a ServerRow,
    pub method: Method,
    /// The element's name (the new one's, for an operation that creates one).
    pub target: String,
    /// The element worked on (Replace), or the new element's uuid if the plug-in gave one.
    pub target_uuid: Option<String>,
    pub call_id: &'a str,
    pub finish: Finish,
    /// The new element's parents, `(uuid, name)`.
    pub parents: Vec<(String, String)>,
}

impl Inner {
    /// Records a running job for an operation that answered with `async_progress`, starts
    /// following it, and returns its JobView.
    pub(crate) async fn start_job(
        self: &Arc<Self>,
        j: NewJob<'_>,
        record: Value,
    ) -> Result<Value, ServiceError> {
        let now = crate::time::now();
        let target_uuid = j.target_uuid.or_else(|| {
            record
                .get("uuid")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        });
        let row = JobRow {
            id: uuid::Uuid::new_v4().to_string(),
            server: j.srv.name.clone(),
            method: j.method.name().to_string(),
            target: j.target,
            target_uuid,
            state: "running".into(),
            percent: progress_of(&record).flatten(),
            created_at: now.clone(),
            updated_at: now,
            finished_at: None,
            call_id: j.call_id.to_string(),
            record: Some(record),
            context: json!({"finish": j.finish.as_str(), "parents": j.parents}),
            error: None,
            result: None,
        };
        let view = job_view(&row);
        let id = row.id.clone();
        self.store.write(move |tx| store::insert_job(tx, &row)).await?;
        self.metrics.job_moved(None, JobState::Running, 1);
        tracing::info!(job = %id, method = j.method.name(), "asynchronous operation became a job");
        self.spawn_job(id);
        Ok(view)
    }

    /// Records a job that is already over (a split that finished at once).
    pub(crate) async fn finished_job(
        &self,
        srv: &ServerRow,
        method: Method,
        target: &str,
        target_uuid: Option<String>,
        call_id: &str,
        result: Value,
    ) -> Result<Value, ServiceError> {
        let now = crate::time::now();
        let row = JobRow {
            id: uuid::Uuid::new_v4().to_string(),
            server: srv.name.clone(),
            method: method.name().to_string(),
            target: target.to_string(),
            target_uuid,
            state: "succeeded".into(),
            percent: Some(100),
            created_at: now.clone(),
            updated_at: now.clone(),
            finished_at: Some(now),
            call_id: call_id.to_string(),
            record: None,
            context: json!({}),
            error: None,
            result: Some(result),
        };
        let view = job_view(&row);
        self.store.write(move |tx| store::insert_job(tx, &row)).await?;
        self.metrics.job_moved(None, JobState::Succeeded, 1);
        Ok(view)
    }

    /// Starts the task that follows job `id` (unless the service is stopping: the job then
    /// resumes at the next open).
    pub(crate) fn spawn_job(self: &Arc<Self>, id: String) {
        if self.stopping() {
            return;
        }
        let me = Arc::clone(self);
        let h = tokio::spawn(async move { me.run_job(id).await });
        self.track(h);
    }

    async fn run_job(self: Arc<Self>, id: String) {
        let mut stop = self.shutdown.subscribe();
        let mut failures = 0u32;
        loop {
            if self.stopping() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.job_poll_interval) => {}
                _ = stop.changed() => return,
            }
            if self.stopping() {
                return;
            }
            match self.poll_job(&id, &mut failures).await {
                Ok(true) => {}
                Ok(false) => {
                    // A split's copy changed the server's space, whether or not it finished.
                    let jid = id.clone();
                    if let Ok(Some(job)) = self.store.read(move |c| store::job(c, &jid)).await {
                        self.reread_info_soon(&job.server, &job.call_id);
                        if job.state == "failed" {
                            self.reread_after_failed_job(&job).await;
                        }
                    }
                    return;
                }
                Err(e) => {
                    // The database failed: try again at the next tick.
                    tracing::error!(job = %id, error = %e, "following the job failed");
                }
            }
        }
    }

    /// One poll. `Ok(true)`: still running.
    async fn poll_job(&self, id: &str, failures: &mut u32) -> Result<bool, ServiceError> {
        let jid = id.to_string();
        let Some(job) = self.store.read(move |c| store::job(c, &jid)).await? else {
            return Ok(false);
        };
        if job.state != "running" {
            return Ok(false);
        }
        let span = tracing::info_span!("job", call_id = %job.call_id, job = %job.id, method = %job.method);
        self.poll_job_in(job, failures).instrument(span).await
    }

    async fn poll_job_in(&self, job: JobRow, failures: &mut u32) -> Result<bool, ServiceError> {
        let srv_name = job.server.clone();
        let Some(srv) = self.store.read(move |c| store::server(c, &srv_name)).await? else {
            let e = ServiceError::not_found(
                "server",
                format!("storage server {} was removed while the job ran", q(&job.server)),
            );
            self.fail_job(&job, &e).await?;
            return Ok(false);
        };
        let age_ms = crate::time::parse_ms(&crate::time::now())
            .zip(crate::time::parse_ms(&job.created_at))
            .map(|(n, c)| n - c)
            .unwrap_or(0);
        if age_ms > i64::try_from(JOB_DEADLINE.as_millis()).unwrap_or(i64::MAX) {
            let e = ServiceError::PluginFailed(spindle_api::PluginException::operation_failed(format!(
                "the asynchronous {} did not finish within {} hours",
                job.method,
                JOB_DEADLINE.as_secs() / 3600
            )));
            self.fail_job(&job, &e).await?;
            return Ok(false);
        }
        let Some(record) = job.record.clone() else {
            let e = ServiceError::internal("the job lost its asynchronous record");
            self.fail_job(&job, &e).await?;
            return Ok(false);
        };
        let entry = match self.plugin(&srv) {
            Ok(e) => e,
            Err(e) => {
                self.fail_job(&job, &e).await?;
                return Ok(false);
            }
        };
        let polled = self
            .call(
                entry,
                Method::GetAsyncProgress,
                args(&srv.ss, [("some_record", record)]),
                &job.call_id,
            )
            .await;
        match polled {
            Ok(v) => match progress_of(&v) {
                Some(percent) => {
                    *failures = 0;
                    let (id, at) = (job.id.clone(), crate::time::now());
                    tracing::debug!(percent = ?percent, "job progress");
                    self.store
                        .write(move |tx| store::job_progress(tx, &id, percent, &v, &at))
                        .await?;
                    Ok(true)
                }
                None => {
                    self.succeed_job(&job, strip_async(v)).await?;
                    Ok(false)
                }
            },
            Err(ServiceError::PluginFailed(e)) if *failures + 1 < JOB_POLL_RETRIES => {
                *failures += 1;
                tracing::warn!(attempt = *failures, error = %e, "getAsyncProgress failed; trying again");
                Ok(true)
            }
            Err(e) => {
                self.fail_job(&job, &e).await?;
                Ok(false)
            }
        }
    }

    /// A failed operation may have left its element otherwise than spindle last read it (a
    /// split rolled back, or stopped half way), and that record may have been read while the
    /// operation ran (`BUSY_COPY`, `SPLITTING`): the element is re-read (getInfo) and stored,
    /// as a finished job's is. An element spindle does not hold (an operation that was making
    /// one) or cannot re-read costs a re-read of the whole server instead.
    async fn reread_after_failed_job(self: &Arc<Self>, job: &JobRow) {
        let call_id = format!("{}-reread", job.call_id);
        let reread = async {
            let _g = self.lock(&job.server).await;
            let srv = self.server(&job.server).await?;
            let stored = match &job.target_uuid {
                Some(u) => {
                    let (s, u) = (job.server.clone(), u.clone());
                    self.store.read(move |c| store::element(c, &s, &u)).await?
                }
                None => None,
            };
            match stored {
                Some(e) => self.reread_element(&srv, &e, &call_id).await.map(|_| true),
                None => Ok(false),
            }
        };
        match reread.await {
            Ok(true) => tracing::info!(call_id = %call_id, "the failed job's element was re-read"),
            // The server was removed while the job ran: there is nothing to re-read.
            Err(ServiceError::NotFound { .. }) if self.server(&job.server).await.is_err() => {}
            Ok(false) => self.refresh_after_failure(&job.server, &job.call_id),
            Err(e) => {
                tracing::warn!(call_id = %call_id, error = %e, "re-reading the failed job's element failed; re-reading the storage server");
                self.refresh_after_failure(&job.server, &job.call_id);
            }
        }
    }

    async fn fail_job(&self, job: &JobRow, e: &ServiceError) -> Result<(), ServiceError> {
        tracing::warn!(error = %e, "job failed");
        let body = e.body(&job.call_id);
        let (id, percent, at) = (job.id.clone(), job.percent, crate::time::now());
        let done = self
            .store
            .write(move |tx| store::finish_job(tx, &id, "failed", percent, Some(&body), None, &at))
            .await?;
        if done {
            self.metrics
                .job_moved(Some(JobState::Running), JobState::Failed, 1);
        }
        Ok(())
    }

    /// The operation is over: re-read the element (getInfo), store it, and end the job.
    async fn succeed_job(&self, job: &JobRow, last: Value) -> Result<(), ServiceError> {
        let _g = self.lock(&job.server).await;
        let srv_name = job.server.clone();
        let Some(srv) = self.store.read(move |c| store::server(c, &srv_name)).await? else {
            let e = ServiceError::not_found(
                "server",
                format!("storage server {} was removed while the job ran", q(&job.server)),
            );
            return self.fail_job(job, &e).await;
        };
        let finish = match job.context.get("finish").and_then(Value::as_str) {
            Some("insert") => Finish::Insert,
            _ => Finish::Replace,
        };
        let existing = match &job.target_uuid {
            Some(u) => {
                let (s, u) = (job.server.clone(), u.clone());
                self.store.read(move |c| store::element(c, &s, &u)).await?
            }
            None => None,
        };
        // The record to ask getInfo about: what the plug-in returned, else the element.
        let base = if last.is_object() {
            last.clone()
        } else {
            existing.as_ref().map(|e| e.record.clone()).unwrap_or(Value::Null)
        };
        let record = if base.is_object() {
            let entry = self.plugin(&srv)?;
            match self
                .call(
                    entry,
                    Method::GetInfo,
                    args(&srv.ss, [("se_record", base.clone())]),
                    &job.call_id,
                )
                .await
            {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "the operation finished but getInfo of its element failed; keeping the record getAsyncProgress returned");
                    Some(base).filter(|b| b.get("uuid").is_some())
                }
            }
        } else {
            None
        };
        let result = match record {
            Some(rec) => {
                let parents: Vec<(String, String)> = match finish {
                    Finish::Insert => {
                        serde_json::from_value(job.context["parents"].clone()).unwrap_or_default()
                    }
                    Finish::Replace => Vec::new(),
                };
                let mut row = ElementRow::new(&job.server, rec, parents);
                if finish == Finish::Replace {
                    if let Some(old) = &existing {
                        row.parent = old.parent.clone();
                        row.parent_uuids = old.parent_uuids.clone();
                        row.parent_names = old.parent_names.clone();
                    }
                }
                let view = element_view(&row);
                self.store
                    .write(move |tx| store::upsert_element(tx, &row))
                    .await?;
                Some(view)
            }
            None => None,
        };
        let (id, at) = (job.id.clone(), crate::time::now());
        let done = self
            .store
            .write(move |tx| store::finish_job(tx, &id, "succeeded", Some(100), None, result.as_ref(), &at))
            .await?;
        if done {
            self.metrics
                .job_moved(Some(JobState::Running), JobState::Succeeded, 1);
            tracing::info!("job succeeded");
        }
        Ok(())
    }
}
