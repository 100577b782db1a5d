//! Running the real `bootsource daemon` on a test node, and watching it from outside.
//!
//! A [`Node`] is one temporary directory holding everything a daemon touches: its
//! `config.toml` (written from [`NodeConfig`]), the state directory, the storage roots
//! and the daemon logs. [`Node::start`] writes the config, starts
//! `bootsource daemon --config …` with its metrics endpoint on a port picked here (the
//! config cannot say "any port" and still tell us which) and waits until `/healthz`
//! answers and the daemon logs that it is ready. The [`Daemon`] it returns sends
//! signals, scrapes `/metrics` ([`Metrics`]), runs `bootsource status --json` and waits
//! for conditions with a deadline ([`Daemon::wait_for`]); dropping it kills the process.
//! [`Node::launcher`] starts the daemon under another program that execs it (e.g.
//! `prlimit --nofile=…`). Nothing is asserted after a fixed sleep: every wait polls until its condition holds
//! or [`WAIT`] runs out, then panics with the daemon's log.
//!
//! ```ignore
//! let registry = Registry::start();
//! let v1 = TestDisk::new(dir.path(), "v1", 4 << 20, 1);
//! v1.push(&registry, "os/fedora:latest");
//! let mut node = Node::new();
//! node.config.insecure(&registry.host_port());
//! node.config.source("fedora", &registry.reference("os/fedora:latest"));
//! let daemon = node.start();
//! daemon.wait_for_current("fedora", &v1.digest);
//! assert!(v1.same_as(&node.current_link("fedora")));
//! ```
//!
//! Declare the node before the daemon (locals drop in reverse order; struct fields in
//! order), so the daemon is killed before the node's directory is removed.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

use super::bootsource::{self as bs, disk_tar, expect_success, image};
use super::disk;
use super::oci::{Image, LayerType};
use super::push;
use super::registry::Registry;
use super::tools;

/// How long any awaited condition may take (a loaded 2-core machine, debug build).
pub const WAIT: Duration = Duration::from_secs(30);
/// How often a condition is checked.
const TICK: Duration = Duration::from_millis(100);
/// Attempts at a free metrics port: another test may bind the one we picked.
const PORT_ATTEMPTS: usize = 5;
/// The log line the daemon prints once it serves metrics and has applied its config.
const READY_LINE: &str = "bootsource daemon ready";

/// A `[storage.NAME]` table.
#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    /// `dir`, `reflink`, `btrfs` or `block`.
    pub kind: String,
    pub path: PathBuf,
    pub format: Option<String>,
}

/// A `[[source]]` table.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub image: String,
    pub auto_update: bool,
    pub imports_to_keep: Option<usize>,
    pub storage: Option<String>,
    pub interval: Option<String>,
    /// `checksum` / `checksum_url` of an `http(s)://` source.
    pub checksum: Option<String>,
    pub checksum_url: Option<String>,
}

/// What [`Node`] writes as `config.toml`.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub namespace: Option<String>,
    pub default_schedule: String,
    pub insecure_registries: Vec<String>,
    pub state_dir: PathBuf,
    pub metrics_port: u16,
    pub storage: Vec<Backend>,
    pub sources: Vec<Source>,
    /// Top-level `key = value` lines, written before any table (`import_timeout`, …).
    pub settings: Vec<String>,
    /// Raw TOML appended at the end (for configs the daemon must refuse).
    pub extra: String,
}

impl NodeConfig {
    /// Adds `host_port` to `insecure_registries` (plain-HTTP test registries).
    pub fn insecure(&mut self, host_port: &str) -> &mut Self {
        self.insecure_registries.push(host_port.to_owned());
        self
    }

    /// Adds a source polled on the default schedule, with the config's defaults.
    pub fn source(&mut self, name: &str, image: &str) -> &mut Source {
        self.sources.push(Source {
            name: name.to_owned(),
            image: image.to_owned(),
            auto_update: true,
            imports_to_keep: None,
            storage: None,
            interval: None,
            checksum: None,
            checksum_url: None,
        });
        self.sources.last_mut().unwrap()
    }

    /// The source called `name`.
    pub fn source_mut(&mut self, name: &str) -> &mut Source {
        self.sources
            .iter_mut()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no source {name:?} in the test config"))
    }

    /// Adds a `[storage.NAME]` backend.
    pub fn backend(&mut self, name: &str, kind: &str, path: &Path) -> &mut Backend {
        self.storage.push(Backend {
            name: name.to_owned(),
            kind: kind.to_owned(),
            path: path.to_owned(),
            format: None,
        });
        self.storage.last_mut().unwrap()
    }

    /// Sets a top-level key to a raw TOML value (`"2s"` with its quotes).
    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.settings.push(format!("{key} = {value}"));
        self
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let mut t = String::new();
        for line in &self.settings {
            writeln!(t, "{line}").unwrap();
        }
        if let Some(ns) = &self.namespace {
            writeln!(t, "namespace = {}", quote(ns)).unwrap();
        }
        writeln!(t, "metrics_address = \"127.0.0.1:{}\"", self.metrics_port).unwrap();
        writeln!(t, "default_schedule = {}", quote(&self.default_schedule)).unwrap();
        let insecure: Vec<String> = self.insecure_registries.iter().map(|r| quote(r)).collect();
        writeln!(t, "insecure_registries = [{}]", insecure.join(", ")).unwrap();
        writeln!(t, "state_dir = {}", quote_path(&self.state_dir)).unwrap();
        for b in &self.storage {
            writeln!(t, "\n[storage.{}]", b.name).unwrap();
            writeln!(t, "kind = {}", quote(&b.kind)).unwrap();
            writeln!(t, "path = {}", quote_path(&b.path)).unwrap();
            if let Some(format) = &b.format {
                writeln!(t, "format = {}", quote(format)).unwrap();
            }
        }
        for s in &self.sources {
            writeln!(t, "\n[[source]]").unwrap();
            writeln!(t, "name = {}", quote(&s.name)).unwrap();
            writeln!(t, "image = {}", quote(&s.image)).unwrap();
            writeln!(t, "auto_update = {}", s.auto_update).unwrap();
            if let Some(keep) = s.imports_to_keep {
                writeln!(t, "imports_to_keep = {keep}").unwrap();
            }
            if let Some(storage) = &s.storage {
                writeln!(t, "storage = {}", quote(storage)).unwrap();
            }
            if let Some(interval) = &s.interval {
                writeln!(t, "interval = {}", quote(interval)).unwrap();
            }
            if let Some(checksum) = &s.checksum {
                writeln!(t, "checksum = {}", quote(checksum)).unwrap();
            }
            if let Some(url) = &s.checksum_url {
                writeln!(t, "checksum_url = {}", quote(url)).unwrap();
            }
        }
        t.push_str(&self.extra);
        t
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn quote_path(p: &Path) -> String {
    quote(p.to_str().expect("temporary paths are UTF-8"))
}

/// A free 127.0.0.1 port right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One node's directory: config, state, storage and logs.
#[derive(Debug)]
pub struct Node {
    dir: TempDir,
    pub config: NodeConfig,
    /// A command the daemon is started under, which execs it (`prlimit … --`).
    pub launcher: Vec<String>,
    starts: usize,
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

impl Node {
    /// A node with state in `state/`, one `dir` backend `local` in `storage/`, a 1 h
    /// default schedule (tests trigger polls with SIGHUP) and no sources yet.
    pub fn new() -> Node {
        let dir = tempfile::Builder::new().prefix("node-").tempdir().unwrap();
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).unwrap();
        let config = NodeConfig {
            namespace: None,
            default_schedule: "1h".into(),
            insecure_registries: Vec::new(),
            state_dir: dir.path().join("state"),
            metrics_port: free_port(),
            storage: vec![Backend {
                name: "local".into(),
                kind: "dir".into(),
                path: storage,
                format: None,
            }],
            sources: Vec::new(),
            settings: Vec::new(),
            extra: String::new(),
        };
        Node {
            dir,
            config,
            launcher: Vec::new(),
            starts: 0,
        }
    }

    /// The node's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Writes [`Self::config`] to `config.toml`.
    pub fn write_config(&self) {
        fs::write(self.config_path(), self.config.to_toml()).unwrap();
    }

    /// Writes the config and starts a daemon on it; waits until it is ready.
    pub fn start(&mut self) -> Daemon {
        self.start_with_env(&[])
    }

    /// [`Self::start`] with extra environment variables (e.g. `NOTIFY_SOCKET`).
    pub fn start_with_env(&mut self, env: &[(&str, &str)]) -> Daemon {
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            self.write_config();
            self.starts += 1;
            let log = self.dir.path().join(format!("daemon-{}.log", self.starts));
            let daemon = Daemon::spawn(self, &log, env);
            match daemon.wait_ready() {
                Ok(()) => return daemon,
                Err(text) if text.contains("listening on") => {
                    // Someone took the port between our pick and the daemon's bind.
                    last_log = text;
                    self.config.metrics_port = free_port();
                }
                Err(text) => panic!("bootsource daemon did not become ready:\n{text}"),
            }
        }
        panic!("bootsource daemon found no free metrics port:\n{last_log}");
    }

    /// `bootsource status --json`, daemon running or not.
    pub fn status(&self) -> Value {
        status_json(&self.config_path())
    }

    /// `bootsource status` as a person reads it, which must succeed.
    pub fn status_text(&self) -> String {
        let mut command = bs::command(["status", "--config"]);
        command.arg(self.config_path());
        expect_success(&tools::run_any_status(&mut command), "status")
    }

    /// `bootsource poll`, which must succeed.
    pub fn poll(&self) {
        poll(&self.config_path());
    }

    /// Writes the config and asks the daemon to reload it (`bootsource poll`).
    pub fn reload(&self) {
        self.write_config();
        self.poll();
    }

    /// `bootsource clone NAME --to TARGET`, whatever its exit status.
    pub fn clone_to(&self, name: &str, target: &Path) -> Output {
        let mut command = bs::command(["clone", name, "--to"]);
        command.arg(target).arg("--config").arg(self.config_path());
        tools::run_any_status(&mut command)
    }

    /// `<state>/<namespace>/<source>/current`.
    pub fn current_link(&self, source: &str) -> PathBuf {
        let ns = self.config.namespace.as_deref().unwrap_or("os-images");
        self.config.state_dir.join(ns).join(source).join("current")
    }

    /// Every entry inside a `.staging` directory under the storage roots and the
    /// state directory: what a finished, cancelled or crashed import must not leave.
    pub fn staging_leftovers(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.config.storage.iter().map(|b| b.path.clone()).collect();
        roots.push(self.config.state_dir.clone());
        let mut found = Vec::new();
        for root in roots {
            collect_staging(&root, false, &mut found);
        }
        found.sort();
        found.dedup();
        found
    }

    /// Volumes the storage catalog (`<state>/catalog.json`) still records as being
    /// staged: an import that ended, however it ended, leaves none. Read from the file
    /// because `status --json` does not show them once the daemon is gone.
    pub fn catalog_staging(&self) -> Vec<String> {
        let path = self.config.state_dir.join("catalog.json");
        let Ok(bytes) = fs::read(&path) else {
            return Vec::new();
        };
        let catalog: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        catalog["volumes"]
            .as_array()
            .unwrap_or_else(|| panic!("no volumes in {}: {catalog}", path.display()))
            .iter()
            .filter(|v| v["state"] == "staging")
            .map(|v| v["volume"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn collect_staging(dir: &Path, inside: bool, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if inside {
            found.push(path.clone());
        }
        let is_dir = entry
            .file_type()
            .is_ok_and(|t| t.is_dir() && !t.is_symlink());
        if is_dir {
            collect_staging(&path, inside || entry.file_name() == ".staging", found);
        }
    }
}

/// `bootsource status --json --config CONFIG`, which must succeed; parsed.
pub fn status_json(config: &Path) -> Value {
    let mut command = bs::command(["status", "--json", "--config"]);
    command.arg(config);
    let output = tools::run_any_status(&mut command);
    let stdout = expect_success(&output, "status --json");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("status --json: {e}:\n{stdout}"))
}

/// `bootsource poll --config CONFIG`, which must succeed.
pub fn poll(config: &Path) {
    let mut command = bs::command(["poll", "--config"]);
    command.arg(config);
    expect_success(&tools::run_any_status(&mut command), "poll");
}

/// The entry of source `name` in a `status --json` document.
pub fn source_of<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["sources"]
        .as_array()
        .unwrap_or_else(|| panic!("status --json has no sources array: {status}"))
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("status --json has no source {name:?}: {status}"))
}

/// The digests of a source's `versions`, oldest first.
pub fn version_digests(source: &Value) -> Vec<String> {
    source["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("no versions array: {source}"))
        .iter()
        .map(|v| v["digest"].as_str().expect("version digest").to_owned())
        .collect()
}

/// The current version's digest, if any.
pub fn current_digest(source: &Value) -> Option<String> {
    source["current"]["digest"].as_str().map(str::to_owned)
}

/// A running `bootsource daemon`; killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Mutex<Option<Child>>,
    pid: u32,
    config: PathBuf,
    port: u16,
    log: PathBuf,
    agent: ureq::Agent,
}

impl Daemon {
    fn spawn(node: &Node, log: &Path, env: &[(&str, &str)]) -> Daemon {
        let (config, port) = (&node.config_path(), node.config.metrics_port);
        let file = File::create(log).unwrap();
        let mut command = bs::command_under(&node.launcher, ["daemon", "--config"]);
        command
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bs::BIN));
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        Daemon {
            pid: child.id(),
            child: Mutex::new(Some(child)),
            config: config.to_owned(),
            port,
            log: log.to_owned(),
            agent,
        }
    }

    /// Waits for `/healthz` and the ready line; `Err` carries the log.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.try_wait() {
                return Err(format!(
                    "exited with {status} before it was ready\n{}",
                    self.log()
                ));
            }
            if self.healthy() && self.log().contains(READY_LINE) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not ready within {WAIT:?}\n{}", self.log()));
            }
            sleep(TICK);
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether `/healthz` answers `ok` now.
    pub fn healthy(&self) -> bool {
        self.get("/healthz")
            .is_some_and(|(code, body)| code == 200 && body.trim() == "ok")
    }

    /// How many file descriptors the daemon has open (`/proc/PID/fd`).
    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap_or_else(|e| panic!("/proc/{}/fd: {e}", self.pid))
            .count()
    }

    /// The daemon's resident set size in bytes (`VmRSS` of `/proc/PID/status`).
    pub fn rss(&self) -> u64 {
        let path = format!("/proc/{}/status", self.pid);
        let status = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {path}"));
        kib * 1024
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.pid).unwrap());
        kill(pid, signal).unwrap_or_else(|e| panic!("kill -{signal} {}: {e}", self.pid));
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap();
        child.as_mut()?.try_wait().unwrap()
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill9(&self) {
        if let Some(child) = self.child.lock().unwrap().as_mut() {
            let _ = child.kill();
            child.wait().unwrap();
        }
    }

    /// The file the daemon logs to, as written (colours and all).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// This daemon's log so far (without colours).
    pub fn log(&self) -> String {
        strip_ansi(&fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// `GET http://127.0.0.1:PORT{path}`: status and body, `None` if nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut response = self.agent.get(&url).call().ok()?;
        let code = response.status().as_u16();
        let body = response.body_mut().read_to_string().ok()?;
        Some((code, body))
    }

    /// Scrapes `/metrics`.
    pub fn metrics(&self) -> Metrics {
        match self.get("/metrics") {
            Some((200, body)) => Metrics::parse(&body),
            other => panic!(
                "GET /metrics answered {other:?}\n{}",
                self.describe_failure()
            ),
        }
    }

    /// `bootsource_config_reloads_total{result}`: `success` or `failure`.
    pub fn reloads(&self, result: &str) -> f64 {
        self.metrics()
            .value("bootsource_config_reloads_total", &[("result", result)])
    }

    /// `bootsource status --json` with this daemon's config.
    pub fn status(&self) -> Value {
        status_json(&self.config)
    }

    /// This daemon's entry for source `name` in `status --json`.
    pub fn source_status(&self, name: &str) -> Value {
        source_of(&self.status(), name).clone()
    }

    /// Polls `check` until it returns `Some`, for at most [`WAIT`]; panics with `what`
    /// and the daemon's log if it does not, or if the daemon exits meanwhile.
    pub fn wait_for<T>(&self, what: &str, check: impl FnMut() -> Option<T>) -> T {
        self.wait_for_within(what, WAIT, check)
    }

    /// [`Self::wait_for`] with another deadline.
    pub fn wait_for_within<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if let Some(status) = self.try_wait() {
                panic!(
                    "waiting for {what}: the daemon exited with {status}\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "waiting for {what}: not within {timeout:?}\n{}",
                    self.describe_failure()
                );
            }
            sleep(TICK);
        }
    }

    /// Waits until source `name`'s current version has `digest`; its status entry.
    pub fn wait_for_current(&self, name: &str, digest: &str) -> Value {
        self.wait_for(&format!("{name} to have current version {digest}"), || {
            let source = self.source_status(name);
            (current_digest(&source).as_deref() == Some(digest)).then_some(source)
        })
    }

    /// The log and the status, for a failure message.
    fn describe_failure(&self) -> String {
        let mut command = bs::command(["status", "--json", "--config"]);
        command.arg(&self.config);
        let status = tools::run_any_status(&mut command);
        format!(
            "--- bootsource status --json ---\n{}{}\n--- daemon log ---\n{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr),
            self.log()
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            // Shown with the failure: what the daemon did up to then.
            println!(
                "--- log of bootsource daemon (pid {}) ---\n{}",
                self.pid,
                self.log()
            );
        }
    }
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A scrape of `/metrics`.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Metrics {
    /// Parses the text exposition (comments skipped, label values unescaped).
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| parse_sample(l).unwrap_or_else(|| panic!("bad metrics line {l:?}")))
            .collect();
        Metrics {
            samples,
            text: text.to_owned(),
        }
    }

    /// The value of the one series `name` whose labels include `labels`; `None` if no
    /// series matches, a panic if several do.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<&Sample> = self.matching(name, labels).collect();
        assert!(
            matching.len() <= 1,
            "several series {name}{labels:?}: {matching:?}"
        );
        matching.first().map(|s| s.value)
    }

    /// [`Self::get`], 0 when the series does not exist (yet): a counter never
    /// incremented is not exported.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Whether a metric family `name` is exported (its `# TYPE` line).
    pub fn has_family(&self, name: &str) -> bool {
        self.text.lines().any(|l| {
            l.strip_prefix("# TYPE ")
                .is_some_and(|r| r.split(' ').next() == Some(name))
        })
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series.to_owned(), Vec::new()),
        Some((name, rest)) => (name.to_owned(), parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn parse_labels(mut text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.push((key.trim_start_matches(',').to_owned(), value));
        text = rest[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

/// A container disk of a test: the raw disk it holds and the image.
#[derive(Debug)]
pub struct TestDisk {
    /// The raw disk, the oracle for `qemu-img compare`.
    pub raw: PathBuf,
    pub image: Image,
    /// The manifest digest (what the tag resolves to).
    pub digest: String,
}

impl TestDisk {
    /// A `size`-byte raw disk from the harness's generator (`seed` tells versions
    /// apart) in a zstd layer, stored as `dir/{name}.raw`.
    pub fn new(dir: &Path, name: &str, size: u64, seed: u64) -> TestDisk {
        let raw = dir.join(format!("{name}.raw"));
        disk::write_raw_disk(&raw, size, seed);
        TestDisk::from_raw(raw, LayerType::OciTarZstd)
    }

    /// A `size`-byte disk of incompressible bytes, in an uncompressed layer: its layer
    /// is as large as the disk, so a throttled download takes `size / rate`.
    pub fn incompressible(dir: &Path, name: &str, size: u64, seed: u64) -> TestDisk {
        let raw = generated(dir, name, size, seed, |random, sixteen| {
            sixteen.copy_from_slice(&random.to_le_bytes());
        });
        TestDisk::from_raw(raw, LayerType::OciTar)
    }

    /// A `size`-byte disk of random letters from a 16-letter alphabet, in a gzip layer:
    /// half its size, all literals, so that inflating it is slow work (hundreds of
    /// MB/s, against GB/s for zeros or stored blocks) and most of what its import does.
    pub fn letters(dir: &Path, name: &str, size: u64, seed: u64) -> TestDisk {
        let raw = generated(dir, name, size, seed, |random, sixteen| {
            for (i, byte) in sixteen.iter_mut().enumerate() {
                *byte = b'a' + ((random >> (4 * i)) & 15) as u8;
            }
        });
        TestDisk::from_raw(raw, LayerType::OciTarGzip)
    }

    fn from_raw(raw: PathBuf, layer: LayerType) -> TestDisk {
        let tar = disk_tar("disk.img", &fs::read(&raw).unwrap());
        let image = image(&tar, layer);
        let digest = super::oci::Artifact::digest(&image).to_owned();
        TestDisk { raw, image, digest }
    }

    /// The layer blob's size in bytes.
    pub fn layer_size(&self) -> u64 {
        self.image.layers[0].size()
    }

    /// Pushes the image as `repo:tag` (`repo_and_tag`); the manifest digest.
    pub fn push(&self, registry: &Registry, repo_and_tag: &str) -> String {
        let (repo, tag) = repo_and_tag.rsplit_once(':').expect("repo:tag");
        push::push(registry, repo, tag, &self.image)
    }

    /// Whether `imported` holds the same disk.
    pub fn same_as(&self, imported: &Path) -> bool {
        fs::metadata(imported).is_ok_and(|m| m.len() == fs::metadata(&self.raw).unwrap().len())
            && disk::qemu_img_compare(&self.raw, imported)
    }
}

/// Writes `dir/{name}.raw`, `size` bytes made 16 at a time by `fill` from a 128-bit
/// xorshift draw (fast enough in a debug build); returns its path.
fn generated(
    dir: &Path,
    name: &str,
    size: u64,
    seed: u64,
    fill: impl Fn(u128, &mut [u8]),
) -> PathBuf {
    let raw = dir.join(format!("{name}.raw"));
    let mut file = File::create(&raw).unwrap();
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..size / block.len() as u64 {
        for sixteen in block.chunks_mut(16) {
            let random = u128::from(next()) << 64 | u128::from(next());
            fill(random, sixteen);
        }
        file.write_all(&block).unwrap();
    }
    file.sync_all().unwrap();
    raw
}
