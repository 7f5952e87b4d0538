//! Finding programs, running them (argument vectors, output captured, never a shell) and
//! installing what is missing with apt-get.

use crate::EmbeddedError;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Directories searched after `PATH` (a service's PATH often lacks the sbin directories).
pub(crate) const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// How many lines of a failed command's output an error carries.
const TAIL_LINES: usize = 20;
/// How many bytes of a failed command's output an error carries at most.
const TAIL_BYTES: usize = 4000;

/// The Debian package that provides each program the embedded array uses.
pub(crate) fn package_of(program: &str) -> &'static str {
    match program {
        "tgtd" | "tgtadm" => "tgt",
        "mkfs.xfs" => "xfsprogs",
        _ => "mount",
    }
}

/// Whether `path` is an executable regular file.
pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` in the directories of `path_env`, then in [`SYSTEM_DIRS`].
pub(crate) fn find_in(name: &str, path_env: Option<&OsStr>) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = path_env
        .map(|p| std::env::split_paths(p).filter(|d| d.is_absolute()).collect())
        .unwrap_or_default();
    dirs.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| is_executable(p))
}

/// `name` on this process's PATH or in the system directories.
pub(crate) fn find(name: &str) -> Option<PathBuf> {
    find_in(name, std::env::var_os("PATH").as_deref())
}

/// The last lines of a command's output (stdout, then stderr).
pub(crate) fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    let mut out = lines[start..].join("\n");
    if out.len() > TAIL_BYTES {
        let mut cut = out.len() - TAIL_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = format!("...{}", &out[cut..]);
    }
    if out.is_empty() {
        "(no output)".into()
    } else {
        out
    }
}

/// A command line for messages.
pub(crate) fn shown(program: &Path, args: &[OsString]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `program args` with stdin closed and output captured; fails with the output's tail.
/// `doing` and `advice` complete the error message.
pub(crate) fn run(
    program: &Path,
    args: &[OsString],
    env: &[(&str, &str)],
    doing: &str,
    advice: &str,
) -> Result<String, EmbeddedError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    tracing::debug!(command = %shown(program, args), "running");
    let failed = |status: String, tail: String| EmbeddedError::CommandFailed {
        command: shown(program, args),
        status,
        doing: doing.to_string(),
        advice: advice.to_string(),
        tail,
    };
    let out = cmd
        .output()
        .map_err(|e| failed(format!("could not start: {e}"), "(no output)".into()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failed(out.status.to_string(), tail(&out.stdout, &out.stderr)))
    }
}

/// Argument vector helper.
pub(crate) fn args<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    items.into_iter().map(Into::into).collect()
}

/// The packages that provide `missing`, in a stable order: always `tgt` and `xfsprogs` (the
/// embedded array's own packages), plus `mount` when one of its programs is missing.
pub(crate) fn packages_for(missing: &[&str]) -> Vec<&'static str> {
    let mut pkgs = vec!["tgt", "xfsprogs"];
    if missing.iter().any(|m| package_of(m) == "mount") {
        pkgs.push("mount");
    }
    pkgs
}

/// The install command for `packages`, as an argument vector after `apt-get`.
pub(crate) fn install_args(packages: &[&str]) -> Vec<OsString> {
    let mut v = args(["install", "-y", "--no-install-recommends"]);
    v.extend(packages.iter().map(OsString::from));
    v
}

/// The install command line as shown to an administrator.
pub(crate) fn install_command(packages: &[&str]) -> String {
    format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    )
}

/// Makes sure every program in `needed` is present, installing the missing ones with apt-get
/// when `install` is set and `root`. Returns what it did, for the notes.
pub(crate) fn ensure(needed: &[&str], install: bool, root: bool) -> Result<Vec<String>, EmbeddedError> {
    let missing: Vec<&str> = needed.iter().copied().filter(|p| find(p).is_none()).collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let packages = packages_for(&missing);
    let command = install_command(&packages);
    let refuse = |why: String| EmbeddedError::MissingTools {
        missing: missing.iter().map(|s| s.to_string()).collect(),
        why,
        command: command.clone(),
    };
    if !install {
        return Err(refuse(" (installing is turned off)".into()));
    }
    if !root {
        return Err(refuse(
            " (spindle does not run as root, so it cannot install them; run the command as root)".into(),
        ));
    }
    let Some(apt) = find("apt-get") else {
        return Err(refuse(
            " (apt-get is not available on this host; install the equivalent packages with its package manager)".into(),
        ));
    };
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    let advice = "check the network and apt sources, or run the command by hand";
    let mut notes = vec![format!(
        "missing {}: installing {}",
        missing.join(", "),
        packages.join(" ")
    )];
    run(
        &apt,
        &args(["update"]),
        &env,
        "refreshing the package lists",
        advice,
    )?;
    run(
        &apt,
        &install_args(&packages),
        &env,
        &format!("installing {}", packages.join(" ")),
        advice,
    )?;
    let still: Vec<&str> = needed.iter().copied().filter(|p| find(p).is_none()).collect();
    if !still.is_empty() {
        return Err(EmbeddedError::MissingTools {
            missing: still.iter().map(|s| s.to_string()).collect(),
            why: " even after apt-get installed the packages".into(),
            command,
        });
    }
    notes.push(format!("installed {}", packages.join(" ")));
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_in_path_then_system_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = dir.path().join("spindle-test-prog");
        std::fs::write(&prog, "#!/bin/sh\n").expect("write");
        assert_eq!(
            find_in("spindle-test-prog", Some(dir.path().as_os_str())),
            None,
            "not executable"
        );
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(
            find_in("spindle-test-prog", Some(dir.path().as_os_str())),
            Some(prog)
        );
        assert!(
            find_in("sh", Some(OsStr::new(""))).is_some(),
            "/bin/sh from the system dirs"
        );
        assert_eq!(find_in("no-such-program-spindle", None), None);
    }

    #[test]
    fn tails_are_short() {
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = tail(long.as_bytes(), b"final error\n");
        assert!(t.ends_with("final error"), "{t}");
        assert!(!t.contains("line 10\n"), "{t}");
        assert_eq!(t.lines().count(), TAIL_LINES);
        assert_eq!(tail(b"", b""), "(no output)");
        let huge = "x".repeat(10_000);
        assert!(tail(huge.as_bytes(), b"").len() <= TAIL_BYTES + 3);
    }

    #[test]
    fn missing_tools_name_the_programs_and_the_command() {
        assert_eq!(packages_for(&["tgtd"]), vec!["tgt", "xfsprogs"]);
        assert_eq!(packages_for(&["losetup"]), vec!["tgt", "xfsprogs", "mount"]);
        let e = ensure(&["no-such-program-spindle-a", "mkfs.xfs"], false, true);
        let e = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("no-such-program-spindle-a"), "{e}");
        assert!(
            e.contains("apt-get update && apt-get install -y --no-install-recommends tgt xfsprogs"),
            "{e}"
        );
        assert!(e.contains("turned off"), "{e}");
        let e = ensure(&["no-such-program-spindle-a"], true, false);
        let e = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("not run as root"), "{e}");
        assert!(ensure(&["sh"], false, false).is_ok_and(|n| n.is_empty()));
    }

    /// Runs apt-get for real (update, then an install of tgt and xfsprogs, a no-op when they
    /// are installed): as root with the network to the package mirrors, by hand with
    /// `cargo test -p spindle-embedded -- --ignored`.
    #[test]
    #[ignore = "runs apt-get update and apt-get install on this machine"]
    fn installing_runs_apt_get_and_rechecks() {
        assert!(rustix::process::geteuid().is_root(), "needs root");
        let e = ensure(&["tgtd", "no-such-program-spindle-b"], true, true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("no-such-program-spindle-b"), "{e}");
        assert!(e.contains("even after apt-get installed"), "{e}");
        assert!(!e.contains("tgtd"), "tgtd is installed: {e}");
    }

    #[test]
    fn failed_commands_carry_their_output() {
        let e = run(
            Path::new("/bin/sh"),
            &args(["-c", "echo hello; echo broken >&2; exit 3"]),
            &[],
            "testing",
            "do something",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("testing") && e.contains("do something"), "{e}");
        assert!(e.contains("hello\nbroken"), "{e}");
        assert!(e.contains("exit status: 3"), "{e}");
    }
}
