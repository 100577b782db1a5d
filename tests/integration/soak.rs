//! The soak (issue 8): the daemon through many poll/import cycles against the fault
//! proxy while tags move, then checks that nothing leaked and nothing is wrong.
//!
//! Four sources poll every second, each its own tag; the test moves the tags between
//! five tiny images (1 MiB disks) every few polls, so imports happen all the time, and
//! the proxy injects a random fault into one request in four: cuts, 500/502/503, 429,
//! stalls, other bytes on resumed ranges, lying lengths, error bodies with terminal
//! control sequences. Each published version is
//! compared byte for byte with its image while the run goes on. At the end the faults
//! stop, every source must settle on its tag's image, and: the daemon's open file
//! descriptors and RSS are about where they were after the first 100 cycles (printed),
//! no staging volume is left, the catalog matches the files, every kept version is
//! byte-equal to its image.
//!
//! Not part of the default run (it takes minutes): `scripts/soak [--cycles N] [--seed S]`.
//! A cycle is one poll of one source (and the import it starts, if the tag moved).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::common::daemon::{Daemon, Node, TestDisk, current_digest, source_of};
use crate::common::faults::{Chaos, Fault, FaultProxy, HOSTILE_BODY};
use crate::common::oci::Artifact as _;
use crate::common::push;
use crate::common::registry::Registry;

const SOURCES: usize = 4;
const IMAGES: usize = 5;
const DISK_SIZE: u64 = 1 << 20;
/// A tag moves after this many polls (of any source).
const POLLS_PER_MOVE: f64 = 3.0;
/// Figures are printed this often (in cycles); the first time is the baseline for the
/// end: by then the allocator, the runtime's threads and the connection pools have
/// grown to their working size under faults.
const REPORT_EVERY: f64 = 100.0;
/// How often the run looks at the daemon.
const TICK: Duration = Duration::from_millis(200);
/// Open descriptors the daemon may have more at the end than at the start (a pooled
/// connection or two, the metrics scrape in flight).
const FD_SLACK: usize = 8;
/// Growth of the RSS allowed between start and end, in bytes.
const RSS_SLACK: u64 = 16 << 20;

/// The faults the proxy draws from.
fn chaos_faults() -> Vec<Fault> {
    vec![
        Fault::CutAfter(200),
        Fault::CutAfter(64 << 10),
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        Fault::Stall {
            after: 100,
            pause: Duration::from_millis(300),
        },
        Fault::AlterResumedRange(16),
        Fault::LyingLength(-100),
        Fault::LyingLength(100),
        Fault::Answer(500, HOSTILE_BODY.into()),
    ]
}

/// Open descriptors and resident memory of the daemon.
#[derive(Debug, Clone, Copy)]
struct Sample {
    fds: usize,
    rss: u64,
}

impl Sample {
    fn take(daemon: &Daemon) -> Sample {
        Sample {
            fds: daemon.open_fds(),
            rss: daemon.rss(),
        }
    }
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = self.rss as f64 / f64::from(1 << 20);
        write!(f, "{} open fds, RSS {mib:.1} MiB", self.fds)
    }
}

struct Soak {
    registry: Registry,
    proxy: FaultProxy,
    _dir: TempDir,
    images: Vec<TestDisk>,
    /// Each image's raw bytes, the oracle.
    raw: Vec<Vec<u8>>,
    node: Node,
    daemon: Daemon,
    /// The image each source's tag points at.
    tags: Vec<usize>,
    rng: u64,
    moves: usize,
    /// Versions (volume, created) compared with their image so far, and those removed
    /// before we could. A digest imported again after collection has the same volume.
    verified: BTreeSet<(String, String)>,
    gone_unverified: usize,
}

impl Soak {
    fn start(seed: u64) -> Soak {
        let registry = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<TestDisk> = (0..IMAGES as u64)
            .map(|i| TestDisk::new(dir.path(), &format!("img{i}"), DISK_SIZE, 900 + i))
            .collect();
        let raw = images.iter().map(|d| fs::read(&d.raw).unwrap()).collect();
        let proxy = FaultProxy::start(&registry);
        let mut node = Node::new();
        node.config.insecure(&proxy.host_port());
        let mut tags = Vec::new();
        for s in 0..SOURCES {
            // Every image in every repository, so a tag move is one manifest PUT.
            for (i, image) in images.iter().enumerate() {
                image.push(&registry, &format!("os/s{s}:img{i}"));
            }
            images[s % IMAGES].push(&registry, &format!("os/s{s}:latest"));
            tags.push(s % IMAGES);
            let source = node.config.source(
                &format!("s{s}"),
                &proxy.reference(&format!("os/s{s}:latest")),
            );
            source.interval = Some("1s".into());
            source.imports_to_keep = Some(2);
        }
        let daemon = node.start();
        Soak {
            registry,
            proxy,
            _dir: dir,
            images,
            raw,
            node,
            daemon,
            tags,
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            moves: 0,
            verified: BTreeSet::new(),
            gone_unverified: 0,
        }
    }

    fn random(&mut self, below: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        usize::try_from(self.rng % below as u64).unwrap()
    }

    /// Points a random source's tag at another image.
    fn move_a_tag(&mut self) {
        let s = self.random(SOURCES);
        let image = (self.tags[s] + 1 + self.random(IMAGES - 1)) % IMAGES;
        let manifest = self.images[image].image.manifest();
        push::put_manifest(
            &self.registry.client(),
            &format!("os/s{s}"),
            "latest",
            manifest,
        );
        self.tags[s] = image;
        self.moves += 1;
    }

    /// Polls so far, every source, every result.
    fn polls(&self) -> f64 {
        self.counts("bootsource_polls_total").values().sum()
    }

    /// A counter's series summed by their `result` label.
    fn counts(&self, name: &str) -> BTreeMap<String, f64> {
        let mut by_result = BTreeMap::new();
        for sample in &self.daemon.metrics().samples {
            if sample.name == name {
                let result = sample.labels.iter().find(|(k, _)| k == "result");
                let key = result.map_or(String::new(), |(_, v)| v.clone());
                *by_result.entry(key).or_insert(0.0) += sample.value;
            }
        }
        by_result
    }

    fn image_of(&self, digest: &str) -> usize {
        self.images
            .iter()
            .position(|d| d.digest == digest)
            .unwrap_or_else(|| panic!("{digest} is none of the soak's images"))
    }

    /// Compares every version in `status` not compared before with its image.
    fn verify_versions(&mut self, status: &Value) {
        for s in 0..SOURCES {
            let source = source_of(status, &format!("s{s}"));
            for version in source["versions"].as_array().unwrap() {
                let volume = version["volume"].as_str().unwrap().to_owned();
                let key = (volume.clone(), version["created"].to_string());
                if self.verified.contains(&key) {
                    continue;
                }
                let image = self.image_of(version["digest"].as_str().unwrap());
                match fs::read(version["path"].as_str().unwrap()) {
                    Ok(bytes) => assert!(
                        bytes == self.raw[image],
                        "version {volume} of s{s} differs from image {image}"
                    ),
                    // Collected meanwhile (two versions are kept).
                    Err(_) => self.gone_unverified += 1,
                }
                self.verified.insert(key);
            }
        }
    }

    /// Whether every source's current version is its tag's image, and nothing imports.
    fn settled(&self, status: &Value) -> bool {
        (0..SOURCES).all(|s| {
            let source = source_of(status, &format!("s{s}"));
            current_digest(source).as_deref() == Some(self.images[self.tags[s]].digest.as_str())
                && source["importing"].is_null()
        })
    }

    fn wait_settled(&mut self) -> Value {
        let status = self.daemon.wait_for("every source on its tag's image", || {
            let status = self.daemon.status();
            self.settled(&status).then_some(status)
        });
        self.verify_versions(&status);
        status
    }
}

#[test]
#[ignore = "a soak of several minutes: run it with scripts/soak"]
fn the_daemon_holds_through_faults_and_moving_tags() {
    let cycles: f64 = env_number("BOOTSOURCE_SOAK_CYCLES", 1000) as f64;
    let seed = env_number("BOOTSOURCE_SOAK_SEED", 1);
    println!("soak: {cycles} cycles, seed {seed}");
    let began = Instant::now();
    let mut soak = Soak::start(seed);
    soak.wait_settled();
    println!("every source imported once: {}", Sample::take(&soak.daemon));
    soak.proxy.chaos(Chaos {
        seed,
        one_in: 4,
        faults: chaos_faults(),
    });

    let (mut next_move, mut next_report) = (soak.polls() + POLLS_PER_MOVE, REPORT_EVERY);
    let mut start = None;
    loop {
        let polls = soak.polls();
        if polls >= cycles {
            break;
        }
        if polls >= next_move {
            soak.move_a_tag();
            next_move = polls + POLLS_PER_MOVE;
        }
        let status = soak.daemon.status();
        soak.verify_versions(&status);
        if polls >= next_report {
            let sample = Sample::take(&soak.daemon);
            start.get_or_insert(sample);
            println!(
                "{polls} cycles, {} tag moves, {} versions verified, {} faults; {sample}",
                soak.moves,
                soak.verified.len(),
                soak.proxy.injected(),
            );
            next_report += REPORT_EVERY;
        }
        sleep(TICK);
    }

    soak.proxy.calm();
    let status = soak.wait_settled();
    let end = Sample::take(&soak.daemon);
    let start = start.expect("the soak ran at least its first report's cycles");
    report(&soak, start, end, began.elapsed());
    assert_clean(&soak, &status);
    assert!(
        end.fds <= start.fds + FD_SLACK,
        "descriptors grew: {start} → {end}"
    );
    assert!(
        end.rss <= start.rss + RSS_SLACK,
        "memory grew: {start} → {end}"
    );
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

fn report(soak: &Soak, start: Sample, end: Sample, took: Duration) {
    println!("--- soak figures ---");
    println!(
        "cycles (polls): {:?}",
        soak.counts("bootsource_polls_total")
    );
    println!("imports: {:?}", soak.counts("bootsource_imports_total"));
    println!("tag moves: {}", soak.moves);
    println!(
        "faults injected and survived: {} {:?} (of {} requests)",
        soak.proxy.injected(),
        soak.proxy.injected_by_kind(),
        soak.proxy.served().len()
    );
    println!(
        "versions compared byte for byte: {} ({} collected before they could be)",
        soak.verified.len() - soak.gone_unverified,
        soak.gone_unverified
    );
    println!("start (after {REPORT_EVERY} cycles): {start}");
    println!("end:   {end}");
    println!("took {took:.0?}");
}

/// No staging leftovers; the catalog names exactly the files there are, one current
/// version per source (the `current` link's target); every kept version is its image.
fn assert_clean(soak: &Soak, status: &Value) {
    let node = &soak.node;
    assert!(
        node.staging_leftovers().is_empty(),
        "{:?}",
        node.staging_leftovers()
    );
    let catalog: Value =
        serde_json::from_slice(&fs::read(node.config.state_dir.join("catalog.json")).unwrap())
            .unwrap();
    let records = catalog["volumes"].as_array().unwrap();
    let mut named = BTreeSet::new();
    for record in records {
        assert_eq!(record["state"], "ready", "{record}");
        let path = PathBuf::from(record["path"].as_str().unwrap());
        let len = fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{record}: {e}"))
            .len();
        assert_eq!(Some(len), record["size"].as_u64(), "{record}");
        let image = soak.image_of(record["digest"].as_str().unwrap());
        assert!(fs::read(&path).unwrap() == soak.raw[image], "{record}");
        named.insert(path);
    }
    for s in 0..SOURCES {
        let name = format!("s{s}");
        let current: Vec<&Value> = records
            .iter()
            .filter(|r| r["source"] == name.as_str() && r["current"] == true)
            .collect();
        assert_eq!(current.len(), 1, "current versions of {name}: {current:?}");
        assert_eq!(
            current[0]["digest"],
            source_of(status, &name)["current"]["digest"]
        );
        let link = fs::canonicalize(node.current_link(&name)).unwrap();
        assert_eq!(link, Path::new(current[0]["path"].as_str().unwrap()));
    }
    let mut files = Vec::new();
    for backend in &node.config.storage {
        collect_files(&backend.path, &mut files);
    }
    let unnamed: Vec<&PathBuf> = files.iter().filter(|f| !named.contains(*f)).collect();
    assert!(
        unnamed.is_empty(),
        "files the catalog does not name: {unnamed:?}"
    );
}

fn collect_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            collect_files(&entry.path(), found);
        } else {
            found.push(entry.path());
        }
    }
}
