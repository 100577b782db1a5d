//! The crate's one error type.
//!
//! Every variant names what was wrong and carries the offending text, so the
//! daemon can print it as is; the source error, when there is one, is kept
//! as `source()` rather than repeated in the message.

use std::time::Duration;

use crate::ticket::TicketId;

/// Everything that can go wrong in `bootsource-poller`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cron schedule that `croner` refused.
    #[error("invalid cron schedule {text:?}")]
    InvalidCron {
        /// The schedule as written.
        text: String,
        /// Why `croner` refused it.
        #[source]
        source: croner::errors::CronError,
    },

    /// A cron schedule that parses but matches no time at all (`0 0 30 2 *`).
    #[error("cron schedule {text:?} never fires")]
    CronNeverFires {
        /// The schedule as written.
        text: String,
    },

    /// An interval that is not a humantime duration (`6h`, `90min`).
    #[error("invalid interval {text:?}")]
    InvalidInterval {
        /// The interval as written.
        text: String,
        /// Why `humantime` refused it.
        #[source]
        source: humantime::DurationError,
    },

    /// An interval shorter than the minimum of one second (including zero).
    #[error("interval {text:?} is shorter than {}", humantime::format_duration(*min))]
    IntervalTooShort {
        /// The interval as written.
        text: String,
        /// The shortest interval accepted.
        min: Duration,
    },

    /// A `Retry-After` header value that is neither delay-seconds nor an HTTP-date.
    #[error("invalid Retry-After value {value:?}")]
    InvalidRetryAfter {
        /// The header value as received.
        value: String,
    },

    /// A backoff whose base is zero or larger than its cap.
    #[error(
        "invalid backoff: base {} must be non-zero and at most the cap {}",
        humantime::format_duration(*base),
        humantime::format_duration(*cap)
    )]
    InvalidBackoff {
        /// The first retry delay.
        base: Duration,
        /// The longest retry delay.
        cap: Duration,
    },

    /// Two sources with the same name in one set of sources.
    #[error("duplicate source {name:?}")]
    DuplicateSource {
        /// The repeated name.
        name: String,
    },

    /// A source name the poller does not know.
    #[error("unknown source {name:?}")]
    UnknownSource {
        /// The name asked for.
        name: String,
    },

    /// A poll result whose ticket no longer matches its source: the source was
    /// removed, its image changed, or the result was already reported. The
    /// result was ignored.
    #[error("stale poll ticket {ticket} for source {source_name:?}")]
    StaleTicket {
        /// The source the ticket was issued for.
        source_name: String,
        /// The ticket.
        ticket: TicketId,
    },

    /// An import result for a ticket that is not running (reported twice, or
    /// never issued by this poller).
    #[error("import ticket {ticket} for source {source_name:?} is not running")]
    UnknownTicket {
        /// The source the ticket names.
        source_name: String,
        /// The ticket.
        ticket: TicketId,
    },
}
