//! `bootsource daemon`: the control loop.
//!
//! One task owns all decisions: the poller (`bootsource-poller`) says what is due,
//! this loop starts polls and imports as tokio tasks ([`jobs`]), and their results come
//! back as events. An import that has not finished within `import_timeout` is
//! cancelled and counted as failed, so a registry that trickles a byte a minute cannot
//! hold the import slot for ever. At most [`POLLS_IN_FLIGHT`] polls talk to registries
//! at once: 200 sources on one schedule make a round of 200 polls, which must not open
//! 200 connections to one registry (a poll is a `HEAD`, so the round still takes well
//! under a second on a local registry; `benches/idle.sh`).
//!
//! Signals: SIGHUP reloads the configuration (an invalid file is refused, logged and
//! counted; the old one stays in force) and polls every auto-update source at once;
//! SIGTERM and SIGINT cancel running imports, wait up to `stop_timeout` for their
//! staging volumes to be removed, and exit 0 — also when an import is stuck in a read
//! that never returns (a FIFO, a hung NFS mount): its thread is abandoned with a log
//! line, and `main` does not wait for it. Under systemd: READY=1 once the metrics
//! endpoint listens and the catalog is loaded, STATUS= lines, WATCHDOG=1 pings.
//!
//! A poll's or an import's result is counted (`bootsource_polls_total`,
//! `bootsource_imports_total`) only after the gauges and the status file show its
//! effect: whoever sees the count go up and then reads `outdated`, the versions kept
//! or `bootsource status` reads the state after that result, never the one before.

mod files;
mod health;
mod http;
mod jobs;
mod metrics;
mod process;
mod refusals;
mod systemd;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bootsource_importer::{Cancel, Progress, ProgressSnapshot, Stage, StageTimes};
use bootsource_poller::{
    Decision, ImportTicket, PollTicket, Poller, PollerConfig, SourceSpec, SplitMix64, TicketId,
};
use bootsource_storage::{SourceStatus, Store};
use chrono::Utc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc};

use crate::config::Config;
use crate::instance::InstanceLock;
use crate::state::{DaemonState, Importing, SourceRuntime};
use jobs::Imported;
use metrics::Metrics;

/// The loop wakes at least this often: schedules follow the wall clock, sleeps do not.
const MAX_NAP: Duration = Duration::from_secs(60);
/// While importing, progress is published this often.
const PROGRESS_TICK: Duration = Duration::from_secs(1);

enum Event {
    Polled(
        PollTicket,
        Result<bootsource_importer::Digest, bootsource_poller::Failure>,
    ),
    Imported(ImportTicket, anyhow::Result<Imported>),
}

struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

struct Running {
    source: String,
    digest: String,
    progress: Arc<Progress>,
    cancel: Cancel,
    started: Instant,
    /// When it is cancelled if not done (`import_timeout`).
    deadline: Instant,
    /// Cancelled at its deadline: its end is a failure, not a cancellation.
    timed_out: bool,
    counted: ProgressSnapshot,
    /// Stage times already added to the counters.
    counted_stages: Option<StageTimes>,
}

struct Daemon {
    /// Held for the daemon's lifetime: one daemon per state directory.
    instance: InstanceLock,
    /// `/metrics` and `/healthz` on `metrics_address`.
    endpoint: http::Endpoint,
    /// The loop's heartbeat and the catalog probe behind `/healthz`.
    health: Arc<health::Health>,
    config_path: PathBuf,
    config: Config,
    store: Arc<Store>,
    poller: Poller,
    metrics: Arc<Metrics>,
    contexts: BTreeMap<String, jobs::SourceJob>,
    running: HashMap<TicketId, Running>,
    events: mpsc::Sender<Event>,
    last_state: DaemonState,
    /// Versions the signature policy refused.
    refusals: refusals::Refusals,
    /// Permits for polls talking to a registry.
    poll_slots: Arc<Semaphore>,
}

/// Polls in flight at most; the others wait for a slot.
const POLLS_IN_FLIGHT: usize = 16;

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf) -> anyhow::Result<()> {
    // Before anything can tell the world we are ready: a SIGHUP must never kill us.
    let mut signals = Signals {
        hup: signal(SignalKind::hangup())?,
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
    };
    let config = Config::load(&config_path)?;
    // Before the store opens: its start-up sweep would remove a running daemon's staging.
    let instance = InstanceLock::acquire(&config.state_dir)?;
    let store = open_store(&config).await?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(health::Health::new(Arc::clone(&store)));
    let endpoint = http::Endpoint::bind(
        config.metrics_address,
        Arc::clone(&metrics),
        Arc::clone(&health),
    )
    .await?;
    instance.write_pid()?;
    let (events, mut inbox) = mpsc::channel(64);
    let address = endpoint.address();
    let mut daemon = Daemon {
        instance,
        endpoint,
        health,
        config_path,
        config: config.clone(),
        store,
        poller: Poller::new(SplitMix64::new(seed())),
        metrics,
        contexts: BTreeMap::new(),
        running: HashMap::new(),
        events,
        last_state: DaemonState::default(),
        refusals: refusals::Refusals::default(),
        poll_slots: Arc::new(Semaphore::new(POLLS_IN_FLIGHT)),
    };
    daemon.apply(config).await?;
    systemd::ready();
    tracing::info!(metrics = %address, sources = daemon.config.sources.len(), "bootsource daemon ready");
    daemon.run_loop(&mut inbox, &mut signals).await?;
    daemon.shutdown(&mut inbox).await;
    Ok(())
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let store_config = config.store_config();
    let store = tokio::task::spawn_blocking(move || Store::open(store_config))
        .await
        .context("storage thread failed")?
        .context("opening the storage")?;
    Ok(Arc::new(store))
}

/// Every boot source the catalog knows in the store's namespace, read off the runtime.
/// A catalog that cannot be read is an error — never taken for "no versions", which
/// would import everything again.
async fn read_catalog(store: &Arc<Store>) -> anyhow::Result<BTreeMap<String, SourceStatus>> {
    let store = Arc::clone(store);
    let sources = tokio::task::spawn_blocking(move || store.sources())
        .await
        .context("catalog thread failed")?
        .context("reading the catalog")?;
    Ok(sources.into_iter().map(|s| (s.name.clone(), s)).collect())
}

/// The signature policy the configuration names (re-read on every reload), off the
/// runtime; an unusable one refuses the configuration.
async fn load_policy(config: &Config) -> anyhow::Result<Arc<bootsource_importer::TrustPolicy>> {
    let (policy, registries_d) = (config.policy.clone(), config.registries_d.clone());
    let trust = tokio::task::spawn_blocking(move || {
        crate::policy::load(policy.as_deref(), registries_d.as_deref())
    })
    .await
    .context("policy thread failed")??;
    Ok(Arc::new(trust))
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    u64::from(std::process::id())
        ^ u64::try_from(nanos & u128::from(u64::MAX)).expect("masked to 64 bits")
}

impl Daemon {
    async fn run_loop(
        &mut self,
        inbox: &mut mpsc::Receiver<Event>,
        signals: &mut Signals,
    ) -> anyhow::Result<()> {
        let Signals { hup, term, int } = signals;
        let mut watchdog = tokio::time::interval(
            systemd::watchdog_interval().unwrap_or(Duration::from_secs(3600)),
        );
        loop {
            self.health.tick();
            self.stop_overdue();
            self.start_due();
            self.publish_state().await;
            let mut nap = self
                .poller
                .time_until_wakeup(Utc::now())
                .unwrap_or(MAX_NAP)
                .min(MAX_NAP);
            if !self.running.is_empty() {
                nap = nap.min(PROGRESS_TICK);
            }
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                Some(event) = inbox.recv() => self.handle(event).await,
                _ = hup.recv() => self.reload().await,
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = watchdog.tick() => systemd::watchdog(),
            }
        }
        Ok(())
    }

    /// Makes `config` the one in force: storage, poller, job contexts.
    async fn apply(&mut self, config: Config) -> anyhow::Result<()> {
        // Read before anything changes: an unusable policy refuses the whole config.
        let trust = load_policy(&config).await?;
        // A new state directory is locked before anything else changes.
        let moved = (config.state_dir != self.config.state_dir)
            .then(|| InstanceLock::acquire(&config.state_dir))
            .transpose()?;
        if config.store_config() != self.config.store_config() {
            self.store = open_store(&config).await?;
            self.health.set_store(Arc::clone(&self.store));
            let store = Arc::clone(&self.store);
            let orphans = tokio::task::spawn_blocking(move || store.orphans())
                .await
                .context("catalog thread failed")?
                .context("reading the catalog")?;
            for orphan in orphans {
                tracing::warn!(namespace = %orphan.namespace, source = %orphan.source, volume = %orphan.volume,
                    "version outside the configured namespace or storage; left in place (orphaned)");
            }
        }
        let catalog = read_catalog(&self.store).await?;
        let specs: Vec<SourceSpec> = config
            .sources
            .iter()
            .map(|s| SourceSpec {
                name: s.name.clone(),
                image: s.image.to_string(),
                schedule: config.schedule_of(s),
                auto_update: s.auto_update,
            })
            .collect();
        let poller_config = PollerConfig {
            max_concurrent_imports: config.max_concurrent_imports,
            ..PollerConfig::default()
        };
        let now = Utc::now();
        let report = self.poller.reload(poller_config, specs, now)?;
        for ticket in &report.cancel_imports {
            if let Some(r) = self.running.get(&ticket.id) {
                tracing::info!(source = %r.source, "cancelling an import the new configuration no longer wants");
                r.cancel.cancel();
            }
        }
        for name in &report.removed {
            self.refusals.forget(name);
            self.metrics.forget(name);
        }
        self.contexts = config
            .sources
            .iter()
            .map(|s| {
                let job = jobs::SourceJob::new(&config, s, Arc::clone(&trust));
                (s.name.clone(), job)
            })
            .collect();
        for s in &config.sources {
            let known = catalog.get(&s.name);
            // A version on another backend does not count: the source moves (imports afresh).
            let digest = known
                .and_then(|k| k.current.as_ref())
                .filter(|v| v.backend == config.storage_of(s))
                .map(|v| v.digest);
            self.poller.set_current_digest(&s.name, digest, now)?;
            self.metrics
                .auto_update
                .with_label_values(&[&s.name])
                .set(i64::from(s.auto_update));
            self.metrics
                .versions
                .with_label_values(&[&s.name])
                .set(gauge(known.map_or(0, |k| k.versions.len())));
            // Exported from 0, so an alert on its increase sees the first refusal.
            self.metrics.rejected_versions.with_label_values(&[&s.name]);
        }
        if let Some(instance) = moved {
            instance.write_pid()?;
            self.instance.remove_pid();
            self.instance = instance;
        }
        self.config = config;
        Ok(())
    }

    /// [`apply`](Self::apply), and moves the metrics endpoint if its address changed:
    /// the new address is bound first, so a taken one refuses the whole config.
    async fn apply_with_endpoint(&mut self, config: Config) -> anyhow::Result<()> {
        let moved = match config.metrics_address {
            same if same == self.config.metrics_address => None,
            address => Some(http::Bound::bind(address).await?),
        };
        self.apply(config).await?;
        if let Some(bound) = moved {
            tracing::info!(from = %self.endpoint.address(), to = %bound.address(), "metrics endpoint moved");
            self.endpoint.stop().await;
            self.endpoint = bound.serve(Arc::clone(&self.metrics), Arc::clone(&self.health));
        }
        Ok(())
    }

    async fn reload(&mut self) {
        systemd::reloading();
        tracing::info!(path = %self.config_path.display(), "SIGHUP: reloading the configuration");
        let result = match Config::load(&self.config_path) {
            Ok(config) => self.apply_with_endpoint(config).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.poller.poll_all_now(Utc::now());
                self.metrics.reloads.with_label_values(&["success"]).inc();
            }
            Err(e) => {
                // Logged before it is counted: whoever sees the count sees the reason.
                tracing::error!(error = %format!("{e:#}"), "configuration refused; the previous one stays in force");
                self.metrics.reloads.with_label_values(&["failure"]).inc();
            }
        }
        // Accepted or refused, a configuration is in force again.
        systemd::ready();
    }

    fn start_due(&mut self) {
        let due = self.poller.start_due(Utc::now());
        for ticket in due.polls {
            let Some(ctx) = self.contexts.get(&ticket.source).cloned() else {
                continue;
            };
            let events = self.events.clone();
            let slots = Arc::clone(&self.poll_slots);
            tokio::spawn(async move {
                // Never closed: a permit always comes.
                let _slot = slots.acquire_owned().await;
                let result = jobs::poll(&ctx).await;
                let _ = events.send(Event::Polled(ticket, result)).await;
            });
        }
        for ticket in due.imports {
            self.start_import(ticket);
        }
    }

    /// Cancels every import past its deadline (the loop wakes every second while any
    /// runs); [`finish_import`](Self::finish_import) records it as failed.
    fn stop_overdue(&mut self) {
        let now = Instant::now();
        for r in self.running.values_mut() {
            if !r.timed_out && now >= r.deadline {
                tracing::warn!(source = %r.source, digest = %r.digest, import_timeout = ?self.config.import_timeout,
                    "import did not finish within import_timeout; cancelling it");
                r.timed_out = true;
                r.cancel.cancel();
            }
        }
    }

    fn start_import(&mut self, ticket: ImportTicket) {
        let Some(ctx) = self.contexts.get(&ticket.source).cloned() else {
            return;
        };
        let progress = Progress::new();
        let cancel = Cancel::default();
        tracing::info!(source = %ticket.source, digest = %ticket.digest, "import starting");
        self.running.insert(
            ticket.id,
            Running {
                source: ticket.source.clone(),
                digest: ticket.digest.to_string(),
                progress: Arc::clone(&progress),
                cancel: cancel.clone(),
                started: Instant::now(),
                deadline: Instant::now() + self.config.import_timeout,
                timed_out: false,
                counted: ProgressSnapshot::default(),
                counted_stages: None,
            },
        );
        let (store, events) = (Arc::clone(&self.store), self.events.clone());
        tokio::spawn(async move {
            let result = jobs::import(store, &ctx, ticket.digest, progress, cancel).await;
            let _ = events.send(Event::Imported(ticket, result)).await;
        });
    }

    async fn handle(&mut self, event: Event) {
        let now = Utc::now();
        match event {
            Event::Polled(ticket, Ok(digest)) => {
                let result = match self.poller.poll_succeeded(&ticket, now, digest) {
                    Ok(Decision::UpToDate) => "up_to_date",
                    Ok(_) => "outdated",
                    Err(e) => return tracing::debug!(error = %e, "stale poll result"),
                };
                self.metrics
                    .last_successful_poll
                    .with_label_values(&[&ticket.source])
                    .set(now.timestamp() as f64);
                self.publish_state().await;
                self.metrics
                    .polls
                    .with_label_values(&[&ticket.source, result])
                    .inc();
            }
            Event::Polled(ticket, Err(failure)) => {
                tracing::warn!(source = %ticket.source, error = %failure.message, "poll failed");
                let _ = self.poller.poll_failed(&ticket, now, &failure);
                self.publish_state().await;
                self.metrics
                    .polls
                    .with_label_values(&[&ticket.source, "failed"])
                    .inc();
            }
            Event::Imported(ticket, result) => self.finish_import(ticket, result).await,
        }
    }

    async fn finish_import(&mut self, ticket: ImportTicket, result: anyhow::Result<Imported>) {
        let now = Utc::now();
        let source = ticket.source.clone();
        let mut timed_out = false;
        if let Some(mut running) = self.running.remove(&ticket.id) {
            timed_out = running.timed_out;
            self.count_progress(&mut running);
            self.metrics
                .import_duration
                .with_label_values(&[&source])
                .observe(running.started.elapsed().as_secs_f64());
            self.metrics
                .import_progress
                .with_label_values(&[&source])
                .set(0);
            self.metrics
                .import_size
                .with_label_values(&[&source])
                .set(0);
        }
        let outcome = match result {
            Ok(Imported::New {
                version,
                downloaded,
                written,
            }) => {
                tracing::info!(source = %source, volume = %version.volume, downloaded, written, "new version is current");
                // A single file's digest is known only now (its poll may have named it provisionally).
                let _ = self
                    .poller
                    .import_succeeded_as(&ticket, now, version.digest);
                "success"
            }
            Ok(Imported::AlreadyPresent(version)) => {
                tracing::info!(source = %source, volume = %version.volume, "version already present; published again");
                let _ = self
                    .poller
                    .import_succeeded_as(&ticket, now, version.digest);
                "unchanged"
            }
            Err(_) if timed_out => {
                let message = format!(
                    "import did not finish within import_timeout ({}); cancelled",
                    humantime::format_duration(self.config.import_timeout)
                );
                tracing::error!(source = %source, error = %message, "import failed");
                let failure = bootsource_poller::Failure::new(message);
                let _ = self.poller.import_failed(&ticket, now, &failure);
                "failure"
            }
            Err(e)
                if e.chain().any(|c| {
                    matches!(
                        c.downcast_ref(),
                        Some(bootsource_importer::Error::Cancelled)
                    )
                }) =>
            {
                tracing::info!(source = %source, "import cancelled");
                let _ = self.poller.import_cancelled(&ticket, now);
                "cancelled"
            }
            Err(e) => match refusal(&e) {
                Some(reason) => {
                    tracing::error!(source = %source, digest = %ticket.digest, reason = %reason,
                        "version refused by the signature policy; the current version is kept");
                    let _ = self.poller.import_failed(&ticket, now, &jobs::failure(&e));
                    self.reject(&source, ticket.digest.to_string(), reason);
                    "rejected"
                }
                None => {
                    tracing::error!(source = %source, error = %format!("{e:#}"), "import failed");
                    let _ = self.poller.import_failed(&ticket, now, &jobs::failure(&e));
                    "failure"
                }
            },
        };
        if matches!(outcome, "success" | "unchanged") {
            self.refusals.published(&source);
        }
        self.count_versions(&source).await;
        self.publish_state().await;
        self.metrics
            .imports
            .with_label_values(&[&source, outcome])
            .inc();
    }

    /// Remembers a refused version for `status`, counting each digest once.
    fn reject(&mut self, source: &str, digest: String, reason: String) {
        if self.refusals.refuse(source, digest, reason) {
            self.metrics
                .rejected_versions
                .with_label_values(&[source])
                .inc();
        }
    }

    /// Sets the versions-kept gauge from the catalog, read off the runtime.
    async fn count_versions(&self, source: &str) {
        let (store, name) = (Arc::clone(&self.store), source.to_owned());
        let versions = tokio::task::spawn_blocking(move || store.versions(&name)).await;
        match versions {
            Ok(Ok(versions)) => self
                .metrics
                .versions
                .with_label_values(&[source])
                .set(gauge(versions.len())),
            Ok(Err(e)) => tracing::warn!(source, error = %format!("{:#}", anyhow::Error::from(e)),
                "cannot read the catalog to count versions"),
            Err(e) => tracing::warn!(source, error = %e, "catalog thread failed"),
        }
    }

    /// Adds what a running import received and wrote since last counted.
    fn count_progress(&self, running: &mut Running) {
        let now = running.progress.snapshot();
        let m = &self.metrics;
        m.downloaded
            .with_label_values(&[&running.source])
            .inc_by(now.downloaded - running.counted.downloaded);
        m.written
            .with_label_values(&[&running.source])
            .inc_by(now.written.saturating_sub(running.counted.written));
        m.import_progress
            .with_label_values(&[&running.source])
            .set(gauge(now.downloaded));
        m.import_size
            .with_label_values(&[&running.source])
            .set(gauge(now.download_total));
        running.counted = now;
        self.count_stages(running);
    }

    /// Adds the seconds a running import's stages were busy or waiting since last
    /// counted.
    fn count_stages(&self, running: &mut Running) {
        let m = &self.metrics;
        let stages = running.progress.stage_times();
        let before = running.counted_stages.replace(stages);
        let added = |read: &dyn Fn(&StageTimes) -> f64| {
            (read(&stages) - before.as_ref().map_or(0.0, read)).max(0.0)
        };
        let source = running.source.as_str();
        for stage in Stage::ALL {
            m.stage_seconds
                .with_label_values(&[source, stage.name()])
                .inc_by(added(&|t| t.busy(stage)));
        }
        m.decode_wait_seconds
            .with_label_values(&[source, "input"])
            .inc_by(added(&|t| t.decode_waiting_for_input));
        m.decode_wait_seconds
            .with_label_values(&[source, "writers"])
            .inc_by(added(&|t| t.decode_waiting_for_writers));
    }

    /// Updates gauges, the state file (written off the runtime) and systemd's status
    /// line.
    async fn publish_state(&mut self) {
        let mut running = std::mem::take(&mut self.running);
        for r in running.values_mut() {
            self.count_progress(r);
        }
        self.running = running;
        let mut state = DaemonState {
            pid: std::process::id(),
            updated: None,
            sources: BTreeMap::new(),
        };
        for s in self.poller.sources() {
            self.metrics
                .outdated
                .with_label_values(&[s.name()])
                .set(i64::from(s.outdated()));
            let importing = self
                .running
                .values()
                .find(|r| r.source == s.name())
                .map(|r| {
                    let p = r.progress.snapshot();
                    let percent = if p.download_total == 0 {
                        0.0
                    } else {
                        100.0 * p.downloaded as f64 / p.download_total as f64
                    };
                    Importing {
                        digest: r.digest.clone(),
                        bytes_done: p.downloaded,
                        bytes_total: p.download_total,
                        percent,
                    }
                });
            let mut runtime = SourceRuntime::of(s, importing);
            runtime.rejected = self.refusals.newest(s.name()).cloned();
            state.sources.insert(s.name().to_owned(), runtime);
        }
        if state == self.last_state {
            return;
        }
        systemd::status(&status_line(&state));
        self.last_state = state.clone();
        state.updated = Some(Utc::now());
        let dir = self.config.state_dir.clone();
        match tokio::task::spawn_blocking(move || state.save(&dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot write the daemon state for `bootsource status`");
            }
            Err(e) => tracing::warn!(error = %e, "state-file thread failed"),
        }
    }

    async fn shutdown(&mut self, inbox: &mut mpsc::Receiver<Event>) {
        systemd::stopping();
        tracing::info!(
            imports = self.running.len(),
            "stopping: cancelling running imports"
        );
        for r in self.running.values() {
            r.cancel.cancel();
        }
        let grace = self.config.stop_timeout;
        let deadline = tokio::time::Instant::now() + grace;
        while !self.running.is_empty() {
            match tokio::time::timeout_at(deadline, inbox.recv()).await {
                Ok(Some(Event::Imported(ticket, result))) => {
                    self.finish_import(ticket, result).await;
                }
                Ok(Some(Event::Polled(..))) => {}
                Ok(None) | Err(_) => {
                    let sources: Vec<&str> =
                        self.running.values().map(|r| r.source.as_str()).collect();
                    tracing::warn!(stop_timeout = ?grace, sources = ?sources,
                        "imports did not stop within stop_timeout; exiting anyway (their staging volumes are removed at the next start)");
                    break;
                }
            }
        }
        self.publish_state().await;
        self.instance.remove_pid();
        tracing::info!("stopped");
    }
}

/// Why the signature policy refused an import, if that is how it failed.
fn refusal(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| match c.downcast_ref() {
        Some(bootsource_importer::Error::Refused { refusal, .. }) => Some(refusal.to_string()),
        _ => None,
    })
}

/// A count as a gauge value (saturating; no byte count reaches 2^63).
fn gauge(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// `systemctl status` line: what is importing, how many are outdated or failing.
fn status_line(state: &DaemonState) -> String {
    let importing: Vec<String> = state
        .sources
        .iter()
        .filter_map(|(name, s)| {
            s.importing
                .as_ref()
                .map(|i| format!("{name} {:.0}%", i.percent))
        })
        .collect();
    let outdated = state.sources.values().filter(|s| s.outdated).count();
    let failing = state
        .sources
        .values()
        .filter(|s| s.last_error.is_some())
        .count();
    let mut line = format!(
        "{} sources, {outdated} outdated, {failing} failing",
        state.sources.len()
    );
    if !importing.is_empty() {
        line = format!("importing {}; {line}", importing.join(", "));
    }
    line
}
