//! Kill the process between every pair of durable steps, restart, and check that the
//! previous current version is intact and nothing is left over.
//!
//! The parent publishes a first version, then for step k = 0, 1, … re-runs this test
//! binary as a child (the `crash_child` test, which does nothing unless
//! `BOOTSOURCE_STORAGE_CRASH_CHILD` is set). The child installs a step hook, imports
//! the next digest, commits it and collects garbage (`imports_to_keep = 1`); at step k
//! the hook reports and blocks, and the parent kills the child with SIGKILL. The parent
//! then opens the store (recovery), checks it, and normalises it for the next round.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use bootsource_storage::{
    BackendConfig, BackendKind, Committed, Digest, Stage, Store, StoreConfig,
};
use serde::{Deserialize, Serialize};

use crate::common::{
    Loop, Mount, SIZE, SIZED, assert_image, catalog_json, digest, import, names_in, seed_of,
    write_image,
};

const CHILD_ENV: &str = "BOOTSOURCE_STORAGE_CRASH_CHILD";
const SOURCE: &str = "fedora";

#[derive(Serialize, Deserialize)]
struct ChildSpec {
    config: StoreConfig,
    backend: String,
    seed: u8,
    kill_at: Option<usize>,
    /// Stage under a provisional digest and commit with the real one (`commit_as`), as
    /// a file downloaded without a checksum is.
    provisional: bool,
    /// A step at which the child pauses for a second, to let the parent look.
    pause_at: Option<String>,
}

/// The digest a provisional import of `seed` is staged under.
fn provisional(seed: u8) -> Digest {
    digest(seed | 0x80)
}

static STEP: AtomicUsize = AtomicUsize::new(0);
static KILL_AT: AtomicUsize = AtomicUsize::new(usize::MAX);
static PAUSE_AT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn report_step(name: &'static str) {
    let n = STEP.fetch_add(1, Ordering::SeqCst);
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "STEP {n} {name}");
    let _ = err.flush();
    drop(err);
    if PAUSE_AT.get().is_some_and(|p| p == name) {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    if n == KILL_AT.load(Ordering::SeqCst) {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// The child's side: import one digest, commit, collect.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: ChildSpec = serde_json::from_str(&spec).unwrap();
    KILL_AT.store(spec.kill_at.unwrap_or(usize::MAX), Ordering::SeqCst);
    if let Some(pause) = spec.pause_at {
        PAUSE_AT.set(pause).unwrap();
    }
    bootsource_storage::set_step_hook(report_step);
    let store = Store::open(spec.config).unwrap();
    let staged = match spec.provisional {
        true => provisional(spec.seed),
        false => digest(spec.seed),
    };
    let Stage::Staging(staging) = store
        .stage(SOURCE, &spec.backend, &staged, SIZED, 1)
        .unwrap()
    else {
        panic!("digest {} already present", spec.seed);
    };
    write_image(&*staging.place(), spec.seed);
    report_step("test.image-written");
    if spec.provisional {
        let committed = store.commit_as(staging, &digest(spec.seed)).unwrap();
        assert!(matches!(committed, Committed::New(v) if v.digest == digest(spec.seed)));
    } else {
        store.commit(staging).unwrap();
    }
    store.gc(SOURCE, 1).unwrap();
    report_step("test.done");
}

/// Runs the child; kills it at step `kill_at`. Returns the step names it reported.
fn run_child(spec: &ChildSpec) -> Vec<String> {
    run_child_watching(spec, |_| {})
}

/// [`run_child`], calling `watch` with each step's name as the child reports it.
fn run_child_watching(spec: &ChildSpec, mut watch: impl FnMut(&str)) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, serde_json::to_string(spec).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut steps = Vec::new();
    let mut other = Vec::new();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        let line = line.unwrap();
        let Some(step) = line.find("STEP ").map(|i| line[i + 5..].to_owned()) else {
            other.push(line);
            continue;
        };
        let (n, name) = step.split_once(' ').unwrap();
        watch(name);
        steps.push(name.to_owned());
        if Some(n.parse::<usize>().unwrap()) == spec.kill_at {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    match spec.kill_at {
        Some(k) => assert_eq!(
            steps.len(),
            k + 1,
            "child ended before step {k}: {status}\n{}",
            other.join("\n")
        ),
        None => assert!(
            status.success(),
            "child failed: {status}\n{}",
            other.join("\n")
        ),
    }
    steps
}

/// After recovery: one current version (the old or the new one) with its content, no
/// staging or removing records, nothing in `.staging/`, no volume the catalog does not
/// list, and the `current` link pointing at the current version.
fn assert_recovered(config: &StoreConfig, old_seed: u8, new_seed: u8, step: &str) {
    let store = Store::open(config.clone()).unwrap();
    let status = store.source_status(SOURCE).unwrap();
    let current = status
        .current
        .unwrap_or_else(|| panic!("no current version after a kill at {step}"));
    let seed = seed_of(&current.digest);
    assert!(
        seed == old_seed || seed == new_seed,
        "current is {seed} after a kill at {step}"
    );
    for v in &status.versions {
        assert_image(&v.path, seed_of(&v.digest));
    }
    assert_eq!(
        std::fs::read_link(store.current_link(SOURCE)).unwrap(),
        current.path,
        "at {step}"
    );
    assert!(
        status.importing.is_none(),
        "staging left after a kill at {step}"
    );
    let catalog = catalog_json(&config.state_dir);
    for r in catalog["volumes"].as_array().unwrap() {
        assert_eq!(r["state"], "ready", "after a kill at {step}: {r}");
    }
    if let Some(root) = config.backends.values().find_map(|b| b.path.clone()) {
        let dir = root.join("os-images").join(SOURCE);
        assert_eq!(
            names_in(&dir.join(".staging")),
            Vec::<String>::new(),
            "after a kill at {step}"
        );
        let mut listed: Vec<String> = status
            .versions
            .iter()
            .map(|v| v.volume.to_string())
            .chain([".staging".to_owned()])
            .collect();
        listed.sort();
        assert_eq!(
            names_in(&dir),
            listed,
            "volumes on disk after a kill at {step}"
        );
    }
    assert!(
        names_in(&config.state_dir)
            .iter()
            .all(|n| !n.ends_with(".tmp"))
    );
}

fn crash_matrix(config: StoreConfig, backend: &str) {
    crash_matrix_of(config, backend, false);
}

fn crash_matrix_of(config: StoreConfig, backend: &str, provisional: bool) {
    let store = Store::open(config.clone()).unwrap();
    import(&store, SOURCE, backend, 1);
    drop(store);
    let mut seed = 2;
    let dry = ChildSpec {
        config: config.clone(),
        backend: backend.into(),
        seed,
        kill_at: None,
        provisional,
        pause_at: None,
    };
    let steps = run_child(&dry);
    assert!(steps.len() > 10, "{steps:?}");
    eprintln!(
        "{:?}: {} steps: {steps:?}",
        config.backends["b"].kind,
        steps.len()
    );
    for k in 0..steps.len() - 1 {
        seed += 1;
        let old_seed = seed_of(
            &Store::open(config.clone())
                .unwrap()
                .current(SOURCE)
                .unwrap()
                .unwrap()
                .digest,
        );
        let spec = ChildSpec {
            config: config.clone(),
            backend: backend.into(),
            seed,
            kill_at: Some(k),
            provisional,
            pause_at: None,
        };
        let reported = run_child(&spec);
        assert_eq!(reported, steps[..=k], "the same steps each run");
        assert_recovered(&config, old_seed, seed, &format!("step {k} ({})", steps[k]));
        // Back to a single version, so every run takes the same steps.
        Store::open(config.clone()).unwrap().gc(SOURCE, 1).unwrap();
    }
}

/// `status` runs in another process than the daemon: what it reads of the catalog and
/// the `current` link it names agree, even while a commit is between the two.
#[test]
fn a_reader_during_a_commit_sees_the_link_the_catalog_names() {
    let tmp = tempfile::tempdir().unwrap();
    let config = files_config(
        &tmp.path().join("state"),
        BackendKind::Dir,
        tmp.path().join("images"),
    );
    import(&Store::open(config.clone()).unwrap(), SOURCE, "b", 1);
    let spec = ChildSpec {
        config: config.clone(),
        backend: "b".into(),
        seed: 2,
        kill_at: None,
        provisional: false,
        pause_at: Some("commit.published".into()),
    };
    let mut seen = None;
    run_child_watching(&spec, |step| {
        if step == "commit.published" {
            let reader = Store::open_read_only(config.clone()).unwrap();
            let current = reader.current(SOURCE).unwrap().unwrap();
            let link = std::fs::read_link(reader.current_link(SOURCE)).unwrap();
            seen = Some((current.path, link));
        }
    });
    let (current, link) = seen.expect("the child reached commit.published");
    assert_eq!(link, current, "the catalog and the current link disagreed");
}

fn files_config(state: &Path, kind: BackendKind, root: PathBuf) -> StoreConfig {
    StoreConfig::new(state).with_backend("b", BackendConfig::files(kind, root))
}

#[test]
fn crash_at_every_step_dir() {
    let tmp = tempfile::tempdir().unwrap();
    crash_matrix(
        files_config(
            &tmp.path().join("state"),
            BackendKind::Dir,
            tmp.path().join("images"),
        ),
        "b",
    );
}

/// A version staged under a provisional digest and committed under the sha256 of its
/// bytes: at every step the old version survives, and the provisional digest never
/// names a published version.
#[test]
fn crash_at_every_step_dir_provisional_digest() {
    let tmp = tempfile::tempdir().unwrap();
    crash_matrix_of(
        files_config(
            &tmp.path().join("state"),
            BackendKind::Dir,
            tmp.path().join("images"),
        ),
        "b",
        true,
    );
}

#[test]
fn commit_as_a_digest_already_kept_publishes_that_version_again() {
    let tmp = tempfile::tempdir().unwrap();
    let config = files_config(
        &tmp.path().join("state"),
        BackendKind::Dir,
        tmp.path().join("images"),
    );
    let store = Store::open(config).unwrap();
    import(&store, SOURCE, "b", 1);
    import(&store, SOURCE, "b", 2);
    let Stage::Staging(staging) = store.stage(SOURCE, "b", &provisional(1), SIZED, 3).unwrap()
    else {
        panic!("provisional digest present");
    };
    write_image(&*staging.place(), 1);
    let committed = store.commit_as(staging, &digest(1)).unwrap();
    let Committed::AlreadyPresent(version) = committed else {
        panic!("{committed:?}");
    };
    assert_eq!(version.digest, digest(1));
    let status = store.source_status(SOURCE).unwrap();
    assert_eq!(status.current.unwrap().digest, digest(1));
    assert_eq!(status.versions.len(), 2, "the staged copy is gone");
    assert!(status.importing.is_none());
}

#[test]
fn crash_at_every_step_reflink() {
    let xfs = Mount::xfs();
    crash_matrix(
        files_config(
            &xfs.path.join("state"),
            BackendKind::Reflink,
            xfs.path.join("images"),
        ),
        "b",
    );
}

#[test]
fn crash_at_every_step_btrfs() {
    let btrfs = Mount::btrfs();
    crash_matrix(
        files_config(
            &btrfs.path.join("state"),
            BackendKind::Btrfs,
            btrfs.path.join("images"),
        ),
        "b",
    );
}

#[test]
fn crash_at_every_step_block() {
    // Two devices for two versions: a device leaked by a crash would exhaust the pool.
    let a = Loop::new(SIZE);
    let b = Loop::new(SIZE);
    let tmp = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(tmp.path().join("state")).with_backend(
        "b",
        BackendConfig::block(vec![a.dev.clone(), b.dev.clone()]),
    );
    crash_matrix(config, "b");
}
