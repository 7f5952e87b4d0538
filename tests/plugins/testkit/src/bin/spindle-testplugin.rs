//! The out-of-process test plug-in program. `--set NAME` chooses the classes it offers; see
//! `spindle_testkit::plugins`.

fn main() -> std::process::ExitCode {
    spindle_testkit::plugins::main()
}
