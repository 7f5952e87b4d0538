//! The administrator's CLI end to end: a real `spindle serve` process (no embedded array,
//! any free port, no periodic refresh) with the built-in simulated array registered through
//! the CLI, then the whole lifecycle, job following, and every exit code a person meets.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SIM: &str = "spindle.sim.SimArray";
const IQN1: &str = "iqn.2024-01.org.example:host1";
const IQN2: &str = "iqn.2024-01.org.example:host2";

/// What one `spindle` run did.
struct Run {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn explain(&self) -> String {
        format!(
            "spindle {}\nexit {}\nstdout:\n{}\nstderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.explain()))
    }

    fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "{}", self.explain());
        self
    }
}

fn spindle_cmd(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spindle"));
    for var in [
        "SPINDLE_URL",
        "SPINDLE_TOKEN",
        "SPINDLE_SERVER",
        "SPINDLE_DATA_DIR",
        "SPINDLE_PLUGIN_PATH",
        "SPINDLE_LISTEN",
        "SPINDLE_LOG",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        c.env_remove(var);
    }
    c.env("HOME", home).env("XDG_CACHE_HOME", home.join("cache"));
    c
}

fn run_with(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Run {
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spindle starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("spindle runs");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A `spindle serve` of its own, in a temporary data directory.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
        let mut cmd = spindle_cmd(dir.path());
        cmd.args([
            "serve",
            "--no-embedded",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
            "--refresh-interval",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
        let mut child = cmd.spawn().expect("spindle serve starts");
        let deadline = Instant::now() + Duration::from_secs(90);
        let listen = data.join("listen");
        let token = data.join("token");
        loop {
            let ready = |p: &Path| std::fs::read_to_string(p).is_ok_and(|s| !s.trim().is_empty());
            if ready(&listen) && ready(&token) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "spindle serve exited ({status}) before listening:\n{}",
                    std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "spindle serve wrote no {} / {} within 90 s:\n{}",
                    listen.display(),
                    token.display(),
                    std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let addr = std::fs::read_to_string(&listen).expect("listen");
        let addr = addr.trim();
        let url = if addr.starts_with("http") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        Server { child, dir, url }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn token_file(&self) -> String {
        self.data().join("token").display().to_string()
    }

    fn sim_dir(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `spindle --url URL --token-file FILE ARGS...`.
    fn cmd(&self) -> Command {
        let mut c = spindle_cmd(self.dir.path());
        c.args(["--url", &self.url, "--token-file", &self.token_file()]);
        c
    }

    fn run(&self, args: &[&str]) -> Run {
        run_with(self.cmd(), args, None)
    }

    fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_with(self.cmd(), args, Some(stdin))
    }

    fn ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0)
    }

    /// Runs with `--output json`, expects success, parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend(args);
        self.ok(&all).json()
    }

    fn add_sim(&self, name: &str, split_ms_per_gib: u32) -> Run {
        let extra = format!(
            "state_dir={};split_ms_per_gib={split_ms_per_gib}",
            self.sim_dir(name)
        );
        self.ok(&[
            "server",
            "add",
            name,
            "--plugin",
            SIM,
            "--admin-host",
            "localhost",
            "--storage-type",
            "iSCSIStorage",
            "--extra-info",
            &extra,
        ])
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default().to_string())
        .collect();
    n.sort();
    n
}

const GIB: i64 = 1 << 30;
const MIB: i64 = 1 << 20;

#[test]
fn the_whole_lifecycle_through_the_cli() {
    let s = Server::start();

    // ---- storage servers ----
    assert_eq!(s.json(&["server", "list"]), serde_json::json!([]));
    let added = s.add_sim("sim1", 1500);
    assert!(added.stdout.contains("sim1"), "{}", added.explain());
    let list = s.ok(&["server", "list"]);
    assert!(list.stdout.starts_with("NAME"), "{}", list.explain());
    assert!(
        list.stdout.contains("sim1") && list.stdout.contains(SIM),
        "{}",
        list.explain()
    );
    // -S may be left out: only one server is registered.
    let show = s.json(&["server", "show"]);
    assert_eq!(show["name"], "sim1");
    assert!(
        show["plugin"].as_str().unwrap_or_default().starts_with(SIM),
        "{show}"
    );
    assert_eq!(s.json(&["server", "show", "sim1"])["name"], "sim1");
    let caps = s.json(&["server", "capabilities"]);
    assert!(
        caps.get("clone").is_some() && caps.get("splitclone").is_some(),
        "{caps}"
    );
    let caps_table = s.ok(&["-S", "sim1", "server", "capabilities"]);
    assert!(
        caps_table.stdout.contains("splitclone"),
        "{}",
        caps_table.explain()
    );

    // ---- LUNs ----
    let created = s.ok(&["lun", "create", "db1", "--size", "1G"]);
    assert!(
        created.stdout.contains("db1") && created.stdout.contains("1.0 GiB"),
        "{}",
        created.explain()
    );
    let db2 = s.json(&["lun", "create", "db2", "--size", "2G", "--qos", "high"]);
    assert_eq!(db2["name"], "db2");
    assert_eq!(db2["size"], 2 * GIB);
    assert_eq!(db2["kind"], "lun");
    assert_eq!(db2["server"], "sim1");
    assert!(!db2["page83_id"].as_str().unwrap_or_default().is_empty(), "{db2}");
    let db2_uuid = db2["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(names(&s.json(&["lun", "list"])), ["db1", "db2"]);
    let table = s.ok(&["lun", "list"]);
    assert!(
        table.stdout.contains("2.0 GiB") && table.stdout.contains("PAGE83_ID"),
        "{}",
        table.explain()
    );
    assert_eq!(s.json(&["lun", "show", "db1"])["name"], "db1");
    assert_eq!(
        s.json(&["lun", "show", &db2_uuid])["name"],
        "db2",
        "a uuid works too"
    );
    let detail = s.ok(&["lun", "show", "db2"]);
    assert!(detail.stdout.contains("2147483648 bytes"), "{}", detail.explain());
    let resized = s.json(&["lun", "resize", "db1", "1.5G"]);
    assert_eq!(resized["size"], 3 * GIB / 2);
    // Shrinking drops data: refused unless asked for in so many words.
    // The server refuses (key allow_shrink); the CLI says so once, in its own terms: from
    // what to what, and the flag (not the API's field).
    let shrink = s.run(&["lun", "resize", "db1", "1G"]).expect_code(1);
    assert!(
        !shrink.stderr.contains("key allow_shrink")
            && shrink.stderr.contains("from 1.5 GiB to 1.0 GiB")
            && shrink.stderr.contains("[InvalidValueEx]")
            && shrink.stderr.contains("--allow-shrink")
            && shrink.stderr.matches("spindle:").count() == 1,
        "{}",
        shrink.explain()
    );
    // Sizes that print alike are given in bytes.
    s.json(&["lun", "resize", "db1", &(3 * GIB / 2 + MIB).to_string()]);
    let shrink = s.run(&["lun", "resize", "db1", "1.5G"]).expect_code(1);
    assert!(
        shrink
            .stderr
            .contains(&format!("from {} to {} bytes", 3 * GIB / 2 + MIB, 3 * GIB / 2)),
        "{}",
        shrink.explain()
    );
    s.json(&["lun", "resize", "db1", "1.5G", "--allow-shrink"]);
    let shrink = s
        .run(&["--output", "json", "lun", "resize", "db1", "1G"])
        .expect_code(1);
    assert!(
        shrink.stdout.contains("\"key\":\"allow_shrink\""),
        "{}",
        shrink.explain()
    );
    assert_eq!(s.json(&["lun", "show", "db1"])["size"], 3 * GIB / 2);
    // Below the size by less than the MiB the array rounds up to: the same size, no shrink.
    let same = s.json(&["lun", "resize", "db1", &(3 * GIB / 2 - 1000).to_string()]);
    assert_eq!(same["size"], 3 * GIB / 2);
    let shrunk = s.json(&["lun", "resize", "db1", "1.25G", "--allow-shrink"]);
    assert_eq!(shrunk["size"], 5 * GIB / 4);
    s.json(&["lun", "resize", "db1", "1.5G"]);
    s.ok(&["lun", "offline", "db1"]);
    s.ok(&["lun", "online", "db1"]);

    // ---- QoS ----
    let qos = s.json(&["qos", "list"]);
    assert!(
        qos.as_array()
            .is_some_and(|a| a.iter().any(|q| q["value"] == "normal")),
        "{qos}"
    );
    assert_eq!(s.json(&["qos", "set", "db1", "normal"])["qos"], "normal");

    // ---- access groups and presentation ----
    let g = s.json(&["group", "create", "hosts", IQN1]);
    let g = if g.is_array() { g[0].clone() } else { g };
    assert_eq!(g["grp_name"], "hosts");
    let g = s.json(&["group", "add", "hosts", IQN2]);
    assert_eq!(g["grp_entries"].as_array().map(Vec::len), Some(2), "{g}");
    let g = s.json(&["group", "remove-entries", "hosts", IQN2]);
    assert_eq!(g["grp_entries"].as_array().map(Vec::len), Some(1), "{g}");
    // iSCSI names are not case-sensitive: one typed in capitals is kept in lower case, said.
    let added = s.ok(&["group", "add", "hosts", &IQN2.to_uppercase()]);
    assert!(
        added.stderr.contains(&format!(
            "note: initiator '{}' is kept as '{IQN2}'",
            IQN2.to_uppercase()
        )),
        "{}",
        added.explain()
    );
    s.json(&["group", "remove-entries", "hosts", IQN2]);
    s.ok(&["group", "rename", "hosts", "hosts2"]);
    let groups = s.json(&["group", "list"]);
    assert!(
        groups
            .as_array()
            .is_some_and(|a| a.iter().any(|g| g["grp_name"] == "hosts2")),
        "{groups}"
    );
    let presented = s.json(&["present", "db1", "hosts2"]);
    assert_eq!(presented["access_grp_names"], serde_json::json!(["hosts2"]));
    // The array refuses to remove a presented LUN: exit 1, the exception named.
    let refused = s.run(&["lun", "remove", "db1"]).expect_code(1);
    assert!(
        refused.stderr.starts_with("spindle: ") && refused.stderr.contains("StorageElementBusyEx"),
        "{}",
        refused.explain()
    );
    assert!(refused.stderr.contains("call id"), "{}", refused.explain());
    let unpresented = s.json(&["unpresent", "db1", "hosts2"]);
    assert_eq!(
        unpresented["access_grp_names"].as_array().map(Vec::len),
        Some(0),
        "{unpresented}"
    );

    // ---- snapshots ----
    let s1 = s.json(&["snap", "create", "db1", "s1"]);
    assert_eq!(s1["name"], "s1");
    assert_eq!(s1["kind"], "snapshot");
    // One consistent snapshot of two LUNs (the simulated array makes one element of it).
    let multi = s.json(&["snap", "multi", "m1", "db1", "db2"]);
    let multi = multi
        .as_array()
        .unwrap_or_else(|| panic!("a list: {multi}"))
        .clone();
    assert!(
        !multi.is_empty() && multi.iter().all(|m| m["name"] == "m1"),
        "{multi:?}"
    );
    let of_db1 = names(&s.json(&["snap", "list", "--lun", "db1"]));
    assert!(of_db1.contains(&"s1".to_string()), "{of_db1:?}");
    let all = names(&s.json(&["snap", "list"]));
    assert!(
        all.contains(&"s1".to_string()) && all.contains(&"m1".to_string()),
        "{all:?}"
    );
    let snaps = s.ok(&["snap", "list"]);
    assert!(
        snaps.stdout.contains("s1") && snaps.stdout.contains("1.5 GiB"),
        "{}",
        snaps.explain()
    );
    // Grown since the snapshot: the restore brings the size back too, and says so.
    s.json(&["lun", "resize", "db1", "2G"]);
    let restored = s.ok(&["snap", "restore", "s1"]);
    assert!(
        restored
            .stderr
            .contains("note: 'db1' is back to the snapshot's size, 1.5 GiB (it was 2.0 GiB)"),
        "{}",
        restored.explain()
    );
    let restored = s.json(&["snap", "restore", "s1"]);
    assert_eq!(restored["name"], "db1");
    assert_eq!(restored["size"], 3 * GIB / 2);
    let removed = s.ok(&["snap", "remove", "m1"]);
    assert!(removed.stdout.contains("m1"), "{}", removed.explain());
    assert_eq!(names(&s.json(&["snap", "list"])), ["s1"]);
    // A snapshot can be named by its uuid too.
    let s1_uuid = s1["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(
        s.json(&["snap", "list", "--lun", "db1"])[0]["uuid"],
        s1_uuid.as_str()
    );

    // ---- clones, splits and jobs ----
    let c2 = s.json(&["clone", "create", "db2", "c2"]);
    assert_eq!(c2["kind"], "clone");
    let c1 = s.json(&["clone", "from-snap", "s1", "c1"]);
    assert_eq!(c1["kind"], "clone");
    assert_eq!(names(&s.json(&["lun", "list"])), ["c1", "c2", "db1", "db2"]);
    // --no-wait: the job id comes back at once, the split (2 GiB at 1.5 s per GiB) still runs.
    let accepted = s.json(&["clone", "split", "c2", "--no-wait"]);
    let job_id = accepted["job"]["id"].as_str().expect("job id").to_string();
    assert_eq!(accepted["job"]["method"], "splitClone");
    assert_eq!(accepted["job"]["state"], "running", "{accepted}");
    let running = s.json(&["job", "list", "--running"]);
    assert!(
        running
            .as_array()
            .is_some_and(|a| a.iter().any(|j| j["id"] == job_id.as_str())),
        "{running}"
    );
    let plain_id = s.ok(&["clone", "split", "c1", "--no-wait"]);
    let other_job = plain_id.stdout.trim().to_string();
    assert!(
        !other_job.is_empty() && !other_job.contains(' '),
        "{}",
        plain_id.explain()
    );
    // job watch follows it to the end (plain progress lines: stderr is not a terminal).
    let watched = s.ok(&["--output", "json", "job", "watch", &job_id]);
    let done = watched.json();
    assert_eq!(done["id"], job_id.as_str());
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(
        watched.stderr.contains(&job_id) && watched.stderr.contains("succeeded"),
        "{}",
        watched.explain()
    );
    let watched = s.ok(&["job", "watch", &other_job]);
    assert!(watched.stdout.contains("c1"), "{}", watched.explain());
    assert_eq!(s.json(&["job", "show", &job_id])["state"], "succeeded");
    let jobs = s.ok(&["job", "list"]);
    assert!(
        jobs.stdout.contains(&job_id) && jobs.stdout.contains("splitClone"),
        "{}",
        jobs.explain()
    );
    assert_eq!(s.json(&["job", "list", "--running"]), serde_json::json!([]));
    // A split followed to its end without --no-wait: the clone is a LUN afterwards.
    let c3 = s.json(&["clone", "create", "db1", "c3"]);
    assert_eq!(c3["kind"], "clone");
    let split = s.ok(&["clone", "split", "c3"]);
    assert!(split.stdout.contains("c3"), "{}", split.explain());
    assert!(split.stderr.contains("succeeded"), "{}", split.explain());
    assert_eq!(s.json(&["lun", "show", "c3"])["kind"], "lun");

    // ---- clean up, audit ----
    s.ok(&["snap", "remove", &s1_uuid]);
    for lun in ["c1", "c2", "c3", "db1", "db2"] {
        let removed = s.ok(&["lun", "remove", lun]);
        assert!(removed.stdout.contains(lun), "{}", removed.explain());
    }
    assert_eq!(s.json(&["lun", "list"]), serde_json::json!([]));
    s.ok(&["group", "remove", "hosts2"]);
    let audit = s.json(&["audit", "--limit", "5"]);
    let entries = audit.as_array().expect("audit list");
    assert_eq!(entries.len(), 5, "{audit}");
    assert_eq!(entries[0]["action"], "group.remove", "newest first: {audit}");
    let audit = s.ok(&["audit"]);
    assert!(
        audit.stdout.contains("lun.create") && audit.stdout.contains("clone.split"),
        "{}",
        audit.explain()
    );
    s.ok(&["server", "refresh"]);
    let forgotten = s.ok(&["server", "remove", "sim1"]);
    assert!(forgotten.stdout.contains("sim1"), "{}", forgotten.explain());
    assert_eq!(s.json(&["server", "list"]), serde_json::json!([]));
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn failures_have_stable_exit_codes_and_clear_messages() {
    let s = Server::start();
    s.add_sim("sim1", 0);

    // An unknown LUN: refused (1), its name in the message, the error body on stdout in JSON.
    let unknown = s.run(&["lun", "show", "no-such-lun"]).expect_code(1);
    assert!(
        unknown.stderr.starts_with("spindle: ") && unknown.stderr.contains("no-such-lun"),
        "{}",
        unknown.explain()
    );
    let unknown = s
        .run(&["--output", "json", "lun", "resize", "no-such-lun", "2G"])
        .expect_code(1);
    let body = unknown.json();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert!(body["error"]["call_id"].is_string(), "{body}");
    // The call id a person gives comes back in the error.
    let tagged = s
        .run(&["--call-id", "test-call-42", "lun", "remove", "no-such-lun"])
        .expect_code(1);
    assert!(tagged.stderr.contains("test-call-42"), "{}", tagged.explain());
    // An unknown storage server is refused too.
    let no_server = s.run(&["-S", "nope", "lun", "list"]).expect_code(1);
    assert!(no_server.stderr.contains("nope"), "{}", no_server.explain());
    // A name already used: conflict (1).
    s.ok(&["lun", "create", "dup", "--size", "16M"]);
    s.run(&["lun", "create", "dup", "--size", "16M"]).expect_code(1);

    // Usage errors (2), before anything is sent.
    let zero = s.run(&["lun", "create", "z", "--size", "0"]).expect_code(2);
    assert!(
        zero.stderr.contains("--size") && zero.stderr.contains("'0'"),
        "{}",
        zero.explain()
    );
    let garbage = s.run(&["lun", "resize", "dup", "lots"]).expect_code(2);
    assert!(garbage.stderr.contains("'lots'"), "{}", garbage.explain());
    s.run(&["server", "add", "x", "--plugin", SIM]).expect_code(2);

    // Several servers and no -S: usage (2), the names listed.
    s.add_sim("sim2", 0);
    let which = s.run(&["lun", "list"]).expect_code(2);
    assert!(
        which.stderr.contains("sim1") && which.stderr.contains("sim2"),
        "{}",
        which.explain()
    );
    assert_eq!(s.json(&["-S", "sim2", "lun", "list"]), serde_json::json!([]));

    // Wrong token: unauthorized (6), the token never echoed.
    let wrong = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut cmd = spindle_cmd(s.dir.path());
    cmd.args(["--url", &s.url, "--token", wrong]);
    let denied = run_with(cmd, &["server", "list"], None).expect_code(6);
    assert!(denied.stderr.contains("unauthorized"), "{}", denied.explain());
    assert!(
        !denied.stderr.contains(wrong) && !denied.stdout.contains(wrong),
        "{}",
        denied.explain()
    );
    let mut cmd = spindle_cmd(s.dir.path());
    cmd.args(["--url", &s.url]).env("SPINDLE_TOKEN", wrong);
    run_with(cmd, &["lun", "list", "-S", "sim1"], None).expect_code(6);
    // No token at all (no token file in the data directory): 6, with advice.
    let empty = s.dir.path().join("empty-data-dir");
    std::fs::create_dir_all(&empty).expect("dir");
    let mut cmd = spindle_cmd(s.dir.path());
    cmd.args(["--url", &s.url]).env("SPINDLE_DATA_DIR", &empty);
    let none = run_with(cmd, &["server", "list"], None).expect_code(6);
    assert!(none.stderr.contains("no token was sent"), "{}", none.explain());
    // A token file that cannot be read: 6.
    let mut cmd = spindle_cmd(s.dir.path());
    cmd.args(["--url", &s.url, "--token-file", "/nonexistent/spindle-token"]);
    run_with(cmd, &["server", "list"], None).expect_code(6);
    // SPINDLE_DATA_DIR names the data directory whose token is used by default.
    let mut cmd = spindle_cmd(s.dir.path());
    cmd.args(["--url", &s.url]).env("SPINDLE_DATA_DIR", s.data());
    assert_eq!(run_with(cmd, &["server", "list"], None).expect_code(0).code, 0);
}

#[test]
fn chap_passwords_come_from_stdin_and_are_never_printed() {
    let s = Server::start();
    let secret = "chap-Secret-1234567";
    let extra = format!("state_dir={}", s.sim_dir("sim1"));
    let added = s
        .run_stdin(
            &[
                "--output",
                "json",
                "server",
                "add",
                "sim1",
                "--plugin",
                SIM,
                "--admin-host",
                "localhost",
                "--storage-type",
                "iSCSIStorage",
                "--extra-info",
                &extra,
                "--chap",
                "--username",
                "chapuser",
                "--password-stdin",
            ],
            &format!("{secret}\n"),
        )
        .expect_code(0);
    let view = added.json();
    assert_eq!(view["username"], "chapuser");
    assert!(
        view["secrets_set"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "passwd")),
        "the password reached the server: {view}"
    );
    for run in [
        added,
        s.ok(&["server", "show", "sim1"]),
        s.ok(&["--output", "json", "server", "list"]),
        s.ok(&["audit"]),
    ] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{}",
            run.explain()
        );
    }
    assert!(!s.log().contains(secret), "the server logged the secret");
    // An empty password is refused before anything is sent.
    s.run_stdin(
        &[
            "server",
            "add",
            "sim9",
            "--plugin",
            SIM,
            "--admin-host",
            "localhost",
            "--chap",
            "--username",
            "u",
            "--password-stdin",
        ],
        "\n",
    )
    .expect_code(2);
}

#[test]
fn a_server_that_is_not_running_is_exit_5() {
    let home = tempfile::tempdir().expect("tempdir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = spindle_cmd(home.path());
    cmd.args(["--url", &url, "--token", "abc"]);
    let down = run_with(cmd, &["lun", "list", "-S", "a1"], None).expect_code(5);
    assert!(
        down.stderr.contains(&url) && down.stderr.contains("is `spindle serve` running?"),
        "{}",
        down.explain()
    );
    let mut cmd = spindle_cmd(home.path());
    cmd.args(["--url", &url, "--token", "abc", "--output", "json"]);
    let down = run_with(cmd, &["server", "list"], None).expect_code(5);
    assert_eq!(down.json()["error"]["code"], "unreachable");
    // A URL that is not one: usage.
    let mut cmd = spindle_cmd(home.path());
    cmd.args(["--url", "localhost:7480"]);
    run_with(cmd, &["server", "list"], None).expect_code(2);
}

#[test]
fn completions_are_printed_for_every_shell() {
    let home = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = run_with(spindle_cmd(home.path()), &["completions", shell], None).expect_code(0);
        assert!(
            run.stdout.contains("spindle") && run.stdout.contains("unpresent"),
            "{shell}"
        );
    }
    run_with(spindle_cmd(home.path()), &["completions", "tcsh"], None).expect_code(2);
}
