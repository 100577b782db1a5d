//! Versions the signature policy refused, per source: the newest, for `status`, and the
//! digests already counted in `bootsource_rejected_versions_total`.
//!
//! A refused version stays on its tag, so the poller finds it again at every poll and
//! its import is refused again; the metric must count versions, not attempts, so an
//! alert on its increase fires once per refused version. A digest is counted the first
//! time it is refused and never again while the daemon runs, however the tag moves
//! between refused versions (v2, v3, back to v2 is two). The digests remembered are
//! capped per source ([`REMEMBERED`], oldest forgotten first), so a registry that
//! publishes refused versions forever cannot grow the daemon's memory.
//!
//! Pure bookkeeping: the caller increments the metric when [`Refusals::refuse`] says so.

use std::collections::{HashMap, VecDeque};

use crate::state::Rejected;

/// Refused digests remembered per source.
pub const REMEMBERED: usize = 256;

/// Per source, the newest refusal and the digests counted.
#[derive(Debug, Default)]
pub struct Refusals {
    sources: HashMap<String, Source>,
}

#[derive(Debug, Default)]
struct Source {
    /// The newest refused version, until a version is published.
    newest: Option<Rejected>,
    /// Digests counted, oldest first.
    counted: VecDeque<String>,
}

impl Refusals {
    /// Records that `source` refused `digest`; whether it is the first time (count it).
    pub fn refuse(&mut self, source: &str, digest: String, reason: String) -> bool {
        let entry = self.sources.entry(source.to_owned()).or_default();
        let first = !entry.counted.contains(&digest);
        if first {
            if entry.counted.len() == REMEMBERED {
                entry.counted.pop_front();
            }
            entry.counted.push_back(digest.clone());
        }
        entry.newest = Some(Rejected { digest, reason });
        first
    }

    /// A version of `source` was published: `status` no longer shows a refusal, but
    /// the digests stay counted.
    pub fn published(&mut self, source: &str) {
        if let Some(entry) = self.sources.get_mut(source) {
            entry.newest = None;
        }
    }

    /// `source` left the configuration.
    pub fn forget(&mut self, source: &str) {
        self.sources.remove(source);
    }

    /// The newest refusal of `source`, for `status`.
    pub fn newest(&self, source: &str) -> Option<&Rejected> {
        self.sources.get(source).and_then(|s| s.newest.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refuse(r: &mut Refusals, digest: &str) -> bool {
        r.refuse("img", digest.into(), format!("{digest} unsigned"))
    }

    #[test]
    fn each_digest_counts_once_however_it_alternates() {
        let mut r = Refusals::default();
        assert!(refuse(&mut r, "d2"));
        assert!(!refuse(&mut r, "d2"));
        assert!(refuse(&mut r, "d3"));
        assert!(!refuse(&mut r, "d2"));
        assert_eq!(r.newest("img").unwrap().digest, "d2");
        r.published("img");
        assert_eq!(r.newest("img"), None);
        assert!(!refuse(&mut r, "d3"), "still counted after a publication");
        assert!(r.refuse("other", "d3".into(), String::new()), "per source");
        r.forget("img");
        assert!(refuse(&mut r, "d3"));
    }

    #[test]
    fn the_oldest_digests_are_forgotten_past_the_cap() {
        let mut r = Refusals::default();
        for n in 0..=REMEMBERED {
            assert!(refuse(&mut r, &n.to_string()));
        }
        assert!(refuse(&mut r, "0"), "forgotten, counted again");
        assert!(!refuse(&mut r, &REMEMBERED.to_string()));
    }
}
