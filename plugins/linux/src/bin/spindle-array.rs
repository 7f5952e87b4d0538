//! `spindle-array`: the array side of spindle's Linux software array.
//!
//! - `spindle-array` (no arguments): reads one JSON request from standard input, writes one
//!   JSON response to standard output (see `spindle_plugin_linux::protocol`), exits 0.
//! - `spindle-array --socket PATH`: the same, but the request goes to the resident program
//!   listening on PATH while one does, and is served by this run otherwise: how the plug-in
//!   reaches a resident program on another host (over ssh), with the rule it applies locally.
//! - `spindle-array daemon --socket PATH [--served FILE] [--stdin-lifeline]`: the same
//!   requests, one per connection on a Unix socket, served by a resident program that also
//!   serves again, when it starts, the arrays it remembers in FILE (see
//!   `spindle_plugin_linux::daemon`).
//! - `spindle-array split-worker --state DIR --op ID`: the detached clone-split worker that
//!   `split-start` launches; not for people.
//! - `spindle-array steps`: prints the crash-test step names, one per line.

use spindle_plugin_linux::engine::{Engine, EngineOptions};
use spindle_plugin_linux::{client, crash, daemon, protocol, registry};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `--help` prints.
const HELP: &str = "spindle-array: the array side of spindle's Linux software array.

usage:
  spindle-array                       serve one JSON request read from standard input
  spindle-array --socket PATH         the same, through the resident program listening on
                                      PATH while one does (served by this run otherwise)
  spindle-array daemon --socket PATH [--served FILE] [--stdin-lifeline]
                                      the resident program: requests on a Unix socket; when it
                                      starts it serves again the arrays remembered in FILE
                                      (default in the state home, see below)
  spindle-array steps                 the crash-test step names
  spindle-array --help                this text

environment:
  SPINDLE_ARRAY_STATE_HOME            the directory of what belongs to the host rather than to
                                      one array (which array each registration is, the
                                      resident program's default served file); an absolute
                                      path, refused when empty or relative. Default:
                                      /var/lib/spindle-array for root, else
                                      $XDG_STATE_HOME/spindle-array (~/.local/state/...).
                                      Over ssh, set it on the far side (the environment does
                                      not cross ssh).

The plug-in spindle.linux.LinuxArray runs it; the request format is documented in the
crate spindle-plugin-linux (module protocol).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => serve(None),
        Some("--help" | "-h" | "help") => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Some("--socket") => match args.get(1).map(Path::new) {
            Some(socket) if socket.is_absolute() && args.len() == 2 => serve(Some(socket)),
            _ => {
                eprintln!("spindle-array: usage: spindle-array --socket /abs/socket (the request on standard input)");
                ExitCode::from(2)
            }
        },
        Some("daemon") => daemon(&args[1..]),
        Some("split-worker") => split_worker(&args[1..]),
        Some("steps") => {
            for (_, steps) in crash::STEPS {
                for s in *steps {
                    println!("{s}");
                }
            }
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!(
                "spindle-array: unknown command {other:?}; run it with a JSON request on standard input, or see spindle-array --help"
            );
            ExitCode::from(2)
        }
    }
}

/// Serves the request on standard input: through the resident program on `socket` while one
/// listens there, else in this run.
fn serve(socket: Option<&Path>) -> ExitCode {
    let mut text = String::new();
    let response = match std::io::stdin().read_to_string(&mut text) {
        Ok(_) => match socket.and_then(|s| forwarded(s, &text)) {
            Some(answer) => answer,
            None => protocol::answer_line(&protocol::handle_text(&text, EngineOptions::default())),
        },
        Err(e) => protocol::answer_line(&protocol::error(&spindle_api::PluginException::value_format(
            "request",
            format!("cannot read the request: {e}"),
        ))),
    };
    // One write of the whole line: standard output writes a kilobyte at a time otherwise.
    let mut out = std::io::stdout().lock();
    if out.write_all(&response).and_then(|()| out.flush()).is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The resident program's answer to `text`, or `None` when nothing listens on `socket` (or the
/// request cannot be parsed, which this run answers itself). A connection that broke after the
/// request was sent is an error answer, never a second run: the request may have taken effect.
fn forwarded(socket: &Path, text: &str) -> Option<Vec<u8>> {
    let env = protocol::parse(text).ok()?;
    let answer = match client::resident_request(socket, text, env.request.failure_kind())? {
        // Passed on as it came: read into a value and written again, a long list cost more
        // than the request itself.
        Ok(line) if client::is_answer(&line) => return Some([line.as_bytes(), b"\n"].concat()),
        Ok(_) => protocol::error(&spindle_api::PluginException::new(
            env.request.failure_kind(),
            "the resident array program gave an answer that is not a JSON object with ok or error",
        )),
        Err(e) => protocol::error(&e),
    };
    Some(protocol::answer_line(&answer))
}

fn daemon(args: &[String]) -> ExitCode {
    const USAGE: &str = "usage: spindle-array daemon --socket PATH [--served FILE] [--stdin-lifeline]";
    const DAEMON_HELP: &str = "usage: spindle-array daemon --socket PATH [--served FILE] [--stdin-lifeline]

The resident array program: serves the same requests as a one-shot run, one per connection
on the Unix socket PATH (mode 0600, only this user), keeps tgtd serving every array it holds
(checked every 2 s, fully reconciled every minute), and when it starts serves again the
arrays it remembers.

  --socket PATH      absolute path of the Unix socket to listen on (required)
  --served FILE      where the arrays served are remembered, to be served again at the next
                     start (default: a file in $SPINDLE_ARRAY_STATE_HOME, else under
                     /var/lib/spindle-array for root, else $XDG_STATE_HOME/spindle-array,
                     named after the socket)
  --stdin-lifeline   stop (after the requests in flight) when standard input reaches end of
                     file: how a supervisor runs it; without it, SIGTERM stops it at once

Point an array at it with array_socket=PATH in its extra_info.";
    let mut socket = None;
    let mut served = None;
    let mut stdin_lifeline = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = it.next().map(PathBuf::from),
            "--served" => served = it.next().map(PathBuf::from),
            "--stdin-lifeline" => stdin_lifeline = true,
            "--help" | "-h" => {
                println!("{DAEMON_HELP}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("spindle-array daemon: unknown argument {other:?}; {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let socket = match socket {
        Some(s) if s.is_absolute() => s,
        Some(s) => {
            eprintln!(
                "spindle-array daemon: --socket {} is not an absolute path; {USAGE}",
                s.display()
            );
            return ExitCode::from(2);
        }
        None => {
            eprintln!("spindle-array daemon: --socket PATH is required; {USAGE}");
            return ExitCode::from(2);
        }
    };
    // Decided here, before anything is served: the default served file lives in it too.
    let state_home = match registry::host_state_home() {
        Ok(home) => home,
        Err(e) => {
            eprintln!("spindle-array daemon: {e}");
            return ExitCode::from(2);
        }
    };
    let served = match served {
        Some(f) if f.is_absolute() && f.file_name().is_some() => f,
        Some(f) => {
            eprintln!(
                "spindle-array daemon: --served {} is not an absolute file path; {USAGE}",
                f.display()
            );
            return ExitCode::from(2);
        }
        None => daemon::default_served_file(&state_home, &socket),
    };
    let opts = daemon::DaemonOptions {
        socket,
        served,
        stdin_lifeline,
        engine: EngineOptions {
            state_home: Some(state_home),
            ..EngineOptions::default()
        },
    };
    match daemon::run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spindle-array daemon: {e}");
            ExitCode::from(1)
        }
    }
}

fn split_worker(args: &[String]) -> ExitCode {
    // Its own session: the worker outlives the request and the ssh connection that ran it.
    let _ = rustix::process::setsid();
    let mut state = None;
    let mut op = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--state" => state = it.next().map(PathBuf::from),
            "--op" => op = it.next().cloned(),
            _ => return ExitCode::from(2),
        }
    }
    let (Some(state), Some(op)) = (state, op) else {
        return ExitCode::from(2);
    };
    // Standard input is the split's lock file, held for the worker's life: keep it open.
    let result =
        Engine::open_state(&state, EngineOptions::default()).and_then(|mut e| e.run_split_worker(&op));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}
