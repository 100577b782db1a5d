//! Tickets: the handles the poller gives the daemon for each poll and import
//! it starts, and takes back with the result.
//!
//! A ticket ties a result to the exact request that produced it. When a
//! source is removed or its image changes while a request is in flight, the
//! old ticket no longer matches and its result is not applied to the new
//! state. Tickets carry what the daemon needs to do the work (source name,
//! image, digest); they own no resources.

use std::fmt;

use crate::Digest;

/// A number unique among the tickets one [`Poller`](crate::Poller) issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketId(pub(crate) u64);

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A poll the daemon should run now: resolve `image`'s tag to its manifest
/// digest, then report with [`Poller::poll_succeeded`](crate::Poller::poll_succeeded)
/// or [`Poller::poll_failed`](crate::Poller::poll_failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollTicket {
    /// Identifies this request.
    pub id: TicketId,
    /// The source's name.
    pub source: String,
    /// The image reference to resolve, as given in the source's spec.
    pub image: String,
}

/// An import the daemon may start now: fetch `image` at `digest` and publish
/// it, then report with [`Poller::import_succeeded`](crate::Poller::import_succeeded),
/// [`import_failed`](crate::Poller::import_failed) or
/// [`import_cancelled`](crate::Poller::import_cancelled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTicket {
    /// Identifies this request.
    pub id: TicketId,
    /// The source's name.
    pub source: String,
    /// The image reference, as given in the source's spec.
    pub image: String,
    /// The manifest digest the poll resolved the tag to: import exactly this.
    pub digest: Digest,
}
