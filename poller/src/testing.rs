//! Helpers shared by the unit tests: explicit instants, digests and specs.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::{BackoffPolicy, Digest, Jitter, PollerConfig, RetryRules, Schedule, SourceSpec};

/// 2025-03-01T09:00:00Z plus `secs`.
pub(crate) fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + chrono::TimeDelta::seconds(secs)
}

/// A distinct valid digest per `n`.
pub(crate) fn digest(n: u64) -> Digest {
    format!("sha256:{n:064x}").parse::<Digest>().unwrap()
}

pub(crate) fn spec(name: &str, schedule: &str) -> SourceSpec {
    SourceSpec {
        name: name.to_owned(),
        image: format!("docker://quay.io/containerdisks/{name}:latest"),
        schedule: schedule.parse::<Schedule>().unwrap(),
        auto_update: true,
    }
}

pub(crate) fn disabled(name: &str, schedule: &str) -> SourceSpec {
    SourceSpec {
        auto_update: false,
        ..spec(name, schedule)
    }
}

/// 10 s doubling to 1 h, no jitter: exact times in assertions.
pub(crate) fn exact_rules() -> RetryRules {
    RetryRules {
        backoff: BackoffPolicy::new(
            Duration::from_secs(10),
            Duration::from_secs(3600),
            Jitter::None,
        )
        .unwrap(),
        retry_after_limit: Duration::from_secs(24 * 3600),
    }
}

pub(crate) fn config(max_concurrent_imports: usize) -> PollerConfig {
    PollerConfig {
        max_concurrent_imports: max_concurrent_imports.try_into().unwrap(),
        retry: exact_rules(),
    }
}
