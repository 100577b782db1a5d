//! The poller: every source's state, the import slots, and the calls the
//! daemon's loop makes.
//!
//! The daemon owns the clock, the registry clients and the import jobs; the
//! [`Poller`] owns the decisions. Each turn of the daemon's loop:
//!
//! 1. [`Poller::start_due`] hands out the polls and imports to start now, as
//!    tickets;
//! 2. the daemon runs them and reports each result with its ticket
//!    ([`poll_succeeded`](Poller::poll_succeeded), [`poll_failed`](Poller::poll_failed),
//!    [`import_succeeded`](Poller::import_succeeded), …);
//! 3. it sleeps until [`Poller::next_wakeup`], a result, or a signal.
//!
//! On SIGHUP it calls [`Poller::reload`] with the new sources and then
//! [`Poller::poll_all_now`]. Sources are independent: each has its own timer
//! and backoff, so a failing source never delays another's polls, and import
//! admission is FIFO by the time an import started waiting.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::admission::ImportSlots;
use crate::{
    Decision, Digest, Error, Failure, ImportTicket, JitterSource, PollTicket, RetryRules,
    SourceSpec, SourceState, SplitMix64, TicketId,
};

/// Settings of the poller as a whole (the daemon fills them from its config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollerConfig {
    /// Imports allowed to run at once across all sources (default 1).
    pub max_concurrent_imports: NonZeroUsize,
    /// Backoff and `Retry-After` handling for failed polls and imports.
    pub retry: RetryRules,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            max_concurrent_imports: NonZeroUsize::MIN,
            retry: RetryRules::default(),
        }
    }
}

/// Work to start now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// Polls to run, earliest due first.
    pub polls: Vec<PollTicket>,
    /// Imports to run, in admission order.
    pub imports: Vec<ImportTicket>,
}

impl Due {
    /// Whether there is nothing to start.
    pub fn is_empty(&self) -> bool {
        self.polls.is_empty() && self.imports.is_empty()
    }
}

/// What a [`Poller::reload`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Sources that are new (due now unless disabled).
    pub added: Vec<String>,
    /// Sources that are gone, with all their state.
    pub removed: Vec<String>,
    /// Running imports that are no longer wanted (source removed, image
    /// changed, or auto-update turned off): the daemon should cancel them
    /// and report [`Poller::import_cancelled`]. Their slots stay taken until
    /// it does.
    pub cancel_imports: Vec<ImportTicket>,
}

/// The decisions for all sources. `J` supplies the jitter for backoff.
#[derive(Debug)]
pub struct Poller<J = SplitMix64> {
    config: PollerConfig,
    sources: BTreeMap<String, SourceState>,
    slots: ImportSlots,
    last_ticket: u64,
    jitter: J,
}

impl<J: JitterSource> Poller<J> {
    /// A poller with no sources and the default config; call
    /// [`reload`](Self::reload) to give it both.
    pub fn new(jitter: J) -> Self {
        let config = PollerConfig::default();
        Self {
            config,
            sources: BTreeMap::new(),
            slots: ImportSlots::new(config.max_concurrent_imports),
            last_ticket: 0,
            jitter,
        }
    }

    /// The config in force.
    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// Replaces the config and the set of sources (at start-up and on
    /// SIGHUP). Sources keep their state when their name is unchanged;
    /// removed ones are dropped; new ones are due at `now`. See
    /// [`ReloadReport::cancel_imports`] for imports made unwanted.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateSource`] if two specs share a name; nothing is
    /// changed then.
    pub fn reload(
        &mut self,
        config: PollerConfig,
        specs: impl IntoIterator<Item = SourceSpec>,
        now: DateTime<Utc>,
    ) -> Result<ReloadReport, Error> {
        let mut incoming = BTreeMap::new();
        for spec in specs {
            if let Some(duplicate) = incoming.insert(spec.name.clone(), spec) {
                return Err(Error::DuplicateSource {
                    name: duplicate.name,
                });
            }
        }
        self.config = config;
        self.slots.set_limit(config.max_concurrent_imports);

        let mut report = ReloadReport::default();
        let gone: Vec<String> = self
            .sources
            .keys()
            .filter(|name| !incoming.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(source) = self.sources.remove(&name) {
                report
                    .cancel_imports
                    .extend(self.running_ticket(source.import_ticket()));
            }
            report.removed.push(name);
        }
        for (name, spec) in incoming {
            match self.sources.get_mut(&name) {
                Some(source) => {
                    let cancel = source.reconfigure(spec, now);
                    report.cancel_imports.extend(self.running_ticket(cancel));
                }
                None => {
                    self.sources
                        .insert(name.clone(), SourceState::new(spec, now));
                    report.added.push(name);
                }
            }
        }
        Ok(report)
    }

    /// Makes every auto-update source due at `now` (SIGHUP): sources waiting
    /// on a schedule or on our own backoff poll at once, those with a poll or
    /// import in flight poll again right after it, and a registry's
    /// `Retry-After` still holds.
    pub fn poll_all_now(&mut self, now: DateTime<Utc>) {
        for source in self.sources.values_mut() {
            source.request_poll_now(now);
        }
    }

    /// Like [`poll_all_now`](Self::poll_all_now) for one source.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSource`] if there is no such source.
    pub fn poll_now(&mut self, name: &str, now: DateTime<Utc>) -> Result<(), Error> {
        self.source_mut(name)?.request_poll_now(now);
        Ok(())
    }

    /// Tells the poller which digest the storage holds as `name`'s current
    /// version (at start-up from the catalog, or `None` after its storage
    /// backend changed so that it is imported afresh).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSource`] if there is no such source.
    pub fn set_current_digest(
        &mut self,
        name: &str,
        digest: Option<Digest>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.source_mut(name)?.set_current(digest, now);
        Ok(())
    }

    /// Starts what is due at `now`: every poll whose time has come, and as
    /// many queued imports as the slots allow.
    pub fn start_due(&mut self, now: DateTime<Utc>) -> Due {
        let mut due_polls: Vec<(DateTime<Utc>, String)> = self
            .sources
            .values()
            .filter_map(|source| {
                let at = source.due_poll_at()?;
                (at <= now).then(|| (at, source.name().to_owned()))
            })
            .collect();
        due_polls.sort_unstable();

        let mut due = Due::default();
        for (_, name) in due_polls {
            let id = self.issue_ticket();
            if let Some(source) = self.sources.get_mut(&name) {
                source.begin_poll(id, now);
                due.polls.push(PollTicket {
                    id,
                    source: name,
                    image: source.spec().image.clone(),
                });
            }
        }

        let admitted: Vec<String> = self
            .slots
            .choose(self.waiting_imports())
            .into_iter()
            .map(|(_, name)| name.to_owned())
            .collect();
        for name in admitted {
            let id = self.issue_ticket();
            if let Some(source) = self.sources.get_mut(&name) {
                let Some((digest, _)) = source.queued() else {
                    continue;
                };
                let ticket = ImportTicket {
                    id,
                    source: name,
                    image: source.spec().image.clone(),
                    digest: *digest,
                };
                source.begin_import(id);
                self.slots.start(ticket.clone());
                due.imports.push(ticket);
            }
        }
        due
    }

    /// Reports that a poll resolved the tag to `digest`.
    ///
    /// # Errors
    ///
    /// [`Error::StaleTicket`] if the ticket no longer matches its source
    /// (removed, image changed, already reported); nothing is changed.
    pub fn poll_succeeded(
        &mut self,
        ticket: &PollTicket,
        now: DateTime<Utc>,
        digest: Digest,
    ) -> Result<Decision, Error> {
        Ok(self.polling_source(ticket)?.poll_succeeded(now, digest))
    }

    /// Reports that a poll failed; returns when the source will be retried.
    ///
    /// # Errors
    ///
    /// [`Error::StaleTicket`] as for [`poll_succeeded`](Self::poll_succeeded).
    pub fn poll_failed(
        &mut self,
        ticket: &PollTicket,
        now: DateTime<Utc>,
        failure: &Failure,
    ) -> Result<DateTime<Utc>, Error> {
        let rules = self.config.retry;
        let source = Self::polling_source_in(&mut self.sources, ticket)?;
        let sample = self.jitter.sample();
        Ok(source.poll_failed(now, failure, &rules, sample))
    }

    /// Reports that an import published its digest as the current version.
    /// This frees its slot and, if its source still exists, records the
    /// digest as current even when the ticket is stale (the storage holds it
    /// either way).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTicket`] if the ticket is not running.
    pub fn import_succeeded(
        &mut self,
        ticket: &ImportTicket,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let running = self.release(ticket)?;
        if let Some(source) = self.sources.get_mut(&running.source) {
            if source.import_ticket() == Some(running.id) {
                source.import_succeeded(now);
            } else {
                source.set_current(Some(running.digest), now);
            }
        }
        Ok(())
    }

    /// Reports that an import published `digest`, which may differ from the
    /// ticket's: a single file's digest (the sha256 of its bytes) is known only
    /// once it is downloaded, so its poll could name it only provisionally. As
    /// [`import_succeeded`](Self::import_succeeded), and then `digest` is the
    /// source's current digest — and its remote one too, where the provisional
    /// digest the import was decided on still stands — so the source is not
    /// left outdated by a name that was never a content digest.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTicket`] if the ticket is not running.
    pub fn import_succeeded_as(
        &mut self,
        ticket: &ImportTicket,
        now: DateTime<Utc>,
        digest: Digest,
    ) -> Result<(), Error> {
        self.import_succeeded(ticket, now)?;
        if let Some(source) = self.sources.get_mut(&ticket.source) {
            source.resolved(&ticket.digest, digest);
        }
        Ok(())
    }

    /// Reports that an import failed. This frees its slot; returns when the
    /// source will be retried, or `None` if the ticket was stale (its source
    /// removed or changed) and nothing else changed.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTicket`] if the ticket is not running.
    pub fn import_failed(
        &mut self,
        ticket: &ImportTicket,
        now: DateTime<Utc>,
        failure: &Failure,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let running = self.release(ticket)?;
        let rules = self.config.retry;
        match self.sources.get_mut(&running.source) {
            Some(source) if source.import_ticket() == Some(running.id) => {
                let sample = self.jitter.sample();
                Ok(Some(source.import_failed(now, failure, &rules, sample)))
            }
            _ => Ok(None),
        }
    }

    /// Reports that an import was cancelled (after a reload asked for it,
    /// or at shutdown). This frees its slot; it does not count as a failure.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTicket`] if the ticket is not running.
    pub fn import_cancelled(
        &mut self,
        ticket: &ImportTicket,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let running = self.release(ticket)?;
        if let Some(source) = self.sources.get_mut(&running.source)
            && source.import_ticket() == Some(running.id)
        {
            source.import_cancelled(now);
        }
        Ok(())
    }

    /// The earliest time something is due: a poll, or a queued import that
    /// a free slot could start. `None` when nothing is scheduled (all
    /// sources disabled, in flight, or waiting for a slot): the daemon then
    /// sleeps until a result or a signal.
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        let next_poll = self
            .sources
            .values()
            .filter_map(SourceState::due_poll_at)
            .min();
        let next_import = self
            .slots
            .choose(self.waiting_imports())
            .first()
            .map(|(since, _)| *since);
        next_poll.into_iter().chain(next_import).min()
    }

    /// How long to sleep from `now` until [`next_wakeup`](Self::next_wakeup)
    /// (zero if it has passed).
    pub fn time_until_wakeup(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.next_wakeup()
            .map(|at| (at - now).to_std().unwrap_or(Duration::ZERO))
    }

    /// One source's state.
    pub fn source(&self, name: &str) -> Option<&SourceState> {
        self.sources.get(name)
    }

    /// Every source's state, by name.
    pub fn sources(&self) -> impl Iterator<Item = &SourceState> {
        self.sources.values()
    }

    /// The imports holding slots, including those of removed sources that
    /// have not reported back yet.
    pub fn running_imports(&self) -> impl Iterator<Item = &ImportTicket> {
        self.slots.running()
    }

    fn issue_ticket(&mut self) -> TicketId {
        self.last_ticket += 1;
        TicketId(self.last_ticket)
    }

    fn waiting_imports(&self) -> impl Iterator<Item = (DateTime<Utc>, &str)> {
        self.sources
            .values()
            .filter_map(|source| Some((source.queued()?.1, source.name())))
    }

    fn running_ticket(&self, id: Option<TicketId>) -> Option<ImportTicket> {
        id.and_then(|id| self.slots.get(id)).cloned()
    }

    fn source_mut(&mut self, name: &str) -> Result<&mut SourceState, Error> {
        self.sources
            .get_mut(name)
            .ok_or_else(|| Error::UnknownSource {
                name: name.to_owned(),
            })
    }

    fn polling_source(&mut self, ticket: &PollTicket) -> Result<&mut SourceState, Error> {
        Self::polling_source_in(&mut self.sources, ticket)
    }

    fn polling_source_in<'a>(
        sources: &'a mut BTreeMap<String, SourceState>,
        ticket: &PollTicket,
    ) -> Result<&'a mut SourceState, Error> {
        sources
            .get_mut(&ticket.source)
            .filter(|source| source.poll_ticket() == Some(ticket.id))
            .ok_or_else(|| Error::StaleTicket {
                source_name: ticket.source.clone(),
                ticket: ticket.id,
            })
    }

    fn release(&mut self, ticket: &ImportTicket) -> Result<ImportTicket, Error> {
        self.slots
            .release(ticket.id)
            .ok_or_else(|| Error::UnknownTicket {
                source_name: ticket.source.clone(),
                ticket: ticket.id,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{config, digest, disabled, spec, t};
    use crate::{FixedJitter, JitterSample, Phase, RetryAfter};

    type TestPoller = Poller<FixedJitter>;

    fn poller(max_imports: usize, specs: Vec<SourceSpec>) -> TestPoller {
        let mut poller = Poller::new(FixedJitter(JitterSample::ONE));
        poller.reload(config(max_imports), specs, t(0)).unwrap();
        poller
    }

    fn names(polls: &[PollTicket]) -> Vec<&str> {
        polls.iter().map(|p| p.source.as_str()).collect()
    }

    fn import_names(imports: &[ImportTicket]) -> Vec<&str> {
        imports.iter().map(|i| i.source.as_str()).collect()
    }

    /// Starts the due polls at `now` and answers each with the digest
    /// `answer(source)`.
    fn poll_round(
        p: &mut TestPoller,
        now: DateTime<Utc>,
        answer: impl Fn(&str) -> u64,
    ) -> Vec<Decision> {
        let due = p.start_due(now);
        due.polls
            .iter()
            .map(|poll| {
                p.poll_succeeded(poll, now, digest(answer(&poll.source)))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn due_polls_are_handed_out_once_with_their_images() {
        let mut p = poller(
            1,
            vec![
                spec("fedora", "6h"),
                spec("centos", "6h"),
                disabled("debian", "6h"),
            ],
        );
        let due = p.start_due(t(0));
        assert_eq!(names(&due.polls), ["centos", "fedora"]);
        assert_eq!(
            due.polls[1].image,
            "docker://quay.io/containerdisks/fedora:latest"
        );
        assert_ne!(due.polls[0].id, due.polls[1].id);
        assert!(due.imports.is_empty());
        assert!(p.start_due(t(1)).is_empty(), "in flight, not due again");
    }

    #[test]
    fn an_import_names_the_digest_its_poll_could_only_name_provisionally() {
        let mut p = poller(1, vec![spec("fedora", "6h")]);
        poll_round(&mut p, t(0), |_| 7);
        let import = p.start_due(t(0)).imports.remove(0);
        assert_eq!(import.digest, digest(7));
        p.import_succeeded_as(&import, t(10), digest(8)).unwrap();
        let fedora = p.source("fedora").unwrap();
        assert_eq!(fedora.current_digest(), Some(&digest(8)));
        assert_eq!(fedora.remote_digest(), Some(&digest(8)));
        assert!(!fedora.outdated());
        // The next poll names the content (the daemon knows it now): up to date.
        let decisions = poll_round(&mut p, t(6 * 3600 + 10), |_| 8);
        assert_eq!(decisions, [Decision::UpToDate]);
    }

    #[test]
    fn nothing_is_due_before_its_time() {
        let mut p = poller(1, vec![spec("fedora", "6h")]);
        poll_round(&mut p, t(0), |_| 1);
        p.start_due(t(0))
            .imports
            .iter()
            .for_each(|i| p.import_succeeded(i, t(10)).unwrap());
        assert!(p.start_due(t(6 * 3600 + 9)).is_empty());
        assert_eq!(names(&p.start_due(t(6 * 3600 + 10)).polls), ["fedora"]);
    }

    #[test]
    fn imports_wait_for_a_slot_in_the_order_they_were_decided() {
        let mut p = poller(1, vec![spec("a", "6h"), spec("b", "6h"), spec("c", "6h")]);
        let due = p.start_due(t(0));
        // c is decided first, then a, then b.
        for (name, at) in [("c", 1), ("a", 2), ("b", 3)] {
            let poll = due.polls.iter().find(|poll| poll.source == name).unwrap();
            p.poll_succeeded(poll, t(at), digest(1)).unwrap();
        }
        let first = p.start_due(t(3)).imports;
        assert_eq!(import_names(&first), ["c"]);
        assert!(p.start_due(t(4)).imports.is_empty(), "one slot");
        assert_eq!(
            p.source("a").unwrap().phase(),
            &Phase::Queued {
                digest: digest(1),
                since: t(2)
            }
        );
        p.import_succeeded(&first[0], t(100)).unwrap();
        let second = p.start_due(t(100)).imports;
        assert_eq!(import_names(&second), ["a"]);
        assert_eq!(second[0].digest, digest(1));
        p.import_succeeded(&second[0], t(200)).unwrap();
        assert_eq!(import_names(&p.start_due(t(200)).imports), ["b"]);
    }

    #[test]
    fn the_limit_allows_that_many_imports_at_once() {
        let mut p = poller(2, vec![spec("a", "6h"), spec("b", "6h"), spec("c", "6h")]);
        poll_round(&mut p, t(0), |_| 1);
        let started = p.start_due(t(0)).imports;
        assert_eq!(started.len(), 2);
        assert_eq!(p.running_imports().count(), 2);
        assert!(p.start_due(t(1)).imports.is_empty());
    }

    #[test]
    fn a_source_that_keeps_failing_does_not_starve_the_others() {
        let mut p = poller(1, vec![spec("bad", "6h"), spec("good", "6h")]);
        let due = p.start_due(t(0));
        p.poll_succeeded(&due.polls[0], t(0), digest(1)).unwrap(); // "bad", first in line
        p.poll_succeeded(&due.polls[1], t(1), digest(2)).unwrap(); // "good"
        let bad = p.start_due(t(1)).imports;
        assert_eq!(import_names(&bad), ["bad"]);
        let retry = p
            .import_failed(&bad[0], t(5), &Failure::new("disk full"))
            .unwrap();
        assert_eq!(retry, Some(t(15)));
        // "good" goes next, "bad" re-polls and queues behind it.
        let good = p.start_due(t(5)).imports;
        assert_eq!(import_names(&good), ["good"]);
        let due = p.start_due(t(15));
        p.poll_succeeded(&due.polls[0], t(15), digest(1)).unwrap();
        assert!(p.start_due(t(15)).imports.is_empty());
        p.import_succeeded(&good[0], t(20)).unwrap();
        assert_eq!(import_names(&p.start_due(t(20)).imports), ["bad"]);
    }

    #[test]
    fn a_failing_source_never_delays_another_sources_polls() {
        let mut p = poller(1, vec![spec("bad", "1h"), spec("good", "1h")]);
        let mut now = t(0);
        let mut good_polls = Vec::new();
        // Bounded, so that a wake-up that starts nothing fails instead of spinning.
        for _ in 0..100 {
            if now >= t(3 * 3600) {
                break;
            }
            let due = p.start_due(now);
            assert!(!due.is_empty(), "woke at {now} for nothing");
            for poll in &due.polls {
                if poll.source == "bad" {
                    p.poll_failed(poll, now, &Failure::new("down")).unwrap();
                } else {
                    good_polls.push(now);
                    p.poll_succeeded(poll, now, digest(1)).unwrap();
                }
            }
            for import in &due.imports {
                p.import_succeeded(import, now).unwrap();
            }
            now = p.next_wakeup().unwrap();
        }
        // good: at start, then hourly from when its import finished.
        assert_eq!(good_polls, [t(0), t(3600), t(7200)]);
        assert!(p.source("bad").unwrap().consecutive_failures() >= 8);
    }

    #[test]
    fn poll_all_now_makes_every_auto_update_source_due() {
        let mut p = poller(
            1,
            vec![spec("a", "6h"), spec("b", "6h"), disabled("off", "6h")],
        );
        let due = p.start_due(t(0));
        p.poll_succeeded(&due.polls[0], t(0), digest(1)).unwrap();
        let b_poll = due.polls[1].clone();
        p.poll_failed(
            &b_poll,
            t(0),
            &Failure::new("503").with_retry_after(RetryAfter::Delay(Duration::from_secs(120))),
        )
        .unwrap();
        let import = p.start_due(t(0)).imports;
        assert_eq!(import_names(&import), ["a"]);

        p.poll_all_now(t(60));
        // a is importing: it polls right after. b has a Retry-After: at t(120).
        assert!(p.start_due(t(60)).is_empty());
        assert_eq!(p.next_wakeup(), Some(t(120)));
        p.import_succeeded(&import[0], t(90)).unwrap();
        assert_eq!(names(&p.start_due(t(90)).polls), ["a"]);
        assert_eq!(names(&p.start_due(t(120)).polls), ["b"]);
        assert_eq!(p.source("off").unwrap().phase(), &Phase::Disabled);
    }

    #[test]
    fn poll_now_targets_one_source() {
        let mut p = poller(1, vec![spec("a", "6h"), spec("b", "6h")]);
        poll_round(&mut p, t(0), |_| 1);
        p.set_current_digest("a", Some(digest(1)), t(0)).unwrap();
        p.set_current_digest("b", Some(digest(1)), t(0)).unwrap();
        p.poll_now("b", t(30)).unwrap();
        assert_eq!(names(&p.start_due(t(30)).polls), ["b"]);
        assert!(
            matches!(p.poll_now("zzz", t(30)), Err(Error::UnknownSource { name }) if name == "zzz")
        );
    }

    #[test]
    fn next_wakeup_is_the_earliest_due_time() {
        let mut p = poller(1, vec![spec("a", "1h"), spec("b", "2h")]);
        assert_eq!(p.next_wakeup(), Some(t(0)));
        poll_round(&mut p, t(0), |_| 1);
        p.set_current_digest("a", Some(digest(1)), t(0)).unwrap();
        // b is queued with a free slot: due now.
        assert_eq!(p.next_wakeup(), Some(t(0)));
        let import = p.start_due(t(0)).imports;
        // a polls at 1h; b is importing.
        assert_eq!(p.next_wakeup(), Some(t(3600)));
        assert_eq!(p.time_until_wakeup(t(600)), Some(Duration::from_secs(3000)));
        assert_eq!(p.time_until_wakeup(t(4000)), Some(Duration::ZERO));
        p.import_succeeded(&import[0], t(100)).unwrap();
        assert_eq!(p.next_wakeup(), Some(t(3600)));
    }

    #[test]
    fn next_wakeup_ignores_imports_that_cannot_start() {
        let mut p = poller(1, vec![spec("a", "1h"), spec("b", "1h")]);
        poll_round(&mut p, t(0), |_| 1);
        p.start_due(t(0));
        // a imports, b waits for the slot: nothing to wake up for but results.
        assert_eq!(p.next_wakeup(), None);
        assert_eq!(p.time_until_wakeup(t(0)), None);
    }

    #[test]
    fn next_wakeup_is_none_when_everything_is_disabled() {
        let p = poller(1, vec![disabled("a", "1h")]);
        assert_eq!(p.next_wakeup(), None);
    }

    #[test]
    fn reload_keeps_state_by_name_drops_removed_and_adds_new_sources_due_now() {
        let mut p = poller(1, vec![spec("keep", "6h"), spec("drop", "6h")]);
        let due = p.start_due(t(0));
        p.poll_failed(&due.polls[1], t(0), &Failure::new("down"))
            .unwrap(); // keep
        p.poll_succeeded(&due.polls[0], t(0), digest(1)).unwrap(); // drop

        let report = p
            .reload(config(1), vec![spec("keep", "6h"), spec("new", "6h")], t(5))
            .unwrap();
        assert_eq!(report.added, ["new"]);
        assert_eq!(report.removed, ["drop"]);
        assert!(report.cancel_imports.is_empty());
        assert!(p.source("drop").is_none());
        let keep = p.source("keep").unwrap();
        assert_eq!(keep.consecutive_failures(), 1);
        assert_eq!(keep.last_error(), Some("down"));
        assert_eq!(keep.next_poll(), Some(t(10)));
        assert_eq!(p.source("new").unwrap().next_poll(), Some(t(5)));
        assert_eq!(names(&p.start_due(t(5)).polls), ["new"]);
    }

    #[test]
    fn reload_keeps_the_current_digest() {
        let mut p = poller(1, vec![spec("a", "6h")]);
        p.set_current_digest("a", Some(digest(3)), t(0)).unwrap();
        p.reload(config(1), vec![spec("a", "12h")], t(1)).unwrap();
        assert_eq!(p.source("a").unwrap().current_digest(), Some(&digest(3)));
    }

    #[test]
    fn reload_refuses_duplicate_names_and_changes_nothing() {
        let mut p = poller(1, vec![spec("a", "6h")]);
        let err = p
            .reload(config(3), vec![spec("b", "6h"), spec("b", "1h")], t(1))
            .unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateSource { name } if name == "b"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), r#"duplicate source "b""#);
        assert!(p.source("a").is_some() && p.source("b").is_none());
        assert_eq!(p.config().max_concurrent_imports.get(), 1);
    }

    #[test]
    fn removing_an_importing_source_asks_for_a_cancel_and_holds_the_slot_until_it_ends() {
        let mut p = poller(1, vec![spec("a", "6h"), spec("b", "6h")]);
        poll_round(&mut p, t(0), |_| 1);
        let a = p.start_due(t(0)).imports;
        assert_eq!(import_names(&a), ["a"]);
        let report = p.reload(config(1), vec![spec("b", "6h")], t(10)).unwrap();
        assert_eq!(report.cancel_imports, a);
        assert!(
            p.start_due(t(10)).imports.is_empty(),
            "a still holds the slot"
        );
        assert_eq!(
            p.import_failed(&a[0], t(20), &Failure::new("cancelled"))
                .unwrap(),
            None
        );
        assert_eq!(import_names(&p.start_due(t(20)).imports), ["b"]);
    }

    #[test]
    fn a_re_added_source_waits_for_its_old_import_to_end() {
        let mut p = poller(2, vec![spec("a", "6h")]);
        poll_round(&mut p, t(0), |_| 1);
        let old = p.start_due(t(0)).imports;
        p.reload(config(2), vec![], t(1)).unwrap();
        p.reload(config(2), vec![spec("a", "6h")], t(2)).unwrap();
        poll_round(&mut p, t(2), |_| 2);
        assert!(
            p.start_due(t(3)).imports.is_empty(),
            "one import per source at a time"
        );
        p.import_cancelled(&old[0], t(4)).unwrap();
        let new = p.start_due(t(4)).imports;
        assert_eq!(new[0].digest, digest(2));
    }

    #[test]
    fn turning_auto_update_off_mid_import_asks_for_a_cancel() {
        let mut p = poller(1, vec![spec("a", "6h")]);
        poll_round(&mut p, t(0), |_| 1);
        let import = p.start_due(t(0)).imports;
        let report = p
            .reload(config(1), vec![disabled("a", "6h")], t(10))
            .unwrap();
        assert_eq!(report.cancel_imports, import);
        p.import_cancelled(&import[0], t(20)).unwrap();
        assert_eq!(p.source("a").unwrap().phase(), &Phase::Disabled);
        assert_eq!(p.running_imports().count(), 0);
    }

    #[test]
    fn an_import_that_finishes_after_its_image_changed_still_counts_as_current() {
        let mut p = poller(1, vec![spec("a", "6h")]);
        poll_round(&mut p, t(0), |_| 1);
        let import = p.start_due(t(0)).imports;
        let moved = SourceSpec {
            image: "oci:/srv/a".into(),
            ..spec("a", "6h")
        };
        let report = p.reload(config(1), vec![moved], t(10)).unwrap();
        assert_eq!(report.cancel_imports, import);
        p.import_succeeded(&import[0], t(20)).unwrap();
        let a = p.source("a").unwrap();
        assert_eq!(a.current_digest(), Some(&digest(1)));
        assert_eq!(
            a.next_poll(),
            Some(t(10)),
            "the new image is polled at once"
        );
    }

    #[test]
    fn results_for_stale_or_unknown_tickets_are_refused() {
        let mut p = poller(1, vec![spec("a", "6h"), spec("b", "6h")]);
        let due = p.start_due(t(0));
        p.poll_succeeded(&due.polls[0], t(0), digest(1)).unwrap();
        let again = p
            .poll_succeeded(&due.polls[0], t(0), digest(1))
            .unwrap_err();
        assert!(
            matches!(&again, Error::StaleTicket { source_name, .. } if source_name == "a"),
            "{again:?}"
        );
        p.reload(config(1), vec![spec("a", "6h")], t(1)).unwrap();
        let removed = p
            .poll_failed(&due.polls[1], t(1), &Failure::new("x"))
            .unwrap_err();
        assert!(matches!(removed, Error::StaleTicket { .. }), "{removed:?}");

        let import = p.start_due(t(1)).imports;
        p.import_succeeded(&import[0], t(2)).unwrap();
        let twice = p.import_succeeded(&import[0], t(3)).unwrap_err();
        assert!(
            matches!(&twice, Error::UnknownTicket { ticket, .. } if *ticket == import[0].id),
            "{twice:?}"
        );
        assert!(twice.to_string().starts_with("import ticket #"));
        assert!(p.import_cancelled(&import[0], t(3)).is_err());
        assert!(
            p.import_failed(&import[0], t(3), &Failure::new("x"))
                .is_err()
        );
    }

    #[test]
    fn a_poll_in_flight_when_the_image_changes_is_stale() {
        let mut p = poller(1, vec![spec("a", "6h")]);
        let due = p.start_due(t(0));
        let moved = SourceSpec {
            image: "oci:/srv/a".into(),
            ..spec("a", "6h")
        };
        p.reload(config(1), vec![moved], t(1)).unwrap();
        assert!(p.poll_succeeded(&due.polls[0], t(2), digest(1)).is_err());
        let fresh = p.start_due(t(2));
        assert_eq!(fresh.polls[0].image, "oci:/srv/a");
    }

    #[test]
    fn set_current_digest_refuses_unknown_sources() {
        let mut p = poller(1, vec![]);
        assert!(matches!(
            p.set_current_digest("nope", None, t(0)),
            Err(Error::UnknownSource { .. })
        ));
    }

    #[test]
    fn jitter_comes_from_the_injected_source() {
        let mut p = Poller::new(FixedJitter(JitterSample::new(0.5)));
        let rules = RetryRules {
            backoff: crate::BackoffPolicy::new(
                Duration::from_secs(10),
                Duration::from_secs(3600),
                crate::Jitter::Full,
            )
            .unwrap(),
            ..RetryRules::default()
        };
        let config = PollerConfig {
            retry: rules,
            ..PollerConfig::default()
        };
        p.reload(config, vec![spec("a", "6h")], t(0)).unwrap();
        let due = p.start_due(t(0));
        assert_eq!(
            p.poll_failed(&due.polls[0], t(0), &Failure::new("x"))
                .unwrap(),
            t(5)
        );
        let due = p.start_due(t(5));
        assert_eq!(
            p.poll_failed(&due.polls[0], t(5), &Failure::new("x"))
                .unwrap(),
            t(15)
        );
    }

    #[test]
    fn default_config_is_one_import_and_default_backoff() {
        let config = PollerConfig::default();
        assert_eq!(config.max_concurrent_imports.get(), 1);
        assert_eq!(config.retry.backoff, crate::BackoffPolicy::default());
        assert_eq!(config.retry.retry_after_limit, Duration::from_secs(86_400));
    }

    /// The full cycle a daemon runs for "push v2 + SIGHUP".
    #[test]
    fn a_new_push_and_sighup_make_the_new_digest_current() {
        let mut p = poller(1, vec![spec("fedora", "0 */12 * * *")]);
        poll_round(&mut p, t(0), |_| 1);
        let v1 = p.start_due(t(0)).imports;
        p.import_succeeded(&v1[0], t(60)).unwrap();
        assert_eq!(p.next_wakeup(), Some(t(3 * 3600)));
        // v2 pushed; SIGHUP: reload (same config) and poll now.
        p.reload(config(1), vec![spec("fedora", "0 */12 * * *")], t(600))
            .unwrap();
        p.poll_all_now(t(600));
        let decisions = poll_round(&mut p, t(600), |_| 2);
        assert_eq!(decisions, [Decision::Import { digest: digest(2) }]);
        assert!(p.source("fedora").unwrap().outdated());
        let v2 = p.start_due(t(600)).imports;
        p.import_succeeded(&v2[0], t(700)).unwrap();
        let fedora = p.source("fedora").unwrap();
        assert_eq!(fedora.current_digest(), Some(&digest(2)));
        assert!(!fedora.outdated());
    }

    mod invariants {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Advance(u16),
            Tick,
            PollOk {
                index: usize,
                digest: u64,
            },
            PollFail {
                index: usize,
                retry_after: Option<u16>,
                rate_limited: bool,
            },
            ImportOk(usize),
            ImportFail(usize),
            ImportCancel(usize),
            PollAllNow,
            Reload {
                keep: u8,
                disable: u8,
                image: u8,
            },
            SetCurrent {
                source: usize,
                digest: Option<u64>,
            },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (1u16..4000).prop_map(Op::Advance),
                Just(Op::Tick),
                (0usize..8, 0u64..3).prop_map(|(index, digest)| Op::PollOk { index, digest }),
                (0usize..8, proptest::option::of(0u16..900), any::<bool>()).prop_map(
                    |(index, retry_after, rate_limited)| Op::PollFail {
                        index,
                        retry_after,
                        rate_limited
                    }
                ),
                (0usize..8).prop_map(Op::ImportOk),
                (0usize..8).prop_map(Op::ImportFail),
                (0usize..8).prop_map(Op::ImportCancel),
                Just(Op::PollAllNow),
                (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(keep, disable, image)| {
                    Op::Reload {
                        keep,
                        disable,
                        image,
                    }
                }),
                (0usize..5, proptest::option::of(0u64..3))
                    .prop_map(|(source, digest)| Op::SetCurrent { source, digest }),
            ]
        }

        const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

        fn specs(keep: u8, disable: u8, image: u8) -> Vec<SourceSpec> {
            NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| keep & (1 << i) != 0)
                .map(|(i, name)| SourceSpec {
                    auto_update: disable & (1 << i) == 0,
                    image: if image & (1 << i) != 0 {
                        format!("oci:/srv/{name}")
                    } else {
                        format!("docker://r/{name}")
                    },
                    ..spec(name, if i % 2 == 0 { "10min" } else { "*/15 * * * *" })
                })
                .collect()
        }

        fn check(p: &Poller<SplitMix64>, limit: usize) -> Result<(), TestCaseError> {
            let running: Vec<_> = p.running_imports().collect();
            prop_assert!(
                running.len() <= limit,
                "{} imports over a limit of {limit}",
                running.len()
            );
            let mut running_names: Vec<_> = running.iter().map(|r| r.source.as_str()).collect();
            running_names.sort_unstable();
            let before = running_names.len();
            running_names.dedup();
            prop_assert_eq!(before, running_names.len(), "two imports for one source");
            for source in p.sources() {
                if let Phase::Importing { ticket, digest } = source.phase() {
                    let slot = running.iter().find(|r| r.id == *ticket);
                    prop_assert!(
                        slot.is_some_and(|r| &r.digest == digest && r.source == source.name())
                    );
                }
                if !source.spec().auto_update {
                    prop_assert!(
                        source.next_poll().is_none(),
                        "disabled source {} scheduled",
                        source.name()
                    );
                }
                prop_assert_eq!(
                    source.outdated(),
                    source.remote_digest().is_some()
                        && source.remote_digest() != source.current_digest()
                );
            }
            // Liveness: a scheduled poll always shows up in the wake-up time.
            if let Some(earliest) = p.sources().filter_map(SourceState::next_poll).min() {
                prop_assert!(p.next_wakeup().is_some_and(|wake| wake <= earliest));
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

            #[test]
            fn limits_hold_and_nothing_due_is_forgotten(
                ops in proptest::collection::vec(op(), 1..120),
                seed in any::<u64>(),
                limit in 1usize..3,
            ) {
                let mut p = Poller::new(SplitMix64::new(seed));
                let mut now = t(0);
                p.reload(config(limit), specs(0xff, 0, 0), now).unwrap();
                let mut polls: Vec<PollTicket> = Vec::new();
                let mut imports: Vec<ImportTicket> = Vec::new();
                for op in ops {
                    match op {
                        Op::Advance(secs) => now += chrono::TimeDelta::seconds(i64::from(secs)),
                        Op::Tick => {
                            let due = p.start_due(now);
                            polls.extend(due.polls);
                            imports.extend(due.imports);
                        }
                        Op::PollOk { index, digest: d } if index < polls.len() => {
                            let ticket = polls.swap_remove(index);
                            let _ = p.poll_succeeded(&ticket, now, digest(d));
                        }
                        Op::PollFail { index, retry_after, rate_limited } if index < polls.len() => {
                            let ticket = polls.swap_remove(index);
                            let mut failure = Failure::new("x");
                            failure.rate_limited = rate_limited;
                            failure.retry_after = retry_after.map(|s| RetryAfter::Delay(Duration::from_secs(s.into())));
                            if let Ok(next) = p.poll_failed(&ticket, now, &failure) {
                                prop_assert!(next > now);
                            }
                        }
                        Op::ImportOk(index) if index < imports.len() => {
                            let ticket = imports.swap_remove(index);
                            p.import_succeeded(&ticket, now).unwrap();
                        }
                        Op::ImportFail(index) if index < imports.len() => {
                            let ticket = imports.swap_remove(index);
                            if let Some(next) = p.import_failed(&ticket, now, &Failure::new("x")).unwrap() {
                                prop_assert!(next > now);
                            }
                        }
                        Op::ImportCancel(index) if index < imports.len() => {
                            let ticket = imports.swap_remove(index);
                            p.import_cancelled(&ticket, now).unwrap();
                        }
                        Op::PollAllNow => p.poll_all_now(now),
                        Op::Reload { keep, disable, image } => {
                            p.reload(config(limit), specs(keep, disable, image), now).unwrap();
                        }
                        Op::SetCurrent { source, digest: d } => {
                            let _ = p.set_current_digest(NAMES[source], d.map(digest), now);
                        }
                        _ => {}
                    }
                    check(&p, limit)?;
                    // Whatever start_due leaves behind is not due yet.
                    let due = p.start_due(now);
                    polls.extend(due.polls);
                    imports.extend(due.imports);
                    if let Some(wake) = p.next_wakeup() {
                        prop_assert!(wake > now, "woke for {wake} at {now} but nothing started");
                    }
                    check(&p, limit)?;
                }
                // Draining every outstanding ticket frees every slot.
                for ticket in imports.drain(..) {
                    p.import_cancelled(&ticket, now).unwrap();
                }
                prop_assert_eq!(p.running_imports().count(), 0);
            }
        }
    }
}
