//! What the daemon reports when a poll or an import fails, and the rule that
//! turns it into the time of the next attempt.
//!
//! The rule, in one place:
//!
//! 1. The delay is the [`BackoffPolicy`] delay for the source's consecutive
//!    failure count, capped by the schedule's gap ([`Schedule::gap_after`]).
//! 2. A rate-limited failure (HTTP 429) without `Retry-After` waits the
//!    whole cap: the registry asked us to slow down, so jitter must not
//!    retry early.
//! 3. A `Retry-After` sets a floor: the attempt is never earlier than it says,
//!    up to [`RetryRules::retry_after_limit`], so that a bogus date cannot
//!    silence a source for years.
//!
//! [`Schedule::gap_after`]: crate::Schedule::gap_after

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::schedule::add_saturating;
use crate::{BackoffPolicy, JitterSample, RetryAfter};

/// A failed poll or import, as the daemon saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error, formatted with its chain, for `status` and logs.
    pub message: String,
    /// The registry answered 429 Too Many Requests.
    pub rate_limited: bool,
    /// The registry's `Retry-After`, if it sent one (with 429 or 503).
    pub retry_after: Option<RetryAfter>,
}

impl Failure {
    /// A failure with no hint from the registry.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            rate_limited: false,
            retry_after: None,
        }
    }

    /// Marks the failure as an HTTP 429.
    #[must_use]
    pub fn rate_limited(mut self) -> Self {
        self.rate_limited = true;
        self
    }

    /// Attaches the registry's `Retry-After`.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: RetryAfter) -> Self {
        self.retry_after = Some(retry_after);
        self
    }
}

/// The knobs of the retry rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryRules {
    /// Exponential backoff for consecutive failures.
    pub backoff: BackoffPolicy,
    /// The longest `Retry-After` honoured (default one day).
    pub retry_after_limit: Duration,
}

impl Default for RetryRules {
    fn default() -> Self {
        Self {
            backoff: BackoffPolicy::default(),
            retry_after_limit: Self::DEFAULT_RETRY_AFTER_LIMIT,
        }
    }
}

impl RetryRules {
    /// One day.
    pub const DEFAULT_RETRY_AFTER_LIMIT: Duration = Duration::from_secs(24 * 3600);
}

/// When to try again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retry {
    /// The backoff delay chosen (kept for decorrelated jitter).
    pub delay: Duration,
    /// The registry's floor, if any, after the limit.
    pub not_before: Option<DateTime<Utc>>,
    /// The next attempt: `max(now + delay, not_before)`.
    pub at: DateTime<Utc>,
}

/// Applies the rule above for the `failures`-th consecutive failure at `now`.
pub(crate) fn plan_retry(
    rules: &RetryRules,
    failure: &Failure,
    now: DateTime<Utc>,
    failures: u32,
    previous: Option<Duration>,
    schedule_gap: Duration,
    sample: JitterSample,
) -> Retry {
    let delay = if failure.rate_limited && failure.retry_after.is_none() {
        rules.backoff.effective_cap(schedule_gap)
    } else {
        rules
            .backoff
            .delay(failures, previous, schedule_gap, sample)
    };
    let not_before = failure.retry_after.map(|retry_after| {
        retry_after
            .not_before(now)
            .min(add_saturating(now, rules.retry_after_limit))
    });
    let backed_off = add_saturating(now, delay);
    let at = not_before.map_or(backed_off, |floor| floor.max(backed_off));
    Retry {
        delay,
        not_before,
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Jitter;
    use chrono::TimeZone;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    fn rules() -> RetryRules {
        RetryRules {
            backoff: BackoffPolicy::new(S(10), S(3600), Jitter::None).unwrap(),
            retry_after_limit: S(24 * 3600),
        }
    }

    fn plan(failure: &Failure, failures: u32) -> Retry {
        plan_retry(
            &rules(),
            failure,
            now(),
            failures,
            None,
            S(12 * 3600),
            JitterSample::ONE,
        )
    }

    #[test]
    fn plain_failure_backs_off_exponentially() {
        let retry = plan(&Failure::new("connection refused"), 3);
        assert_eq!(retry.delay, S(40));
        assert_eq!(retry.not_before, None);
        assert_eq!(retry.at, now() + S(40));
    }

    #[test]
    fn schedule_gap_caps_the_delay() {
        let retry = plan_retry(
            &rules(),
            &Failure::new("x"),
            now(),
            20,
            None,
            S(300),
            JitterSample::ONE,
        );
        assert_eq!(retry.at, now() + S(300));
    }

    #[test]
    fn retry_after_later_than_backoff_wins() {
        let failure = Failure::new("slow down").with_retry_after(RetryAfter::Delay(S(120)));
        let retry = plan(&failure, 1);
        assert_eq!(retry.delay, S(10));
        assert_eq!(retry.not_before, Some(now() + S(120)));
        assert_eq!(retry.at, now() + S(120));
    }

    #[test]
    fn retry_after_earlier_than_backoff_does_not_shorten_it() {
        let failure = Failure::new("slow down").with_retry_after(RetryAfter::Delay(S(5)));
        assert_eq!(plan(&failure, 4).at, now() + S(80));
    }

    #[test]
    fn retry_after_as_a_date_is_honoured() {
        let when = Utc.with_ymd_and_hms(2025, 3, 1, 12, 30, 0).unwrap();
        let failure = Failure::new("maintenance").with_retry_after(RetryAfter::At(when));
        assert_eq!(plan(&failure, 1).at, when);
    }

    #[test]
    fn retry_after_is_limited_so_a_bogus_date_cannot_silence_a_source() {
        let far = Utc.with_ymd_and_hms(2125, 1, 1, 0, 0, 0).unwrap();
        let failure = Failure::new("x").with_retry_after(RetryAfter::At(far));
        assert_eq!(plan(&failure, 1).at, now() + S(24 * 3600));
    }

    #[test]
    fn rate_limited_without_retry_after_waits_the_whole_cap() {
        let failure = Failure::new("429").rate_limited();
        let retry = plan_retry(
            &rules(),
            &failure,
            now(),
            1,
            None,
            S(12 * 3600),
            JitterSample::ZERO,
        );
        assert_eq!(retry.at, now() + S(3600));
        let short_schedule = plan_retry(
            &rules(),
            &failure,
            now(),
            1,
            None,
            S(600),
            JitterSample::ZERO,
        );
        assert_eq!(short_schedule.at, now() + S(600));
    }

    #[test]
    fn rate_limited_with_retry_after_follows_the_header() {
        let failure = Failure::new("429")
            .rate_limited()
            .with_retry_after(RetryAfter::Delay(S(30)));
        let retry = plan_retry(
            &rules(),
            &failure,
            now(),
            1,
            None,
            S(12 * 3600),
            JitterSample::ONE,
        );
        assert_eq!(retry.at, now() + S(30));
    }
}
