//! `spindle`: the command line. It only parses arguments and prints. The administrator's
//! commands are calls of `spindle serve`'s HTTP API through `spindle-client` (`admin.rs`); the
//! plug-in author's commands run the manager in this process (`local.rs`); `serve` runs the
//! server (`serve.rs`).

mod admin;
mod client_opts;
mod exit;
mod jobs;
mod local;
mod output;
mod serve;
mod sizes;
mod views;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use output::Output;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "spindle",
    version,
    about = "Storage provisioning through storage plug-ins",
    after_help = exit::HELP
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    client: client_opts::ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
struct Global {
    /// A plug-ins root (<root>/<vendor>/<module>/); repeatable; searched before SPINDLE_PLUGIN_PATH.
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// Output format: aligned tables for people, or the exact JSON.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Log level for spindle's own log on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", env = "SPINDLE_LOG")]
    log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the spindle server (HTTP API)
    Serve(serve::ServeArgs),
    #[command(flatten)]
    Admin(admin::AdminCommand),
    /// Plug-ins: list, inspect and call them (in this process, no server).
    #[command(subcommand)]
    Plugin(local::PluginCommand),
    /// Check a plug-in against the guides, method by method, on a real array.
    Conformance(local::ConformanceArgs),
    /// Print a shell completion script (e.g. `spindle completions bash > /etc/bash_completion.d/spindle`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn init_logging(g: &Global, command: &Command) {
    let mut filter = tracing_subscriber::EnvFilter::try_new(&g.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    if matches!(command, Command::Plugin(local::PluginCommand::Call { .. })) {
        // `plugin call` prints the plug-in's warnings itself, one line each.
        if let Ok(d) = format!("{}=off", spindle_manager::WARNING_TARGET).parse() {
            filter = filter.add_directive(d);
        }
    }
    // Colours only on a terminal: a log file or journald would keep the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match g.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn plugin_roots(g: &Global) -> Vec<PathBuf> {
    let mut roots = g.plugin_dirs.clone();
    if let Some(path) = std::env::var_os("SPINDLE_PLUGIN_PATH") {
        roots.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
    }
    roots
}

/// Plug-ins compiled into this program.
pub(crate) fn builtins() -> Vec<std::sync::Arc<dyn spindle_api::StorageArrayPlugin>> {
    vec![
        std::sync::Arc::new(spindle_plugin_sim::SimArray),
        std::sync::Arc::new(spindle_plugin_linux::LinuxArray),
    ]
}

/// Writes the completion script for `shell` to `out`.
fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "spindle", out);
}

/// Runs a command that needs the async runtime (server, manager).
fn run_async(cli: Cli) -> Result<u8, (u8, String)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| (exit::SPINDLE, format!("cannot start the runtime: {e}")))?;
    let roots = plugin_roots(&cli.global);
    let output = cli.global.output;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(roots, args).await,
            Command::Plugin(cmd) => local::plugin(roots, output, cmd).await,
            Command::Conformance(args) => local::conformance(roots, args).await,
            Command::Admin(_) | Command::Completions { .. } => Ok(exit::OK),
        }
    })
}

/// True for the panic `println!` (or `eprintln!`) raises when the reader of the stream went
/// away (`spindle ... | head -1`): "failed printing to stdout: Broken pipe (os error 32)".
fn is_broken_pipe(message: &str) -> bool {
    message.contains("Broken pipe") || message.contains("BrokenPipe")
}

/// Exit status of a command whose output nobody reads any more: 128 + SIGPIPE, what a shell
/// reports for a program a closed pipe stopped, so that `set -o pipefail` sees it and a
/// conformance report cut short never reads as a pass.
const BROKEN_PIPE_EXIT: i32 = 128 + 13;

/// Ends the program quietly (exit [`BROKEN_PIPE_EXIT`]) when stdout or stderr is a pipe
/// nobody reads any more, instead of the panic message. (SIGPIPE stays ignored, as Rust sets
/// it: a plug-in child that dies must not kill spindle when it writes to it.)
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_pipe(message) {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    init_logging(&cli.global, &cli.command);
    let output = cli.global.output;
    match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            completions(shell, &mut script);
            use std::io::Write;
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("spindle: cannot write the completion script: {e}");
                    ExitCode::from(exit::SPINDLE)
                }
                Err(_) => ExitCode::from(BROKEN_PIPE_EXIT as u8),
                Ok(()) => ExitCode::SUCCESS,
            }
        }
        Command::Admin(cmd) => match admin::run(cmd, &cli.client, output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => {
                if output == Output::Json {
                    println!("{}", failure.json());
                }
                eprintln!("{}", failure.line());
                if let Some(hint) = &failure.hint {
                    eprintln!("spindle: {hint}");
                }
                ExitCode::from(failure.code)
            }
        },
        _ => match run_async(cli) {
            Ok(code) => ExitCode::from(code),
            Err((code, message)) => {
                match output {
                    Output::Json => println!("{}", json!({ "error": message })),
                    Output::Table => eprintln!("spindle: {message}"),
                }
                ExitCode::from(code)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_generate_for_every_shell() {
        use clap_complete::Shell;
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let text = String::from_utf8(out).expect("utf-8");
            for word in [
                "spindle",
                "lun",
                "snap",
                "unpresent",
                "remove-entries",
                "from-snap",
            ] {
                assert!(text.contains(word), "{shell}: no '{word}'");
            }
        }
    }

    #[test]
    fn a_broken_pipe_panic_is_recognised() {
        assert!(is_broken_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(is_broken_pipe(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_pipe("index out of bounds"));
    }

    #[test]
    fn help_documents_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("6  unauthorized"), "{help}");
    }

    #[test]
    fn sizes_are_checked_while_parsing_and_name_the_argument() {
        for (args, fragment) in [
            (vec!["lun", "create", "db1", "--size", "0"], "more than 0"),
            (vec!["lun", "create", "db1", "--size", "-5G"], "negative"),
            (vec!["lun", "create", "db1", "--size", "lots"], "not a size"),
            (vec!["lun", "resize", "db1", "-1G"], "negative"),
            (vec!["lun", "resize", "db1", "10Q"], "unknown unit"),
        ] {
            let mut argv = vec!["spindle"];
            argv.extend(&args);
            let err = Cli::try_parse_from(&argv).expect_err("refused");
            let text = err.to_string();
            assert_eq!(err.exit_code(), 2, "{text}");
            assert!(text.contains(fragment), "{args:?}: {text}");
            let value = args[args.len() - 1];
            assert!(text.contains(&format!("'{value}'")), "names the value: {text}");
            assert!(text.contains("SIZE"), "names the argument: {text}");
        }
        let cli = Cli::try_parse_from(["spindle", "lun", "create", "db1", "--size", "1.5T"]).expect("parses");
        match cli.command {
            Command::Admin(admin::AdminCommand::Lun(admin::LunCommand::Create { size, .. })) => {
                assert_eq!(size, 3 << 39)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_token_never_appears_in_debug_output() {
        let cli = Cli::try_parse_from(["spindle", "--token", "secret-token-value-1234", "server", "list"])
            .expect("parses");
        let debug = format!("{cli:?}");
        assert!(!debug.contains("secret-token-value-1234"), "{debug}");
    }

    #[test]
    fn chap_needs_a_user_and_the_password_from_stdin() {
        let base = [
            "spindle",
            "server",
            "add",
            "a1",
            "--plugin",
            "X",
            "--admin-host",
            "h",
        ];
        let with = |extra: &[&str]| {
            let mut argv: Vec<&str> = base.to_vec();
            argv.extend(extra);
            Cli::try_parse_from(argv)
        };
        assert!(with(&["--chap"]).is_err());
        assert!(with(&["--chap", "--username", "u"]).is_err());
        assert!(with(&["--password", "p"]).is_err(), "no password argument exists");
        assert!(with(&["--chap", "--username", "u", "--password-stdin"]).is_ok());
        assert!(with(&[]).is_ok());
        assert!(Cli::try_parse_from(["spindle", "server", "add", "a1"]).is_err());
        assert!(Cli::try_parse_from(["spindle", "server", "add", "a1", "--embedded"]).is_ok());
        assert!(Cli::try_parse_from([
            "spindle",
            "server",
            "add",
            "a1",
            "--embedded",
            "--admin-host",
            "h"
        ])
        .is_err());
        // The embedded array takes CHAP for its data path, and nothing else.
        assert!(Cli::try_parse_from([
            "spindle",
            "server",
            "add",
            "a1",
            "--embedded",
            "--chap",
            "--username",
            "u",
            "--password-stdin"
        ])
        .is_ok());
    }
}
