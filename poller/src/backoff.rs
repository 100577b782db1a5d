//! How long to wait after consecutive failures: exponential backoff with
//! jitter, capped.
//!
//! A [`BackoffPolicy`] turns "the n-th failure in a row" (and, for
//! decorrelated jitter, the previous delay) plus a [`JitterSample`] into a
//! delay. It is pure arithmetic: the caller keeps the failure count and
//! supplies the randomness. Three jitter models are offered:
//!
//! - [`Jitter::Full`] (the default): uniform in `[0, min(cap, base·2ⁿ⁻¹)]`.
//!   Spreads retries the most; the expected delay is half the ceiling.
//! - [`Jitter::Decorrelated`]: uniform in `[base, min(cap, 3·previous)]`.
//!   Never shorter than `base`, grows from the previous delay.
//! - [`Jitter::None`]: exactly the ceiling `min(cap, base·2ⁿ⁻¹)`.
//!
//! Each call may also pass a tighter `limit` (the poller passes the gap
//! between two scheduled polls, so a failing source is retried at least as
//! often as it would have been polled). When the limit is below `base`, every
//! delay is the limit.
//!
//! ```
//! use std::time::Duration;
//! use bootsource_poller::{BackoffPolicy, Jitter, JitterSample};
//!
//! let policy = BackoffPolicy::new(Duration::from_secs(10), Duration::from_secs(3600), Jitter::None).unwrap();
//! let delays: Vec<u64> = (1..=10)
//!     .map(|n| policy.delay(n, None, Duration::MAX, JitterSample::ONE).as_secs())
//!     .collect();
//! assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
//! ```

use std::time::Duration;

use crate::{Error, JitterSample};

/// How retry delays are randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// The ceiling itself, no randomness.
    None,
    /// Uniform between zero and the exponential ceiling.
    #[default]
    Full,
    /// Uniform between `base` and three times the previous delay.
    Decorrelated,
}

/// Exponential backoff parameters; valid by construction (`0 < base <= cap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    base: Duration,
    cap: Duration,
    jitter: Jitter,
}

impl Default for BackoffPolicy {
    /// 10 s doubling up to 1 h, full jitter.
    fn default() -> Self {
        Self {
            base: Self::DEFAULT_BASE,
            cap: Self::DEFAULT_CAP,
            jitter: Jitter::Full,
        }
    }
}

impl BackoffPolicy {
    /// The first retry delay by default.
    pub const DEFAULT_BASE: Duration = Duration::from_secs(10);
    /// The longest retry delay by default.
    pub const DEFAULT_CAP: Duration = Duration::from_secs(3600);

    /// A policy starting at `base` and never exceeding `cap`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBackoff`] when `base` is zero or larger than `cap`.
    pub fn new(base: Duration, cap: Duration, jitter: Jitter) -> Result<Self, Error> {
        if base.is_zero() || base > cap {
            return Err(Error::InvalidBackoff { base, cap });
        }
        Ok(Self { base, cap, jitter })
    }

    /// The first retry delay.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The longest retry delay.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The jitter model.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The largest delay allowed under `limit`: `min(cap, limit)`.
    pub fn effective_cap(&self, limit: Duration) -> Duration {
        self.cap.min(limit)
    }

    /// The delay before jitter after `failures` consecutive failures:
    /// `min(cap, limit, base·2^(failures−1))`; `failures` of 0 counts as 1.
    pub fn ceiling(&self, failures: u32, limit: Duration) -> Duration {
        let cap = self.effective_cap(limit);
        2u32.checked_pow(failures.saturating_sub(1))
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(cap, |delay| delay.min(cap))
    }

    /// The delay after `failures` consecutive failures.
    ///
    /// `previous` is the delay chosen after the failure before (used only by
    /// [`Jitter::Decorrelated`]; `None` on the first failure). `sample` is
    /// the random factor.
    pub fn delay(
        &self,
        failures: u32,
        previous: Option<Duration>,
        limit: Duration,
        sample: JitterSample,
    ) -> Duration {
        let cap = self.effective_cap(limit);
        match self.jitter {
            Jitter::None => self.ceiling(failures, limit),
            Jitter::Full => scale(self.ceiling(failures, limit), sample),
            Jitter::Decorrelated => {
                let previous = previous.unwrap_or(self.base).max(self.base);
                let spread = previous.saturating_mul(3).saturating_sub(self.base);
                self.base.saturating_add(scale(spread, sample)).min(cap)
            }
        }
    }
}

/// `duration · sample`, never more than `duration` (float rounding aside).
fn scale(duration: Duration, sample: JitterSample) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * sample.value())
        .unwrap_or(duration)
        .min(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn policy(jitter: Jitter) -> BackoffPolicy {
        BackoffPolicy::new(S(10), S(3600), jitter).unwrap()
    }

    #[test]
    fn default_is_ten_seconds_to_an_hour_with_full_jitter() {
        let default = BackoffPolicy::default();
        assert_eq!(
            (default.base(), default.cap(), default.jitter()),
            (S(10), S(3600), Jitter::Full)
        );
    }

    #[test]
    fn refuses_zero_base_and_base_above_cap() {
        let err = BackoffPolicy::new(Duration::ZERO, S(60), Jitter::Full).unwrap_err();
        assert!(matches!(err, Error::InvalidBackoff { .. }));
        let err = BackoffPolicy::new(S(61), S(60), Jitter::Full).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid backoff: base 1m 1s must be non-zero and at most the cap 1m"
        );
        assert!(BackoffPolicy::new(S(60), S(60), Jitter::Full).is_ok());
    }

    #[test]
    fn ceiling_doubles_from_base_to_cap() {
        let p = policy(Jitter::None);
        let ceilings: Vec<u64> = (0..=12)
            .map(|n| p.ceiling(n, Duration::MAX).as_secs())
            .collect();
        assert_eq!(
            ceilings,
            [
                10, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600
            ]
        );
        assert_eq!(p.ceiling(u32::MAX, Duration::MAX), S(3600));
    }

    #[test]
    fn limit_tightens_the_cap_even_below_base() {
        let p = policy(Jitter::None);
        assert_eq!(p.ceiling(10, S(300)), S(300));
        assert_eq!(p.delay(1, None, S(5), JitterSample::ONE), S(5));
        assert_eq!(
            policy(Jitter::Decorrelated).delay(1, None, S(5), JitterSample::ZERO),
            S(5)
        );
    }

    #[test]
    fn full_jitter_scales_the_ceiling() {
        let p = policy(Jitter::Full);
        assert_eq!(
            p.delay(3, None, Duration::MAX, JitterSample::new(0.5)),
            S(20)
        );
        assert_eq!(
            p.delay(3, None, Duration::MAX, JitterSample::ZERO),
            Duration::ZERO
        );
        assert_eq!(p.delay(3, None, Duration::MAX, JitterSample::ONE), S(40));
    }

    #[test]
    fn decorrelated_jitter_grows_from_the_previous_delay() {
        let p = policy(Jitter::Decorrelated);
        assert_eq!(p.delay(1, None, Duration::MAX, JitterSample::ZERO), S(10));
        // base + 1·(3·10 − 10) = 30, then base + 1·(3·30 − 10) = 90.
        assert_eq!(p.delay(1, None, Duration::MAX, JitterSample::ONE), S(30));
        assert_eq!(
            p.delay(2, Some(S(30)), Duration::MAX, JitterSample::ONE),
            S(90)
        );
        assert_eq!(
            p.delay(2, Some(S(30)), Duration::MAX, JitterSample::new(0.5)),
            S(50)
        );
        assert_eq!(
            p.delay(9, Some(S(3000)), Duration::MAX, JitterSample::ONE),
            S(3600)
        );
    }

    fn arb_policy() -> impl Strategy<Value = BackoffPolicy> {
        (1u64..120_000, 1u64..10_000_000, 0..3u8).prop_map(|(base_ms, extra_ms, jitter)| {
            let base = Duration::from_millis(base_ms);
            let jitter = [Jitter::None, Jitter::Full, Jitter::Decorrelated][usize::from(jitter)];
            BackoffPolicy::new(base, base + Duration::from_millis(extra_ms), jitter).unwrap()
        })
    }

    fn arb_limit() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::MAX),
            (1u64..100_000).prop_map(Duration::from_secs)
        ]
    }

    proptest! {
        #[test]
        fn ceiling_is_monotonic_and_capped(p in arb_policy(), limit in arb_limit(), n in 0u32..200) {
            let cap = p.effective_cap(limit);
            prop_assert!(p.ceiling(n, limit) <= p.ceiling(n + 1, limit));
            prop_assert!(p.ceiling(n + 1, limit) <= cap);
            prop_assert!(p.ceiling(1, limit) == p.base().min(cap));
        }

        #[test]
        fn full_jitter_stays_under_the_ceiling_and_grows_with_failures(
            base_ms in 1u64..120_000,
            extra_ms in 1u64..10_000_000,
            limit in arb_limit(),
            n in 1u32..200,
            sample in 0.0f64..=1.0,
        ) {
            let base = Duration::from_millis(base_ms);
            let p = BackoffPolicy::new(base, base + Duration::from_millis(extra_ms), Jitter::Full).unwrap();
            let sample = JitterSample::new(sample);
            let delay = p.delay(n, None, limit, sample);
            prop_assert!(delay <= p.ceiling(n, limit));
            prop_assert!(delay <= p.delay(n + 1, None, limit, sample));
        }

        #[test]
        fn decorrelated_jitter_stays_between_base_and_three_times_previous(
            base_ms in 1u64..120_000,
            extra_ms in 1u64..10_000_000,
            limit in arb_limit(),
            previous_ms in 0u64..100_000_000,
            sample in 0.0f64..=1.0,
        ) {
            let base = Duration::from_millis(base_ms);
            let p = BackoffPolicy::new(base, base + Duration::from_millis(extra_ms), Jitter::Decorrelated).unwrap();
            let previous = Duration::from_millis(previous_ms);
            let delay = p.delay(2, Some(previous), limit, JitterSample::new(sample));
            let cap = p.effective_cap(limit);
            prop_assert!(delay <= cap);
            prop_assert!(delay >= base.min(cap));
            prop_assert!(delay <= previous.max(base).saturating_mul(3));
        }

        #[test]
        fn no_jitter_is_the_ceiling(p in arb_policy(), limit in arb_limit(), n in 0u32..200, sample in 0.0f64..=1.0) {
            let p = BackoffPolicy::new(p.base(), p.cap(), Jitter::None).unwrap();
            prop_assert_eq!(p.delay(n, None, limit, JitterSample::new(sample)), p.ceiling(n, limit));
        }
    }
}
