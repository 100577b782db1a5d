//! When to poll each boot source, and what to import.
//!
//! `bootsource-poller` is the decision half of the node daemon: schedules
//! (cron and interval), the per-source state machine, digest comparison,
//! backoff with jitter, `Retry-After`, and admission of imports under a
//! concurrency limit. It does no I/O and reads no clock: every call takes
//! `now` as a [`DateTime<Utc>`](chrono::DateTime), randomness comes from an
//! injected [`JitterSource`], and the registry and the importer stay in the
//! daemon, which reports their results back with the tickets it was given.
//!
//! ```
//! use bootsource_poller::{Decision, Digest, Poller, PollerConfig, SourceSpec, SplitMix64};
//! use chrono::{TimeZone, Utc};
//!
//! let mut poller = Poller::new(SplitMix64::new(0x5eed));
//! let now = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
//! let fedora = SourceSpec {
//!     name: "fedora".into(),
//!     image: "docker://quay.io/containerdisks/fedora:latest".into(),
//!     schedule: "0 */12 * * *".parse().unwrap(),
//!     auto_update: true,
//! };
//! poller.reload(PollerConfig::default(), [fedora], now).unwrap();
//!
//! // A new source is due at once.
//! let due = poller.start_due(now);
//! let poll = &due.polls[0];
//! let digest: Digest = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b".parse().unwrap();
//! let decision = poller.poll_succeeded(poll, now, digest.clone()).unwrap();
//! assert_eq!(decision, Decision::Import { digest: digest.clone() });
//! assert!(poller.source("fedora").unwrap().outdated());
//!
//! // The import may start (one slot by default); the daemon runs it.
//! let due = poller.start_due(now);
//! let import = &due.imports[0];
//! poller.import_succeeded(import, now).unwrap();
//! let fedora = poller.source("fedora").unwrap();
//! assert_eq!(fedora.current_digest(), Some(&digest));
//! assert!(!fedora.outdated());
//! // Next poll at noon, as the schedule says.
//! assert_eq!(poller.next_wakeup(), Some(Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()));
//! ```
//!
//! Modules, each one idea and each re-exported here: `schedule` (cron and
//! interval), `backoff` (exponential delays), `jitter` (where randomness
//! comes from), `retry_after` (the HTTP header), `failure` (the retry rule),
//! `source` (one source's state machine), `admission` (import slots),
//! `poller` (all sources and the daemon-facing calls), `ticket`,
//! `error`.

#![forbid(unsafe_code)]

mod admission;
mod backoff;
mod error;
mod failure;
mod jitter;
mod poller;
mod retry_after;
mod schedule;
mod source;
mod ticket;

#[cfg(test)]
mod testing;

pub use backoff::{BackoffPolicy, Jitter};
pub use bootsource_digest::Digest;
pub use error::Error;
pub use failure::{Failure, RetryRules};
pub use jitter::{FixedJitter, JitterSample, JitterSource, SplitMix64};
pub use poller::{Due, Poller, PollerConfig, ReloadReport};
pub use retry_after::RetryAfter;
pub use schedule::{MIN_INTERVAL, Schedule};
pub use source::{Decision, Phase, PollOutcome, PollRecord, SourceSpec, SourceState};
pub use ticket::{ImportTicket, PollTicket, TicketId};

/// An error and its sources joined with `": "`, for sinks that print only a
/// message (serde).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
