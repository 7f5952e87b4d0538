//! The records, in SQLite: `<data_dir>/spindle.db` (mode 0600, in a 0700 directory), WAL,
//! `synchronous=NORMAL`, `secure_delete`, a busy timeout, one writer connection and a few
//! readers (the log is checkpointed and truncated after a write that replaces secrets). The schema is
//! an ordered list of migrations; `PRAGMA user_version` says how many have been applied.
//!
//! Every call runs on tokio's blocking pool, so no async worker ever waits on SQLite, and no
//! lock is held across a plug-in call: reads take one of the reader connections, writes the
//! single writer connection, each only for the statement(s) at hand.

use crate::error::ServiceError;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, Transaction};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The database file inside the data directory.
pub const DB_FILE: &str = "spindle.db";

/// How long a connection waits for another's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reader connections (reads never wait for the writer in WAL mode).
pub const READERS: usize = 4;

/// The schema, one migration per version: applying `MIGRATIONS[i]` takes a database from
/// version `i` to `i + 1`. Never edit a released entry; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: storage servers, their elements, jobs and the audit log.
    "CREATE TABLE servers (
         name         TEXT PRIMARY KEY NOT NULL,
         uuid         TEXT NOT NULL UNIQUE,
         plugin       TEXT NOT NULL,
         ss_record    TEXT NOT NULL,
         created_at   TEXT NOT NULL,
         refreshed_at TEXT,
         last_error   TEXT
     );
     CREATE TABLE elements (
         server  TEXT NOT NULL REFERENCES servers (name) ON DELETE CASCADE,
         uuid    TEXT NOT NULL,
         name    TEXT NOT NULL,
         kind    TEXT NOT NULL CHECK (kind IN ('lun', 'clone', 'snapshot')),
         parent  TEXT,
         record  TEXT NOT NULL,
         PRIMARY KEY (server, uuid)
     );
     CREATE INDEX elements_by_name ON elements (server, name);
     CREATE TABLE jobs (
         id          TEXT PRIMARY KEY NOT NULL,
         server      TEXT NOT NULL,
         method      TEXT NOT NULL,
         target      TEXT NOT NULL,
         state       TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
         percent     INTEGER,
         created_at  TEXT NOT NULL,
         updated_at  TEXT NOT NULL,
         finished_at TEXT,
         call_id     TEXT NOT NULL,
         record      TEXT,
         error       TEXT,
         result      TEXT
     );
     CREATE TABLE audit (
         id          INTEGER PRIMARY KEY AUTOINCREMENT,
         at          TEXT NOT NULL,
         who         TEXT NOT NULL,
         remote      TEXT NOT NULL,
         call_id     TEXT NOT NULL,
         action      TEXT NOT NULL,
         server      TEXT,
         target      TEXT,
         outcome     TEXT NOT NULL,
         exception   TEXT,
         duration_ms INTEGER NOT NULL
     );",
    // 2: every parent of a snapshot (a multi-LUN snapshot has several), what a job needs to
    // finish (the element it works on), and indexes for the newest-first listings.
    "ALTER TABLE elements ADD COLUMN parent_uuids TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE jobs ADD COLUMN target_uuid TEXT;
     ALTER TABLE jobs ADD COLUMN context TEXT NOT NULL DEFAULT '{}';
     CREATE INDEX jobs_by_state ON jobs (state, created_at);
     CREATE INDEX jobs_by_created ON jobs (created_at);",
    // 3: the names of every parent (a multi-LUN snapshot's LUNs), in `parent_uuids` order.
    "ALTER TABLE elements ADD COLUMN parent_names TEXT NOT NULL DEFAULT '[]';",
    // 4: what an audited request changed (`server set`: `portal A → B`, secrets as `changed`).
    "ALTER TABLE audit ADD COLUMN detail TEXT;",
];

/// The schema version this spindle writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings `conn` to [`SCHEMA_VERSION`], one transaction per migration. Returns the version it
/// found. Refuses a database written by a newer spindle.
pub fn migrate(conn: &mut Connection) -> Result<u32, String> {
    let found: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))?;
    if found > SCHEMA_VERSION {
        return Err(format!(
            "the database has schema version {found}, but this spindle knows versions up to \
             {SCHEMA_VERSION}: it was written by a newer spindle; run that one, or point this one \
             at another data directory"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let to = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let tx = conn
            .transaction()
            .map_err(|e| format!("cannot start migration to version {to}: {e}"))?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", to))
            .and_then(|()| tx.commit())
            .map_err(|e| format!("migration to schema version {to} failed: {e}"))?;
        tracing::info!(from = i, to, "database schema migrated");
    }
    Ok(found)
}

fn db_err(e: rusqlite::Error) -> ServiceError {
    ServiceError::internal(format!("database: {e}"))
}

/// The database.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection, reader: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The ss_records hold secrets (passwd, admin_passwd): what a write frees is zeroed, so a
    // replaced or removed secret does not stay readable in the file's free space.
    conn.pragma_update(None, "secure_delete", true)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if reader {
        conn.pragma_update(None, "query_only", true)?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating, migrating) `<data_dir>/spindle.db`. The directory is created with mode
    /// 0700 and the file with 0600 (an existing file is set to 0600).
    pub fn open(data_dir: &Path) -> Result<Store, ServiceError> {
        if !data_dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(|e| {
                    ServiceError::internal(format!(
                        "cannot create the data directory {}: {e}",
                        data_dir.display()
                    ))
                })?;
        }
        let path = data_dir.join(DB_FILE);
        let io = |what: &str, e: std::io::Error| {
            ServiceError::internal(format!("cannot {what} the database {}: {e}", path.display()))
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io("create", e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("restrict the mode of", e))?;
        let open_err = |e: rusqlite::Error| {
            ServiceError::internal(format!("cannot open the database {}: {e}", path.display()))
        };
        let mut writer = Connection::open(&path).map_err(open_err)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(ServiceError::internal(format!(
                "the database {} cannot use write-ahead logging (journal_mode is {mode})",
                path.display()
            )));
        }
        configure(&writer, false).map_err(open_err)?;
        migrate(&mut writer)
            .map_err(|e| ServiceError::internal(format!("database {}: {e}", path.display())))?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let c = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(open_err)?;
            configure(&c, true).map_err(open_err)?;
            readers.push(Mutex::new(c));
        }
        Ok(Store {
            path,
            writer: Mutex::new(writer),
            readers,
            next: AtomicUsize::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a reader connection, on the blocking pool.
    pub(crate) async fn read<R, F>(self: &Arc<Self>, f: F) -> Result<R, ServiceError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.read_now(f))
            .await
            .map_err(|e| ServiceError::internal(format!("database task: {e}")))?
    }

    /// Runs `f` on a reader connection, here (blocking).
    pub(crate) fn read_now<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, ServiceError> {
        // Take a free reader if there is one; otherwise queue on the next in turn.
        let guard = self
            .readers
            .iter()
            .find_map(|m| m.try_lock().ok())
            .unwrap_or_else(|| {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
                self.readers[i].lock().unwrap_or_else(|p| p.into_inner())
            });
        f(&guard).map_err(db_err)
    }

    /// Runs `f` in one transaction of the writer connection, on the blocking pool.
    pub(crate) async fn write<R, F>(self: &Arc<Self>, f: F) -> Result<R, ServiceError>
    where
        R: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<R> + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut conn = me.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction().map_err(db_err)?;
            let r = f(&tx).map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(r)
        })
        .await
        .map_err(|e| ServiceError::internal(format!("database task: {e}")))?
    }

    /// Copies the write-ahead log into the database and truncates it to nothing, so that the
    /// older versions of rows it holds (a secret just replaced or removed) are gone from the
    /// disk's files, not only from the database. Waits for readers up to [`BUSY_TIMEOUT`].
    pub(crate) async fn checkpoint_truncate(self: &Arc<Self>) -> Result<(), ServiceError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = me.writer.lock().unwrap_or_else(|p| p.into_inner());
            // (busy, frames in the log, frames copied); busy: a reader kept it from finishing.
            let (busy, logged, copied): (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(db_err)?;
            if busy != 0 {
                return Err(ServiceError::internal(format!(
                    "database: the write-ahead log could not be truncated ({copied} of {logged} frames copied; a reader held it)"
                )));
            }
            Ok(())
        })
        .await
        .map_err(|e| ServiceError::internal(format!("database task: {e}")))?
    }
}

// ---------------------------------------------------------------------------------------------
// Rows

/// What an element is, from its se_type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// LUNType (and GhostLUNType).
    Lun,
    /// SnapCloneType.
    Clone,
    /// SnapType.
    Snapshot,
}

impl Kind {
    /// `lun`, `clone`, `snapshot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lun => "lun",
            Kind::Clone => "clone",
            Kind::Snapshot => "snapshot",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "clone" => Kind::Clone,
            "snapshot" => Kind::Snapshot,
            _ => Kind::Lun,
        }
    }

    /// The kind of an se_record (`LUNType` → lun, `SnapCloneType` → clone, `SnapType` →
    /// snapshot; anything else counts as a LUN).
    pub fn of(record: &Value) -> Kind {
        match record.get("se_type").and_then(Value::as_str) {
            Some("SnapCloneType") => Kind::Clone,
            Some("SnapType") => Kind::Snapshot,
            _ => Kind::Lun,
        }
    }
}

/// A registered storage server.
#[derive(Clone)]
pub(crate) struct ServerRow {
    pub name: String,
    pub uuid: String,
    pub plugin: String,
    /// The whole ss_record, secrets included: never logged, never returned.
    pub ss: Value,
    pub created_at: String,
    pub refreshed_at: Option<String>,
    pub last_error: Option<String>,
}

impl fmt::Debug for ServerRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerRow")
            .field("name", &self.name)
            .field("uuid", &self.uuid)
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

/// One storage element as spindle last saw it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ElementRow {
    pub server: String,
    pub uuid: String,
    pub name: String,
    pub kind: Kind,
    /// The parent's name (the first, for a snapshot of several LUNs), when known.
    pub parent: Option<String>,
    /// The uuids of every parent, when known.
    pub parent_uuids: Vec<String>,
    /// The names of every parent, in `parent_uuids` order (empty in rows stored before
    /// schema 3, which knew only `parent`).
    pub parent_names: Vec<String>,
    /// The se_record exactly as the plug-in last returned it (never with async fields).
    pub record: Value,
}

impl ElementRow {
    /// A row for `record` of `server`; the key is the uuid (or, lacking one, page83_id, then
    /// the name).
    pub fn new(server: &str, record: Value, parents: Vec<(String, String)>) -> ElementRow {
        let text = |k: &str| {
            record
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let name = text("name").unwrap_or_default();
        let uuid = text("uuid")
            .or_else(|| text("page83_id"))
            .unwrap_or_else(|| name.clone());
        let kind = Kind::of(&record);
        ElementRow {
            server: server.to_string(),
            uuid,
            name,
            kind,
            parent: parents.first().map(|(_, n)| n.clone()),
            parent_names: parents.iter().map(|(_, n)| n.clone()).collect(),
            parent_uuids: parents.into_iter().map(|(u, _)| u).collect(),
            record,
        }
    }
}

/// A job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobRow {
    pub id: String,
    pub server: String,
    pub method: String,
    pub target: String,
    pub target_uuid: Option<String>,
    pub state: String,
    pub percent: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub call_id: String,
    /// The plug-in's last record, async handle included (running jobs only; never returned).
    pub record: Option<Value>,
    /// What finishing needs: the element worked on, the new element's parents.
    pub context: Value,
    pub error: Option<Value>,
    pub result: Option<Value>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuditRow {
    pub at: String,
    pub who: String,
    pub remote: String,
    pub call_id: String,
    pub action: String,
    pub server: Option<String>,
    pub target: Option<String>,
    pub outcome: String,
    pub exception: Option<String>,
    pub duration_ms: i64,
    /// What the request changed, when its target and outcome do not say it (never a secret).
    pub detail: Option<String>,
}

fn json_col(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

fn to_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

// ---------------------------------------------------------------------------------------------
// Queries (each runs on a connection the caller got from `Store::read` / `Store::write`)

const SERVER_COLS: &str = "name, uuid, plugin, ss_record, created_at, refreshed_at, last_error";

fn server_row(r: &Row<'_>) -> rusqlite::Result<ServerRow> {
    let ss: String = r.get(3)?;
    Ok(ServerRow {
        name: r.get(0)?,
        uuid: r.get(1)?,
        plugin: r.get(2)?,
        ss: serde_json::from_str(&ss).unwrap_or(Value::Null),
        created_at: r.get(4)?,
        refreshed_at: r.get(5)?,
        last_error: r.get(6)?,
    })
}

pub(crate) fn servers(c: &Connection) -> rusqlite::Result<Vec<ServerRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {SERVER_COLS} FROM servers ORDER BY name"))?;
    let rows = st.query_map([], server_row)?;
    rows.collect()
}

pub(crate) fn server(c: &Connection, name: &str) -> rusqlite::Result<Option<ServerRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {SERVER_COLS} FROM servers WHERE name = ?1"))?;
    st.query_row([name], server_row).optional()
}

/// Elements per kind per server: `[luns, clones, snapshots]`.
pub(crate) fn counts(c: &Connection, only: Option<&str>) -> rusqlite::Result<HashMap<String, [i64; 3]>> {
    let mut out: HashMap<String, [i64; 3]> = HashMap::new();
    let mut st = c.prepare_cached(
        "SELECT server, kind, COUNT(*) FROM elements WHERE ?1 IS NULL OR server = ?1 GROUP BY server, kind",
    )?;
    let mut rows = st.query([only])?;
    while let Some(r) = rows.next()? {
        let server: String = r.get(0)?;
        let kind: String = r.get(1)?;
        let n: i64 = r.get(2)?;
        let slot = match Kind::parse(&kind) {
            Kind::Lun => 0,
            Kind::Clone => 1,
            Kind::Snapshot => 2,
        };
        out.entry(server).or_default()[slot] = n;
    }
    Ok(out)
}

pub(crate) fn insert_server(tx: &Transaction<'_>, s: &ServerRow) -> rusqlite::Result<()> {
    tx.execute(
        &format!("INSERT INTO servers ({SERVER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            s.name,
            s.uuid,
            s.plugin,
            to_text(&s.ss),
            s.created_at,
            s.refreshed_at,
            s.last_error
        ],
    )?;
    Ok(())
}

pub(crate) fn update_ss(tx: &Transaction<'_>, name: &str, ss: &Value) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE servers SET ss_record = ?2 WHERE name = ?1",
        params![name, to_text(ss)],
    )?;
    Ok(n > 0)
}

/// After a successful re-read: the new ss_record and every element, replaced at once.
pub(crate) fn replace_all(
    tx: &Transaction<'_>,
    name: &str,
    ss: &Value,
    elements: &[ElementRow],
    at: &str,
) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE servers SET ss_record = ?2, refreshed_at = ?3, last_error = NULL WHERE name = ?1",
        params![name, to_text(ss), at],
    )?;
    if n == 0 {
        return Ok(false);
    }
    tx.execute("DELETE FROM elements WHERE server = ?1", [name])?;
    for e in elements {
        upsert_element(tx, e)?;
    }
    Ok(true)
}

/// Replaces the server record of `name` alone (its totals re-read; the elements stay).
pub(crate) fn set_ss_record(tx: &Transaction<'_>, name: &str, ss: &Value) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE servers SET ss_record = ?2 WHERE name = ?1",
        params![name, to_text(ss)],
    )?;
    Ok(())
}

pub(crate) fn set_last_error(tx: &Transaction<'_>, name: &str, error: Option<&str>) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE servers SET last_error = ?2 WHERE name = ?1",
        params![name, error],
    )?;
    Ok(())
}

pub(crate) fn delete_server(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    tx.execute("DELETE FROM elements WHERE server = ?1", [name])?;
    Ok(tx.execute("DELETE FROM servers WHERE name = ?1", [name])? > 0)
}

const ELEMENT_COLS: &str = "server, uuid, name, kind, parent, parent_uuids, record, parent_names";

fn element_row(r: &Row<'_>) -> rusqlite::Result<ElementRow> {
    let kind: String = r.get(3)?;
    let parents: String = r.get(5)?;
    let record: String = r.get(6)?;
    let names: String = r.get(7)?;
    Ok(ElementRow {
        server: r.get(0)?,
        uuid: r.get(1)?,
        name: r.get(2)?,
        kind: Kind::parse(&kind),
        parent: r.get(4)?,
        parent_uuids: serde_json::from_str(&parents).unwrap_or_default(),
        parent_names: serde_json::from_str(&names).unwrap_or_default(),
        record: serde_json::from_str(&record).unwrap_or(Value::Null),
    })
}

/// Every element of `server`, by name.
pub(crate) fn elements(c: &Connection, server: &str) -> rusqlite::Result<Vec<ElementRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {ELEMENT_COLS} FROM elements WHERE server = ?1 ORDER BY name, uuid"
    ))?;
    let rows = st.query_map([server], element_row)?;
    rows.collect()
}

/// Elements of `server` whose uuid or name is `key`.
pub(crate) fn elements_named(c: &Connection, server: &str, key: &str) -> rusqlite::Result<Vec<ElementRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {ELEMENT_COLS} FROM elements WHERE server = ?1 AND (uuid = ?2 OR name = ?2) ORDER BY uuid"
    ))?;
    let rows = st.query_map([server, key], element_row)?;
    rows.collect()
}

pub(crate) fn element(c: &Connection, server: &str, uuid: &str) -> rusqlite::Result<Option<ElementRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {ELEMENT_COLS} FROM elements WHERE server = ?1 AND uuid = ?2"
    ))?;
    st.query_row([server, uuid], element_row).optional()
}

pub(crate) fn upsert_element(tx: &Transaction<'_>, e: &ElementRow) -> rusqlite::Result<()> {
    let parents = serde_json::to_string(&e.parent_uuids).unwrap_or_else(|_| "[]".into());
    let names = serde_json::to_string(&e.parent_names).unwrap_or_else(|_| "[]".into());
    tx.execute(
        &format!(
            "INSERT INTO elements ({ELEMENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (server, uuid) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                 parent = excluded.parent, parent_uuids = excluded.parent_uuids,
                 record = excluded.record, parent_names = excluded.parent_names"
        ),
        params![
            e.server,
            e.uuid,
            e.name,
            e.kind.as_str(),
            e.parent,
            parents,
            to_text(&e.record),
            names
        ],
    )?;
    Ok(())
}

pub(crate) fn delete_element(tx: &Transaction<'_>, server: &str, uuid: &str) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM elements WHERE server = ?1 AND uuid = ?2",
        [server, uuid],
    )?;
    Ok(())
}

const JOB_COLS: &str = "id, server, method, target, target_uuid, state, percent, created_at, updated_at, \
                        finished_at, call_id, record, context, error, result";

fn job_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    let context: String = r.get(12)?;
    Ok(JobRow {
        id: r.get(0)?,
        server: r.get(1)?,
        method: r.get(2)?,
        target: r.get(3)?,
        target_uuid: r.get(4)?,
        state: r.get(5)?,
        percent: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        finished_at: r.get(9)?,
        call_id: r.get(10)?,
        record: json_col(r.get(11)?),
        context: serde_json::from_str(&context).unwrap_or(Value::Null),
        error: json_col(r.get(13)?),
        result: json_col(r.get(14)?),
    })
}

pub(crate) fn insert_job(tx: &Transaction<'_>, j: &JobRow) -> rusqlite::Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO jobs ({JOB_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            j.id,
            j.server,
            j.method,
            j.target,
            j.target_uuid,
            j.state,
            j.percent,
            j.created_at,
            j.updated_at,
            j.finished_at,
            j.call_id,
            j.record.as_ref().map(to_text),
            to_text(&j.context),
            j.error.as_ref().map(to_text),
            j.result.as_ref().map(to_text),
        ],
    )?;
    Ok(())
}

pub(crate) fn job(c: &Connection, id: &str) -> rusqlite::Result<Option<JobRow>> {
    let mut st = c.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"))?;
    st.query_row([id], job_row).optional()
}

/// Jobs, newest first.
pub(crate) fn jobs(c: &Connection, running_only: bool) -> rusqlite::Result<Vec<JobRow>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {JOB_COLS} FROM jobs WHERE ?1 = 0 OR state = 'running' ORDER BY created_at DESC, rowid DESC"
    ))?;
    let rows = st.query_map([running_only], job_row)?;
    rows.collect()
}

/// Jobs per state: `[running, succeeded, failed]`.
pub(crate) fn job_counts(c: &Connection) -> rusqlite::Result<[i64; 3]> {
    let mut out = [0; 3];
    let mut st = c.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let state: String = r.get(0)?;
        let n: i64 = r.get(1)?;
        match state.as_str() {
            "running" => out[0] = n,
            "succeeded" => out[1] = n,
            _ => out[2] += n,
        }
    }
    Ok(out)
}

/// A running job's progress and its latest record (only while it still runs).
pub(crate) fn job_progress(
    tx: &Transaction<'_>,
    id: &str,
    percent: Option<i64>,
    record: &Value,
    at: &str,
) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE jobs SET percent = ?2, record = ?3, updated_at = ?4 WHERE id = ?1 AND state = 'running'",
        params![id, percent, to_text(record), at],
    )?;
    Ok(n > 0)
}

/// Ends a running job: the async record is dropped. Returns false if it was not running.
pub(crate) fn finish_job(
    tx: &Transaction<'_>,
    id: &str,
    state: &str,
    percent: Option<i64>,
    error: Option<&Value>,
    result: Option<&Value>,
    at: &str,
) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE jobs SET state = ?2, percent = ?3, error = ?4, result = ?5, updated_at = ?6,
             finished_at = ?6, record = NULL
         WHERE id = ?1 AND state = 'running'",
        params![id, state, percent, error.map(to_text), result.map(to_text), at],
    )?;
    Ok(n > 0)
}

/// Ends every running job of `server` as failed with `error`; returns how many.
pub(crate) fn fail_jobs_of(
    tx: &Transaction<'_>,
    server: &str,
    error: &Value,
    at: &str,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE jobs SET state = 'failed', error = json_set(?2, '$.call_id', call_id), updated_at = ?3,
             finished_at = ?3, record = NULL
         WHERE server = ?1 AND state = 'running'",
        params![server, to_text(error), at],
    )
}

pub(crate) fn insert_audit(tx: &Transaction<'_>, a: &AuditRow) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at, who, remote, call_id, action, server, target, outcome, exception, duration_ms, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            a.at,
            a.who,
            a.remote,
            a.call_id,
            a.action,
            a.server,
            a.target,
            a.outcome,
            a.exception,
            a.duration_ms,
            a.detail
        ],
    )?;
    Ok(())
}

/// The newest `limit` audit entries, newest first, as views.
pub(crate) fn audit(c: &Connection, limit: u32) -> rusqlite::Result<Vec<Value>> {
    let mut st = c.prepare_cached(
        "SELECT id, at, who, remote, call_id, action, server, target, outcome, exception, duration_ms, detail
         FROM audit ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = st.query_map([limit], |r| {
        Ok(serde_json::json!({
            "id": r.get::<_, i64>(0)?,
            "at": r.get::<_, String>(1)?,
            "who": r.get::<_, String>(2)?,
            "remote": r.get::<_, String>(3)?,
            "call_id": r.get::<_, String>(4)?,
            "action": r.get::<_, String>(5)?,
            "server": r.get::<_, Option<String>>(6)?,
            "target": r.get::<_, Option<String>>(7)?,
            "outcome": r.get::<_, String>(8)?,
            "exception": r.get::<_, Option<String>>(9)?,
            "duration_ms": r.get::<_, i64>(10)?,
            "detail": r.get::<_, Option<String>>(11)?,
        }))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_in_order_and_a_newer_schema_is_refused() {
        let mut c = Connection::open_in_memory().expect("open");
        assert_eq!(migrate(&mut c).expect("migrate"), 0);
        let v: u32 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION);
        assert_eq!(migrate(&mut c).expect("again"), SCHEMA_VERSION, "idempotent");
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        let e = migrate(&mut c).expect_err("newer refused");
        assert!(e.contains("newer spindle"), "{e}");
    }
}
