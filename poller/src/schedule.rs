//! When a source is polled: a 5-field cron expression or a fixed interval.
//!
//! A [`Schedule`] is parsed from the text an operator writes in the config
//! (`"0 */12 * * *"`, `"@daily"`, `"6h"`, `"90min"`) and answers one
//! question: given the current time, when is the next poll
//! ([`Schedule::next_after`])? Cron is evaluated in UTC by `croner` with
//! vixie-cron semantics (day-of-month and day-of-week are OR-ed); intervals
//! use `humantime` syntax and must be at least one second. The schedule holds
//! no clock: the time is always passed in.
//!
//! ```
//! use bootsource_poller::Schedule;
//! use chrono::{TimeZone, Utc};
//!
//! let twice_a_day: Schedule = "0 */12 * * *".parse().unwrap();
//! let now = Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).unwrap();
//! assert_eq!(twice_a_day.next_after(now), Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap());
//!
//! let every_six_hours: Schedule = "6h".parse().unwrap();
//! assert_eq!(every_six_hours.next_after(now), Utc.with_ymd_and_hms(2025, 3, 1, 15, 30, 0).unwrap());
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// The shortest interval accepted: anything faster is a hot loop, not a schedule.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A polling schedule: cron or a fixed interval.
///
/// Equality compares meaning where it is cheap to: two intervals are equal
/// when their durations are (`"6h"` equals `"360min"`); two cron schedules
/// when their text is, ignoring surrounding whitespace and case.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Cron(Box<Cron>),
    Interval(Duration),
}

impl Schedule {
    /// Parses a 5-field cron expression (minute hour day-of-month month
    /// day-of-week) or a nickname such as `@daily`, evaluated in UTC.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCron`] when `croner` refuses the text (including 6- and
    /// 7-field forms with seconds or years), [`Error::CronNeverFires`] when it
    /// matches no date at all (`0 0 30 2 *`).
    pub fn cron(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|source| Error::InvalidCron {
                text: text.to_owned(),
                source,
            })?;
        // A pattern that can match must match within a few years of any
        // instant (29 February recurs every 4 to 8 years); croner searches
        // up to a year of seconds from the reference and jumps by whole
        // fields, so this also catches 30 February.
        if cron.find_next_occurrence(&reference_time(), false).is_err() {
            return Err(Error::CronNeverFires {
                text: text.to_owned(),
            });
        }
        Ok(Self {
            text: text.to_owned(),
            kind: Kind::Cron(Box::new(cron)),
        })
    }

    /// Parses a humantime interval (`"6h"`, `"1h 30m"`, `"90min"`, `"1d"`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInterval`] when the text is not a duration,
    /// [`Error::IntervalTooShort`] when it is under [`MIN_INTERVAL`].
    pub fn interval(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let every = humantime::parse_duration(text).map_err(|source| Error::InvalidInterval {
            text: text.to_owned(),
            source,
        })?;
        Self::every_with_text(every, text.to_owned())
    }

    /// A schedule that polls every `every`.
    ///
    /// # Errors
    ///
    /// [`Error::IntervalTooShort`] when `every` is under [`MIN_INTERVAL`].
    pub fn every(every: Duration) -> Result<Self, Error> {
        Self::every_with_text(every, humantime::format_duration(every).to_string())
    }

    fn every_with_text(every: Duration, text: String) -> Result<Self, Error> {
        if every < MIN_INTERVAL {
            return Err(Error::IntervalTooShort {
                text,
                min: MIN_INTERVAL,
            });
        }
        Ok(Self {
            text,
            kind: Kind::Interval(every),
        })
    }

    /// The schedule as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The fixed interval, or `None` for a cron schedule.
    pub fn as_interval(&self) -> Option<Duration> {
        match self.kind {
            Kind::Interval(every) => Some(every),
            Kind::Cron(_) => None,
        }
    }

    /// The next poll strictly after `now`.
    ///
    /// Cron times fall on whole minutes. The result saturates at
    /// [`DateTime::<Utc>::MAX_UTC`] (in effect "never") when it cannot be
    /// represented; that needs `now` past year 5000 for cron or an interval
    /// of hundreds of millions of years.
    pub fn next_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match &self.kind {
            Kind::Interval(every) => add_saturating(now, *every),
            Kind::Cron(cron) => cron
                .find_next_occurrence(&now, false)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// The time between the next two polls after `now`: the interval, or for
    /// cron the gap between its next two occurrences. Used to cap backoff so
    /// that a failing source is retried at least as often as it is polled.
    pub fn gap_after(&self, now: DateTime<Utc>) -> Duration {
        match &self.kind {
            Kind::Interval(every) => *every,
            Kind::Cron(_) => {
                let first = self.next_after(now);
                let second = self.next_after(first);
                (second - first).to_std().unwrap_or(Duration::MAX)
            }
        }
    }
}

/// A fixed instant to test cron patterns against at parse time; which one
/// does not matter, only that it is not read from a clock.
fn reference_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2001, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// `at + delay`, or [`DateTime::<Utc>::MAX_UTC`] if that is not representable.
pub(crate) fn add_saturating(at: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(delay)
        .ok()
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Interval(a), Kind::Interval(b)) => a == b,
            (Kind::Cron(_), Kind::Cron(_)) => self.text.eq_ignore_ascii_case(&other.text),
            _ => false,
        }
    }
}

impl Eq for Schedule {}

/// Parses either form: text that `humantime` reads as a duration is an
/// interval, anything else is cron. The two syntaxes do not overlap (cron
/// fields carry no units, durations always do, except `"0"` which is refused
/// as too short).
impl FromStr for Schedule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        match humantime::parse_duration(trimmed) {
            Ok(every) => Self::every_with_text(every, trimmed.to_owned()),
            Err(interval_error) if !looks_like_cron(trimmed) => Err(Error::InvalidInterval {
                text: trimmed.to_owned(),
                source: interval_error,
            }),
            Err(_) => Self::cron(trimmed),
        }
    }
}

/// Whether a failed parse should be reported as a cron error rather than as
/// an interval error: a nickname, a `*`, cron's field count, or several
/// fields without a single unit letter. A lone number (`"12"`) is taken as
/// an interval missing its unit, which humantime explains best.
fn looks_like_cron(text: &str) -> bool {
    let fields = text.split_whitespace().count();
    let has_letters = text.chars().any(|c| c.is_ascii_alphabetic());
    text.starts_with('@') || text.contains('*') || fields >= 5 || (fields >= 2 && !has_letters)
}

/// Shows the text and the kind, not croner's internal bit fields.
impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Cron(_) => "Cron",
            Kind::Interval(_) => "Interval",
        };
        f.debug_tuple(kind).field(&self.text).finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|error: Error| serde::de::Error::custom(crate::error_chain(&error)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn cron_twice_a_day_fires_at_midnight_and_noon() {
        let schedule = Schedule::cron("0 */12 * * *").unwrap();
        assert_eq!(
            schedule.next_after(at(2025, 3, 1, 0, 0, 0)),
            at(2025, 3, 1, 12, 0, 0)
        );
        assert_eq!(
            schedule.next_after(at(2025, 3, 1, 11, 59, 59)),
            at(2025, 3, 1, 12, 0, 0)
        );
        assert_eq!(
            schedule.next_after(at(2025, 3, 1, 12, 0, 0)),
            at(2025, 3, 2, 0, 0, 0)
        );
        assert_eq!(
            schedule.next_after(at(2025, 12, 31, 23, 0, 0)),
            at(2026, 1, 1, 0, 0, 0)
        );
    }

    #[test]
    fn cron_ignores_sub_second_parts_of_now() {
        let schedule = Schedule::cron("* * * * *").unwrap();
        let now = at(2025, 3, 1, 9, 59, 59)
            .with_nanosecond(700_000_000)
            .unwrap();
        assert_eq!(schedule.next_after(now), at(2025, 3, 1, 10, 0, 0));
        let now = at(2025, 3, 1, 10, 0, 0).with_nanosecond(1).unwrap();
        assert_eq!(schedule.next_after(now), at(2025, 3, 1, 10, 1, 0));
    }

    #[test]
    fn cron_supports_names_nicknames_and_or_of_day_fields() {
        // 2025-03-01 is a Saturday.
        let monday = Schedule::cron("30 4 * * MON").unwrap();
        assert_eq!(
            monday.next_after(at(2025, 3, 1, 0, 0, 0)),
            at(2025, 3, 3, 4, 30, 0)
        );
        let daily = Schedule::cron("@daily").unwrap();
        assert_eq!(
            daily.next_after(at(2025, 3, 1, 0, 0, 0)),
            at(2025, 3, 2, 0, 0, 0)
        );
        // Vixie cron: the 15th OR a Monday.
        let either = Schedule::cron("0 0 15 * 1").unwrap();
        assert_eq!(
            either.next_after(at(2025, 3, 1, 0, 0, 0)),
            at(2025, 3, 3, 0, 0, 0)
        );
        assert_eq!(
            either.next_after(at(2025, 3, 11, 0, 0, 0)),
            at(2025, 3, 15, 0, 0, 0)
        );
    }

    #[test]
    fn cron_leap_day_is_found_years_ahead() {
        let leap = Schedule::cron("0 0 29 2 *").unwrap();
        assert_eq!(
            leap.next_after(at(2025, 3, 1, 0, 0, 0)),
            at(2028, 2, 29, 0, 0, 0)
        );
    }

    #[test]
    fn cron_refuses_seconds_and_years_fields() {
        for text in ["0 0 */12 * * *", "0 0 0 * * * 2030", "0 *", ""] {
            let err = Schedule::cron(text).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidCron { text: t, .. } if t == text.trim()),
                "{text:?}: {err:?}"
            );
        }
    }

    #[test]
    fn cron_errors_name_the_text() {
        let err = Schedule::cron("61 * * * *").unwrap_err();
        assert_eq!(err.to_string(), r#"invalid cron schedule "61 * * * *""#);
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn cron_that_never_fires_is_refused() {
        let err = Schedule::cron("0 0 30 2 *").unwrap_err();
        assert!(
            matches!(&err, Error::CronNeverFires { text } if text == "0 0 30 2 *"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), r#"cron schedule "0 0 30 2 *" never fires"#);
    }

    #[test]
    fn interval_adds_to_now_exactly() {
        let schedule = Schedule::interval("6h").unwrap();
        let now = at(2025, 3, 1, 21, 15, 7).with_nanosecond(5).unwrap();
        let expected = at(2025, 3, 2, 3, 15, 7).with_nanosecond(5).unwrap();
        assert_eq!(schedule.next_after(now), expected);
        assert_eq!(schedule.as_interval(), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(
            Schedule::interval("1h 30m").unwrap().as_interval(),
            Some(Duration::from_secs(5400))
        );
    }

    #[test]
    fn interval_refuses_garbage_and_too_short_values() {
        let err = Schedule::interval("6 parsecs").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInterval { text, .. } if text == "6 parsecs"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), r#"invalid interval "6 parsecs""#);
        for short in ["0", "0s", "999ms"] {
            let err = Schedule::interval(short).unwrap_err();
            assert!(
                matches!(&err, Error::IntervalTooShort { text, .. } if text == short),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("interval {short:?} is shorter than 1s")
            );
        }
        assert!(Schedule::interval("1s").is_ok());
        assert!(Schedule::every(Duration::from_millis(10)).is_err());
    }

    #[test]
    fn interval_saturates_instead_of_overflowing() {
        let schedule = Schedule::interval("500000000years").unwrap();
        assert_eq!(
            schedule.next_after(at(2025, 1, 1, 0, 0, 0)),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn from_str_tells_the_two_forms_apart() {
        let cron: Schedule = "0 */12 * * *".parse().unwrap();
        assert_eq!(cron.as_interval(), None);
        assert_eq!(cron.as_str(), "0 */12 * * *");
        let interval: Schedule = " 6h ".parse().unwrap();
        assert_eq!(interval.as_interval(), Some(Duration::from_secs(21_600)));
        assert_eq!(interval.as_str(), "6h");
        let nickname: Schedule = "@hourly".parse().unwrap();
        assert_eq!(nickname.as_interval(), None);
    }

    #[test]
    fn from_str_reports_the_error_of_the_form_the_text_resembles() {
        for cronish in ["0 */12 * *", "0 0 1 1", "0 25 * * *", "@fortnightly", "*/5"] {
            let err = cronish.parse::<Schedule>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidCron { .. }),
                "{cronish:?}: {err:?}"
            );
        }
        for intervalish in ["12", "6 parsecs", "2 hours min"] {
            let err = intervalish.parse::<Schedule>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidInterval { .. }),
                "{intervalish:?}: {err:?}"
            );
        }
        let err = "0".parse::<Schedule>().unwrap_err();
        assert!(matches!(err, Error::IntervalTooShort { .. }), "{err:?}");
    }

    #[test]
    fn equality_compares_meaning_for_intervals_and_text_for_cron() {
        let six_hours: Schedule = "6h".parse().unwrap();
        assert_eq!(six_hours, "360min".parse::<Schedule>().unwrap());
        assert_ne!(six_hours, "7h".parse::<Schedule>().unwrap());
        assert_eq!(
            "@daily".parse::<Schedule>().unwrap(),
            " @DAILY".parse::<Schedule>().unwrap()
        );
        assert_ne!(
            "0 0 * * *".parse::<Schedule>().unwrap(),
            "0 12 * * *".parse::<Schedule>().unwrap()
        );
        assert_ne!(six_hours, "0 */6 * * *".parse::<Schedule>().unwrap());
    }

    #[test]
    fn gap_after_is_the_interval_or_the_distance_between_two_cron_firings() {
        let now = at(2025, 3, 1, 9, 30, 0);
        assert_eq!(
            "6h".parse::<Schedule>().unwrap().gap_after(now),
            Duration::from_secs(21_600)
        );
        let cron: Schedule = "0 */12 * * *".parse().unwrap();
        assert_eq!(cron.gap_after(now), Duration::from_secs(12 * 3600));
        // Irregular: 00:00 and 06:00 daily, seen at 01:00 → 06:00 then 00:00.
        let irregular: Schedule = "0 0,6 * * *".parse().unwrap();
        assert_eq!(
            irregular.gap_after(at(2025, 3, 1, 1, 0, 0)),
            Duration::from_secs(18 * 3600)
        );
    }

    #[test]
    fn debug_is_short() {
        assert_eq!(
            format!("{:?}", Schedule::cron("0 */12 * * *").unwrap()),
            r#"Cron("0 */12 * * *")"#
        );
        assert_eq!(
            format!("{:?}", Schedule::interval("6h").unwrap()),
            r#"Interval("6h")"#
        );
    }

    #[test]
    fn serde_reads_either_form_and_writes_the_text_back() {
        let schedule: Schedule = serde_json::from_str("\"0 */12 * * *\"").unwrap();
        assert_eq!(
            serde_json::to_string(&schedule).unwrap(),
            "\"0 */12 * * *\""
        );
        let schedule: Schedule = serde_json::from_str("\"6h\"").unwrap();
        assert_eq!(serde_json::to_string(&schedule).unwrap(), "\"6h\"");
        let err = serde_json::from_str::<Schedule>("\"0 25 * * *\"").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(r#"invalid cron schedule "0 25 * * *": "#),
            "{message}"
        );
    }

    fn arb_now() -> impl Strategy<Value = DateTime<Utc>> {
        // 1970 .. 4000, any nanosecond.
        (0i64..64_060_588_800, 0u32..1_000_000_000)
            .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
    }

    const CRON_SAMPLES: &[&str] = &[
        "* * * * *",
        "0 */12 * * *",
        "30 4 * * MON",
        "0 0 1 * *",
        "15 3 29 2 *",
        "0 0 15 * 1",
        "*/7 1-5 * JAN,JUL *",
        "@weekly",
    ];

    proptest! {
        #[test]
        fn cron_next_after_is_strictly_later_whole_minute_and_matches(
            now in arb_now(),
            index in 0..CRON_SAMPLES.len(),
        ) {
            let schedule = Schedule::cron(CRON_SAMPLES[index]).unwrap();
            let next = schedule.next_after(now);
            prop_assert!(next > now);
            prop_assert_eq!(next.second(), 0);
            prop_assert_eq!(next.nanosecond(), 0);
            let Kind::Cron(cron) = &schedule.kind else { unreachable!() };
            prop_assert!(cron.is_time_matching(&next).unwrap());
            // Nothing in between: the previous match is at or before now.
            let previous = cron.find_previous_occurrence(&next, false).unwrap();
            prop_assert!(previous <= now);
        }

        #[test]
        fn interval_next_after_is_now_plus_the_interval(
            now in arb_now(),
            secs in 1u64..10_000_000,
        ) {
            let schedule = Schedule::every(Duration::from_secs(secs)).unwrap();
            let next = schedule.next_after(now);
            prop_assert!(next > now);
            prop_assert_eq!((next - now).to_std().unwrap(), Duration::from_secs(secs));
        }

        #[test]
        fn every_round_trips_through_its_text(secs in 1u64..100_000_000) {
            let schedule = Schedule::every(Duration::from_secs(secs)).unwrap();
            let reparsed: Schedule = schedule.as_str().parse().unwrap();
            prop_assert_eq!(reparsed, schedule);
        }
    }
}
