//! The plug-in's side of the array program: how to reach `spindle-array` (on this host, or over
//! ssh with a verified host key) and how one request travels (JSON on its standard input, one
//! JSON answer on its standard output; see [`crate::protocol`]).
//!
//! Every program runs from an argument vector, never through a local shell. Over ssh the
//! remote side does run the command through the account's shell, so the only word sent there,
//! the array program, is restricted to a plain absolute path or name. Secrets (the CHAP secret
//! of `validate`) travel only on standard input; `admin_passwd` is never used: ssh runs with
//! `BatchMode=yes`, key authentication only, and `StrictHostKeyChecking=yes`, so it never
//! prompts and an unknown or changed host key fails the call.

use crate::config::CLIENT_KEYS;
use crate::names::{shown, shown_path};
use spindle_api::{ExceptionKind, PluginException, PluginResult};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The array program's name.
pub const ARRAY_PROGRAM: &str = "spindle-array";
/// Longest a request may take before the array program (or ssh) is killed. Long operations
/// (splits) are asynchronous on the array, so this only bounds a stuck program.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// How to reach the array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Run the program on this host.
    Local {
        /// The program.
        program: PathBuf,
        /// The socket of a resident array program (`array_socket=`), tried first.
        socket: Option<PathBuf>,
    },
    /// Run it over ssh.
    Ssh {
        /// The ssh argument vector (options, destination, remote program).
        args: Vec<String>,
        /// `user@host:port`, for messages.
        label: String,
        /// The known_hosts file in force, for messages.
        known_hosts: Option<PathBuf>,
    },
}

/// The plug-in's own `extra_info` keys ([`CLIENT_KEYS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    /// `array_program=`.
    pub array_program: Option<String>,
    /// `array_socket=`.
    pub array_socket: Option<PathBuf>,
    /// `ssh=yes|no`.
    pub ssh: Option<bool>,
    /// `ssh_key=`.
    pub ssh_key: Option<PathBuf>,
    /// `ssh_port=`.
    pub ssh_port: Option<u16>,
    /// `known_hosts=`.
    pub known_hosts: Option<PathBuf>,
    /// `ssh_mux=yes|no`.
    pub ssh_mux: Option<bool>,
    /// `ssh_control_dir=`.
    pub ssh_control_dir: Option<PathBuf>,
}

fn bad(key: &str, message: String) -> PluginException {
    PluginException::value_format(key, message)
}

fn safe_path_text(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+' | b'@'))
}

fn abs_path(key: &str, value: &str) -> PluginResult<PathBuf> {
    let p = Path::new(value);
    let normal = p.is_absolute()
        && !value.ends_with('/')
        && p.components()
            .all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)))
        && !value.contains("//");
    if !normal || !safe_path_text(value) || value.len() > 1024 {
        return Err(bad(
            "extra_info",
            format!(
                "extra_info {key} {} must be an absolute, normalised path of letters, digits and '/._+@-'",
                shown(value)
            ),
        ));
    }
    Ok(p.to_path_buf())
}

fn yes_no(key: &str, value: &str) -> PluginResult<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Ok(true),
        "no" | "false" | "0" => Ok(false),
        _ => Err(bad(
            "extra_info",
            format!("extra_info {key} {} must be yes or no", shown(value)),
        )),
    }
}

/// How long an idle shared ssh connection stays up after its last request, in seconds.
pub const SSH_PERSIST_SECS: u32 = 60;

/// The directory of the shared ssh connections' control sockets: `configured`, else
/// `/run/spindle/ssh` for root, `$XDG_RUNTIME_DIR/spindle-ssh` or `/tmp/spindle-ssh-<uid>`.
/// Made mode 0700 if missing. `None` (so every request opens its own connection) unless it is
/// a real directory owned by this user that nobody else can enter: whoever can reach a
/// control socket runs commands as the array's admin_user without a key.
fn ssh_control_dir(configured: Option<&Path>) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = rustix::process::geteuid().as_raw();
    let dir = match configured {
        Some(d) => d.to_path_buf(),
        None if uid == 0 => PathBuf::from("/run/spindle/ssh"),
        None => match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            Some(d) if d.is_absolute() => d.join("spindle-ssh"),
            _ => PathBuf::from(format!("/tmp/spindle-ssh-{uid}")),
        },
    };
    // ssh expands '%' tokens in ControlPath, and a Unix socket path holds 107 bytes, of which
    // ssh needs 17 for the temporary name it binds first and 16 are the connection's hash.
    let text = dir.to_str()?;
    if !safe_path_text(text) || text.len() > 70 {
        return None;
    }
    // Succeeds on an existing directory too, which the checks below then judge.
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    let md = std::fs::symlink_metadata(&dir).ok()?;
    (md.is_dir() && md.uid() == uid && md.mode() & 0o077 == 0).then_some(dir)
}

impl ClientSettings {
    /// Reads the client keys of `extra_info` (the rest is the array's, see
    /// [`crate::config::ArrayConfig::from_extra_info`]).
    pub fn from_extra_info(extra_info: Option<&str>) -> PluginResult<ClientSettings> {
        let mut out = ClientSettings::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in extra_info
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let Some((key, value)) = item.split_once('=') else {
                continue; // the array's parser names it
            };
            let (key, value) = (key.trim(), value.trim());
            if !CLIENT_KEYS.contains(&key) {
                continue;
            }
            if seen.contains(&key) {
                return Err(bad("extra_info", format!("extra_info sets {key} more than once")));
            }
            seen.push(key);
            match key {
                "array_program" => {
                    let ok = !value.is_empty()
                        && !value.starts_with('-')
                        && if value.starts_with('/') {
                            abs_path("array_program", value).is_ok()
                        } else {
                            safe_path_text(value) && !value.contains('/')
                        };
                    if !ok {
                        return Err(bad(
                            "extra_info",
                            format!(
                                "extra_info array_program {} must be an absolute path or a program name of letters, digits and '._+@-'",
                                shown(value)
                            ),
                        ));
                    }
                    out.array_program = Some(value.to_string());
                }
                "ssh" => out.ssh = Some(yes_no("ssh", value)?),
                "ssh_mux" => out.ssh_mux = Some(yes_no("ssh_mux", value)?),
                "ssh_control_dir" => out.ssh_control_dir = Some(abs_path("ssh_control_dir", value)?),
                "ssh_key" => out.ssh_key = Some(abs_path("ssh_key", value)?),
                "array_socket" => out.array_socket = Some(abs_path("array_socket", value)?),
                "known_hosts" => out.known_hosts = Some(abs_path("known_hosts", value)?),
                "ssh_port" => {
                    out.ssh_port = Some(value.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        bad(
                            "extra_info",
                            format!("extra_info ssh_port {} is not a TCP port", shown(value)),
                        )
                    })?)
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn check_host(host: &str) -> PluginResult<()> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "admin_host",
            format!("admin_host {} is not a host name or IP address", shown(host)),
        ))
    }
}

fn check_user(user: &str) -> PluginResult<()> {
    let ok = user.len() <= 64
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "admin_user",
            format!("admin_user {} is not a user name", shown(user)),
        ))
    }
}

/// The local array program: `array_program` (a path, or a name looked up on PATH), else
/// `spindle-array` beside the current executable, else `spindle-array` on PATH.
fn local_program(configured: Option<&str>) -> PathBuf {
    if let Some(p) = configured {
        return PathBuf::from(p);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let beside = dir.join(ARRAY_PROGRAM);
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from(ARRAY_PROGRAM)
}

/// The answer in what the array program wrote: its last non-empty line, a JSON object with
/// `ok` or `error`.
fn answer_in(out: &str) -> Option<String> {
    out.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .filter(|l| is_answer(l))
        .map(str::to_string)
}

/// Whether `line` is an answer of the array program: a JSON object with `ok` or `error`. Its
/// values are only skipped, not built: a list of 10,000 elements read into a `Value` cost
/// 60-100 ms, skipped under 10 (the caller reads it into its own type next).
pub fn is_answer(line: &str) -> bool {
    serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(line)
        .is_ok_and(|m| m.contains_key("ok") || m.contains_key("error"))
}

/// Sends one request to the resident array program listening on `socket`
/// ([`crate::daemon`]): `None` when nothing listens there (the caller then runs the program
/// once), else its answer (one line, read by the caller), or the failure of a connection that
/// broke after the request was sent (the request may have taken effect; the next request
/// recovers whatever it left).
pub fn resident_request(socket: &Path, body: &str, failure: ExceptionKind) -> Option<PluginResult<String>> {
    use std::os::unix::net::UnixStream;
    let mut stream = UnixStream::connect(socket).ok()?;
    let fail = |m: String| PluginException::new(failure, m);
    let at = || shown_path(socket);
    let sent = stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.write_all(body.as_bytes()))
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write));
    if sent.is_err() {
        // Nothing was read by a program that closed at once (it was stopping): run it once.
        return None;
    }
    let mut out = String::with_capacity(4096);
    if let Err(e) = stream.read_to_string(&mut out) {
        return Some(Err(fail(format!(
            "the resident array program at {} did not answer ({e}); the request may or may not have taken effect, and the next request recovers what it left",
            at()
        ))));
    }
    let line = out.trim();
    if line.is_empty() {
        return Some(Err(fail(format!(
            "the resident array program at {} closed the connection without an answer; the request may or may not have taken effect, and the next request recovers what it left",
            at()
        ))));
    }
    Some(Ok(line.to_string()))
}

impl Transport {
    /// How to reach the array of `admin_host` as `admin_user`: `localhost` (and, with `ssh=no`,
    /// `127.0.0.1` and `::1`) runs the program locally; any other host goes over ssh.
    pub fn new(admin_host: &str, admin_user: &str, s: &ClientSettings) -> PluginResult<Transport> {
        if admin_host.is_empty() {
            return Err(PluginException::missing_key(
                "admin_host",
                "admin_host is empty; use localhost for an array on this host",
            ));
        }
        check_host(admin_host)?;
        let loopback = matches!(admin_host, "127.0.0.1" | "::1");
        if admin_host == "localhost" || (loopback && s.ssh == Some(false)) {
            return Ok(Transport::Local {
                program: local_program(s.array_program.as_deref()),
                socket: s.array_socket.clone(),
            });
        }
        if s.ssh == Some(false) {
            return Err(bad(
                "extra_info",
                format!(
                    "extra_info ssh=no, but admin_host {} is not this host (localhost, 127.0.0.1 or ::1)",
                    shown(admin_host)
                ),
            ));
        }
        if !admin_user.is_empty() {
            check_user(admin_user)?;
        }
        let mut args: Vec<String> = [
            "-T",
            "-x",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(k) = &s.known_hosts {
            args.push("-o".into());
            args.push(format!("UserKnownHostsFile={}", k.display()));
            args.push("-o".into());
            args.push("GlobalKnownHostsFile=/dev/null".into());
        }
        if let Some(k) = &s.ssh_key {
            args.push("-o".into());
            args.push("IdentitiesOnly=yes".into());
            args.push("-i".into());
            args.push(k.display().to_string());
        }
        let port = s.ssh_port.unwrap_or(22);
        args.push("-p".into());
        args.push(port.to_string());
        let dest = if admin_user.is_empty() {
            admin_host.to_string()
        } else {
            format!("{admin_user}@{admin_host}")
        };
        if s.ssh_mux != Some(false) {
            if let Some(dir) = ssh_control_dir(s.ssh_control_dir.as_deref()) {
                // One shared connection per distinct way of connecting (key, known_hosts,
                // port, user, host): a request never rides on a connection that another
                // configuration authenticated.
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (&args, &dest).hash(&mut h);
                args.extend([
                    "-o".to_string(),
                    "ControlMaster=auto".to_string(),
                    "-o".to_string(),
                    format!("ControlPath={}/{:016x}", dir.display(), h.finish()),
                    "-o".to_string(),
                    format!("ControlPersist={SSH_PERSIST_SECS}"),
                ]);
            }
        }
        args.push("--".into());
        args.push(dest.clone());
        args.push(
            s.array_program
                .clone()
                .unwrap_or_else(|| ARRAY_PROGRAM.to_string()),
        );
        // The far side applies the local rule: its resident program while one listens there,
        // else a run of its own (both paths are checked to be plain: they reach a shell).
        if let Some(socket) = &s.array_socket {
            args.push("--socket".into());
            args.push(socket.display().to_string());
        }
        Ok(Transport::Ssh {
            args,
            label: format!("{dest} port {port}"),
            known_hosts: s.known_hosts.clone(),
        })
    }

    fn command(&self) -> Command {
        match self {
            Transport::Local { program, .. } => Command::new(program),
            Transport::Ssh { args, .. } => {
                let mut c = Command::new("ssh");
                c.args(args);
                c
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Transport::Local { program, .. } => format!("the array program {}", program.display()),
            Transport::Ssh { label, .. } => format!("the array program over ssh to {label}"),
        }
    }

    /// Sends one request (the text of a JSON object with `config` and `op`) and returns the
    /// answer's line (a JSON object with `ok` or `error`, which the caller reads). `failure`
    /// is the exception raised when the program cannot be run or gives no answer.
    pub fn request(&self, body: &str, failure: ExceptionKind) -> PluginResult<String> {
        let fail = |m: String| PluginException::new(failure, m);
        if let Transport::Local {
            socket: Some(socket), ..
        } = self
        {
            if let Some(answer) = resident_request(socket, body, failure) {
                return answer;
            }
        }
        let mut cmd = self.command();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", self.describe())))?;
        let text = body.to_string();
        let stdin = child.stdin.take();
        let writer = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(text.as_bytes());
            }
        });
        let (tx, rx) = mpsc::channel();
        let mut stdout = child.stdout.take();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(out) = stdout.as_mut() {
                let _ = out.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        let mut stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(err) = stderr.as_mut() {
                let _ = err.take(64 * 1024).read_to_end(&mut buf);
            }
            buf
        });
        let started = Instant::now();
        let out = match rx.recv_timeout(REQUEST_TIMEOUT) {
            Ok(out) => out,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "{} did not answer within {} s and was stopped",
                    self.describe(),
                    REQUEST_TIMEOUT.as_secs()
                )));
            }
        };
        // Its standard output is closed: the program is exiting. Poll finely (a first pause of
        // a whole millisecond was a tenth of a short request), then back off.
        let mut pause = Duration::from_micros(20);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if started.elapsed() < REQUEST_TIMEOUT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(1));
                }
                _ => {
                    let _ = child.kill();
                    break child.wait().ok();
                }
            }
        };
        let _ = writer.join();
        let err = err_reader.join().unwrap_or_default();
        let err = String::from_utf8_lossy(&err);
        let err_tail: String = {
            let lines: Vec<&str> = err.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(6)..].join(" | ");
            tail.chars().take(800).collect()
        };
        let out = String::from_utf8_lossy(&out);
        if let Some(v) = answer_in(&out) {
            return Ok(v);
        }
        let status = status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown status".into());
        if let Transport::Ssh {
            label, known_hosts, ..
        } = self
        {
            let host_key = err.contains("Host key verification failed")
                || err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                || err.contains("host key for")
                || err.contains("No matching host key");
            if host_key {
                return Err(fail(format!(
                    "ssh to {label} refused the host: its host key could not be verified against {} ({err_tail}); the array was not contacted",
                    known_hosts
                        .as_ref()
                        .map(|k| format!("known_hosts {}", k.display()))
                        .unwrap_or_else(|| "ssh's known_hosts files".into())
                )));
            }
            if err.contains("Permission denied") {
                return Err(PluginException::new(
                    ExceptionKind::PermissionDeniedEx,
                    format!("ssh to {label} was refused: {err_tail} (the key in ssh_key must be authorised for admin_user)"),
                ));
            }
            if out.trim().is_empty() {
                return Err(fail(format!("ssh to {label} failed ({status}): {err_tail}")));
            }
        }
        Err(fail(format!(
            "{} gave no answer ({status}){}{}",
            self.describe(),
            printed_instead(&out),
            if err_tail.is_empty() {
                String::new()
            } else {
                format!(": {err_tail}")
            }
        )))
    }
}

/// What a program printed on its standard output in place of an answer, for the message of
/// its failure: a login shell that refuses the account (nologin's "This account is currently
/// not available.") says why there, not on standard error. Empty when it printed nothing.
fn printed_instead(out: &str) -> String {
    let text: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return String::new();
    }
    // (`shown` escapes it and keeps a long text to its head and tail.)
    format!("; it printed {}", shown(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_program_printed_instead_of_an_answer_is_said() {
        assert_eq!(printed_instead(" \n"), "");
        assert_eq!(
            printed_instead("This account is currently not available.\n"),
            "; it printed 'This account is currently not available.'"
        );
        let long = printed_instead(&"x".repeat(4000));
        assert!(long.starts_with("; it printed 'x") && long.len() < 200, "{long}");
    }

    #[test]
    fn an_answer_is_an_object_with_ok_or_error() {
        for line in [
            r#"{"ok":null}"#,
            r#"{"ok":[{"uuid":"u","name":"n"}],"export":{"portal":"127.0.0.1:3260"}}"#,
            r#"{"error":{"exception":"InvalidValueEx","message":"m","key":null}}"#,
        ] {
            assert!(is_answer(line), "{line}");
        }
        for line in ["", "ok", "[]", r#"["ok"]"#, r#"{"okay":1}"#, r#"{"ok":1"#, "null"] {
            assert!(!is_answer(line), "{line}");
        }
        // The last non-empty line is the answer: what a program printed before it is not.
        assert_eq!(
            answer_in("warning: x\n{\"ok\":1}\n\n").as_deref(),
            Some("{\"ok\":1}")
        );
        assert_eq!(answer_in("{\"ok\":1}\nwarning: x\n"), None);
    }

    #[test]
    fn client_keys_are_read_and_checked() {
        let s = ClientSettings::from_extra_info(Some(
            "pools=p:/a; ssh_key=/k/id ;known_hosts=/k/kh;ssh_port=2222;array_program=/opt/bin/spindle-array;ssh=no",
        ))
        .expect("valid");
        assert_eq!(s.ssh_key, Some(PathBuf::from("/k/id")));
        assert_eq!(s.ssh_port, Some(2222));
        assert_eq!(s.ssh, Some(false));
        for bad in [
            "ssh_key=rel",
            "ssh_key=/a/../b",
            "known_hosts=/a b",
            "ssh_port=0",
            "ssh_port=x",
            "array_program=-oProxyCommand=x",
            "array_program=a$b",
            "array_program=sub/dir",
            "ssh=maybe",
            "ssh_mux=maybe",
            "ssh_control_dir=rel/dir",
            "ssh_port=1;ssh_port=2",
        ] {
            assert!(ClientSettings::from_extra_info(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn transports() {
        let s = ClientSettings::default();
        assert!(matches!(
            Transport::new("localhost", "root", &s),
            Ok(Transport::Local { .. })
        ));
        assert!(matches!(
            Transport::new("127.0.0.1", "root", &s),
            Ok(Transport::Ssh { .. })
        ));
        let no = ClientSettings {
            ssh: Some(false),
            ..ClientSettings::default()
        };
        assert!(matches!(
            Transport::new("::1", "root", &no),
            Ok(Transport::Local { .. })
        ));
        assert!(Transport::new("192.0.2.1", "root", &no).is_err());
        assert!(Transport::new("-oProxyCommand=x", "root", &s).is_err());
        assert!(Transport::new("host", "-l", &s).is_err());
        assert!(Transport::new("", "root", &s).is_err());
        let full = ClientSettings {
            ssh_key: Some(PathBuf::from("/k/id")),
            known_hosts: Some(PathBuf::from("/k/kh")),
            ssh_port: Some(2222),
            ..ClientSettings::default()
        };
        let Ok(Transport::Ssh { args, .. }) = Transport::new("array.example", "admin", &full) else {
            panic!("ssh expected");
        };
        let text = args.join(" ");
        assert!(text.contains("BatchMode=yes") && text.contains("StrictHostKeyChecking=yes"));
        assert!(text.contains("UserKnownHostsFile=/k/kh") && text.contains("-i /k/id -p 2222"));
        assert!(text.ends_with("-- admin@array.example spindle-array"), "{text}");
    }

    #[test]
    fn shared_ssh_connections_are_per_way_of_connecting_and_only_in_a_private_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let control = dir.path().join("mux");
        let with = |key: &str, mux: Option<bool>| {
            let s = ClientSettings {
                ssh_key: Some(PathBuf::from(key)),
                ssh_mux: mux,
                ssh_control_dir: Some(control.clone()),
                ..ClientSettings::default()
            };
            match Transport::new("array.example", "admin", &s) {
                Ok(Transport::Ssh { args, .. }) => args
                    .iter()
                    .find_map(|a| a.strip_prefix("ControlPath=").map(str::to_string)),
                _ => panic!("ssh expected"),
            }
        };
        let a = with("/k/a", None).expect("shared");
        assert!(a.starts_with(&format!("{}/", control.display())), "{a}");
        let md = std::fs::metadata(&control).expect("made");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
            0o700
        );
        assert_eq!(with("/k/a", Some(true)), Some(a.clone()));
        assert_ne!(with("/k/b", None), Some(a), "another key, another connection");
        assert_eq!(with("/k/a", Some(false)), None);
        std::fs::set_permissions(&control, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        assert_eq!(with("/k/a", None), None, "others can enter it");
    }
}
