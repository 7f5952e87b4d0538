//! The array program as a resident process: `spindle-array daemon --socket PATH` serves the
//! same requests as a one-shot run ([`crate::protocol`]), one per connection on a Unix socket,
//! with engines that stay open between requests.
//!
//! Why: a one-shot run pays a process start and exit and a database open on every request
//! (about 2.4 ms on the reference machine, more than a third of a snapshot's cost) and, on
//! an array with many elements, a full recovery scan. The resident program pays them once.
//! It is still its own process, so a crash of the array side never takes the plug-in's host
//! down, and it keeps every rule of the one-shot program:
//! - the same engine, lock, intents and recovery: a resident engine is made current before
//!   each request by [`Engine::resume`], which recovers whatever a killed one-shot run or
//!   split worker left; resident and one-shot runs can serve one array at the same time;
//! - killed at any instant, it leaves what a killed one-shot run leaves, and the next request
//!   (one-shot or a new resident program) recovers it;
//! - the plug-in uses it only when `extra_info` names its socket (`array_socket=`), and runs
//!   the one-shot program when nothing listens there, so an array never depends on it; for an
//!   array on another host, ssh runs `spindle-array --socket PATH` there, which applies the
//!   same rule on the far side.
//!
//! Watching tgtd: every [`TGTD_WATCH_INTERVAL`] the program checks, for each array it holds an
//! idle engine of (the arrays it served; a request refused for what it asked keeps its engine,
//! and one whose engine a failed request dropped is opened again by the next restore, below),
//! that tgtd still serves
//! that array's export plan, and restarts and reconciles it when it does not, exactly as a
//! request would; every [`FULL_WATCH_EVERY`]th check reads tgtd's whole state and corrects
//! it, which repairs changes made inside a running tgtd behind the array's back. A killed tgtd is back with every target, ACL, CHAP account, LUN number and
//! page 83 id within that interval with nobody calling, whether or not a management server is
//! running. An engine that can no longer be made current (its array went away, or a pool
//! was unmounted or mounted again) is dropped and its array opened afresh at the next watch
//! like a remembered one below, never created: a degraded array stays watched, and a pool
//! that comes back is exported again within two intervals; an administrator who stops tgtd on purpose stops the
//! resident program first (and, since it restores its arrays when it starts, keeps it
//! stopped). A tgtd that listens but does not answer (stopped with SIGSTOP, say) is asked
//! with no lock and no engine held, and skipped while it does not answer (said on standard
//! error): the array's requests that change no export go on meanwhile, since they leave the
//! question to the watch; the ones that change exports wait for tgtd's answer up to 5 s
//! (`tgt::LIVENESS_TIMEOUT`), and fail saying it does not answer (never starting another
//! tgtd beside it), their change recorded and applied by the watch once tgtd answers again.
//!
//! The configuration in force: every request carries the array's configuration, and the
//! latest one that brought tgtd to the plan, from any run (one-shot or resident, local or over
//! ssh), is recorded in the array's state directory ([`crate::tgt::latest_config`]). The
//! watch and the restore below serve only that one: an engine the program holds under an
//! older configuration (the portal changed by a one-shot run, say) still answers requests
//! that carry it, but its watch hands the configuration in force to the served file and
//! opens it instead, so tgtd is never moved back.
//!
//! Restoring after a restart: the program remembers the arrays it served (their configuration,
//! the newest one per state directory, at most [`MAX_SERVED`]) in a file of its own,
//! `--served FILE` ([`default_served_file`] when not given), written when a request first
//! succeeds with a configuration not in it, or when the watch finds another one in force.
//! When it starts, it opens each remembered array whose database exists, with the
//! configuration in force in its state directory, recovers it, brings tgtd to its export plan
//! and says so on standard error, before any request: after the host boots, or the program
//! and tgtd were both killed, every target, ACL, CHAP account, LUN number and page 83 id is
//! back with nobody calling. An array that cannot be opened yet (its file system not
//! mounted, say) is tried again at every watch, never created; to stop serving one for good,
//! delete its entry from the file (or the file) while the program is stopped (a running
//! program rewrites the file from what it holds).
//!
//! Access: the socket is created mode 0600 and every connection's peer must run as this
//! program's user (`SO_PEERCRED`), the same trust as running the program.
//!
//! Stopping: with `--stdin-lifeline` (how a supervisor runs it, [`Resident`]) the program
//! stops when its standard input reaches end of file: it stops accepting, finishes the
//! requests in flight and removes its socket; the supervisor closes that pipe to stop it, and
//! the pipe also closes when the supervisor dies. Without it, SIGTERM ends the program at
//! once, which is as safe as a crash.

use crate::config::ArrayConfig;
use crate::engine::{Engine, EngineOptions};
use crate::error::{Error, Result};
use crate::fsops;
use crate::names::shown_path;
use crate::protocol;
use crate::tgt::{SyncMode, Watched};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest request accepted (a `group-create` of many groups is the largest).
pub const MAX_REQUEST: u64 = 16 << 20;
/// Requests served at once; more connections wait in the socket's backlog.
pub const MAX_IN_FLIGHT: usize = 16;
/// Engines kept open per array configuration between requests.
const IDLE_ENGINES: usize = 4;
/// Array configurations whose engines are kept open.
const MAX_CONFIGS: usize = 16;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the arrays served are checked for a tgtd that died (module docs).
pub const TGTD_WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// Every this many watches, the check reads tgtd's whole state and corrects it (a full
/// reconciliation), which also repairs changes made inside a running tgtd behind the array's
/// back (an ACL entry removed with tgtadm, say): once a minute.
pub const FULL_WATCH_EVERY: u64 = 30;

/// Arrays remembered in the served file (module docs, "Restoring after a restart"); past
/// this, the one served longest ago is forgotten.
pub const MAX_SERVED: usize = 64;

/// Settings of the resident program.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The Unix socket to listen on.
    pub socket: PathBuf,
    /// Where the arrays served are remembered, to be served again when the program starts.
    pub served: PathBuf,
    /// Stop when standard input reaches end of file (see the module documentation).
    pub stdin_lifeline: bool,
    /// Engine options (the split worker's executable, the host's state home).
    pub engine: EngineOptions,
}

/// A served request whose engine still has to finish what its answer did not wait for
/// ([`Engines::finish`]) before it is kept.
struct Kept {
    key: String,
    engine: Engine,
}

/// Engines that stay open between requests, per array configuration (its JSON text).
#[derive(Debug, Default)]
struct Engines {
    idle: Mutex<HashMap<String, Vec<Engine>>>,
    /// Engines per configuration that answered and are finishing what their answer did not
    /// wait for ([`Engines::finish`]), with `returned` signalled as each one is kept.
    finishing: Mutex<HashMap<String, usize>>,
    returned: std::sync::Condvar,
    /// Watches so far (every [`FULL_WATCH_EVERY`]th is a full reconciliation).
    watches: std::sync::atomic::AtomicU64,
}

impl Engines {
    fn take(&self, key: &str) -> Option<Engine> {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(key)
            .and_then(Vec::pop)
    }

    /// [`Engines::take`] for a request: with no engine idle but one finishing, waits for it.
    /// The client's next request often arrives while the engine that answered the last one
    /// finishes; a new engine would wait for the same array lock anyway, then cost its open
    /// and, being unwatched yet, a question to tgtd.
    fn take_for_request(&self, key: &str) -> Option<Engine> {
        loop {
            if let Some(engine) = self.take(key) {
                return Some(engine);
            }
            let finishing = self.finishing.lock().unwrap_or_else(|p| p.into_inner());
            if finishing.get(key).copied().unwrap_or(0) == 0 {
                return None;
            }
            // Bounded: an engine whose finishing is not seen (taken by another request
            // first) is looked for again.
            let _ = self
                .returned
                .wait_timeout(finishing, std::time::Duration::from_secs(1))
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Counts an engine of `key` as finishing (`by` = 1) or done (`by` = -1).
    fn count_finishing(&self, key: &str, by: isize) {
        let mut finishing = self.finishing.lock().unwrap_or_else(|p| p.into_inner());
        let n = finishing.entry(key.to_string()).or_default();
        *n = n.saturating_add_signed(by);
        if *n == 0 {
            finishing.remove(key);
        }
        drop(finishing);
        if by < 0 {
            self.returned.notify_all();
        }
    }

    /// Whether an engine of `key` is idle.
    fn has_idle(&self, key: &str) -> bool {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .is_some_and(|list| !list.is_empty())
    }

    /// The tgt settings of the idle engines of `key`, read without taking one.
    fn tgt_settings_of(&self, key: &str) -> Option<crate::config::TgtSettings> {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .and_then(|list| list.last())
            .and_then(|e| e.tgt_settings().cloned())
    }

    fn put(&self, key: String, engine: Engine) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Many arrays (or one whose configuration keeps changing) must not pile up open
        // databases: past the bound, the others' idle engines are closed.
        if !idle.contains_key(&key) && idle.len() >= MAX_CONFIGS {
            idle.clear();
        }
        let list = idle.entry(key).or_default();
        if list.len() < IDLE_ENGINES {
            list.push(engine);
        }
    }

    /// Brings tgtd back to the export plan of every array with an idle engine (module docs,
    /// "Watching tgtd"). Engines in use are skipped: their request checks tgtd itself. An
    /// engine whose configuration is no longer the one in force ([`crate::tgt::watch`]) is
    /// kept for requests that still carry it, and the configuration in force is handed to
    /// `served`, so that the next restore opens and watches it.
    fn watch_tgtd(&self, served: &Served) {
        let keys: Vec<String> = self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        let mut in_force = Vec::new();
        let mode = if self.watches.fetch_add(1, Ordering::Relaxed) % FULL_WATCH_EVERY == FULL_WATCH_EVERY - 1
        {
            crate::tgt::SyncMode::Full
        } else {
            crate::tgt::SyncMode::Check
        };
        for key in &keys {
            // tgtd is asked first with the engine left idle and no lock held: a tgtd that
            // listens but does not answer (stopped, say) would keep both for tgtadm's whole
            // timeout, and the array's requests waiting for them. Asked again by the sync.
            if let Some(settings) = self.tgt_settings_of(key) {
                if let Some(why) = crate::tgt::unresponsive(&settings) {
                    eprintln!(
                        "spindle-array daemon: the tgtd at control port {} does not answer, so it is not watched this time: {why}",
                        settings.control_port
                    );
                    continue;
                }
            }
            let Some(mut engine) = self.take(key) else {
                continue;
            };
            if engine.tgt_settings().is_none() {
                self.put(key.clone(), engine);
                continue;
            }
            // An engine that cannot be made current is dropped: its array went away, or the
            // pools it can use changed (a file system unmounted or mounted again). Its
            // configuration is opened afresh by the next restore, as a remembered array is
            // (never created), so that a degraded array keeps its usable pools served and a
            // pool that comes back is exported again, with nobody calling.
            if engine.resume().is_err() {
                if let Some(cfg) = engine.config() {
                    served.retry(cfg.clone());
                }
                continue;
            }
            match crate::tgt::watch(&engine, mode) {
                Ok(Watched::InForce(cfg)) => in_force.push(cfg),
                // What the watch had to do is news for an administrator: tgtd died, or was
                // changed behind the array's back.
                Ok(Watched::Synced(report)) => {
                    if let Some(what) = report.corrections() {
                        eprintln!(
                            "spindle-array daemon: the array at {}: {what}",
                            engine.state_dir().display()
                        );
                    }
                }
                Ok(Watched::NotExported) | Err(_) => {}
            }
            self.put(key.clone(), engine);
        }
        for cfg in in_force {
            if serde_json::to_string(&cfg).is_ok_and(|k| !keys.contains(&k)) {
                served.follow(cfg);
            }
        }
    }

    /// Serves one request text, like [`protocol::handle_text`] but with a resident engine.
    /// The engine comes back with a served request's answer, to be kept once it finished
    /// what the answer did not wait for ([`Engine::commit_after_answer`]).
    fn handle_text(
        &self,
        text: &str,
        opts: &EngineOptions,
        served: &Served,
    ) -> (serde_json::Value, Option<Kept>) {
        let env = match protocol::parse(text) {
            Ok(env) => env,
            Err(answer) => return (answer, None),
        };
        let key = match serde_json::to_string(&env.config) {
            Ok(k) => k,
            Err(e) => {
                let e = Error::Failed(format!("cannot encode the configuration: {e}"));
                return (protocol::error(&protocol::exception(&env, &e)), None);
            }
        };
        let _first_binding = match protocol::check_registration(&env, opts) {
            Ok(guard) => guard,
            Err(e) => return (protocol::error(&protocol::exception(&env, &e)), None),
        };
        let made = protocol::NewArray::before_open(&env);
        // A resident engine that cannot be made current (its pools or database went away) is
        // dropped, and the array opened afresh, which says what is wrong if it still is.
        // A resumed engine is one the tgtd watch has (it was idle), so its requests that
        // change no export leave tgtd to the watch; a new one is not watched yet.
        let engine = match self.take_for_request(&key).map(|mut e| e.resume().map(|()| e)) {
            Some(Ok(e)) => Ok((e, SyncMode::Recorded)),
            Some(Err(_)) | None => Engine::open(&env.config, opts.clone()).map(|e| (e, SyncMode::Check)),
        };
        let (mut engine, check) = match engine {
            Ok(e) => e,
            Err(e) => return (protocol::error(&protocol::exception(&env, &e)), None),
        };
        engine.commit_after_answer(true);
        let answer = protocol::handle_with(&env, &mut engine, check);
        // An engine whose request failed is kept only when the request was refused for what
        // it asked (a taken name, an element in use...): the engine read the array to say so.
        // Any other failure may have been its own (a database error), and a new engine is
        // opened for the next request.
        let served_ok = answer.get("ok").is_some();
        if served_ok {
            served.remember(&key, &env.config);
        }
        if served_ok || (refused_for_what_it_asked(&answer) && !made.is_new()) {
            self.count_finishing(&key, 1);
            (answer, Some(Kept { key, engine }))
        } else {
            // What a failed request left owed is done before its array may be discarded.
            if let Err(e) = engine.finish_pending() {
                eprintln!(
                    "spindle-array daemon: the array at {}: {e}",
                    engine.state_dir().display()
                );
            }
            made.discard_if_refused(engine, &answer);
            // An array this program serves stays watched: with no engine of it left idle, it
            // is opened again by the next restore (a change of exports that tgtd could not
            // take is then applied once tgtd answers again).
            if served.knows(&key) && !self.has_idle(&key) {
                served.retry(env.config.clone());
            }
            (answer, None)
        }
    }

    /// Finishes what a served request's answer did not wait for (an insert's commit), then
    /// keeps its engine for the next request. An engine whose commit failed is dropped: the
    /// next engine opened on its array rolls the operation forward from its files.
    fn finish(&self, kept: Kept) {
        let Kept { key, mut engine } = kept;
        let committed = engine.finish_pending();
        let counted = key.clone();
        match committed {
            Ok(()) => self.put(key, engine),
            Err(e) => {
                eprintln!(
                    "spindle-array daemon: the array at {}: an answered operation is not recorded yet, the next request recovers it: {e}",
                    engine.state_dir().display()
                );
                drop(engine);
            }
        }
        self.count_finishing(&counted, -1);
    }
}

/// Where a program listening on `socket` remembers its arrays when `--served` is not given:
/// a file in the host's state home `home` ([`crate::registry::host_state_home`]:
/// `$SPINDLE_ARRAY_STATE_HOME`, else `/var/lib/spindle-array` for root or
/// `$XDG_STATE_HOME/spindle-array`), named after the socket's path: `/` becomes `_`, and every
/// byte but ASCII letters, digits, `.` and `-` becomes `%XX` (`_` too), so that two sockets
/// never share a file (`/run/spindle/array.sock` → `run_spindle_array.sock.served.json`).
/// Not beside the socket: sockets usually live under `/run`, which a reboot empties.
pub fn default_served_file(home: &Path, socket: &Path) -> PathBuf {
    let path = socket.as_os_str().as_encoded_bytes();
    let mut name = String::with_capacity(path.len());
    for &b in path.strip_prefix(b"/").unwrap_or(path) {
        match b {
            b'/' => name.push('_'),
            b if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' => name.push(char::from(b)),
            b => name.push_str(&format!("%{b:02X}")),
        }
    }
    home.join(format!("{name}.served.json"))
}

/// The served file's content.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ServedFile {
    /// The configurations, the one served longest ago first.
    arrays: Vec<ArrayConfig>,
}

/// The arrays this program has served (module docs, "Restoring after a restart").
#[derive(Debug)]
struct Served {
    path: PathBuf,
    file: Mutex<ServedFile>,
    /// The configurations (as their engine keys) known to be in the file: a request checks
    /// only this set.
    known: Mutex<HashSet<String>>,
    /// Remembered arrays not open yet, with whether their failure was reported.
    pending: Mutex<Vec<(ArrayConfig, bool)>>,
    /// Whether a failure to write the file was reported (once: it is tried again at every
    /// request of a configuration not in it).
    write_failure_reported: AtomicBool,
}

impl Served {
    /// Reads `path`; a missing file is an empty list, an unreadable one is reported and
    /// then rewritten from the arrays served from now on.
    fn load(path: &Path) -> Served {
        let file = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<ServedFile>(&bytes).unwrap_or_else(|e| {
                eprintln!(
                    "spindle-array daemon: {} is not a list of arrays ({e}); it is replaced by the arrays served from now on",
                    path.display()
                );
                ServedFile::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ServedFile::default(),
            Err(e) => {
                eprintln!("spindle-array daemon: cannot read {}: {e}", path.display());
                ServedFile::default()
            }
        };
        let known = file
            .arrays
            .iter()
            .filter_map(|c| serde_json::to_string(c).ok())
            .collect();
        let pending = file.arrays.iter().map(|c| (c.clone(), false)).collect();
        Served {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            known: Mutex::new(known),
            pending: Mutex::new(pending),
            write_failure_reported: AtomicBool::new(false),
        }
    }

    /// Remembers `cfg` (whose engine key is `key`) after a request with it succeeded; the
    /// file is written only when the configuration is new.
    fn remember(&self, key: &str, cfg: &ArrayConfig) {
        if self.known.lock().unwrap_or_else(|p| p.into_inner()).contains(key) {
            return;
        }
        let Ok(state) = cfg.state_dir() else { return };
        // A configuration served now replaces a remembered one of the same array, which must
        // not be restored over it (an older portal, say).
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(c, _)| c.state_dir().ok().as_ref() != Some(&state));
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.arrays
            .retain(|c| c.state_dir().ok().as_ref() != Some(&state));
        file.arrays.push(cfg.clone());
        let excess = file.arrays.len().saturating_sub(MAX_SERVED);
        file.arrays.drain(..excess);
        match self.write(&file) {
            Ok(()) => {
                let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
                known.clear();
                known.extend(file.arrays.iter().filter_map(|c| serde_json::to_string(c).ok()));
            }
            // Tried again at the array's next request.
            Err(e) => {
                if !self.write_failure_reported.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "spindle-array daemon: cannot remember the array at {}, so a restart of this program will not serve it again until it is written: {e}",
                        state.display()
                    );
                }
            }
        }
    }

    fn write(&self, file: &ServedFile) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        // Directories it makes are private; an existing one is left as it is.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::Failed(format!("cannot create {}: {e}", dir.display())))?;
        let text = serde_json::to_vec_pretty(file)
            .map_err(|e| Error::Failed(format!("cannot encode the arrays served: {e}")))?;
        fsops::replace_file(&self.path, &text)?;
        fsops::fsync_dir(dir)
    }

    /// Whether the configuration of engine key `key` is remembered.
    fn knows(&self, key: &str) -> bool {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// Opens `cfg` again at the next restore: an array whose engine the watch dropped
    /// (module docs, "Watching tgtd"). Not remembered anew: it was served already.
    fn retry(&self, cfg: ArrayConfig) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !pending.iter().any(|(c, _)| *c == cfg) {
            pending.push((cfg, false));
        }
    }

    /// Serves `cfg`, the configuration in force of an array this program holds only under
    /// an older one (a run without this program changed it): it is remembered in place of
    /// the older one and opened at the next restore.
    fn follow(&self, cfg: ArrayConfig) {
        let Ok(key) = serde_json::to_string(&cfg) else {
            return;
        };
        self.remember(&key, &cfg);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !pending.iter().any(|(c, _)| *c == cfg) {
            pending.push((cfg, false));
        }
    }

    /// Opens every remembered array not open yet whose database exists, with the
    /// configuration in force in its state directory ([`crate::tgt::latest_config`]: a run
    /// this program did not serve may have changed it since) or else the remembered one,
    /// brings tgtd to its export plan, says so, and hands its engine to `engines`, whose tgtd
    /// watch keeps it there. Never creates an array: one whose database is missing stays
    /// pending.
    fn restore(&self, engines: &Engines, opts: &EngineOptions) {
        let mut newer = Vec::new();
        // tgtd is asked with no lock held, as the watch asks ([`Engines::watch_tgtd`]), not
        // even this list's, which requests take: a tgtd that does not answer keeps the
        // question waiting 5 s, and opening an array brings tgtd to its plan under its lock.
        let settings: Vec<crate::config::TgtSettings> = {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.iter().filter_map(|(c, _)| c.tgt.clone()).collect()
        };
        let mut silent: Vec<(crate::config::TgtSettings, String)> = Vec::new();
        for t in settings {
            if !silent.iter().any(|(s, _)| *s == t) {
                if let Some(why) = crate::tgt::unresponsive(&t) {
                    silent.push((t, why));
                }
            }
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain_mut(|(cfg, reported)| {
            let unanswered = cfg
                .tgt
                .as_ref()
                .and_then(|t| silent.iter().find(|(s, _)| s == t))
                .map(|(_, why)| why);
            if let Some(why) = unanswered {
                if !*reported {
                    eprintln!(
                        "spindle-array daemon: the array remembered in {} is not served yet: {why}; tried again every {} s",
                        self.path.display(),
                        TGTD_WATCH_INTERVAL.as_secs()
                    );
                    *reported = true;
                }
                return true;
            }
            let opened = match cfg.state_dir() {
                Ok(state) if state.join(crate::db::DB_FILE).is_file() => {
                    if let Some(latest) = crate::tgt::latest_config(&state)
                        .filter(|l| l != cfg && l.state_dir().ok().as_ref() == Some(&state))
                    {
                        *cfg = latest;
                        newer.push(cfg.clone());
                    }
                    Engine::open(cfg, opts.clone())
                }
                Ok(state) => Err(Error::Failed(format!("{} holds no array database", state.display()))),
                Err(e) => Err(e),
            };
            let Ok(key) = serde_json::to_string(cfg) else {
                return false;
            };
            match opened {
                Ok(engine) => {
                    eprintln!("spindle-array daemon: {}", restored(&engine, cfg));
                    engines.put(key, engine);
                    false
                }
                Err(e) => {
                    if !*reported {
                        eprintln!(
                            "spindle-array daemon: the array remembered in {} is not served yet: {e}; tried again every {} s",
                            self.path.display(),
                            TGTD_WATCH_INTERVAL.as_secs()
                        );
                        *reported = true;
                    }
                    true
                }
            }
        });
        drop(pending);
        // The file follows the configurations in force.
        for cfg in newer {
            if let Ok(key) = serde_json::to_string(&cfg) {
                self.remember(&key, &cfg);
            }
        }
    }
}

/// Brings tgtd to the export plan of an array just opened from the served file, and says
/// what it serves now (or why not).
fn restored(engine: &Engine, cfg: &ArrayConfig) -> String {
    let state = engine.state_dir().display();
    let Some(t) = &cfg.tgt else {
        return format!("serving the array at {state} (it exports nothing: no tgt_control)");
    };
    match crate::tgt::watch(engine, crate::tgt::SyncMode::Full) {
        Ok(Watched::Synced(report)) => format!(
            "serving the array at {state}: tgtd on control port {}, portal {}, {} target(s){}{}",
            t.control_port,
            t.portal,
            report.tids.len(),
            report.started.map(|pid| format!(", tgtd started (pid {pid})")).unwrap_or_default(),
            if report.failures.is_empty() {
                String::new()
            } else {
                format!("; not served: {}", report.failures.join("; "))
            }
        ),
        Ok(Watched::InForce(_) | Watched::NotExported) => format!("serving the array at {state}"),
        Err(e) => format!(
            "serving the array at {state}, but tgtd on control port {} (portal {}) could not be brought to its exports yet: {e}; tried again every {} s",
            t.control_port,
            t.portal,
            TGTD_WATCH_INTERVAL.as_secs()
        ),
    }
}

/// Runs the resident program until it is told to stop (see the module documentation).
///
/// [`MAX_IN_FLIGHT`] workers each accept and serve their own connections: the kernel hands a
/// new connection to exactly one worker waiting in `accept`, so a request costs neither a
/// thread start nor a hand-over between threads. Stopping shuts the listening socket down,
/// which wakes every waiting worker (Linux then fails their `accept`).
pub fn run(opts: &DaemonOptions) -> Result<()> {
    // The state home is decided once, before listening: a refused SPINDLE_ARRAY_STATE_HOME
    // stops the program at its start instead of refusing every request it would serve.
    let opts = &DaemonOptions {
        engine: opts.engine.clone().resolved()?,
        ..opts.clone()
    };
    let (listener, _lock) = listen(&opts.socket)?;
    let listener = Arc::new(listener);
    let engines = Arc::new(Engines::default());
    let served = Arc::new(Served::load(&opts.served));
    let stop = Arc::new(AtomicBool::new(false));
    let tgtd_watch = {
        let (engines, served, stop, engine_opts) = (
            Arc::clone(&engines),
            Arc::clone(&served),
            Arc::clone(&stop),
            opts.engine.clone(),
        );
        // The remembered arrays are restored at once, then at every watch while any is left.
        std::thread::spawn(move || loop {
            served.restore(&engines, &engine_opts);
            engines.watch_tgtd(&served);
            // Parked, not polling: an idle array program wakes once per interval (or at once
            // when told to stop).
            std::thread::park_timeout(TGTD_WATCH_INTERVAL);
            if stop.load(Ordering::SeqCst) {
                return;
            }
        })
    };
    let halt = {
        let (stop, listener) = (Arc::clone(&stop), Arc::clone(&listener));
        let watch = tgtd_watch.thread().clone();
        move || {
            stop.store(true, Ordering::SeqCst);
            watch.unpark();
            let _ = rustix::net::shutdown(listener.as_fd(), rustix::net::Shutdown::Both);
        }
    };
    if opts.stdin_lifeline {
        let halt = halt.clone();
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            halt();
        });
    }
    let me = rustix::process::geteuid();
    let workers: Vec<_> = (0..MAX_IN_FLIGHT)
        .map(|_| {
            let (listener, engines, served, stop, halt, engine_opts) = (
                Arc::clone(&listener),
                Arc::clone(&engines),
                Arc::clone(&served),
                Arc::clone(&stop),
                halt.clone(),
                opts.engine.clone(),
            );
            std::thread::spawn(move || -> std::io::Result<()> {
                loop {
                    let stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(_) if stop.load(Ordering::SeqCst) => return Ok(()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted
                            ) =>
                        {
                            continue
                        }
                        Err(e) => {
                            halt();
                            return Err(e);
                        }
                    };
                    let peer_ok = rustix::net::sockopt::socket_peercred(stream.as_fd())
                        .map(|c| c.uid == me)
                        .unwrap_or(false);
                    if peer_ok {
                        serve_connection(stream, &engines, &engine_opts, &served);
                    }
                    // Otherwise dropped unanswered: only the program's own user may use the
                    // array.
                }
            })
        })
        .collect();
    // The requests in flight finish before the workers end.
    let mut failure = None;
    if tgtd_watch.join().is_err() {
        failure = Some("the tgtd watch panicked".to_string());
    }
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e.to_string())),
            Err(_) => failure = failure.or(Some("a worker panicked".to_string())),
        }
    }
    let _ = fs::remove_file(&opts.socket);
    match failure {
        None => Ok(()),
        Some(e) => Err(Error::Failed(format!("accept on {}: {e}", opts.socket.display()))),
    }
}

fn serve_connection(mut stream: UnixStream, engines: &Engines, opts: &EngineOptions, served: &Served) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    // Room for a typical request at once: reading into an empty string starts with tiny reads.
    let mut text = String::with_capacity(8 << 10);
    let (answer, kept) = match (&mut stream).take(MAX_REQUEST + 1).read_to_string(&mut text) {
        Ok(n) if n as u64 > MAX_REQUEST => (
            protocol::error(&spindle_api::PluginException::value_format(
                "request",
                format!("the request is longer than {MAX_REQUEST} bytes"),
            )),
            None,
        ),
        Ok(_) => engines.handle_text(&text, opts, served),
        Err(e) => (
            protocol::error(&spindle_api::PluginException::value_format(
                "request",
                format!("cannot read the request: {e}"),
            )),
            None,
        ),
    };
    // One write: formatting straight into the socket would make a system call per token.
    let _ = stream.write_all(&protocol::answer_line(&answer));
    // The client reads to the end: it has its answer once the stream is closed, while the
    // engine finishes what the answer did not wait for, still holding the array's lock.
    drop(stream);
    if let Some(kept) = kept {
        engines.finish(kept);
    }
}

/// Whether `answer` refuses a request for what it asked, with the array as usable as before:
/// bad or missing values (but not a configuration the array cannot be opened with), unknown
/// or busy elements, an operation the array cannot do or that is not safe. Not the failures of
/// the operation itself, nor an array that cannot be used.
fn refused_for_what_it_asked(answer: &serde_json::Value) -> bool {
    use spindle_api::ExceptionKind as K;
    let Some(Ok(e)) = answer
        .get("error")
        .map(|e| serde_json::from_value::<spindle_api::PluginException>(e.clone()))
    else {
        return false;
    };
    match e.kind {
        K::ValueFormatEx => e.key.as_deref() != Some("config"),
        K::MissingKeyEx
        | K::InvalidValueEx
        | K::StorageElementBusyEx
        | K::NoSuchOperationEx
        | K::SnapRestoreNotSafeEx
        | K::OperationPreReqNotMetEx => true,
        _ => false,
    }
}

/// Binds `socket`: one resident program per socket (its lock file `<socket>.lock` is held
/// for the program's life), a stale socket file replaced, mode 0600.
fn listen(socket: &Path) -> Result<(UnixListener, File)> {
    let fail = |what: &str, e: std::io::Error| Error::Failed(format!("{what} {}: {e}", shown_path(socket)));
    let mut lock_name = socket.as_os_str().to_owned();
    lock_name.push(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_name)
        .map_err(|e| fail("cannot open the lock of", e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(Error::Failed(format!(
                "another resident array program already serves {}",
                shown_path(socket)
            )))
        }
        Err(fs::TryLockError::Error(e)) => return Err(fail("cannot lock", e)),
    }
    match fs::symlink_metadata(socket) {
        Ok(md) if md.file_type().is_socket() => {
            fs::remove_file(socket).map_err(|e| fail("cannot replace the stale socket", e))?
        }
        Ok(_) => {
            return Err(Error::Failed(format!(
                "{} exists and is not a socket; not touching it",
                shown_path(socket)
            )))
        }
        Err(_) => {}
    }
    // The socket is created with the process's umask: made private from the start.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(socket);
    rustix::process::umask(old);
    let listener = bound.map_err(|e| fail("cannot listen on", e))?;
    Ok((listener, lock))
}

/// A resident array program run and watched by its host (the embedded array of
/// `spindle serve`): restarted when it exits, stopped (gracefully, through its standard
/// input) when this is dropped.
#[derive(Debug)]
pub struct Resident {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<Child>>>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl Resident {
    /// Starts `program daemon --socket socket --served served --stdin-lifeline` and a thread
    /// that restarts it (after a pause of a second) whenever it exits. Returns once the socket
    /// answers, or after five seconds (the plug-in runs one-shot programs until it does).
    pub fn start(program: &Path, socket: &Path, served: &Path) -> Result<Resident> {
        let spawn = {
            let (program, socket, served) =
                (program.to_path_buf(), socket.to_path_buf(), served.to_path_buf());
            move || -> std::io::Result<Child> {
                Command::new(&program)
                    .arg("daemon")
                    .arg("--socket")
                    .arg(&socket)
                    .arg("--served")
                    .arg(&served)
                    .arg("--stdin-lifeline")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::inherit())
                    .spawn()
            }
        };
        let first = spawn().map_err(|e| {
            Error::Failed(format!(
                "cannot run the resident array program {}: {e}",
                shown_path(program)
            ))
        })?;
        let child = Arc::new(Mutex::new(Some(first)));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (child, stop) = (Arc::clone(&child), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(200));
                    let mut slot = child.lock().unwrap_or_else(|p| p.into_inner());
                    let exited = match slot.as_mut() {
                        Some(c) => !matches!(c.try_wait(), Ok(None)),
                        None => true,
                    };
                    if exited && !stop.load(Ordering::SeqCst) {
                        drop(slot);
                        std::thread::sleep(Duration::from_secs(1));
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let next = spawn().ok();
                        *child.lock().unwrap_or_else(|p| p.into_inner()) = next;
                    }
                }
            })
        };
        let resident = Resident {
            socket: socket.to_path_buf(),
            stop,
            child,
            watcher: Some(watcher),
        };
        resident.wait_ready(Duration::from_secs(5));
        Ok(resident)
    }

    /// Waits until the socket accepts connections, at most `limit`; says whether it does.
    pub fn wait_ready(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            if UnixStream::connect(&self.socket).is_ok() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id of the running program, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Child::id)
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops it: closes its standard input, waits for the requests in flight (at most 30 s,
    /// then kills it) and for the watcher.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        let taken = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut c) = taken {
            drop(c.stdin.take());
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                    Ok(None) => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn cfg(pool: &str, portal_port: Option<u16>) -> ArrayConfig {
        let mut c = ArrayConfig::with_pools([("p0", pool)]);
        c.tgt = portal_port.map(|port| {
            let mut t = crate::config::TgtSettings::new(1);
            t.portal = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            t
        });
        c
    }

    fn remember(s: &Served, c: &ArrayConfig) {
        s.remember(&serde_json::to_string(c).unwrap(), c);
    }

    fn on_disk(path: &Path) -> Vec<ArrayConfig> {
        serde_json::from_slice::<ServedFile>(&fs::read(path).unwrap())
            .unwrap()
            .arrays
    }

    #[test]
    fn the_newest_configuration_of_each_array_is_remembered_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/served.json");
        let s = Served::load(&path);
        remember(&s, &cfg("/srv/a", Some(3260)));
        remember(&s, &cfg("/srv/b", None));
        // The same array served with another portal: only the newer configuration stays.
        remember(&s, &cfg("/srv/a", Some(3261)));
        assert_eq!(
            on_disk(&path),
            vec![cfg("/srv/b", None), cfg("/srv/a", Some(3261))]
        );
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // A program started on the file has both pending, and a served configuration of an
        // array replaces its pending one.
        let again = Served::load(&path);
        assert_eq!(again.pending.lock().unwrap().len(), 2);
        remember(&again, &cfg("/srv/a", Some(3262)));
        let pending: Vec<_> = again
            .pending
            .lock()
            .unwrap()
            .iter()
            .map(|(c, _)| c.clone())
            .collect();
        assert_eq!(pending, vec![cfg("/srv/b", None)]);
        // Bounded: the arrays served longest ago are forgotten.
        for i in 0..MAX_SERVED + 3 {
            remember(&again, &cfg(&format!("/srv/n{i}"), None));
        }
        let kept = on_disk(&path);
        assert_eq!(kept.len(), MAX_SERVED);
        assert_eq!(kept[0], cfg("/srv/n3", None));
        assert_eq!(
            kept[MAX_SERVED - 1],
            cfg(&format!("/srv/n{}", MAX_SERVED + 2), None)
        );
    }

    /// A request refused for what it asked leaves the array as usable as before: its engine
    /// is kept for the next request (a bad input costs the next request no open, nor the watch
    /// a full sync of a new engine). A failure of the operation itself drops the engine.
    #[test]
    fn an_engine_is_kept_after_a_refusal_and_dropped_after_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let pool = dir.path().join("p0");
        fs::create_dir(&pool).unwrap();
        let opts = EngineOptions {
            worker_exe: None,
            state_home: Some(dir.path().join("home")),
        };
        let engines = Engines::default();
        let served = Served::load(&dir.path().join("served.json"));
        let c = cfg(pool.to_str().unwrap(), None);
        let key = serde_json::to_string(&c).unwrap();
        let serve = |mut request: serde_json::Value| {
            request["config"] = serde_json::to_value(&c).unwrap();
            let (answer, kept) = engines.handle_text(&request.to_string(), &opts, &served);
            if let Some(kept) = kept {
                engines.finish(kept);
            }
            answer
        };
        let idle = || engines.idle.lock().unwrap().get(&key).map_or(0, Vec::len);
        let create = serde_json::json!({"op": "create", "name": "l1", "pool": "p0", "size": 1 << 20});
        let made = serve(create.clone());
        assert!(made["ok"].is_object(), "{made}");
        assert_eq!(idle(), 1);

        for (refused, exception) in [
            (create, "InvalidValueEx"),
            (
                serde_json::json!({"op": "create", "name": "a/b", "pool": "p0", "size": 1 << 20}),
                "ValueFormatEx",
            ),
            (
                serde_json::json!({"op": "get", "uuid": "00000000-0000-4000-8000-000000000000"}),
                "InvalidValueEx",
            ),
        ] {
            let answer = serve(refused);
            assert_eq!(answer["error"]["exception"], exception, "{answer}");
            assert_eq!(idle(), 1, "the engine of a refused request was dropped: {answer}");
        }

        // The LUN's file removed behind the array's back: the resize fails in the operation
        // itself, and its engine is not kept.
        let uuid = made["ok"]["uuid"].as_str().unwrap().to_string();
        let image = fs::read_dir(&pool)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains(&uuid))
            .unwrap();
        fs::remove_file(&image).unwrap();
        let failed = serve(serde_json::json!({"op": "resize", "uuid": uuid, "size": 2 << 20}));
        assert!(failed["error"].is_object(), "{failed}");
        assert!(!refused_for_what_it_asked(&failed), "{failed}");
        assert_eq!(idle(), 0, "the engine of a failed request was kept: {failed}");
    }

    #[test]
    fn an_unreadable_file_is_an_empty_list_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("served.json");
        fs::write(&path, "not json").unwrap();
        let s = Served::load(&path);
        assert!(s.pending.lock().unwrap().is_empty());
        remember(&s, &cfg("/srv/a", None));
        assert_eq!(on_disk(&path), vec![cfg("/srv/a", None)]);
    }

    #[test]
    fn the_default_file_is_named_after_the_socket_and_outlives_run() {
        let name = |p: &str| {
            default_served_file(Path::new("/var/lib/spindle-array"), Path::new(p))
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .unwrap_or_default()
        };
        assert_eq!(
            name("/run/spindle/array.sock"),
            "run_spindle_array.sock.served.json"
        );
        assert_eq!(
            name("/run/spindle/array 0.sock"),
            "run_spindle_array%200.sock.served.json"
        );
        // Distinct sockets, distinct files.
        assert_ne!(name("/tmp/nu-data/array0.sock"), name("/tmp/nu-data_array0.sock"));
        assert_ne!(name("/a/b_c"), name("/a_b/c"));
        assert!(
            !default_served_file(Path::new("/var/lib/spindle-array"), Path::new("/run/x.sock"))
                .starts_with("/run")
        );
        // In the state home given, whatever the socket.
        assert_eq!(
            default_served_file(Path::new("/srv/home"), Path::new("/run/x.sock")),
            Path::new("/srv/home/run_x.sock.served.json")
        );
    }
}
