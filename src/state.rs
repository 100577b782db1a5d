//! What the daemon knows at run time and the catalog does not: what each source is
//! doing now, last and next poll, last error, the import in progress. The daemon writes
//! it to `<state_dir>/daemon-state.json` (atomically) whenever it changes, and
//! `bootsource status` reads it, so status works whether the daemon runs or not.
//!
//! A reader must always learn when the next attempt comes or that one runs now: while
//! a poll is in flight, `activity` says `polling` and `next_poll` keeps the time that
//! poll started, so `next_poll` is set whenever an auto-update source is not importing.

use std::collections::BTreeMap;
use std::path::Path;

use bootsource_poller::{Phase, SourceState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const FILE: &str = "daemon-state.json";

/// The daemon's run-time state, by source name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonState {
    /// The daemon's process id.
    pub pid: u32,
    /// When this was written.
    pub updated: Option<DateTime<Utc>>,
    /// Per source.
    pub sources: BTreeMap<String, SourceRuntime>,
}

/// What a source is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Idle until `next_poll`.
    Waiting,
    /// A poll is running now; it started at `next_poll`.
    Polling,
    /// The tag moved; the import waits for a free import slot.
    Queued,
    /// An import is running (see `importing`).
    Importing,
    /// `auto_update` is off: not polled.
    Disabled,
}

/// One source's run-time state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRuntime {
    /// What the source is doing now (None when no daemon runs).
    pub activity: Option<Activity>,
    /// When it was last polled.
    pub last_poll: Option<DateTime<Utc>>,
    /// `up_to_date`, `outdated` or `failed`.
    pub last_poll_result: Option<String>,
    /// When the next poll is due, or when the one running now started (None while
    /// disabled, queued or importing: the next poll is scheduled when the import ends).
    pub next_poll: Option<DateTime<Utc>>,
    /// The last poll or import error, cleared once up to date again.
    pub last_error: Option<String>,
    /// The digest the registry last reported.
    pub remote_digest: Option<String>,
    /// Whether that differs from the current version.
    pub outdated: bool,
    /// The import running now.
    pub importing: Option<Importing>,
    /// The newest version the signature policy refused, until a version is imported.
    #[serde(default)]
    pub rejected: Option<Rejected>,
}

/// A version the signature policy refused: not imported, the current one kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The digest refused.
    pub digest: String,
    /// Why, as the policy said it.
    pub reason: String,
}

/// An import in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importing {
    /// The digest being imported.
    pub digest: String,
    /// Layer bytes received so far.
    pub bytes_done: u64,
    /// Layer bytes to receive (0 until the layer is known).
    pub bytes_total: u64,
    /// `bytes_done` of `bytes_total`, in percent.
    pub percent: f64,
}

impl SourceRuntime {
    /// What the poller knows of `source`, with the import running for it, if any.
    pub fn of(source: &SourceState, importing: Option<Importing>) -> Self {
        let (activity, next_poll) = match source.phase() {
            Phase::Waiting { next_poll } => (Activity::Waiting, Some(*next_poll)),
            Phase::Polling { since, .. } => (Activity::Polling, Some(*since)),
            Phase::Queued { .. } => (Activity::Queued, None),
            Phase::Importing { .. } => (Activity::Importing, None),
            Phase::Disabled => (Activity::Disabled, None),
        };
        let last = source.last_poll();
        Self {
            activity: Some(activity),
            last_poll: last.map(|p| p.at),
            last_poll_result: last.map(|p| p.outcome.as_str().to_owned()),
            next_poll,
            last_error: source.last_error().map(str::to_owned),
            remote_digest: source.remote_digest().map(ToString::to_string),
            outdated: source.outdated(),
            importing,
            rejected: None,
        }
    }

    /// What is left true once the daemon is gone: it polls and imports nothing.
    pub fn without_daemon(self) -> Self {
        Self {
            activity: None,
            next_poll: None,
            importing: None,
            ..self
        }
    }
}

impl DaemonState {
    /// Writes the state atomically (temp file + rename).
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let path = state_dir.join(FILE);
        let tmp = state_dir.join(format!(".{FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, path)
    }

    /// The last state written, if any.
    pub fn load(state_dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(state_dir.join(FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use bootsource_poller::{Failure, FixedJitter, JitterSample, Poller, PollerConfig, SourceSpec};
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    #[test]
    fn round_trips_through_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DaemonState::load(dir.path()), None);
        let mut s = DaemonState {
            pid: 42,
            ..DaemonState::default()
        };
        s.sources.insert(
            "fedora".into(),
            SourceRuntime {
                last_error: Some("registry down".into()),
                importing: Some(Importing {
                    digest: "sha256:x".into(),
                    bytes_done: 5,
                    bytes_total: 10,
                    percent: 50.0,
                }),
                ..SourceRuntime::default()
            },
        );
        s.save(dir.path()).unwrap();
        assert_eq!(DaemonState::load(dir.path()), Some(s));
    }

    fn runtime(poller: &Poller<FixedJitter>) -> SourceRuntime {
        SourceRuntime::of(poller.source("fedora").unwrap(), None)
    }

    #[test]
    fn a_poll_in_flight_or_failed_always_tells_when_the_next_attempt_comes() {
        let t0 = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
        let mut poller = Poller::new(FixedJitter(JitterSample::ONE));
        let fedora = SourceSpec {
            name: "fedora".into(),
            image: "docker://127.0.0.1:5000/os/fedora:latest".into(),
            schedule: "2s".parse().unwrap(),
            auto_update: true,
        };
        poller
            .reload(PollerConfig::default(), [fedora], t0)
            .unwrap();
        let waiting = runtime(&poller);
        assert_eq!(
            (waiting.activity, waiting.next_poll),
            (Some(Activity::Waiting), Some(t0))
        );

        let started = t0 + TimeDelta::milliseconds(5);
        let poll = poller.start_due(started).polls.remove(0);
        let polling = runtime(&poller);
        assert_eq!(
            (polling.activity, polling.next_poll),
            (Some(Activity::Polling), Some(started))
        );

        let failed_at = started + TimeDelta::seconds(1);
        let retry = poller
            .poll_failed(&poll, failed_at, &Failure::new("connection refused"))
            .unwrap();
        let failed = runtime(&poller);
        assert_eq!(failed.activity, Some(Activity::Waiting));
        assert_eq!(failed.next_poll, Some(retry));
        assert_eq!(failed.last_poll_result.as_deref(), Some("failed"));
        assert_eq!(failed.last_error.as_deref(), Some("connection refused"));

        // The retry runs: still failed last time, and the reader learns it runs now.
        poller.start_due(retry);
        let retrying = runtime(&poller);
        assert_eq!(
            (retrying.activity, retrying.next_poll),
            (Some(Activity::Polling), Some(retry))
        );
        assert_eq!(retrying.last_poll_result.as_deref(), Some("failed"));

        let gone = retrying.without_daemon();
        assert_eq!((gone.activity, gone.next_poll), (None, None));
        assert_eq!(gone.last_poll_result.as_deref(), Some("failed"));
    }

    #[test]
    fn activity_is_snake_case_in_json() {
        let json = serde_json::to_value(SourceRuntime {
            activity: Some(Activity::Polling),
            ..SourceRuntime::default()
        })
        .unwrap();
        assert_eq!(json["activity"], "polling");
    }
}
