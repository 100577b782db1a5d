//! Running the external programs the harness relies on.
//!
//! Every failure panics with the command line, its exit status and its stderr; a program
//! that is not installed panics with the Debian package that provides it, so a developer
//! on a fresh machine knows what to `apt-get install`. Nothing here decides *what* to run.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

/// Programs the harness runs, and the Debian package providing each.
const PACKAGES: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("qemu-img", "qemu-utils"),
    ("umoci", "umoci"),
    ("skopeo", "skopeo"),
    ("htpasswd", "apache2-utils"),
    ("openssl", "openssl"),
    ("tar", "tar"),
    ("nginx", "nginx"),
    ("xz", "xz-utils"),
    ("bzip2", "bzip2"),
    ("zstd", "zstd"),
    ("gzip", "gzip"),
];

/// The Debian package that provides `program`, if the harness knows it.
pub fn debian_package(program: &str) -> Option<&'static str> {
    PACKAGES
        .iter()
        .find(|(p, _)| *p == program)
        .map(|(_, pkg)| *pkg)
}

/// Panics unless `tool` is an executable on `PATH`, naming the Debian `package` to install.
pub fn require(tool: &str, package: &str) {
    let path = env::var_os("PATH").unwrap_or_default();
    let found = env::split_paths(&path).any(|dir| {
        fs::metadata(dir.join(tool))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    assert!(found, "{}", missing(tool, package));
}

/// Runs `program` with `args` and returns its stdout; panics if it fails.
pub fn run<I, S>(program: &str, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_command(Command::new(program).args(args)).stdout
}

/// Runs a prepared command; panics if it cannot start or exits non-zero.
pub fn run_command(command: &mut Command) -> Output {
    let output = run_any_status(command);
    if !output.status.success() {
        panic!(
            "{} failed ({})\n{}",
            describe(command),
            output.status,
            streams(&output)
        );
    }
    output
}

/// Runs a prepared command and returns its output whatever its exit status; panics only
/// if it cannot start.
pub fn run_any_status(command: &mut Command) -> Output {
    // Stable, English messages: tests and panic texts read them.
    command.env("LC_ALL", "C");
    match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let program = command.get_program().to_string_lossy().into_owned();
            let package = debian_package(&program).unwrap_or("the package providing it");
            panic!("{}", missing(&program, package))
        }
        Err(e) => panic!("cannot start {}: {e}", describe(command)),
    }
}

/// `tool -c FILE` (gzip, xz, zstd, pzstd, bzip2): the compressed bytes.
pub fn compress(tool: &str, file: &Path) -> Vec<u8> {
    let mut command = Command::new(tool);
    command.arg("-c");
    if tool == "zstd" || tool == "pzstd" {
        command.arg("-q");
    }
    run_command(command.arg(file)).stdout
}

/// The command line, quoted enough to paste into a shell.
pub fn describe(command: &Command) -> String {
    let mut line = format!("`{}", command.get_program().to_string_lossy());
    for arg in command.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            line.push_str(&format!(" '{arg}'"));
        } else {
            line.push_str(&format!(" {arg}"));
        }
    }
    line.push('`');
    line
}

fn missing(program: &str, package: &str) -> String {
    format!("`{program}` is not installed: run `apt-get install {package}` (as root)")
}

fn streams(output: &Output) -> String {
    format!(
        "--- stderr ---\n{}\n--- stdout (first 2000 bytes) ---\n{}",
        String::from_utf8_lossy(&output.stderr).trim_end(),
        String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(2000)]).trim_end(),
    )
}
