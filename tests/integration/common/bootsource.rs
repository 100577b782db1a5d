//! Running the real `bootsource` binary, and the checks every import test repeats.
//!
//! [`import`] and [`inspect`] run the binary that Cargo built for this test
//! (`CARGO_BIN_EXE_bootsource`) and return its raw [`Output`]; [`import_json`] and
//! [`inspect_json`] add `--json`, insist on success and parse stdout. A failure is checked
//! with [`expect_error`]: exit status 1, an `error:` line, the phrases the test cares
//! about, and never a panic. [`max_rss`] runs a command under GNU `time` to bound its
//! memory. The container-disk fixtures here ([`disk_tar`], [`image`], [`serve`]) are the
//! one-layer images most tests need; odd cases build their own with [`super::oci`].
//!
//! ```ignore
//! let registry = Registry::start();
//! let source = serve(&registry, "os/img:1", &image(disk_tar("disk.img", &bytes), LayerType::OciTarZstd));
//! let report = import_json(&source, &target, &["--tls-verify=false"]);
//! assert_eq!(report.format, "qcow2");
//! assert_same_disk(&qcow2, &target, &report);
//! ```

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use super::disk;
use super::oci::{Artifact, Blob, Image, LayerType, Layout, Platform, Schema, Tar};
use super::push;
use super::registry::Registry;
use super::tools;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bootsource");

/// Flag for the plain-HTTP test registries.
pub const PLAIN_HTTP: &str = "--tls-verify=false";

/// `bootsource ARGS…`, ready to run: stable English messages, no inherited log level or
/// proxy (tests that want a proxy set it themselves).
pub fn command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    command_under(&[], args)
}

/// [`command`] run by `launcher` (e.g. `["prlimit", "--nofile=64", "--"]`), which
/// must exec it so that the child's pid is bootsource's.
pub fn command_under<I, S>(launcher: &[String], args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = match launcher.split_first() {
        None => Command::new(BIN),
        Some((program, launcher_args)) => {
            let mut c = Command::new(program);
            c.args(launcher_args).arg(BIN);
            c
        }
    };
    command.args(args).env("LC_ALL", "C").env_remove("RUST_LOG");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
        "REGISTRY_AUTH_FILE",
    ] {
        command.env_remove(var);
    }
    command
}

/// `bootsource import SOURCE --to TARGET EXTRA…`, whatever its exit status.
pub fn import(source: &str, target: &Path, extra: &[&str]) -> Output {
    tools::run_any_status(&mut import_command(source, target, extra))
}

/// The command [`import`] runs, for tests that add environment or a wrapper.
pub fn import_command(source: &str, target: &Path, extra: &[&str]) -> Command {
    let mut command = command(["import", source, "--to"]);
    command.arg(target).args(extra);
    command
}

/// `bootsource import … --json`, which must succeed; its parsed report.
pub fn import_json(source: &str, target: &Path, extra: &[&str]) -> ImportReport {
    let mut args = extra.to_vec();
    args.push("--json");
    let output = import(source, target, &args);
    ImportReport::parse(&expect_success(&output, "import"))
}

/// `bootsource inspect SOURCE EXTRA…`, whatever its exit status.
pub fn inspect(source: &str, extra: &[&str]) -> Output {
    let mut command = command(["inspect", source]);
    command.args(extra);
    tools::run_any_status(&mut command)
}

/// `bootsource inspect SOURCE --json EXTRA…`, which must succeed; the parsed JSON.
pub fn inspect_json(source: &str, extra: &[&str]) -> Value {
    let mut args = extra.to_vec();
    args.push("--json");
    let output = inspect(source, &args);
    let stdout = expect_success(&output, "inspect");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("inspect --json: {e}:\n{stdout}"))
}

/// Panics unless the command succeeded; its stdout.
pub fn expect_success(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bootsource {what} failed ({}):\n{stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Panics unless the command failed the way bootsource reports errors: exit status 1,
/// stderr opening with `error: `, no panic, and every one of `phrases` somewhere in
/// stderr (case-insensitive). Returns stderr.
pub fn expect_error(output: &Output, phrases: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // Shown with --nocapture, and with the failure of a later assertion.
    println!("bootsource stderr:\n{stderr}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit status 1 ({}); stderr:\n{stderr}\nstdout:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!stderr.contains("panicked"), "a panic:\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("error: ")),
        "no `error: ` line:\n{stderr}"
    );
    let lower = stderr.to_lowercase();
    for phrase in phrases {
        assert!(
            lower.contains(&phrase.to_lowercase()),
            "stderr does not mention {phrase:?}:\n{stderr}"
        );
    }
    stderr
}

/// The `hint:` line of an error, if any.
pub fn hint(stderr: &str) -> Option<&str> {
    stderr.lines().find_map(|l| l.strip_prefix("hint: "))
}

/// What `import --json` reports.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub digest: String,
    pub manifest_digest: String,
    /// `os/arch[/variant]`, if the report names a platform.
    pub platform: Option<String>,
    pub layer: String,
    pub disk: String,
    pub format: String,
    pub virtual_size: u64,
    pub downloaded: u64,
    pub written: u64,
    pub passes: u64,
    pub spool_peak: u64,
    /// The whole document, for fields not above.
    pub json: Value,
}

impl ImportReport {
    /// Parses the report, panicking on a missing or mistyped field.
    pub fn parse(stdout: &str) -> ImportReport {
        let json: Value = serde_json::from_str(stdout)
            .unwrap_or_else(|e| panic!("import --json is not JSON ({e}):\n{stdout}"));
        let string = |key: &str| {
            json[key]
                .as_str()
                .unwrap_or_else(|| panic!("import --json: no string {key:?} in {json}"))
                .to_owned()
        };
        let number = |key: &str| {
            json[key]
                .as_u64()
                .unwrap_or_else(|| panic!("import --json: no number {key:?} in {json}"))
        };
        for key in ["source", "seconds", "target", "platform"] {
            assert!(
                json.get(key).is_some(),
                "import --json: no {key:?} in {json}"
            );
        }
        ImportReport {
            digest: string("digest"),
            manifest_digest: string("manifest_digest"),
            platform: platform_string(&json["platform"]),
            layer: string("layer"),
            disk: string("disk"),
            format: string("format"),
            virtual_size: number("virtual_size"),
            downloaded: number("downloaded"),
            written: number("written"),
            passes: number("passes"),
            spool_peak: number("spool_peak"),
            json,
        }
    }
}

/// `{"os","architecture","variant"?}` (or a string) as `os/arch[/variant]`.
pub fn platform_string(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => {
            let mut s = format!(
                "{}/{}",
                value["os"].as_str().expect("platform os"),
                value["architecture"]
                    .as_str()
                    .expect("platform architecture")
            );
            if let Some(variant) = value["variant"].as_str() {
                s.push('/');
                s.push_str(variant);
            }
            Some(s)
        }
        other => panic!("unexpected platform {other}"),
    }
}

/// The oracle: `imported` is a raw file of exactly the disk's virtual size (as the report
/// says too) whose content `qemu-img compare` finds identical to `source`.
pub fn assert_same_disk(source: &Path, imported: &Path, report: &ImportReport) {
    let size = disk::virtual_size(source);
    assert_eq!(report.virtual_size, size, "reported virtual size");
    assert_eq!(
        fs::metadata(imported).unwrap().len(),
        size,
        "the imported file is not sized to the virtual size"
    );
    assert_eq!(disk::qemu_img_info(imported)["format"], "raw");
    assert!(
        disk::qemu_img_compare(source, imported),
        "{} differs from its source {}",
        imported.display(),
        source.display()
    );
}

/// The imported file is sparse: it occupies at most `max_fraction` of its length.
pub fn assert_sparse(imported: &Path, max_fraction: f64) {
    let len = fs::metadata(imported).unwrap().len();
    let allocated = disk::allocated_bytes(imported);
    assert!(
        (allocated as f64) <= (len as f64) * max_fraction,
        "{} occupies {allocated} of its {len} bytes (more than {max_fraction})",
        imported.display()
    );
}

/// Entries of `dir` (names), sorted: to check that a failed import left nothing behind.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A layer tar holding `disk/` and `disk/{name}` with `bytes`, as KubeVirt documents.
pub fn disk_tar(name: &str, bytes: &[u8]) -> Vec<u8> {
    Tar::new()
        .dir("disk/")
        .file(&format!("disk/{name}"), bytes)
        .finish()
}

/// A linux/amd64 OCI image with one layer: `tar` as `layer_type`.
pub fn image(tar: &[u8], layer_type: LayerType) -> Image {
    Image::new(
        Schema::Oci,
        Platform::linux_amd64(),
        vec![Blob::layer(tar, layer_type)],
    )
}

/// Pushes `artifact` as `repo:tag` (`repo_and_tag`) and returns its `docker://` reference.
pub fn serve(registry: &Registry, repo_and_tag: &str, artifact: &dyn Artifact) -> String {
    let (repo, tag) = repo_and_tag.rsplit_once(':').expect("repo:tag");
    push::push(registry, repo, tag, artifact);
    registry.reference(repo_and_tag)
}

/// Writes `artifact` as `tag` of a new OCI layout at `dir` and returns `oci:DIR:TAG`.
pub fn layout(dir: &Path, tag: &str, artifact: &dyn Artifact) -> String {
    let layout = Layout::create(dir);
    layout.add(artifact, tag);
    layout.reference(tag)
}

/// Runs `command` under GNU `time` and returns its output and its peak resident set
/// size in bytes (read from the file `time -o` writes, so stderr stays the program's).
pub fn max_rss(command: &Command) -> (Output, u64) {
    tools::require("time", "time");
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    let output = tools::run_any_status(&mut timed);
    let text = fs::read_to_string(report.path()).unwrap();
    // `time` writes "Command exited with non-zero status 1" before the number.
    let kib: u64 = text
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no max RSS in `time` output: {text:?}"));
    (output, kib * 1024)
}
