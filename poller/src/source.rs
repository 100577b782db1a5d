//! One boot source's polling state machine.
//!
//! [`SourceState`] owns what the poller knows about a single source: its spec
//! (image, schedule, auto-update), where it is in its cycle ([`Phase`]), the
//! last poll and its result, the remote digest last seen and the current one,
//! the consecutive failure count and backoff, and the last error. It knows
//! nothing of other sources or of import slots; the [`Poller`](crate::Poller)
//! drives it and is the only one that can change it, so the daemon sees it
//! read-only (for `status` and metrics).
//!
//! The cycle of an auto-update source:
//!
//! ```text
//!            due                 resolved == current
//! Waiting ─────────► Polling ─────────────────────────► Waiting (next scheduled time)
//!    ▲                  │ resolved != current
//!    │                  ▼           slot free
//!    │               Queued ─────────────────► Importing ──success──► Waiting (scheduled)
//!    │                                            │
//!    └────────── failure: Waiting (backoff) ◄─────┘ (also from Polling)
//! ```
//!
//! `auto_update = false` parks the source in `Disabled` (after any poll or
//! import in flight reports back): it is not polled and keeps its current
//! version. A failed import goes back to `Waiting`, so the retry re-polls
//! first and imports whatever the tag points at by then.
//!
//! Backoff (the failure count) is reset only when the source is up to date
//! again — a poll finding the current digest, or an import succeeding — so a
//! source whose polls succeed but whose imports keep failing still backs off.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::failure::{RetryRules, plan_retry};
use crate::{Digest, Failure, JitterSample, Schedule, TicketId};

/// The poller's view of one configured source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// Unique name; state survives a config reload when the name does.
    pub name: String,
    /// The image reference polled (opaque here; handed back in tickets).
    pub image: String,
    /// When to poll.
    pub schedule: Schedule,
    /// Whether new digests are polled for and imported.
    pub auto_update: bool,
}

/// Where a source is in its cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Idle until `next_poll` (a scheduled poll or a retry after failure).
    Waiting {
        /// When the next poll is due.
        next_poll: DateTime<Utc>,
    },
    /// A poll is in flight.
    Polling {
        /// The poll's ticket.
        ticket: TicketId,
        /// When it started.
        since: DateTime<Utc>,
    },
    /// The tag moved to `digest`; the import waits for a free slot.
    Queued {
        /// The digest to import.
        digest: Digest,
        /// When it started waiting (imports start in this order).
        since: DateTime<Utc>,
    },
    /// An import of `digest` is running.
    Importing {
        /// The import's ticket.
        ticket: TicketId,
        /// The digest being imported.
        digest: Digest,
    },
    /// `auto_update` is off: no polls, the current version stays.
    Disabled,
}

/// How a poll ended; also the `result` label of the polls metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollOutcome {
    /// The tag resolves to the current version.
    UpToDate,
    /// The tag resolves to another digest than the current version.
    Outdated,
    /// The poll failed.
    Failed,
}

impl PollOutcome {
    /// `up_to_date`, `outdated` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "up_to_date",
            Self::Outdated => "outdated",
            Self::Failed => "failed",
        }
    }
}

/// The last poll of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollRecord {
    /// When the result came in.
    pub at: DateTime<Utc>,
    /// What it said.
    pub outcome: PollOutcome,
}

/// What to do after a successful poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The tag resolves to the current version: nothing to do.
    UpToDate,
    /// The tag moved: `digest` is queued for import.
    Import {
        /// The digest to import.
        digest: Digest,
    },
    /// The tag moved, but auto-update was turned off while the poll was in
    /// flight: nothing is imported.
    Held {
        /// The digest the tag resolves to.
        digest: Digest,
    },
}

/// Everything the poller knows about one source.
#[derive(Debug, Clone)]
pub struct SourceState {
    spec: SourceSpec,
    phase: Phase,
    current: Option<Digest>,
    remote: Option<Digest>,
    last_poll: Option<PollRecord>,
    last_successful_poll: Option<DateTime<Utc>>,
    failures: u32,
    last_delay: Option<Duration>,
    last_error: Option<String>,
    retry_not_before: Option<DateTime<Utc>>,
    poll_requested: bool,
}

impl SourceState {
    /// A source seen for the first time: due at `now` unless disabled.
    pub(crate) fn new(spec: SourceSpec, now: DateTime<Utc>) -> Self {
        let phase = if spec.auto_update {
            Phase::Waiting { next_poll: now }
        } else {
            Phase::Disabled
        };
        Self {
            spec,
            phase,
            current: None,
            remote: None,
            last_poll: None,
            last_successful_poll: None,
            failures: 0,
            last_delay: None,
            last_error: None,
            retry_not_before: None,
            poll_requested: false,
        }
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The spec in force.
    pub fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// Where the source is in its cycle.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// When the next poll is due, if one is scheduled (not while a poll or
    /// import is in flight, nor while disabled).
    pub fn next_poll(&self) -> Option<DateTime<Utc>> {
        match self.phase {
            Phase::Waiting { next_poll } => Some(next_poll),
            _ => None,
        }
    }

    /// When the poll in flight started, if one is.
    pub fn polling_since(&self) -> Option<DateTime<Utc>> {
        match self.phase {
            Phase::Polling { since, .. } => Some(since),
            _ => None,
        }
    }

    /// The digest of the current version, if any.
    pub fn current_digest(&self) -> Option<&Digest> {
        self.current.as_ref()
    }

    /// The digest the tag resolved to at the last successful poll.
    pub fn remote_digest(&self) -> Option<&Digest> {
        self.remote.as_ref()
    }

    /// True while the tag is known to point at another digest than the
    /// current version (the `bootsource_source_outdated` gauge). False until
    /// the first successful poll.
    pub fn outdated(&self) -> bool {
        self.remote.is_some() && self.remote != self.current
    }

    /// The digest being imported right now, if any.
    pub fn importing(&self) -> Option<&Digest> {
        match &self.phase {
            Phase::Importing { digest, .. } => Some(digest),
            _ => None,
        }
    }

    /// The last poll and its outcome.
    pub fn last_poll(&self) -> Option<PollRecord> {
        self.last_poll
    }

    /// When a poll last succeeded (the last-successful-poll metric).
    pub fn last_successful_poll(&self) -> Option<DateTime<Utc>> {
        self.last_successful_poll
    }

    /// Polls and imports that failed in a row since the source was last up
    /// to date.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// The message of the latest failure; cleared once up to date again.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The floor a registry's `Retry-After` set, if one is in force.
    pub fn retry_not_before(&self) -> Option<DateTime<Utc>> {
        self.retry_not_before
    }

    pub(crate) fn due_poll_at(&self) -> Option<DateTime<Utc>> {
        self.next_poll()
    }

    pub(crate) fn poll_ticket(&self) -> Option<TicketId> {
        match self.phase {
            Phase::Polling { ticket, .. } => Some(ticket),
            _ => None,
        }
    }

    pub(crate) fn import_ticket(&self) -> Option<TicketId> {
        match self.phase {
            Phase::Importing { ticket, .. } => Some(ticket),
            _ => None,
        }
    }

    pub(crate) fn queued(&self) -> Option<(&Digest, DateTime<Utc>)> {
        match &self.phase {
            Phase::Queued { digest, since } => Some((digest, *since)),
            _ => None,
        }
    }

    pub(crate) fn begin_poll(&mut self, ticket: TicketId, now: DateTime<Utc>) {
        debug_assert!(
            matches!(self.phase, Phase::Waiting { .. }),
            "{:?}",
            self.phase
        );
        self.phase = Phase::Polling { ticket, since: now };
    }

    pub(crate) fn begin_import(&mut self, ticket: TicketId) {
        let Phase::Queued { digest, .. } = &self.phase else {
            debug_assert!(false, "begin_import in {:?}", self.phase);
            return;
        };
        self.phase = Phase::Importing {
            ticket,
            digest: *digest,
        };
    }

    /// The tag resolved to `remote` at `now`.
    pub(crate) fn poll_succeeded(&mut self, now: DateTime<Utc>, remote: Digest) -> Decision {
        let outdated = self.current.as_ref() != Some(&remote);
        self.last_poll = Some(PollRecord {
            at: now,
            outcome: if outdated {
                PollOutcome::Outdated
            } else {
                PollOutcome::UpToDate
            },
        });
        self.last_successful_poll = Some(now);
        self.retry_not_before = None;
        self.remote = Some(remote);
        if !outdated {
            self.recovered();
            self.phase = self.resting_phase(now);
            Decision::UpToDate
        } else if self.spec.auto_update {
            self.phase = Phase::Queued {
                digest: remote,
                since: now,
            };
            Decision::Import { digest: remote }
        } else {
            self.poll_requested = false;
            self.phase = Phase::Disabled;
            Decision::Held { digest: remote }
        }
    }

    /// The poll failed at `now`; returns the time of the next attempt.
    pub(crate) fn poll_failed(
        &mut self,
        now: DateTime<Utc>,
        failure: &Failure,
        rules: &RetryRules,
        sample: JitterSample,
    ) -> DateTime<Utc> {
        self.last_poll = Some(PollRecord {
            at: now,
            outcome: PollOutcome::Failed,
        });
        self.back_off(now, failure, rules, sample)
    }

    /// The running import published its digest as the current version.
    pub(crate) fn import_succeeded(&mut self, now: DateTime<Utc>) {
        if let Phase::Importing { digest, .. } = &self.phase {
            self.current = Some(*digest);
        }
        self.recovered();
        self.phase = self.resting_phase(now);
    }

    /// The running import failed; returns the time of the next attempt
    /// (a poll, then an import of whatever the tag points at by then).
    pub(crate) fn import_failed(
        &mut self,
        now: DateTime<Utc>,
        failure: &Failure,
        rules: &RetryRules,
        sample: JitterSample,
    ) -> DateTime<Utc> {
        self.back_off(now, failure, rules, sample)
    }

    /// The running import was cancelled by the daemon: not a failure; the
    /// source polls again as soon as it is allowed to.
    pub(crate) fn import_cancelled(&mut self, now: DateTime<Utc>) {
        self.poll_requested = false;
        self.phase = if self.spec.auto_update {
            Phase::Waiting {
                next_poll: self.earliest_allowed(now),
            }
        } else {
            Phase::Disabled
        };
    }

    /// The storage holds `digest` as the current version (or nothing).
    pub(crate) fn set_current(&mut self, digest: Option<Digest>, now: DateTime<Utc>) {
        self.current = digest;
        let already_there =
            matches!(self.queued(), Some((queued, _)) if Some(queued) == self.current.as_ref());
        if already_there {
            self.recovered();
            self.phase = self.resting_phase(now);
        }
    }

    /// An import of the provisionally named `provisional` published `digest`.
    pub(crate) fn resolved(&mut self, provisional: &Digest, digest: Digest) {
        if self.current.as_ref() == Some(provisional) {
            self.current = Some(digest);
        }
        if self.remote.as_ref() == Some(provisional) {
            self.remote = Some(digest);
        }
    }

    /// An operator asked for a poll now (SIGHUP or `poll_now`). A poll or
    /// import in flight is not disturbed: the poll follows it. A registry's
    /// `Retry-After` is still honoured; our own backoff is not.
    pub(crate) fn request_poll_now(&mut self, now: DateTime<Utc>) {
        match self.phase {
            Phase::Waiting { .. } => {
                self.phase = Phase::Waiting {
                    next_poll: self.earliest_allowed(now),
                };
            }
            Phase::Polling { .. } | Phase::Queued { .. } | Phase::Importing { .. } => {
                self.poll_requested = true;
            }
            Phase::Disabled => {}
        }
    }

    /// Applies a reloaded spec with the same name. Returns the running
    /// import the daemon should cancel, if the reload made it unwanted
    /// (auto-update turned off, or the image changed).
    pub(crate) fn reconfigure(&mut self, spec: SourceSpec, now: DateTime<Utc>) -> Option<TicketId> {
        let image_changed = spec.image != self.spec.image;
        let schedule_changed = spec.schedule != self.spec.schedule;
        let was_enabled = self.spec.auto_update;
        let enabled = spec.auto_update;
        self.spec = spec;
        if image_changed {
            // What was observed belongs to the old image; the current version
            // (what storage holds) and the poll history stay.
            self.remote = None;
            self.last_error = None;
            self.retry_not_before = None;
            self.poll_requested = false;
            self.recovered();
        }
        let mut cancel = None;
        let fresh = if enabled {
            Phase::Waiting {
                next_poll: self.earliest_allowed(now),
            }
        } else {
            Phase::Disabled
        };
        self.phase = match std::mem::replace(&mut self.phase, Phase::Disabled) {
            Phase::Importing { ticket, digest } => {
                if image_changed || (was_enabled && !enabled) {
                    cancel = Some(ticket);
                }
                if image_changed {
                    fresh
                } else {
                    Phase::Importing { ticket, digest }
                }
            }
            // A poll in flight reports first; a disabled source then parks.
            polling @ Phase::Polling { .. } if !image_changed => polling,
            queued @ Phase::Queued { .. } if !image_changed && enabled => queued,
            Phase::Waiting { next_poll } if !image_changed && enabled => {
                if schedule_changed && self.failures == 0 {
                    Phase::Waiting {
                        next_poll: self.regular_next_poll(now),
                    }
                } else {
                    Phase::Waiting { next_poll }
                }
            }
            // New image, just disabled, or just re-enabled (due now).
            _ => fresh,
        };
        cancel
    }

    fn back_off(
        &mut self,
        now: DateTime<Utc>,
        failure: &Failure,
        rules: &RetryRules,
        sample: JitterSample,
    ) -> DateTime<Utc> {
        self.failures = self.failures.saturating_add(1);
        let gap = self.spec.schedule.gap_after(now);
        let retry = plan_retry(
            rules,
            failure,
            now,
            self.failures,
            self.last_delay,
            gap,
            sample,
        );
        self.last_delay = Some(retry.delay);
        self.retry_not_before = retry.not_before;
        self.last_error = Some(failure.message.clone());
        self.poll_requested = false;
        self.phase = if self.spec.auto_update {
            Phase::Waiting {
                next_poll: retry.at,
            }
        } else {
            Phase::Disabled
        };
        retry.at
    }

    /// Up to date again: forget the backoff and the error.
    fn recovered(&mut self) {
        self.failures = 0;
        self.last_delay = None;
        self.last_error = None;
        self.retry_not_before = None;
    }

    /// The phase after a cycle ended well: the next scheduled poll, or now
    /// if an operator asked for a poll meanwhile.
    fn resting_phase(&mut self, now: DateTime<Utc>) -> Phase {
        if !self.spec.auto_update {
            self.poll_requested = false;
            return Phase::Disabled;
        }
        let next_poll = if std::mem::take(&mut self.poll_requested) {
            self.earliest_allowed(now)
        } else {
            self.spec.schedule.next_after(now)
        };
        Phase::Waiting { next_poll }
    }

    /// The schedule's next time counted from the last poll, not before now.
    fn regular_next_poll(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let scheduled = self
            .last_poll
            .map_or(now, |poll| self.spec.schedule.next_after(poll.at));
        scheduled.max(self.earliest_allowed(now))
    }

    /// `now`, or later if a registry's `Retry-After` says so.
    fn earliest_allowed(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.retry_not_before.map_or(now, |floor| floor.max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetryAfter;
    use crate::testing::{digest, disabled, exact_rules, spec, t};

    const S: fn(u64) -> Duration = Duration::from_secs;
    const NO_JITTER: JitterSample = JitterSample::ONE;

    /// A source polled once (at `t(0)`) and up to date with `digest(1)`,
    /// next poll at 12:00 (`t(3 * 3600)`).
    fn up_to_date() -> SourceState {
        let mut source = SourceState::new(spec("fedora", "0 */12 * * *"), t(0));
        source.set_current(Some(digest(1)), t(0));
        source.begin_poll(TicketId(1), t(0));
        assert_eq!(source.poll_succeeded(t(0), digest(1)), Decision::UpToDate);
        source
    }

    fn fail_poll(source: &mut SourceState, now: DateTime<Utc>, failure: &Failure) -> DateTime<Utc> {
        source.begin_poll(TicketId(99), now);
        source.poll_failed(now, failure, &exact_rules(), NO_JITTER)
    }

    /// Polls at `now`, finds `remote` (≠ current), starts its import.
    fn poll_and_start_import(source: &mut SourceState, now: DateTime<Utc>, remote: Digest) {
        source.begin_poll(TicketId(98), now);
        assert_eq!(
            source.poll_succeeded(now, remote),
            Decision::Import { digest: remote }
        );
        source.begin_import(TicketId(97));
    }

    #[test]
    fn a_new_source_is_due_now_unless_disabled() {
        let source = SourceState::new(spec("fedora", "6h"), t(5));
        assert_eq!(source.phase(), &Phase::Waiting { next_poll: t(5) });
        assert_eq!(source.next_poll(), Some(t(5)));
        let off = SourceState::new(disabled("fedora", "6h"), t(5));
        assert_eq!(off.phase(), &Phase::Disabled);
        assert_eq!(off.next_poll(), None);
    }

    #[test]
    fn a_poll_in_flight_says_since_when_and_has_no_next_poll() {
        let mut source = up_to_date();
        assert_eq!(source.polling_since(), None);
        source.begin_poll(TicketId(2), t(3 * 3600 + 1));
        assert_eq!(source.polling_since(), Some(t(3 * 3600 + 1)));
        assert_eq!(source.next_poll(), None, "not scheduled: running");
        source.poll_failed(
            t(3 * 3600 + 2),
            &Failure::new("down"),
            &exact_rules(),
            NO_JITTER,
        );
        assert_eq!(source.polling_since(), None);
        assert_eq!(source.next_poll(), Some(t(3 * 3600 + 12)));
    }

    #[test]
    fn same_digest_is_up_to_date_and_waits_for_the_schedule() {
        let source = up_to_date();
        assert_eq!(source.next_poll(), Some(t(3 * 3600)));
        assert_eq!(
            source.last_poll(),
            Some(PollRecord {
                at: t(0),
                outcome: PollOutcome::UpToDate
            })
        );
        assert_eq!(source.last_successful_poll(), Some(t(0)));
        assert_eq!(source.remote_digest(), Some(&digest(1)));
        assert!(!source.outdated());
    }

    #[test]
    fn another_digest_is_queued_for_import_and_outdated() {
        let mut source = up_to_date();
        source.begin_poll(TicketId(2), t(3 * 3600));
        let decision = source.poll_succeeded(t(3 * 3600), digest(2));
        assert_eq!(decision, Decision::Import { digest: digest(2) });
        assert_eq!(
            source.phase(),
            &Phase::Queued {
                digest: digest(2),
                since: t(3 * 3600)
            }
        );
        assert_eq!(source.last_poll().unwrap().outcome, PollOutcome::Outdated);
        assert!(source.outdated());
        assert_eq!(source.current_digest(), Some(&digest(1)));
    }

    #[test]
    fn a_source_without_a_current_version_imports_what_it_finds() {
        let mut source = SourceState::new(spec("fedora", "6h"), t(0));
        assert!(!source.outdated(), "unknown until polled");
        source.begin_poll(TicketId(1), t(0));
        assert_eq!(
            source.poll_succeeded(t(0), digest(7)),
            Decision::Import { digest: digest(7) }
        );
        assert!(source.outdated());
    }

    #[test]
    fn import_success_makes_the_digest_current_and_waits_for_the_schedule() {
        let mut source = up_to_date();
        poll_and_start_import(&mut source, t(100), digest(2));
        assert_eq!(source.importing(), Some(&digest(2)));
        source.import_succeeded(t(400));
        assert_eq!(source.current_digest(), Some(&digest(2)));
        assert!(!source.outdated());
        assert_eq!(source.importing(), None);
        assert_eq!(source.next_poll(), Some(t(3 * 3600)));
    }

    #[test]
    fn failed_polls_back_off_exponentially_and_keep_the_error() {
        let mut source = up_to_date();
        let failure = Failure::new("connection refused");
        assert_eq!(fail_poll(&mut source, t(100), &failure), t(110));
        assert_eq!(fail_poll(&mut source, t(110), &failure), t(130));
        assert_eq!(fail_poll(&mut source, t(130), &failure), t(170));
        assert_eq!(source.consecutive_failures(), 3);
        assert_eq!(source.last_error(), Some("connection refused"));
        assert_eq!(
            source.last_poll(),
            Some(PollRecord {
                at: t(130),
                outcome: PollOutcome::Failed
            })
        );
        assert_eq!(source.last_successful_poll(), Some(t(0)));
        assert_eq!(source.next_poll(), Some(t(170)));
        // What was known stays known.
        assert_eq!(source.remote_digest(), Some(&digest(1)));
    }

    #[test]
    fn backoff_is_capped_by_the_schedule_gap() {
        let mut source = SourceState::new(spec("fedora", "5min"), t(0));
        let failure = Failure::new("down");
        let mut now = t(0);
        for _ in 0..12 {
            let next = fail_poll(&mut source, now, &failure);
            assert!(next - now <= chrono::TimeDelta::minutes(5));
            now = next;
        }
        assert_eq!(source.next_poll(), Some(now));
        assert_eq!(fail_poll(&mut source, now, &failure), now + S(300));
    }

    #[test]
    fn an_up_to_date_poll_resets_backoff_and_error() {
        let mut source = up_to_date();
        let failure = Failure::new("down");
        fail_poll(&mut source, t(100), &failure);
        fail_poll(&mut source, t(110), &failure);
        source.begin_poll(TicketId(3), t(130));
        assert_eq!(source.poll_succeeded(t(130), digest(1)), Decision::UpToDate);
        assert_eq!(source.consecutive_failures(), 0);
        assert_eq!(source.last_error(), None);
        assert_eq!(source.next_poll(), Some(t(3 * 3600)));
        // The next failure starts from the base again.
        assert_eq!(fail_poll(&mut source, t(200), &failure), t(210));
    }

    #[test]
    fn failing_imports_keep_backing_off_though_their_polls_succeed() {
        let mut source = up_to_date();
        let failure = Failure::new("disk full");
        poll_and_start_import(&mut source, t(100), digest(2));
        assert_eq!(
            source.import_failed(t(100), &failure, &exact_rules(), NO_JITTER),
            t(110)
        );
        assert_eq!(source.phase(), &Phase::Waiting { next_poll: t(110) });
        poll_and_start_import(&mut source, t(110), digest(2));
        assert_eq!(
            source.import_failed(t(110), &failure, &exact_rules(), NO_JITTER),
            t(130)
        );
        poll_and_start_import(&mut source, t(130), digest(2));
        assert_eq!(
            source.import_failed(t(130), &failure, &exact_rules(), NO_JITTER),
            t(170)
        );
        assert_eq!(source.consecutive_failures(), 3);
        assert_eq!(source.last_error(), Some("disk full"));
        assert_eq!(source.current_digest(), Some(&digest(1)));
        // Success resets.
        poll_and_start_import(&mut source, t(170), digest(2));
        source.import_succeeded(t(200));
        assert_eq!(source.consecutive_failures(), 0);
        assert_eq!(source.last_error(), None);
    }

    #[test]
    fn retry_after_is_a_floor_that_even_poll_now_respects() {
        let mut source = up_to_date();
        let failure = Failure::new("503").with_retry_after(RetryAfter::Delay(S(600)));
        assert_eq!(fail_poll(&mut source, t(100), &failure), t(700));
        assert_eq!(source.retry_not_before(), Some(t(700)));
        source.request_poll_now(t(200));
        assert_eq!(source.next_poll(), Some(t(700)));
        // Past the floor, poll now means now.
        source.request_poll_now(t(800));
        assert_eq!(source.next_poll(), Some(t(800)));
    }

    #[test]
    fn poll_now_overrides_our_own_backoff() {
        let mut source = up_to_date();
        let failure = Failure::new("down");
        for _ in 0..5 {
            fail_poll(&mut source, t(100), &failure);
        }
        assert_eq!(source.next_poll(), Some(t(100 + 160)));
        source.request_poll_now(t(120));
        assert_eq!(source.next_poll(), Some(t(120)));
        assert_eq!(
            source.consecutive_failures(),
            5,
            "backoff resets only on success"
        );
    }

    #[test]
    fn a_rate_limited_poll_waits_the_whole_cap() {
        let mut source = up_to_date();
        let next = fail_poll(&mut source, t(100), &Failure::new("429").rate_limited());
        assert_eq!(next, t(100 + 3600));
    }

    #[test]
    fn poll_now_during_an_import_polls_right_after_it() {
        let mut source = up_to_date();
        poll_and_start_import(&mut source, t(100), digest(2));
        source.request_poll_now(t(150));
        assert_eq!(
            source.phase(),
            &Phase::Importing {
                ticket: TicketId(97),
                digest: digest(2)
            }
        );
        source.import_succeeded(t(400));
        assert_eq!(source.next_poll(), Some(t(400)));
        // Only once: the next cycle follows the schedule.
        source.begin_poll(TicketId(5), t(401));
        source.poll_succeeded(t(401), digest(2));
        assert_eq!(source.next_poll(), Some(t(3 * 3600)));
    }

    #[test]
    fn poll_now_during_a_poll_polls_again_after_it() {
        let mut source = up_to_date();
        source.begin_poll(TicketId(2), t(40));
        source.request_poll_now(t(50));
        source.poll_succeeded(t(60), digest(1));
        assert_eq!(source.next_poll(), Some(t(60)));
    }

    #[test]
    fn poll_now_leaves_a_disabled_source_alone() {
        let mut source = SourceState::new(disabled("fedora", "6h"), t(0));
        source.request_poll_now(t(10));
        assert_eq!(source.phase(), &Phase::Disabled);
    }

    #[test]
    fn turning_auto_update_off_mid_poll_holds_the_new_digest() {
        let mut source = up_to_date();
        source.begin_poll(TicketId(2), t(5));
        assert_eq!(
            source.reconfigure(disabled("fedora", "0 */12 * * *"), t(10)),
            None
        );
        assert_eq!(
            source.phase(),
            &Phase::Polling {
                ticket: TicketId(2),
                since: t(5)
            }
        );
        assert_eq!(
            source.poll_succeeded(t(20), digest(2)),
            Decision::Held { digest: digest(2) }
        );
        assert_eq!(source.phase(), &Phase::Disabled);
        assert_eq!(source.current_digest(), Some(&digest(1)));
        assert!(source.outdated());
    }

    #[test]
    fn a_failure_while_disabled_parks_the_source() {
        let mut source = up_to_date();
        source.begin_poll(TicketId(2), t(5));
        source.reconfigure(disabled("fedora", "0 */12 * * *"), t(10));
        source.poll_failed(t(20), &Failure::new("down"), &exact_rules(), NO_JITTER);
        assert_eq!(source.phase(), &Phase::Disabled);
    }

    #[test]
    fn auto_update_off_stops_polling_and_on_resumes_at_once() {
        let mut source = up_to_date();
        assert_eq!(
            source.reconfigure(disabled("fedora", "0 */12 * * *"), t(100)),
            None
        );
        assert_eq!(source.phase(), &Phase::Disabled);
        assert_eq!(source.next_poll(), None);
        assert_eq!(source.current_digest(), Some(&digest(1)));
        assert_eq!(
            source.reconfigure(spec("fedora", "0 */12 * * *"), t(5000)),
            None
        );
        assert_eq!(source.next_poll(), Some(t(5000)));
        assert_eq!(source.last_poll().unwrap().at, t(0), "history survives");
    }

    #[test]
    fn auto_update_off_drops_a_queued_import() {
        let mut source = up_to_date();
        source.begin_poll(TicketId(2), t(100));
        source.poll_succeeded(t(100), digest(2));
        source.reconfigure(disabled("fedora", "0 */12 * * *"), t(110));
        assert_eq!(source.phase(), &Phase::Disabled);
        assert_eq!(source.current_digest(), Some(&digest(1)));
    }

    #[test]
    fn auto_update_off_mid_import_asks_once_for_a_cancel() {
        let mut source = up_to_date();
        poll_and_start_import(&mut source, t(100), digest(2));
        let off = disabled("fedora", "0 */12 * * *");
        assert_eq!(source.reconfigure(off.clone(), t(110)), Some(TicketId(97)));
        assert_eq!(source.importing(), Some(&digest(2)));
        assert_eq!(source.reconfigure(off, t(120)), None, "already asked");
        source.import_cancelled(t(130));
        assert_eq!(source.phase(), &Phase::Disabled);
        assert_eq!(source.current_digest(), Some(&digest(1)));
    }

    #[test]
    fn a_cancelled_import_is_not_a_failure() {
        let mut source = up_to_date();
        poll_and_start_import(&mut source, t(100), digest(2));
        source.import_cancelled(t(130));
        assert_eq!(source.consecutive_failures(), 0);
        assert_eq!(source.next_poll(), Some(t(130)));
    }

    #[test]
    fn a_new_schedule_counts_from_the_last_poll() {
        let mut source = up_to_date();
        assert_eq!(source.next_poll(), Some(t(3 * 3600)));
        source.reconfigure(spec("fedora", "1h"), t(600));
        assert_eq!(source.next_poll(), Some(t(3600)));
        // Already overdue under the new schedule: now.
        source.reconfigure(spec("fedora", "5min"), t(600));
        assert_eq!(source.next_poll(), Some(t(600)));
    }

    #[test]
    fn a_new_schedule_keeps_a_backoff_in_progress() {
        let mut source = up_to_date();
        fail_poll(&mut source, t(100), &Failure::new("down"));
        source.reconfigure(spec("fedora", "1h"), t(101));
        assert_eq!(source.next_poll(), Some(t(110)));
    }

    #[test]
    fn an_unchanged_spec_changes_nothing() {
        let mut source = up_to_date();
        let before = (
            source.phase().clone(),
            source.last_poll(),
            source.remote_digest().cloned(),
        );
        assert_eq!(
            source.reconfigure(spec("fedora", "0 */12 * * *"), t(600)),
            None
        );
        assert_eq!(
            (
                source.phase().clone(),
                source.last_poll(),
                source.remote_digest().cloned()
            ),
            before
        );
    }

    #[test]
    fn a_new_image_forgets_observations_but_not_the_current_version() {
        let mut source = up_to_date();
        fail_poll(
            &mut source,
            t(100),
            &Failure::new("down").with_retry_after(RetryAfter::Delay(S(900))),
        );
        let moved = SourceSpec {
            image: "docker://quay.io/containerdisks/fedora:41".into(),
            ..spec("fedora", "0 */12 * * *")
        };
        assert_eq!(source.reconfigure(moved, t(200)), None);
        assert_eq!(source.next_poll(), Some(t(200)));
        assert_eq!(source.remote_digest(), None);
        assert_eq!(source.consecutive_failures(), 0);
        assert_eq!(source.last_error(), None);
        assert_eq!(source.retry_not_before(), None);
        assert_eq!(source.current_digest(), Some(&digest(1)));
    }

    #[test]
    fn a_new_image_mid_import_cancels_it_and_polls_now() {
        let mut source = up_to_date();
        poll_and_start_import(&mut source, t(100), digest(2));
        let moved = SourceSpec {
            image: "oci:/srv/fedora".into(),
            ..spec("fedora", "0 */12 * * *")
        };
        assert_eq!(source.reconfigure(moved, t(200)), Some(TicketId(97)));
        assert_eq!(source.next_poll(), Some(t(200)));
        assert_eq!(
            source.import_ticket(),
            None,
            "the old import's result is stale"
        );
    }

    #[test]
    fn learning_that_the_queued_digest_is_already_current_ends_the_cycle() {
        let mut source = up_to_date();
        source.begin_poll(TicketId(2), t(100));
        source.poll_succeeded(t(100), digest(2));
        source.set_current(Some(digest(2)), t(150));
        assert_eq!(source.next_poll(), Some(t(3 * 3600)));
        assert!(!source.outdated());
    }

    #[test]
    fn forgetting_the_current_version_makes_the_source_outdated() {
        let mut source = up_to_date();
        source.set_current(None, t(10));
        assert!(source.outdated());
        assert_eq!(
            source.next_poll(),
            Some(t(3 * 3600)),
            "set_current alone does not poll"
        );
    }

    #[test]
    fn poll_outcome_labels_follow_prometheus_style() {
        let labels = [
            PollOutcome::UpToDate,
            PollOutcome::Outdated,
            PollOutcome::Failed,
        ]
        .map(PollOutcome::as_str);
        assert_eq!(labels, ["up_to_date", "outdated", "failed"]);
        let record = PollRecord {
            at: t(0),
            outcome: PollOutcome::UpToDate,
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"at":"2025-03-01T09:00:00Z","outcome":"up_to_date"}"#
        );
    }

    #[test]
    fn a_cron_schedule_keeps_to_its_wall_clock_times_after_late_polls() {
        let mut source = SourceState::new(spec("fedora", "0 */12 * * *"), t(0));
        source.begin_poll(TicketId(1), t(0));
        source.poll_succeeded(t(0), digest(1));
        source.begin_import(TicketId(2));
        // A long import ends past noon: the next poll is midnight, not noon + 12 h.
        source.import_succeeded(t(3 * 3600 + 60));
        assert_eq!(source.next_poll(), Some(t(15 * 3600)));
    }
}
