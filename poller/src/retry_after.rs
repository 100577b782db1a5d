//! The HTTP `Retry-After` header (RFC 9110 §10.2.3): how long a registry asks
//! us to wait, as delay-seconds (`120`) or as an HTTP-date
//! (`Wed, 21 Oct 2015 07:28:00 GMT`, plus the two obsolete date forms).
//!
//! This module only parses the value and turns it into an instant given the
//! current time; whether and how far it is honoured is decided where the
//! failure is recorded ([`Poller`](crate::Poller)).
//!
//! ```
//! use bootsource_poller::RetryAfter;
//! use chrono::{TimeZone, Utc};
//!
//! let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 0, 0).unwrap();
//! let seconds: RetryAfter = "120".parse().unwrap();
//! assert_eq!(seconds.not_before(now), Utc.with_ymd_and_hms(2015, 10, 21, 7, 2, 0).unwrap());
//! let date: RetryAfter = "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap();
//! assert_eq!(date.not_before(now), Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap());
//! ```

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::Error;
use crate::schedule::add_saturating;

/// A parsed `Retry-After` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// Wait this long from when the response was received.
    Delay(Duration),
    /// Wait until this instant.
    At(DateTime<Utc>),
}

impl RetryAfter {
    /// Parses a header value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRetryAfter`] when the value is neither a non-negative
    /// integer number of seconds nor an HTTP-date.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let trimmed = value.trim();
        let invalid = || Error::InvalidRetryAfter {
            value: value.to_owned(),
        };
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let seconds: u64 = trimmed.parse().map_err(|_| invalid())?;
            return Ok(Self::Delay(Duration::from_secs(seconds)));
        }
        let when = httpdate::parse_http_date(trimmed).map_err(|_| invalid())?;
        Ok(Self::At(DateTime::<Utc>::from(when)))
    }

    /// The earliest instant a retry is allowed, for a response received at
    /// `now`. A date in the past gives `now`.
    pub fn not_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match *self {
            Self::Delay(delay) => add_saturating(now, delay),
            Self::At(when) => when.max(now),
        }
    }
}

impl FromStr for RetryAfter {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        Self::parse(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use std::time::SystemTime;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn delay_seconds() {
        assert_eq!(
            RetryAfter::parse("120").unwrap(),
            RetryAfter::Delay(Duration::from_secs(120))
        );
        assert_eq!(
            RetryAfter::parse(" 0 ").unwrap(),
            RetryAfter::Delay(Duration::ZERO)
        );
        let now = at(2025, 1, 1, 0, 0, 0);
        assert_eq!(
            RetryAfter::Delay(Duration::from_secs(90)).not_before(now),
            at(2025, 1, 1, 0, 1, 30)
        );
    }

    #[test]
    fn http_date_in_all_three_forms() {
        let expected = RetryAfter::At(at(1994, 11, 6, 8, 49, 37));
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
            "Sunday, 06-Nov-94 08:49:37 GMT", // obsolete RFC 850
            "Sun Nov  6 08:49:37 1994",       // obsolete asctime
        ] {
            assert_eq!(RetryAfter::parse(value).unwrap(), expected, "{value}");
        }
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        let now = at(2025, 1, 1, 0, 0, 0);
        let past = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(past.not_before(now), now);
        let future = RetryAfter::At(at(2025, 1, 1, 0, 5, 0));
        assert_eq!(future.not_before(now), at(2025, 1, 1, 0, 5, 0));
    }

    #[test]
    fn refuses_other_values_and_names_them() {
        for bad in [
            "",
            " ",
            "-5",
            "1.5",
            "+3",
            "soon",
            "2025-01-01T00:00:00Z",
            "99999999999999999999999",
        ] {
            let err = RetryAfter::parse(bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidRetryAfter { value } if value == bad),
                "{bad:?}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("invalid Retry-After value {bad:?}")
            );
        }
    }

    proptest! {
        #[test]
        fn any_seconds_value_parses_to_that_delay(seconds in any::<u64>()) {
            prop_assert_eq!(
                RetryAfter::parse(&seconds.to_string()).unwrap(),
                RetryAfter::Delay(Duration::from_secs(seconds))
            );
        }

        #[test]
        fn any_formatted_http_date_parses_back(secs in 0u64..253_402_300_799) {
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            let parsed = RetryAfter::parse(&httpdate::fmt_http_date(when)).unwrap();
            prop_assert_eq!(parsed, RetryAfter::At(DateTime::<Utc>::from(when)));
        }
    }
}
