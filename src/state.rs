//! What the daemon knows at run time and the catalog does not: last and next poll,
//! last error, the import in progress. The daemon writes it to
//! `<state_dir>/daemon-state.json` (atomically) whenever it changes, and `bootsource
//! status` reads it, so status works whether the daemon runs or not.

use std::collections::BTreeMap;
use std::path::Path;

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

/// One source's run-time state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRuntime {
    /// When it was last polled.
    pub last_poll: Option<DateTime<Utc>>,
    /// `up_to_date`, `outdated` or `failed`.
    pub last_poll_result: Option<String>,
    /// When it will be polled next (None while disabled or busy).
    pub next_poll: Option<DateTime<Utc>>,
    /// The last poll or import error, cleared once up to date again.
    pub last_error: Option<String>,
    /// The digest the registry last reported.
    pub remote_digest: Option<String>,
    /// Whether that differs from the current version.
    pub outdated: bool,
    /// The import running now.
    pub importing: Option<Importing>,
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
}
