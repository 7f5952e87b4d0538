//! The service: the one place an [`Action`] is handled.

use crate::handlers::Want;
use crate::metrics::Metrics;
use crate::store::{self, ServerRow, Store};
use crate::{Action, Reply, RequestContext, ServerSettings, ServiceError};
use serde_json::{Map, Value};
use spindle_api::{Method, PluginException};
use spindle_manager::{CallError, CallOptions, Manager, PluginEntry};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedMutexGuard};
use tokio::task::JoinHandle;
use tracing::Instrument;

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
#[derive(Clone, PartialEq)]
pub struct EmbeddedServer {
    /// Plug-in class (`spindle.linux.LinuxArray`).
    pub plugin: String,
    /// The ss_record every field of a registration comes from (name and uuid are set then).
    pub ss_record: Value,
    /// The extra_info setting whose value identifies the embedded array across restarts of
    /// spindle (its state directory: `state` for the Linux array): a registration with the
    /// same value is the embedded array, whatever its other settings.
    pub identity_setting: String,
}

impl std::fmt::Debug for EmbeddedServer {
    // The ss_record may hold secrets: never shown unredacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedServer")
            .field("plugin", &self.plugin)
            .field("ss_record", &redacted_ss(&self.ss_record))
            .field("identity_setting", &self.identity_setting)
            .finish()
    }
}

/// How long a job may run before spindle gives up on it.
pub const JOB_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// Consecutive getAsyncProgress calls that may fail for want of the plug-in (a crash, a
/// timeout) before the job is failed.
pub const JOB_POLL_RETRIES: u32 = 5;

/// How long [`Service::shutdown`] waits for background tasks before aborting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// spindle's management core.
pub struct Service {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("data_dir", &self.inner.config.data_dir)
            .field("db", &self.inner.store.path())
            .finish_non_exhaustive()
    }
}

/// What the service's tasks share.
pub(crate) struct Inner {
    pub config: ServiceConfig,
    pub store: Arc<Store>,
    pub metrics: Metrics,
    /// One mutex per storage server name: held across a mutation (plug-in call and the store
    /// update that follows it) so that stored records follow the order of the array's changes.
    /// Reads never take it.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Servers whose getInfo is to be re-read shortly ([`Inner::reread_info_soon`]).
    pub info_pending: Mutex<std::collections::HashSet<String>>,
    pub shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Service {
    /// Opens (creating or migrating) the database, resumes running jobs and starts the
    /// periodic refresh, whose first round runs at once, in the background (the embedded
    /// array's registrations: from [`Service::adopt_embedded`]).
    pub async fn open(config: ServiceConfig) -> Result<Arc<Service>, ServiceError> {
        let dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&dir))
            .await
            .map_err(|e| ServiceError::internal(format!("opening the database: {e}")))??;
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            config,
            store: Arc::new(store),
            metrics: Metrics::default(),
            locks: Mutex::new(HashMap::new()),
            info_pending: Mutex::new(std::collections::HashSet::new()),
            shutdown,
            tasks: Mutex::new(Vec::new()),
        });
        inner.metrics.set_jobs(inner.store.read(store::job_counts).await?);
        let running = inner.store.read(|c| store::jobs(c, true)).await?;
        for j in running {
            tracing::info!(job = %j.id, call_id = %j.call_id, server = %j.server, method = %j.method, "resuming job");
            inner.spawn_job(j.id);
        }
        if !inner.config.refresh_interval.is_zero() {
            let me = Arc::clone(&inner);
            let h = tokio::spawn(async move { me.refresh_loop().await });
            inner.track(h);
        }
        Ok(Arc::new(Service { inner }))
    }

    /// Handles one action.
    pub async fn handle(&self, ctx: &RequestContext, action: Action) -> Result<Reply, ServiceError> {
        let name = action.name();
        let mutates = action.mutates();
        let changes_space = action.changes_space();
        let sends_stored = action.sends_stored_records();
        let server = action.server().map(str::to_string);
        let target = target_of(&action);
        let span = tracing::info_span!(
            "action",
            call_id = %ctx.call_id,
            action = name,
            server = server.as_deref().unwrap_or(""),
        );
        let detail = if mutates {
            self.inner.audit_detail(&action).await
        } else {
            None
        };
        let started = Instant::now();
        // Boxed: the handlers' state machine is large, and a caller may hold many of these.
        let result = Box::pin(self.inner.dispatch(ctx, action))
            .instrument(span.clone())
            .await;
        let took = started.elapsed();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.inner.metrics.action(name, outcome);
        let duration_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
        let _enter = span.enter();
        match &result {
            Ok(_) if mutates => tracing::info!(outcome, duration_ms, "action done"),
            Ok(_) => tracing::debug!(outcome, duration_ms, "action done"),
            Err(e) => tracing::info!(outcome, duration_ms, error = %e, "action failed"),
        }
        // The stored records must not stay behind an array that did change, or that refused
        // what they say: they are re-read at once, in the background (the array may be slow
        // to answer, or not at all).
        // Likewise the server's totals after a change of its space.
        if let (true, Some(server)) = (mutates, &server) {
            match &result {
                Err(e) if e.may_have_changed_the_array() || (sends_stored && e.records_may_be_stale()) => {
                    self.inner.refresh_after_failure(server, &ctx.call_id)
                }
                Ok(_) if changes_space => self.inner.reread_info_soon(server, &ctx.call_id),
                _ => {}
            }
        }
        if mutates {
            let row = store::AuditRow {
                at: crate::time::now(),
                who: ctx.who.clone(),
                remote: ctx.remote.clone(),
                call_id: ctx.call_id.clone(),
                action: name.to_string(),
                server: server.map(audit_name),
                target: target.map(audit_name),
                outcome: outcome.to_string(),
                exception: result
                    .as_ref()
                    .err()
                    .and_then(ServiceError::exception)
                    .map(|k| k.as_str().to_string()),
                duration_ms,
                detail,
            };
            if let Err(e) = self
                .inner
                .store
                .write(move |tx| store::insert_audit(tx, &row))
                .await
            {
                tracing::error!(error = %e, "cannot write the audit entry");
            }
        }
        result
    }

    /// Calls getStatus on `server` (the serve glue calls it every few seconds for the
    /// embedded array, whose array program reconciles a dead tgtd on any request).
    pub async fn probe(&self, server: &str) -> Result<(), ServiceError> {
        let call_id = format!("probe-{}", uuid::Uuid::new_v4().simple());
        let span = tracing::debug_span!("probe", call_id = %call_id, server);
        async {
            let srv = self.inner.server(server).await?;
            let entry = self.inner.plugin(&srv)?;
            self.inner
                .call(entry, Method::GetStatus, args(&srv.ss, []), &call_id)
                .await
                .map(drop)
        }
        .instrument(span)
        .await
    }

    /// Brings every registration of the embedded array (same plug-in, same value of
    /// [`EmbeddedServer::identity_setting`] in its extra_info) to the embedded record's settings when they differ —
    /// `spindle serve` was restarted with another `--portal`, `--tgt-control` or split rate,
    /// or a new build moved the array program — exactly as `server set` would (validate, which
    /// moves tgtd, then a re-read); the registration's name, uuid and CHAP stay. The serve
    /// glue calls it once at start. A registration that has the settings already gets the
    /// start's refresh here, in the background (when periodic refreshes are on: the refresh
    /// loop leaves the embedded array to this). Returns every registration of the embedded array, each
    /// with what changed (`portal A → B`, ...) when it was brought to new settings now; a
    /// registration the array refuses keeps its settings and is reported.
    pub async fn adopt_embedded(&self) -> Vec<(String, Option<String>)> {
        let Some(emb) = &self.inner.config.embedded else {
            return Vec::new();
        };
        let text = |ss: &Value, k: &str| ss.get(k).and_then(Value::as_str).map(str::to_string);
        let Some(want) = text(&emb.ss_record, "extra_info") else {
            return Vec::new();
        };
        let servers = match self.inner.store.read(store::servers).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the servers to bring to the embedded array's settings");
                return Vec::new();
            }
        };
        let mut registrations = Vec::new();
        for srv in servers
            .iter()
            .filter(|s| self.inner.is_embedded(&s.plugin, &s.ss))
        {
            let differing: Vec<&str> = EMBEDDED_SETTINGS
                .into_iter()
                .filter(|k| srv.ss.get(*k) != emb.ss_record.get(*k))
                .collect();
            if differing.is_empty() {
                // Its start's refresh, held back by the refresh loop until now; a registration
                // brought to new settings below was re-read by that update.
                self.inner.refresh_at_start(&srv.name);
                registrations.push((srv.name.clone(), None));
                continue;
            }
            let settings = ServerSettings {
                extra_info: Some(want.clone()),
                access_host: text(&emb.ss_record, "access_host"),
                access_port: text(&emb.ss_record, "access_port").and_then(|p| p.parse().ok()),
                admin_host: text(&emb.ss_record, "admin_host"),
                admin_user: text(&emb.ss_record, "admin_user"),
                ..ServerSettings::default()
            };
            let changes = settings_detail(&srv.ss, &settings);
            let action = Action::UpdateServer(crate::UpdateServer {
                server: srv.name.clone(),
                settings,
                from_embedded_flags: true,
            });
            let ctx = RequestContext {
                call_id: format!("embedded-{}", uuid::Uuid::new_v4().simple()),
                who: "spindle serve".into(),
                remote: "embedded array settings".into(),
            };
            match self.handle(&ctx, action).await {
                Ok(_) => {
                    tracing::info!(server = %srv.name, changes = %changes.join(", "), "the embedded array's settings changed; its registration follows");
                    registrations.push((srv.name.clone(), Some(changes.join(", "))));
                }
                Err(e) => {
                    tracing::warn!(server = %srv.name, changes = %changes.join(", "), error = %e, "the embedded array's settings changed, but its registration could not follow; it keeps its settings");
                    registrations.push((srv.name.clone(), None));
                }
            }
        }
        registrations
    }

    /// Probes (getStatus) every registration of the embedded array (`Inner::is_embedded`) and
    /// returns how many answered. The serve glue
    /// calls it every few seconds, so a killed tgtd is back within one interval even when
    /// nobody else calls the array.
    pub async fn probe_embedded(&self) -> usize {
        if self.inner.config.embedded.is_none() {
            return 0;
        }
        let servers = match self.inner.store.read(store::servers).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the servers to probe");
                return 0;
            }
        };
        let mut answered = 0;
        for srv in servers
            .iter()
            .filter(|s| self.inner.is_embedded(&s.plugin, &s.ss))
        {
            match self.probe(&srv.name).await {
                Ok(()) => answered += 1,
                Err(e) => tracing::warn!(server = %srv.name, error = %e, "embedded array does not answer"),
            }
        }
        answered
    }

    /// The service's metrics in Prometheus text exposition format.
    pub fn metrics_text(&self) -> String {
        let stats = self.inner.config.manager.cache().stats();
        self.inner.metrics.render(stats.hits, stats.misses)
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.inner.store.path().to_path_buf()
    }

    /// Stops background tasks (jobs stay `running` in the database and resume at next open).
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let handles: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for mut h in handles {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut h).await.is_err() {
                tracing::warn!("a background task did not stop within {SHUTDOWN_GRACE:?}; aborting it");
                h.abort();
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.inner.shutdown.send_replace(true);
        for h in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            h.abort();
        }
    }
}

/// Longest server or target name an audit entry keeps, in characters.
pub(crate) const AUDIT_NAME_MAX: usize = 200;

/// A server or target name as the audit keeps it: a refused request may name anything its
/// body can hold (up to the 1 MiB limit), so a name longer than any accepted one (64
/// characters) is cut after [`AUDIT_NAME_MAX`] characters and marked with `...`.
fn audit_name(name: String) -> String {
    match name.char_indices().nth(AUDIT_NAME_MAX) {
        Some((i, _)) => format!("{}...", &name[..i]),
        None => name,
    }
}

/// The audit target of an action: the element or group it names, or the one it creates.
fn target_of(a: &Action) -> Option<String> {
    match a {
        Action::CreateLun(c) => Some(c.name.clone()),
        Action::ShowLun { lun, .. }
        | Action::RemoveLun { lun, .. }
        | Action::ResizeLun { lun, .. }
        | Action::Online { lun, .. }
        | Action::Offline { lun, .. }
        | Action::Present { lun, .. }
        | Action::Unpresent { lun, .. }
        | Action::SetQos { lun, .. }
        | Action::Clone { lun, .. }
        | Action::Split { lun, .. } => Some(lun.clone()),
        Action::CreateSnapshot { name, .. } | Action::CreateMultiSnapshot { name, .. } => Some(name.clone()),
        Action::RemoveSnapshot { snap, .. }
        | Action::RestoreSnapshot { snap, .. }
        | Action::CloneSnapshot { snap, .. } => Some(snap.clone()),
        Action::CreateGroup { name, .. } => Some(name.clone()),
        Action::RemoveGroup { group, .. }
        | Action::RenameGroup { group, .. }
        | Action::AddGroupEntries { group, .. }
        | Action::RemoveGroupEntries { group, .. } => Some(group.clone()),
        Action::ShowJob { id } => Some(id.clone()),
        _ => None,
    }
}

/// Keyword arguments: `ss_record` and `extra`.
pub(crate) fn args<const N: usize>(ss: &Value, extra: [(&str, Value); N]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ss_record".into(), ss.clone());
    for (k, v) in extra {
        m.insert(k.to_string(), v);
    }
    m
}

/// An ss_record with its secrets replaced, for logs.
pub(crate) fn redacted_ss(ss: &Value) -> Value {
    let mut v = spindle_api::redact_value(ss);
    if let Some(Value::String(e)) = v.get_mut("extra_info") {
        let (kept, secrets) = crate::views::scrub_extra_info(e);
        if !secrets.is_empty() {
            *e = format!("{kept};<{} secret(s) removed>", secrets.len());
        }
    }
    v
}

/// The settings of a registration of the embedded array that come from `spindle serve`
/// ([`Service::adopt_embedded`] brings them along; `server set` refuses them).
pub(crate) const EMBEDDED_SETTINGS: [&str; 5] = [
    "extra_info",
    "access_host",
    "access_port",
    "admin_host",
    "admin_user",
];

/// What differs between two extra_info settings strings, `key old → new` each (secret-looking
/// keys shown as changed, never their values).
fn settings_changes(old: &str, new: &str) -> Vec<String> {
    let parse = |e: &str| -> std::collections::BTreeMap<String, String> {
        e.split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    };
    let (a, b) = (parse(old), parse(new));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            if crate::views::is_secret_extra_key(k) {
                format!("{k} changed")
            } else {
                let v = |m: &std::collections::BTreeMap<String, String>| {
                    m.get(k).cloned().unwrap_or_else(|| "-".into())
                };
                format!("{k} {} → {}", v(&a), v(&b))
            }
        })
        .collect()
}

/// What `settings` change in a server's record `ss`, one `key old → new` each: extra_info
/// setting by setting ([`settings_changes`]) first, secrets (`passwd`, `admin_passwd`, secret-looking
/// extra_info keys) only as `changed`. Empty when every given setting has its value already.
pub(crate) fn settings_detail(ss: &Value, settings: &ServerSettings) -> Vec<String> {
    let shown = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let mut changes = Vec::new();
    // extra_info first: the array's own settings (its portal, say) are the news.
    let mut given = settings.entries();
    given.sort_by_key(|(k, _)| *k != "extra_info");
    for (k, new) in given {
        let old = ss.get(k);
        if old == Some(&new) {
            continue;
        }
        match k {
            "extra_info" => changes.extend(settings_changes(
                old.and_then(Value::as_str).unwrap_or(""),
                new.as_str().unwrap_or(""),
            )),
            "passwd" | "admin_passwd" => changes.push(format!("{k} changed")),
            _ => changes.push(format!("{k} {} → {}", shown(old), shown(Some(&new)))),
        }
    }
    let stored_passwd = ss.get("passwd").and_then(Value::as_str);
    if drops_chap_secret(settings) && stored_passwd.is_some_and(|p| !p.is_empty()) {
        changes.push("passwd removed".into());
    }
    changes
}

/// Whether `settings` turn CHAP off without giving a secret: the stored CHAP secret is then
/// dropped (the user name stays), since a secret kept but no longer needed can only leak.
pub(crate) fn drops_chap_secret(settings: &ServerSettings) -> bool {
    settings.chap == Some(false) && settings.passwd.is_none()
}

/// The value of `key` in an extra_info of `key=value;...` settings.
fn extra_info_setting<'a>(extra_info: &'a str, key: &str) -> Option<&'a str> {
    extra_info
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

pub(crate) fn q(value: &str) -> String {
    spindle_api::names::shown(value)
}

fn map_call_error(e: CallError) -> ServiceError {
    match e {
        CallError::Rejected(x) | CallError::Raised(x) => ServiceError::Refused(x),
        CallError::Contract(c) => ServiceError::Contract(c.to_string()),
        CallError::Failed(x) => ServiceError::PluginFailed(x),
    }
}

impl Inner {
    /// Whether a server of plug-in `plugin` with ss_record `ss` is the embedded array (same
    /// plug-in, same value of [`EmbeddedServer::identity_setting`]).
    pub(crate) fn is_embedded(&self, plugin: &str, ss: &Value) -> bool {
        let Some(emb) = &self.config.embedded else {
            return false;
        };
        let setting = |ss: &Value| {
            ss.get("extra_info")
                .and_then(Value::as_str)
                .and_then(|e| extra_info_setting(e, &emb.identity_setting))
                .map(str::to_string)
        };
        plugin.starts_with(&emb.plugin) && setting(ss).is_some() && setting(ss) == setting(&emb.ss_record)
    }

    /// What the audit entry of `action` says besides its name and target, read before the
    /// change: for `server set`, what it changes (secrets only as `changed`); for a resize,
    /// the stored size and the one asked for, and whether a shrink was allowed (the size a
    /// shrink cut the LUN from is what an administrator needs to know afterwards). `None`
    /// for the rest: their target and outcome say it all.
    async fn audit_detail(&self, action: &Action) -> Option<String> {
        match action {
            Action::UpdateServer(u) => {
                let srv = self.server(&u.server).await.ok()?;
                let changes = settings_detail(&srv.ss, &u.settings);
                Some(if changes.is_empty() {
                    "no change".into()
                } else {
                    changes.join(", ")
                })
            }
            Action::ResizeLun {
                server,
                lun,
                size,
                allow_shrink,
            } => {
                let stored = match self.load_one(server, lun, "lun", Want::Lun).await {
                    Ok((_, e)) => e.record.get("size").and_then(Value::as_i64),
                    Err(_) => None,
                };
                let from = stored.map_or_else(|| "unknown".to_string(), |n| n.to_string());
                let allowed = if *allow_shrink { ", allow_shrink" } else { "" };
                Some(format!("size {from} -> {size} bytes{allowed}"))
            }
            _ => None,
        }
    }

    pub(crate) fn track(&self, h: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(h);
    }

    pub(crate) fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The mutation lock of storage server `name`.
    pub(crate) async fn lock(&self, name: &str) -> OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(locks.entry(name.to_string()).or_default())
        };
        m.lock_owned().await
    }

    /// The stored server `name`, or NotFound.
    pub(crate) async fn server(&self, name: &str) -> Result<ServerRow, ServiceError> {
        let n = name.to_string();
        self.store
            .read(move |c| store::server(c, &n))
            .await?
            .ok_or_else(|| ServiceError::not_found("server", format!("no storage server named {}", q(name))))
    }

    /// The plug-in of a stored server: its class@version, else the installed version of its
    /// class.
    pub(crate) fn plugin(&self, srv: &ServerRow) -> Result<&PluginEntry, ServiceError> {
        let m = &self.config.manager;
        m.resolve(&srv.plugin)
            .or_else(|e| {
                let class = srv.plugin.split('@').next().unwrap_or(&srv.plugin);
                m.resolve(class).map_err(|_| e)
            })
            .map_err(|e| {
                ServiceError::PluginFailed(PluginException::operation_failed(format!(
                    "storage server {} uses the plug-in {}, which is not usable: {e}",
                    q(&srv.name),
                    srv.plugin
                )))
            })
    }

    /// One plug-in call through the manager, counted and timed. Mutating methods are called
    /// with `detach_async`: an asynchronous operation's first record comes back as is.
    pub(crate) async fn call(
        &self,
        entry: &PluginEntry,
        method: Method,
        args: Map<String, Value>,
        call_id: &str,
    ) -> Result<Value, ServiceError> {
        let started = Instant::now();
        let r = self
            .config
            .manager
            .call(
                entry,
                method,
                args,
                CallOptions {
                    call_id: Some(call_id.to_string()),
                    detach_async: method.spec().mutates,
                    ..Default::default()
                },
            )
            .await;
        let took = started.elapsed();
        let outcome = match &r {
            Ok(_) => "ok",
            Err(CallError::Raised(_)) => "raised",
            Err(CallError::Rejected(_)) => "rejected",
            Err(CallError::Contract(_)) => "contract",
            Err(CallError::Failed(_)) => "failed",
        };
        let plugin = entry.id.to_string();
        self.metrics.plugin_call(&plugin, method.name(), outcome, took);
        tracing::debug!(
            plugin = %plugin,
            method = method.name(),
            outcome,
            elapsed_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "plug-in call"
        );
        r.map(|o| o.value).map_err(map_call_error)
    }

    /// Like [`Inner::call`], but NoSuchOperationEx (the plug-in cannot tell) is `None`.
    pub(crate) async fn call_optional(
        &self,
        entry: &PluginEntry,
        method: Method,
        args: Map<String, Value>,
        call_id: &str,
    ) -> Result<Option<Value>, ServiceError> {
        match self.call(entry, method, args, call_id).await {
            Ok(v) => Ok(Some(v)),
            Err(ServiceError::Refused(e)) if e.kind == spindle_api::ExceptionKind::NoSuchOperationEx => {
                tracing::debug!(method = method.name(), "the plug-in cannot tell: {e}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
