//! The array's durable state: one SQLite database (WAL, `synchronous=FULL`) in the state
//! directory.
//!
//! Tables: `schema_version`, `meta` (array identity, next serial), `pools`, `elements`,
//! `members` (the per-LUN images of each snapshot), `groups`, `entries`, `presentations`,
//! `chap`, `qos`, `intents` (the operations journal) and `splits` (clone-split progress).
//! [`MIGRATIONS`] brings any older database up to [`SCHEMA_VERSION`].

use crate::error::{DbContext, Error, Result};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 4;

/// Migrations: entry `i` takes the database from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE pools (
        name TEXT PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        fs TEXT,
        reflink INTEGER,
        subvolume INTEGER
     );
     CREATE TABLE elements (
        uuid TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('lun', 'snap', 'clone')),
        pool TEXT NOT NULL REFERENCES pools(name),
        size INTEGER NOT NULL,
        thin INTEGER NOT NULL,
        parent TEXT,
        parent_member TEXT,
        read_only INTEGER NOT NULL,
        state TEXT NOT NULL,
        qos TEXT NOT NULL,
        online INTEGER NOT NULL,
        serial INTEGER NOT NULL UNIQUE,
        backing_gen INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL
     );
     CREATE INDEX elements_parent ON elements(parent);
     CREATE TABLE members (
        snap TEXT NOT NULL REFERENCES elements(uuid) ON DELETE CASCADE,
        element TEXT NOT NULL REFERENCES elements(uuid),
        file TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        PRIMARY KEY (snap, element)
     );
     CREATE INDEX members_element ON members(element);
     CREATE TABLE groups (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        modes TEXT
     );
     CREATE TABLE entries (
        grp INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        entry TEXT NOT NULL,
        pos INTEGER NOT NULL,
        PRIMARY KEY (grp, entry)
     );
     CREATE TABLE presentations (
        element TEXT NOT NULL REFERENCES elements(uuid),
        grp INTEGER NOT NULL REFERENCES groups(id),
        lun INTEGER NOT NULL,
        PRIMARY KEY (element, grp),
        UNIQUE (grp, lun)
     );
     CREATE TABLE chap (id INTEGER PRIMARY KEY CHECK (id = 1), username TEXT NOT NULL);
     CREATE TABLE qos (
        value TEXT PRIMARY KEY,
        priority INTEGER NOT NULL,
        description TEXT NOT NULL,
        write_cache INTEGER NOT NULL
     );
     INSERT INTO qos VALUES
        ('writeback', 0, 'write cache on: writes are acknowledged from the page cache; initiators flush with SYNCHRONIZE CACHE', 1),
        ('writethrough', 1, 'write cache off: a write is acknowledged once it reached the backing file', 0);
     CREATE TABLE intents (
        op TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        plan TEXT NOT NULL,
        step TEXT NOT NULL CHECK (step IN ('started', 'prepared')),
        created INTEGER NOT NULL
     );
     CREATE TABLE splits (
        op TEXT PRIMARY KEY,
        element TEXT NOT NULL,
        total INTEGER NOT NULL,
        done INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        message TEXT,
        started INTEGER NOT NULL,
        finished INTEGER
     );",
    // 1 -> 2: intents may be `applied` (a plan that adds files, committed whole before its
    // files were flushed; see the engine's `execute_insert`); the export generation.
    "CREATE TABLE intents_v2 (
        op TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        plan TEXT NOT NULL,
        step TEXT NOT NULL CHECK (step IN ('started', 'prepared', 'applied')),
        created INTEGER NOT NULL
     );
     INSERT INTO intents_v2 (op, kind, plan, step, created)
        SELECT op, kind, plan, step, created FROM intents;
     DROP TABLE intents;
     ALTER TABLE intents_v2 RENAME TO intents;
     -- `export_gen` counts the commits that may change the export plan (every change of the
     -- tables it is made from, except new elements, which nothing presents yet), so a check
     -- of tgtd can tell that the plan is the one it last applied without computing it.
     INSERT OR IGNORE INTO meta (key, value) VALUES ('export_gen', '0');
     CREATE TRIGGER export_gen_presentations_insert AFTER INSERT ON presentations
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_presentations_update AFTER UPDATE ON presentations
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_presentations_delete AFTER DELETE ON presentations
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_groups_insert AFTER INSERT ON groups
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_groups_update AFTER UPDATE ON groups
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_groups_delete AFTER DELETE ON groups
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_entries_insert AFTER INSERT ON entries
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_entries_update AFTER UPDATE ON entries
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_entries_delete AFTER DELETE ON entries
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_chap_insert AFTER INSERT ON chap
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_chap_update AFTER UPDATE ON chap
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_chap_delete AFTER DELETE ON chap
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_qos_insert AFTER INSERT ON qos
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_qos_update AFTER UPDATE ON qos
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_qos_delete AFTER DELETE ON qos
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_pools_update AFTER UPDATE ON pools
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_pools_delete AFTER DELETE ON pools
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_elements_update AFTER UPDATE ON elements
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;
     CREATE TRIGGER export_gen_elements_delete AFTER DELETE ON elements
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;",
    // 2 -> 3: a group's iSCSI target keeps the name it was made with (the last part of its
    // IQN, the group's name then, in lower case), so that renaming the group does not cut
    // its hosts off; no two groups share one.
    "ALTER TABLE groups ADD COLUMN target TEXT;
     UPDATE groups SET target = lower(name);
     CREATE UNIQUE INDEX groups_by_target ON groups (target);",
    // 3 -> 4: only a pool's name and path are in the export plan. What a pool's first
    // snapshot or clone learns of its file system (fs, reflink, subvolume) changed the
    // export generation too, which sent the next request to ask tgtd for nothing.
    "DROP TRIGGER export_gen_pools_update;
     CREATE TRIGGER export_gen_pools_update AFTER UPDATE OF name, path ON pools
        BEGIN UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'export_gen'; END;",
];

/// WAL size (pages) at which a commit folds the WAL into the database. Small, because every
/// run rebuilds its WAL index by reading the WAL (the previous run kept it, see [`Db::open`]):
/// 128 pages (512 KiB) cost well under a millisecond to read, and a checkpoint then comes
/// about every ten file-creating operations.
pub const WAL_AUTOCHECKPOINT_PAGES: i64 = 128;

/// What an element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A LUN (including a clone once split).
    Lun,
    /// A snapshot (of one LUN, or of several at once); its images are its members.
    Snap,
    /// A writable reflink copy of a LUN or of a snapshot, not yet split.
    Clone,
}

impl Kind {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lun => "lun",
            Kind::Snap => "snap",
            Kind::Clone => "clone",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<Kind> {
        match s {
            "lun" => Ok(Kind::Lun),
            "snap" => Ok(Kind::Snap),
            "clone" => Ok(Kind::Clone),
            other => Err(rusqlite::Error::InvalidColumnType(
                0,
                format!("kind {other}"),
                rusqlite::types::Type::Text,
            )),
        }
    }
}

/// One row of `elements`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementRow {
    /// uuid; LUNs and clones live in `<pool>/<uuid>.img`.
    pub uuid: String,
    /// Name, unique on the array.
    pub name: String,
    /// LUN, snapshot or clone.
    pub kind: Kind,
    /// Pool name.
    pub pool: String,
    /// Bytes (a snapshot: the sum of its members).
    pub size: u64,
    /// Thin (sparse) or thick (allocated).
    pub thin: bool,
    /// A clone's source: an element or a snapshot uuid. `None` once split.
    pub parent: Option<String>,
    /// For a clone of a snapshot: which member (element uuid) it copies.
    pub parent_member: Option<String>,
    /// Snapshots are read-only.
    pub read_only: bool,
    /// SE_STATES value.
    pub state: String,
    /// QoS value.
    pub qos: String,
    /// Desired online state.
    pub online: bool,
    /// Page-83 serial, never reused.
    pub serial: u64,
    /// Incremented whenever the backing file is replaced (restore, split): an export must
    /// re-open it.
    pub backing_gen: u64,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

/// One row of `members`: one LUN's image inside a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    /// Snapshot uuid.
    pub snap: String,
    /// The LUN it is an image of.
    pub element: String,
    /// File uuid: the image is `<pool>/<file>.img`.
    pub file: String,
    /// The LUN's size at the snapshot.
    pub size: u64,
}

/// One row of `groups` with its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Initiator names, in the order added.
    pub entries: Vec<String>,
    /// Modes, as given.
    pub modes: Option<Vec<String>>,
    /// The last part of its target's IQN: its name, in lower case, when it was made (a
    /// rename keeps it).
    pub target: String,
}

/// One row of `splits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRow {
    /// Operation id (the async handle).
    pub op: String,
    /// The clone being split.
    pub element: String,
    /// Data bytes to copy.
    pub total: u64,
    /// Bytes copied.
    pub done: u64,
    /// running, done or failed.
    pub status: String,
    /// Why it failed.
    pub message: Option<String>,
}

/// One row of `intents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRow {
    /// Operation id.
    pub op: String,
    /// Operation kind (first part of its crash-step names).
    pub kind: String,
    /// The serialised plan.
    pub plan: String,
    /// `started` or `prepared`.
    pub step: String,
}

/// One row of `pools`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    /// Name.
    pub name: String,
    /// Directory.
    pub path: PathBuf,
    /// File-system name, once probed.
    pub fs: Option<String>,
    /// Whether FICLONE works there, once probed.
    pub reflink: Option<bool>,
    /// Whether the directory is a btrfs subvolume, once probed.
    pub subvolume: Option<bool>,
}

/// Prepared statements kept per connection: more than the engine has.
const STATEMENT_CACHE: usize = 128;

/// The array's database, in its state directory.
pub const DB_FILE: &str = "array.db";

/// The open database.
#[derive(Debug)]
pub struct Db {
    /// The connection.
    pub conn: Connection,
    /// Whether commits wait for the disk (`synchronous=FULL`), as last set.
    durable: std::cell::Cell<bool>,
}

/// Statements run through the connection's cache of prepared statements: a request runs a
/// few of the same few dozen statements, and preparing one costs more than running it.
pub trait Cached {
    /// `execute`, prepared once.
    fn run<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize>;
    /// `query_row`, prepared once.
    fn row<T, P, F>(&self, sql: &str, p: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn run<P: rusqlite::Params>(&self, sql: &str, p: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    fn row<T, P, F>(&self, sql: &str, p: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) const ELEMENT_COLS: &str =
    "uuid, name, kind, pool, size, thin, parent, parent_member, read_only, state, qos, online, serial, backing_gen, created";

pub(crate) fn element_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ElementRow> {
    Ok(ElementRow {
        uuid: r.get(0)?,
        name: r.get(1)?,
        kind: Kind::parse(&r.get::<_, String>(2)?)?,
        pool: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        thin: r.get(5)?,
        parent: r.get(6)?,
        parent_member: r.get(7)?,
        read_only: r.get(8)?,
        state: r.get(9)?,
        qos: r.get(10)?,
        online: r.get(11)?,
        serial: r.get::<_, i64>(12)? as u64,
        backing_gen: r.get::<_, i64>(13)? as u64,
        created: r.get(14)?,
    })
}

/// Inserts an element row.
pub fn insert_element(tx: &Transaction<'_>, e: &ElementRow) -> Result<()> {
    tx.run(
        &format!("INSERT INTO elements ({ELEMENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
        params![
            e.uuid,
            e.name,
            e.kind.as_str(),
            e.pool,
            e.size as i64,
            e.thin,
            e.parent,
            e.parent_member,
            e.read_only,
            e.state,
            e.qos,
            e.online,
            e.serial as i64,
            e.backing_gen as i64,
            e.created
        ],
    )
    .dbx("insert element")?;
    Ok(())
}

/// Inserts a member row.
pub fn insert_member(tx: &Transaction<'_>, m: &MemberRow) -> Result<()> {
    tx.run(
        "INSERT INTO members (snap, element, file, size) VALUES (?1, ?2, ?3, ?4)",
        params![m.snap, m.element, m.file, m.size as i64],
    )
    .dbx("insert snapshot member")?;
    Ok(())
}

impl Db {
    /// Opens (creating) `<state>/array.db`, sets WAL and FULL sync, and migrates it if its
    /// schema is older than this program's.
    ///
    /// Every request is a short process that opens the database once, so the connection is
    /// set up for that: the WAL is kept between runs (no checkpoint when the connection
    /// closes), which spares each run creating the WAL file (and fsyncing the directory for
    /// it), checkpointing it at exit (two more fsyncs) and deleting it. Commits are as durable
    /// as before (`synchronous=FULL` fsyncs the WAL at every commit); the WAL is folded into
    /// the database by SQLite's automatic checkpoint once it holds
    /// [`WAL_AUTOCHECKPOINT_PAGES`] pages, which also bounds what the next run reads to
    /// rebuild its WAL index.
    pub fn open(state_dir: &Path) -> Result<Db> {
        let path = state_dir.join(DB_FILE);
        let conn = Connection::open(&path).dbx("open")?;
        conn.busy_timeout(Duration::from_secs(60))
            .dbx("set busy timeout")?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .dbx("keep the WAL at close")?;
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .dbx("read journal mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL").dbx("set WAL")?;
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .dbx("set synchronous")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .dbx("set foreign keys")?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .dbx("set the checkpoint threshold")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut db = Db {
            conn,
            durable: std::cell::Cell::new(true),
        };
        if db.schema_version()? != SCHEMA_VERSION {
            db.migrate()?;
        }
        Ok(db)
    }

    /// The schema version found.
    pub fn schema_version(&self) -> Result<i64> {
        let exists: bool = self
            .conn
            .row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .dbx("read schema version")?;
        if !exists {
            return Ok(0);
        }
        self.conn
            .row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()
            .dbx("read schema version")
            .map(|v| v.unwrap_or(0))
    }

    /// Creates or upgrades the schema, under the write lock (re-reading the version there).
    fn migrate(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .dbx("begin migration")?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .dbx("create schema_version")?;
        let v: i64 = tx
            .row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()
            .dbx("read schema version")?
            .unwrap_or(0);
        if v > SCHEMA_VERSION {
            return Err(Error::InvalidArray(format!(
                "the state database has schema version {v}, newer than this program's {SCHEMA_VERSION}"
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(v as usize) {
            tx.execute_batch(m)
                .dbx(&format!("migrate to version {}", i + 1))?;
        }
        tx.run("DELETE FROM schema_version", [])
            .dbx("write schema version")?;
        tx.run(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [SCHEMA_VERSION],
        )
        .dbx("write schema version")?;
        tx.commit().dbx("commit migration")
    }

    /// Whether the next commits wait until they are on disk (`synchronous=FULL`, the default
    /// this connection is opened with) or only until the operating system has them
    /// (`synchronous=NORMAL`: the WAL is not fsynced at commit; such a commit is visible to
    /// every later run at once, survives the program being killed, and becomes durable with
    /// the next FULL commit, whose fsync covers the whole WAL).
    pub fn set_durable(&self, durable: bool) -> Result<()> {
        if self.durable.get() != durable {
            // Cached: `pragma_update` parses the statement anew each time, and a create
            // switches twice.
            let sql = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            self.conn
                .prepare_cached(sql)
                .and_then(|mut st| st.execute([]))
                .dbx("set synchronous")?;
            self.durable.set(durable);
        }
        Ok(())
    }

    /// Runs `f`, whose commits wait for the disk only when `durable` (see
    /// [`Db::set_durable`]); the connection is durable again afterwards.
    pub fn committing<T>(&mut self, durable: bool, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        self.set_durable(durable)?;
        let done = f(self);
        self.set_durable(true)?;
        done
    }

    /// The user name of the array's CHAP account, if one is set.
    pub fn chap_user(&self) -> Result<Option<String>> {
        self.conn
            .row("SELECT username FROM chap WHERE id = 1", [], |r| r.get(0))
            .optional()
            .dbx("read chap")
    }

    /// Starts an immediate (write-locking) transaction.
    pub fn tx(&mut self) -> Result<Transaction<'_>> {
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .dbx("begin")
    }

    /// A `meta` value.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .dbx("read meta")
    }

    /// Every pool row.
    pub fn pools(&self) -> Result<Vec<PoolRow>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name, path, fs, reflink, subvolume FROM pools ORDER BY rowid")
            .dbx("list pools")?;
        let rows = st
            .query_map([], |r| {
                Ok(PoolRow {
                    name: r.get(0)?,
                    path: PathBuf::from(r.get::<_, String>(1)?),
                    fs: r.get(2)?,
                    reflink: r.get(3)?,
                    subvolume: r.get(4)?,
                })
            })
            .dbx("list pools")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .dbx("list pools")?;
        Ok(rows)
    }

    /// An element by uuid.
    pub fn element(&self, uuid: &str) -> Result<Option<ElementRow>> {
        self.conn
            .row(
                &format!("SELECT {ELEMENT_COLS} FROM elements WHERE uuid = ?1"),
                [uuid],
                element_from_row,
            )
            .optional()
            .dbx("read element")
    }

    /// An element by name.
    pub fn element_by_name(&self, name: &str) -> Result<Option<ElementRow>> {
        self.conn
            .row(
                &format!("SELECT {ELEMENT_COLS} FROM elements WHERE name = ?1"),
                [name],
                element_from_row,
            )
            .optional()
            .dbx("read element")
    }

    /// Elements matching a WHERE clause (with parameters).
    pub fn elements_where(&self, clause: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<ElementRow>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ELEMENT_COLS} FROM elements WHERE {clause} ORDER BY serial"
            ))
            .dbx("list elements")?;
        let rows = st
            .query_map(p, element_from_row)
            .dbx("list elements")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .dbx("list elements")?;
        Ok(rows)
    }

    /// The members of a snapshot.
    pub fn members(&self, snap: &str) -> Result<Vec<MemberRow>> {
        self.members_where("snap = ?1", &[&snap])
    }

    /// Member rows matching a WHERE clause.
    pub fn members_where(&self, clause: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Vec<MemberRow>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT snap, element, file, size FROM members WHERE {clause} ORDER BY rowid"
            ))
            .dbx("list snapshot members")?;
        let rows = st
            .query_map(p, |r| {
                Ok(MemberRow {
                    snap: r.get(0)?,
                    element: r.get(1)?,
                    file: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                })
            })
            .dbx("list snapshot members")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .dbx("list snapshot members")?;
        Ok(rows)
    }

    /// Every group with its entries, ordered by name.
    pub fn groups(&self) -> Result<Vec<GroupRow>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, name, modes, COALESCE(target, lower(name)) FROM groups ORDER BY name")
            .dbx("list groups")?;
        let mut groups = st
            .query_map([], |r| {
                let modes: Option<String> = r.get(2)?;
                Ok(GroupRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    entries: Vec::new(),
                    modes: modes.and_then(|m| serde_json::from_str(&m).ok()),
                    target: r.get(3)?,
                })
            })
            .dbx("list groups")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .dbx("list groups")?;
        let mut st = self
            .conn
            .prepare_cached("SELECT grp, entry FROM entries ORDER BY grp, pos")
            .dbx("list group entries")?;
        let entries = st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .dbx("list group entries")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .dbx("list group entries")?;
        for (grp, entry) in entries {
            if let Some(g) = groups.iter_mut().find(|g| g.id == grp) {
                g.entries.push(entry);
            }
        }
        Ok(groups)
    }

    /// A group by name (case-insensitive).
    pub fn group(&self, name: &str) -> Result<Option<GroupRow>> {
        Ok(self
            .groups()?
            .into_iter()
            .find(|g| g.name.eq_ignore_ascii_case(name)))
    }

    /// Presentations: (element uuid, group name, LUN number).
    pub fn presentations(&self) -> Result<Vec<(String, String, u32)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT p.element, g.name, p.lun FROM presentations p JOIN groups g ON g.id = p.grp ORDER BY g.name, p.lun",
            )
            .dbx("list presentations")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u32)))
            .dbx("list presentations")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .dbx("list presentations")?;
        Ok(rows)
    }

    /// The export generation: it changes with every commit that may change the export plan
    /// (see the migration to version 2).
    pub fn export_gen(&self) -> Result<i64> {
        self.conn
            .row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'export_gen'",
                [],
                |r| r.get(0),
            )
            .dbx("read export generation")
    }

    /// Whether an intent is pending that is not `applied` (one that did not finish).
    pub fn has_unfinished_intent(&self) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM intents WHERE step != 'applied')")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .dbx("look for unfinished intents")
    }

    /// Every pending intent.
    pub fn intents(&self) -> Result<Vec<IntentRow>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT op, kind, plan, step FROM intents ORDER BY created, op")
            .dbx("list intents")?;
        let rows = st
            .query_map([], |r| {
                Ok(IntentRow {
                    op: r.get(0)?,
                    kind: r.get(1)?,
                    plan: r.get(2)?,
                    step: r.get(3)?,
                })
            })
            .dbx("list intents")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .dbx("list intents")?;
        Ok(rows)
    }

    /// A split row.
    pub fn split(&self, op: &str) -> Result<Option<SplitRow>> {
        self.conn
            .row(
                "SELECT op, element, total, done, status, message FROM splits WHERE op = ?1",
                [op],
                |r| {
                    Ok(SplitRow {
                        op: r.get(0)?,
                        element: r.get(1)?,
                        total: r.get::<_, i64>(2)? as u64,
                        done: r.get::<_, i64>(3)? as u64,
                        status: r.get(4)?,
                        message: r.get(5)?,
                    })
                },
            )
            .optional()
            .dbx("read split")
    }

    /// Every table's rows as JSON, for comparisons in tests and for support dumps. The CHAP
    /// secret is not in the database, so it is not in the dump.
    pub fn dump(&self) -> Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        for table in [
            "meta",
            "pools",
            "elements",
            "members",
            "groups",
            "entries",
            "presentations",
            "chap",
            "qos",
            "intents",
            "splits",
        ] {
            let mut st = self
                .conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
                .or_else(|_| self.conn.prepare(&format!("SELECT * FROM {table}")))
                .dbx("dump")?;
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    let mut row = Vec::with_capacity(n);
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        row.push(match v {
                            rusqlite::types::Value::Null => serde_json::Value::Null,
                            rusqlite::types::Value::Integer(i) => i.into(),
                            rusqlite::types::Value::Real(f) => f.into(),
                            rusqlite::types::Value::Text(t) => t.into(),
                            rusqlite::types::Value::Blob(b) => format!("{b:?}").into(),
                        });
                    }
                    Ok(serde_json::Value::Array(row))
                })
                .dbx("dump")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .dbx("dump")?;
            out.insert(table.to_string(), serde_json::Value::Array(rows));
        }
        Ok(serde_json::Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames in the WAL (and folds them into the database).
    fn wal_frames(db: &Db) -> i64 {
        db.conn
            .row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .expect("checkpoint")
    }

    #[test]
    fn a_run_writes_nothing_to_open_and_keeps_the_wal() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Db::open(dir.path()).expect("create");
        assert_eq!(db.schema_version().expect("version"), SCHEMA_VERSION);
        db.conn
            .run("INSERT INTO meta (key, value) VALUES ('k', 'v')", [])
            .expect("write");
        drop(db);
        // Not checkpointed and deleted at close: the next run finds the WAL.
        let wal = dir.path().join("array.db-wal");
        assert!(wal.metadata().expect("wal kept").len() > 0);
        let db = Db::open(dir.path()).expect("reopen");
        assert_eq!(db.meta("k").expect("read"), Some("v".into()));
        let before = wal_frames(&db);
        drop(db);
        // Opening a current database writes nothing (no migration, no schema_version rewrite).
        let db = Db::open(dir.path()).expect("reopen");
        assert_eq!(wal_frames(&db), before);
        let mode: String = db
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_version_1_journal_keeps_its_intents_and_takes_applied_ones() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let conn = rusqlite::Connection::open(dir.path().join("array.db")).expect("create");
            conn.execute_batch(MIGRATIONS[0]).expect("schema 1");
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);
                 INSERT INTO intents VALUES ('op1', 'remove', '{}', 'prepared', 1);",
            )
            .expect("an intent of version 1");
        }
        let db = Db::open(dir.path()).expect("migrate");
        assert_eq!(db.schema_version().expect("version"), SCHEMA_VERSION);
        let kept = db.intents().expect("intents");
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].op.as_str(), kept[0].step.as_str()), ("op1", "prepared"));
        db.conn
            .run(
                "INSERT INTO intents VALUES ('op2', 'create', '{}', 'applied', 2)",
                [],
            )
            .expect("applied is a step now");
        assert!(db
            .conn
            .run(
                "INSERT INTO intents VALUES ('op3', 'create', '{}', 'done', 3)",
                []
            )
            .is_err());
    }

    #[test]
    fn a_version_2_array_keeps_its_groups_targets() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let conn = rusqlite::Connection::open(dir.path().join("array.db")).expect("create");
            conn.execute_batch(MIGRATIONS[0]).expect("schema 1");
            conn.execute_batch(MIGRATIONS[1]).expect("schema 2");
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (2);
                 INSERT INTO groups (name) VALUES ('Web'), ('db');",
            )
            .expect("groups of version 2");
        }
        let db = Db::open(dir.path()).expect("migrate");
        assert_eq!(db.schema_version().expect("version"), SCHEMA_VERSION);
        let targets: Vec<(String, String)> = db
            .groups()
            .expect("groups")
            .into_iter()
            .map(|g| (g.name, g.target))
            .collect();
        assert_eq!(
            targets,
            vec![("db".into(), "db".into()), ("Web".into(), "web".into())]
        );
        assert!(
            db.conn
                .run("INSERT INTO groups (name, target) VALUES ('x', 'db')", [])
                .is_err(),
            "two groups cannot share a target"
        );
    }

    #[test]
    fn lazy_commits_are_visible_at_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = Db::open(dir.path()).expect("create");
        db.set_durable(false).expect("normal");
        db.conn
            .run("INSERT INTO meta (key, value) VALUES ('lazy', '1')", [])
            .expect("write");
        db.set_durable(true).expect("full");
        let sync: i64 = db
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("synchronous");
        assert_eq!(sync, 2, "back to FULL");
        let other = Db::open(dir.path()).expect("second connection");
        assert_eq!(other.meta("lazy").expect("read"), Some("1".into()));
    }
}
