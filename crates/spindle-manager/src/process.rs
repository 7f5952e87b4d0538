//! Out-of-process hosting: one fresh child process per call, speaking the protocol on its
//! stdin/stdout, its stderr sent to the log.

use crate::services::CallServices;
use serde_json::Value;
use spindle_protocol::{
    excerpt, CallParams, HelloParams, HelloResult, Id, Kind, Message, RpcError, CALL, HELLO, MAX_LINE_BYTES,
    PROTOCOL_VERSIONS,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How to start a module's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment.
    pub env_remove: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
}

/// What went wrong talking to a child, short of a plug-in exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The program could not be started.
    Spawn(String),
    /// It exited (or was killed by a signal) without answering.
    Crash {
        /// e.g. "exit status: 3" or "signal: 9 (SIGKILL)".
        status: String,
        /// The last lines of stderr.
        stderr_tail: String,
    },
    /// It did not answer within the deadline and was killed.
    Deadline {
        /// The deadline.
        after: Duration,
        /// The last lines of stderr.
        stderr_tail: String,
    },
    /// It wrote something to stdout that is not a protocol message.
    Pollution(String),
    /// It broke the protocol otherwise.
    Protocol(String),
}

/// A raised exception as the child reported it (the name may be outside the guides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    /// Class name.
    pub name: String,
    /// Message.
    pub message: String,
    /// Key, for MissingKeyEx / ValueFormatEx.
    pub key: Option<String>,
    /// Traceback, if the child sent one.
    pub traceback: Option<String>,
}

impl Raised {
    /// Reads the error object of a failed `plugin.call`.
    pub fn from_rpc(e: &RpcError) -> Self {
        let data = e.data.as_ref();
        let s = |k: &str| {
            data.and_then(|d| d.get(k))
                .and_then(Value::as_str)
                .map(String::from)
        };
        Raised {
            name: s("exception").unwrap_or_else(|| "OperationFailedEx".into()),
            message: s("message").unwrap_or_else(|| e.message.clone()),
            key: s("key"),
            traceback: s("traceback"),
        }
    }
}

const STDERR_TAIL_LINES: usize = 20;

struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_task: tokio::task::JoinHandle<()>,
    label: String,
}

impl Session {
    fn spawn(launcher: &Launcher, label: &str) -> Result<Session, Fault> {
        let mut cmd = Command::new(&launcher.program);
        cmd.args(&launcher.args)
            .current_dir(&launcher.cwd)
            .envs(launcher.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for k in &launcher.env_remove {
            cmd.env_remove(k);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| Fault::Spawn(format!("cannot start {}: {e}", launcher.program.display())))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Fault::Spawn("the child's standard streams are missing".into()));
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail2 = Arc::clone(&tail);
        let who = label.to_string();
        let stderr_task = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(plugin = %who, stream = "stderr", "{line}");
                let mut t = tail2.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == STDERR_TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        Ok(Session {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            stderr_tail: tail,
            stderr_task,
            label: label.to_string(),
        })
    }

    async fn send(&mut self, msg: &Message) -> Result<(), Fault> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Fault::Protocol("stdin already closed".into()))?;
        // A child that died will show as a crash when its stdout ends; ignore the write error.
        let _ = stdin.write_all(msg.to_line().as_bytes()).await;
        let _ = stdin.flush().await;
        Ok(())
    }

    /// The next message; `Ok(None)` at end of stream.
    async fn recv(&mut self) -> Result<Option<Message>, Fault> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = (&mut self.stdout)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .await
                .map_err(|e| Fault::Protocol(format!("reading stdout: {e}")))?;
            if n == 0 {
                return Ok(None);
            }
            if buf.len() > MAX_LINE_BYTES {
                return Err(Fault::Protocol(format!(
                    "a line longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            let line = String::from_utf8_lossy(&buf);
            if line.trim().is_empty() {
                continue;
            }
            return Message::from_line(&line)
                .map(Some)
                .map_err(|_| Fault::Pollution(excerpt(line.trim_end())));
        }
    }

    async fn stderr_tail(&mut self) -> String {
        // Let the stderr reader drain what the child wrote before it died.
        let _ = tokio::time::timeout(Duration::from_millis(200), &mut self.stderr_task).await;
        let t = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    async fn crash(&mut self) -> Fault {
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(s)) => describe_status(s),
            Ok(Err(e)) => format!("unknown ({e})"),
            Err(_) => {
                let _ = self.child.kill().await;
                "stdout closed but the process did not exit; killed".into()
            }
        };
        Fault::Crash {
            status,
            stderr_tail: self.stderr_tail().await,
        }
    }

    async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Closes stdin, reads what is left on stdout (anything there is pollution), and waits
    /// briefly for a clean exit.
    async fn close(mut self) -> Result<(), Fault> {
        self.stdin.take();
        let mut rest = Vec::new();
        let drained = tokio::time::timeout(
            Duration::from_secs(2),
            (&mut self.stdout).take(64 * 1024).read_to_end(&mut rest),
        )
        .await;
        let leftover = String::from_utf8_lossy(&rest);
        let polluted = leftover
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| excerpt(l.trim_end()));
        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(s)) if !s.success() => {
                tracing::warn!(plugin = %self.label, "plug-in process ended with {}", describe_status(s));
            }
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(plugin = %self.label, "plug-in process did not exit after stdin closed; killed");
                let _ = self.child.kill().await;
            }
        }
        if drained.is_err() {
            tracing::warn!(plugin = %self.label, "plug-in process kept stdout open after stdin closed");
        }
        match polluted {
            Some(line) => Err(Fault::Pollution(line)),
            None => Ok(()),
        }
    }

    /// Sends `spindle.hello` and reads the answer, serving notifications meanwhile.
    async fn hello(&mut self, services: Option<&CallServices>) -> Result<HelloResult, Fault> {
        let params = serde_json::to_value(HelloParams {
            protocol_versions: PROTOCOL_VERSIONS.to_vec(),
            host: format!("spindle {}", env!("CARGO_PKG_VERSION")),
        })
        .unwrap_or(Value::Null);
        self.send(&Message::request(Id::Num(0), HELLO, params)).await?;
        let v = self.await_response(Id::Num(0), services).await?.map_err(|e| {
            Fault::Protocol(format!("spindle.hello refused: {} (code {})", e.message, e.code))
        })?;
        let hello: HelloResult = serde_json::from_value(v)
            .map_err(|e| Fault::Protocol(format!("malformed spindle.hello answer: {e}")))?;
        if !PROTOCOL_VERSIONS.contains(&hello.protocol) {
            return Err(Fault::Protocol(format!(
                "the plug-in chose protocol {} but spindle speaks {PROTOCOL_VERSIONS:?}",
                hello.protocol
            )));
        }
        Ok(hello)
    }

    /// Reads until the response to `id`; serves host requests when `services` is given.
    async fn await_response(
        &mut self,
        id: Id,
        services: Option<&CallServices>,
    ) -> Result<Result<Value, RpcError>, Fault> {
        loop {
            let Some(msg) = self.recv().await? else {
                return Err(self.crash().await);
            };
            match msg.kind() {
                Some(Kind::Response(rid, outcome)) if *rid == id => {
                    return Ok(outcome.cloned().map_err(Clone::clone));
                }
                Some(Kind::Response(rid, _)) => {
                    return Err(Fault::Protocol(format!("a response to unknown request {rid:?}")));
                }
                Some(Kind::Request(rid, method, params)) => {
                    let reply = match services {
                        Some(s) => match s.serve_request(method, params) {
                            Ok(v) => Message::response(rid.clone(), v),
                            Err(m) => Message::error(
                                rid.clone(),
                                RpcError {
                                    code: spindle_protocol::CODE_INVALID_PARAMS,
                                    message: m,
                                    data: None,
                                },
                            ),
                        },
                        None => Message::error(
                            rid.clone(),
                            RpcError {
                                code: spindle_protocol::CODE_METHOD_NOT_FOUND,
                                message: format!("{method} is only available during a call"),
                                data: None,
                            },
                        ),
                    };
                    self.send(&reply).await?;
                }
                Some(Kind::Notification(method, params)) => match services {
                    Some(s) => s.serve_notification(method, params),
                    None => tracing::info!(plugin = %self.label, "{method}: {params}"),
                },
                None => return Err(Fault::Protocol("an unclassifiable message".into())),
            }
        }
    }
}

fn describe_status(s: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            return format!("killed by signal {sig}");
        }
    }
    match s.code() {
        Some(c) => format!("exit status {c}"),
        None => "unknown exit".into(),
    }
}

/// Starts a module's program, asks which classes it offers, and lets it go.
pub async fn describe(launcher: &Launcher, label: &str, deadline: Duration) -> Result<HelloResult, Fault> {
    let mut session = Session::spawn(launcher, label)?;
    match tokio::time::timeout(deadline, session.hello(None)).await {
        Ok(Ok(hello)) => {
            session.close().await?;
            Ok(hello)
        }
        Ok(Err(f)) => {
            session.kill().await;
            Err(f)
        }
        Err(_) => {
            session.kill().await;
            Err(Fault::Deadline {
                after: deadline,
                stderr_tail: session.stderr_tail().await,
            })
        }
    }
}

/// The result of one call in a child: what the method returned, or what it raised.
pub type ChildOutcome = Result<Value, Raised>;

/// Runs one call in a fresh child process.
pub async fn call(
    launcher: &Launcher,
    label: &str,
    params: CallParams,
    services: &CallServices,
    deadline: Duration,
) -> Result<ChildOutcome, Fault> {
    let mut session = Session::spawn(launcher, label)?;
    let exchange = async {
        session.hello(Some(services)).await?;
        let p = serde_json::to_value(&params).map_err(|e| Fault::Protocol(e.to_string()))?;
        session.send(&Message::request(Id::Num(1), CALL, p)).await?;
        session.await_response(Id::Num(1), Some(services)).await
    };
    let result = tokio::time::timeout(deadline, exchange).await;
    match result {
        Ok(Ok(Err(e))) => {
            session.close().await?;
            Ok(Err(Raised::from_rpc(&e)))
        }
        Ok(Ok(Ok(v))) => {
            session.close().await?;
            match v {
                Value::Object(mut m) if m.contains_key("value") => {
                    Ok(Ok(m.remove("value").unwrap_or(Value::Null)))
                }
                other => Err(Fault::Protocol(format!(
                    "plugin.call result must be {{\"value\": ...}}, got {}",
                    excerpt(&other.to_string())
                ))),
            }
        }
        Ok(Err(f)) => {
            session.kill().await;
            Err(f)
        }
        Err(_) => {
            session.kill().await;
            Err(Fault::Deadline {
                after: deadline,
                stderr_tail: session.stderr_tail().await,
            })
        }
    }
}
