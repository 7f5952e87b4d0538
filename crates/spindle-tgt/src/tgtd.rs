//! Starting, watching and stopping a tgtd instance.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::TgtError;
use crate::tgtadm::{SecretChannel, Tgtadm, DEFAULT_TGTADM, MAX_CONTROL_PORT};

/// Where tgtd lives on Debian.
pub const DEFAULT_TGTD: &str = "/usr/sbin/tgtd";

/// How to run one tgtd instance.
#[derive(Debug, Clone)]
pub struct TgtdConfig {
    /// Control port N (`tgtd -C N`, `tgtadm -C N`): names the management socket `BASE.N`.
    pub control_port: u16,
    /// The one iSCSI portal (`--iscsi portal=ADDRESS:PORT`).
    pub portal: SocketAddr,
    /// The tgtd binary.
    pub tgtd: PathBuf,
    /// The tgtadm binary.
    pub tgtadm: PathBuf,
    /// `TGT_IPC_SOCKET` for tgtd and tgtadm (default: `/var/run/tgtd/socket`).
    pub ipc_socket_base: Option<PathBuf>,
    /// File that receives tgtd's standard output and error (appended); `None` discards them.
    pub log_file: Option<PathBuf>,
    /// `tgtd -t N`: I/O threads per logical unit (tgt's default is 16).
    pub io_threads: Option<u32>,
    /// How long tgtd may take to answer after being started.
    pub start_timeout: Duration,
    /// How long tgtd may take to exit after `--op delete --mode system` before it is killed.
    pub stop_timeout: Duration,
    /// Stop the instance when the [`Tgtd`] is dropped (test instances; default true).
    pub stop_on_drop: bool,
    /// How the instance's [`Tgtadm`] sends CHAP secrets.
    pub secret_channel: SecretChannel,
}

impl TgtdConfig {
    /// Defaults: Debian's binaries, default socket location, no log, tgt's thread count,
    /// 10 s to start, 10 s to stop, stop on drop.
    pub fn new(control_port: u16, portal: SocketAddr) -> TgtdConfig {
        TgtdConfig {
            control_port,
            portal,
            tgtd: PathBuf::from(DEFAULT_TGTD),
            tgtadm: PathBuf::from(DEFAULT_TGTADM),
            ipc_socket_base: None,
            log_file: None,
            io_threads: None,
            start_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(10),
            stop_on_drop: true,
            secret_channel: SecretChannel::default(),
        }
    }

    /// The portal as tgt writes it (`ADDRESS:PORT`, IPv6 in brackets).
    pub fn portal_string(&self) -> String {
        self.portal.to_string()
    }

    fn tgtadm(&self) -> Result<Tgtadm, TgtError> {
        let mut adm = Tgtadm::new(self.control_port)?
            .with_program(&self.tgtadm)
            .with_secret_channel(self.secret_channel);
        if let Some(base) = &self.ipc_socket_base {
            adm = adm.with_ipc_socket_base(base);
        }
        Ok(adm)
    }

    fn check(&self) -> Result<(), TgtError> {
        if self.control_port > MAX_CONTROL_PORT {
            return Err(TgtError::Config(format!(
                "control port {} is above {MAX_CONTROL_PORT}",
                self.control_port
            )));
        }
        for program in [&self.tgtd, &self.tgtadm] {
            if !program.is_file() {
                return Err(TgtError::Config(format!("{} does not exist", program.display())));
            }
        }
        if self.portal.port() == 0 {
            return Err(TgtError::Config("the portal needs a port number".to_string()));
        }
        if let Some(base) = &self.ipc_socket_base {
            if !base.is_absolute() {
                return Err(TgtError::Config(format!(
                    "the socket base {} is not absolute",
                    base.display()
                )));
            }
            // sun_path holds 108 bytes with the NUL; tgtd appends ".N" (and ".N.lock").
            if base.as_os_str().len() + 7 > 107 {
                return Err(TgtError::Config(format!(
                    "the socket base {} is too long for a Unix socket path",
                    base.display()
                )));
            }
        }
        Ok(())
    }
}

/// A tgtd process that this crate started (`tgtd -f`, a child in its own process group).
#[derive(Debug)]
pub struct Tgtd {
    config: TgtdConfig,
    adm: Tgtadm,
    child: Option<Child>,
}

impl Tgtd {
    /// Starts tgtd and waits until it answers `--op show --mode sys`. Then checks that it
    /// listens on exactly the requested portal: when tgtd cannot bind the portal it does not
    /// fail but falls back to tgt's defaults, `0.0.0.0:3260` and `[::]:3260` — such an instance is
    /// stopped again and [`TgtError::PortalUnavailable`] returned.
    pub fn start(config: TgtdConfig) -> Result<Tgtd, TgtError> {
        config.check()?;
        let adm = config.tgtadm()?;
        let mut tgtd = Tgtd {
            config,
            adm,
            child: None,
        };
        tgtd.spawn()?;
        Ok(tgtd)
    }

    fn spawn(&mut self) -> Result<(), TgtError> {
        let port = self.config.control_port;
        if self.adm.is_alive() {
            return Err(TgtError::AlreadyRunning(port));
        }
        let mut cmd = Command::new(&self.config.tgtd);
        cmd.arg("-f")
            .arg("-C")
            .arg(port.to_string())
            .arg("--iscsi")
            .arg(format!("portal={}", self.config.portal_string()));
        if let Some(n) = self.config.io_threads {
            cmd.arg("-t").arg(n.to_string());
        }
        match &self.config.ipc_socket_base {
            Some(base) => cmd.env("TGT_IPC_SOCKET", base),
            None => cmd.env_remove("TGT_IPC_SOCKET"),
        };
        cmd.stdin(Stdio::null()).process_group(0);
        match &self.config.log_file {
            Some(path) => {
                let io = |source| TgtError::Io {
                    path: path.clone(),
                    source,
                };
                let out = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(io)?;
                let err = out.try_clone().map_err(io)?;
                cmd.stdout(out).stderr(err);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        tracing::info!(
            control_port = port,
            portal = %self.config.portal,
            "starting tgtd"
        );
        let child = cmd.spawn().map_err(|source| TgtError::Spawn {
            program: self.config.tgtd.clone(),
            source,
        })?;
        self.child = Some(child);

        let deadline = Instant::now() + self.config.start_timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(TgtError::StartFailed {
                        control_port: port,
                        reason: format!("tgtd exited ({status}){}", self.log_tail()),
                    });
                }
            }
            if self.adm.is_alive() {
                break;
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(TgtError::StartFailed {
                    control_port: port,
                    reason: format!(
                        "no answer within {} s{}",
                        self.config.start_timeout.as_secs(),
                        self.log_tail()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }

        let wanted = self.config.portal_string();
        let actual = match self.adm.portals() {
            Ok(p) => p,
            Err(e) => {
                let _ = self.stop();
                return Err(e);
            }
        };
        if actual != [wanted.clone()] {
            let _ = self.stop();
            return Err(TgtError::PortalUnavailable {
                wanted,
                actual: if actual.is_empty() {
                    "nothing".to_string()
                } else {
                    actual.join(", ")
                },
            });
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        self.config.log_file.as_deref().map(log_tail).unwrap_or_default()
    }

    /// The client for this instance.
    pub fn tgtadm(&self) -> &Tgtadm {
        &self.adm
    }

    /// The configuration.
    pub fn config(&self) -> &TgtdConfig {
        &self.config
    }

    /// The process id, while the child runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process still runs and answers `tgtadm --op show --mode sys`.
    pub fn is_alive(&mut self) -> bool {
        let running = match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        };
        running && self.adm.is_alive()
    }

    /// Stops tgtd properly (tgtd ignores SIGTERM): every target is deleted with `--force`,
    /// then `--op delete --mode system`; if the process has not exited after
    /// `stop_timeout`, or the polite way fails, it is killed. Then the management socket and
    /// its lock file (`BASE.N`, `BASE.N.lock` — exactly these) are removed.
    pub fn stop(&mut self) -> Result<(), TgtError> {
        let port = self.config.control_port;
        // Without a child of ours there is nothing to stop — and the socket files, if any,
        // belong to someone else's instance.
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let mut trouble = None;
        if matches!(child.try_wait(), Ok(None)) {
            if let Err(e) = self.adm.shutdown_daemon() {
                if !e.is_not_running() {
                    trouble = Some(e.to_string());
                }
            }
            let deadline = Instant::now() + self.config.stop_timeout;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                    _ => {
                        tracing::warn!(control_port = port, "tgtd did not exit; killing it");
                        let _ = child.kill();
                        if let Err(e) = child.wait() {
                            return Err(TgtError::StopFailed {
                                control_port: port,
                                reason: e.to_string(),
                            });
                        }
                        break;
                    }
                }
            }
        }
        if let Some(reason) = trouble {
            tracing::warn!(control_port = port, %reason, "tgtd did not stop politely");
        }
        self.remove_socket_files();
        tracing::info!(control_port = port, "tgtd stopped");
        Ok(())
    }

    /// Kills the process at once (SIGKILL) and removes its socket files — what a crash
    /// leaves, minus the files.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.remove_socket_files();
        }
    }

    /// Stops and starts the instance again. tgtd keeps its configuration only in memory:
    /// give it its targets again afterwards.
    pub fn restart(&mut self) -> Result<(), TgtError> {
        self.stop()?;
        self.spawn()
    }

    /// Starts the instance again if it died or stopped answering (after cleaning up what
    /// is left of it). Returns whether it was (re)started — then give it its targets again.
    pub fn ensure_running(&mut self) -> Result<bool, TgtError> {
        if self.is_alive() {
            return Ok(false);
        }
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
            self.remove_socket_files();
        }
        self.spawn()?;
        Ok(true)
    }

    fn remove_socket_files(&self) {
        let socket = self.adm.ipc_socket_path();
        let mut lock = socket.clone().into_os_string();
        lock.push(".lock");
        for path in [socket.as_path(), Path::new(&lock)] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove"),
            }
        }
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        if self.config.stop_on_drop {
            if let Err(e) = self.stop() {
                tracing::warn!(error = %e, "stopping tgtd on drop");
                self.kill();
            }
        }
    }
}

/// The end of a tgtd log file as one line for an error message (`; tgtd said: ...`), or
/// nothing when the file is missing or empty: tgtd explains a failed start only there.
pub fn log_tail(path: &std::path::Path) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(1500)));
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!("; tgtd said: {}", text.lines().collect::<Vec<_>>().join(" | "))
    }
}
