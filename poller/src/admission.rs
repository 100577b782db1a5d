//! Import admission: which waiting imports may start now.
//!
//! Two limits hold at all times: at most one import per source name, and at
//! most `limit` imports in total (config; 1 by default, since an import is
//! heavy on the disk of a node that runs VMs). Waiting imports start in
//! order of the time they started waiting (FIFO), ties broken by name. A
//! source whose import fails goes back to polling and, when it queues again,
//! joins the back of the line, so a source that keeps failing cannot starve
//! the others.
//!
//! Slots are held by ticket until the daemon reports the import's end, even
//! when its source was removed or changed meanwhile: the import is still
//! using the disk and the network until it has actually stopped.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use chrono::{DateTime, Utc};

use crate::{ImportTicket, TicketId};

/// The running imports and the limit on them.
#[derive(Debug, Clone)]
pub(crate) struct ImportSlots {
    limit: NonZeroUsize,
    running: BTreeMap<TicketId, ImportTicket>,
}

impl ImportSlots {
    pub(crate) fn new(limit: NonZeroUsize) -> Self {
        Self {
            limit,
            running: BTreeMap::new(),
        }
    }

    /// A new limit; running imports above it finish undisturbed.
    pub(crate) fn set_limit(&mut self, limit: NonZeroUsize) {
        self.limit = limit;
    }

    pub(crate) fn running(&self) -> impl Iterator<Item = &ImportTicket> {
        self.running.values()
    }

    pub(crate) fn get(&self, ticket: TicketId) -> Option<&ImportTicket> {
        self.running.get(&ticket)
    }

    fn is_running(&self, source: &str) -> bool {
        self.running.values().any(|ticket| ticket.source == source)
    }

    fn free(&self) -> usize {
        self.limit.get().saturating_sub(self.running.len())
    }

    /// Of the `waiting` imports (when each started waiting, and its source),
    /// those that may start now, in the order they should start.
    pub(crate) fn choose<'a>(
        &self,
        waiting: impl IntoIterator<Item = (DateTime<Utc>, &'a str)>,
    ) -> Vec<(DateTime<Utc>, &'a str)> {
        let mut waiting: Vec<_> = waiting.into_iter().collect();
        waiting.sort_unstable();
        waiting.dedup_by(|a, b| a.1 == b.1);
        waiting
            .into_iter()
            .filter(|(_, source)| !self.is_running(source))
            .take(self.free())
            .collect()
    }

    /// Takes a slot for `ticket`.
    pub(crate) fn start(&mut self, ticket: ImportTicket) {
        debug_assert!(self.free() > 0 && !self.is_running(&ticket.source));
        self.running.insert(ticket.id, ticket);
    }

    /// Frees the slot of `ticket`; `None` if it was not running.
    pub(crate) fn release(&mut self, ticket: TicketId) -> Option<ImportTicket> {
        self.running.remove(&ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn ticket(id: u64, source: &str) -> ImportTicket {
        ImportTicket {
            id: TicketId(id),
            source: source.to_owned(),
            image: format!("docker://example.org/{source}:latest"),
            digest: format!("sha256:{id:064x}").parse::<Digest>().unwrap(),
        }
    }

    fn slots(limit: usize) -> ImportSlots {
        ImportSlots::new(NonZeroUsize::new(limit).unwrap())
    }

    #[test]
    fn starts_in_fifo_order_up_to_the_limit() {
        let slots = slots(2);
        let chosen = slots.choose([(t(30), "c"), (t(10), "b"), (t(20), "a")]);
        assert_eq!(chosen, [(t(10), "b"), (t(20), "a")]);
    }

    #[test]
    fn ties_are_broken_by_name() {
        let chosen = slots(1).choose([(t(10), "zeta"), (t(10), "alpha")]);
        assert_eq!(chosen, [(t(10), "alpha")]);
    }

    #[test]
    fn nothing_starts_while_all_slots_are_taken() {
        let mut slots = slots(1);
        slots.start(ticket(1, "a"));
        assert!(slots.choose([(t(0), "b")]).is_empty());
        assert_eq!(slots.release(TicketId(1)).unwrap().source, "a");
        assert_eq!(slots.choose([(t(0), "b")]), [(t(0), "b")]);
    }

    #[test]
    fn a_source_with_a_running_import_waits_without_blocking_others() {
        let mut slots = slots(3);
        slots.start(ticket(1, "a"));
        let chosen = slots.choose([(t(0), "a"), (t(5), "b")]);
        assert_eq!(chosen, [(t(5), "b")]);
    }

    #[test]
    fn one_source_is_never_chosen_twice() {
        let chosen = slots(3).choose([(t(0), "a"), (t(1), "a")]);
        assert_eq!(chosen, [(t(0), "a")]);
    }

    #[test]
    fn releasing_an_unknown_ticket_is_refused() {
        let mut slots = slots(1);
        slots.start(ticket(1, "a"));
        assert!(slots.release(TicketId(2)).is_none());
        assert!(slots.release(TicketId(1)).is_some());
        assert!(slots.release(TicketId(1)).is_none());
    }

    #[test]
    fn lowering_the_limit_lets_running_imports_finish() {
        let mut slots = slots(2);
        slots.start(ticket(1, "a"));
        slots.start(ticket(2, "b"));
        slots.set_limit(NonZeroUsize::MIN);
        assert_eq!(slots.running().count(), 2);
        slots.release(TicketId(1));
        assert!(slots.choose([(t(0), "c")]).is_empty());
        slots.release(TicketId(2));
        assert_eq!(slots.choose([(t(0), "c")]).len(), 1);
    }
}
