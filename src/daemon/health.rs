//! What `/healthz` answers: whether the daemon can still do its work.
//!
//! Answering at all proves only that the HTTP task runs. The daemon is wedged — and a
//! liveness probe should restart it — when its control loop stops ticking (it wakes at
//! least once a minute, so [`MAX_TICK_GAP`] without a tick means it is stuck in an
//! await that never returns) or when its catalog cannot be read (a corrupt file, a
//! state directory on storage that went away or hangs). The catalog is read off the
//! runtime, at most once a second whatever the request rate, and never by two threads
//! at once: a read that hangs is reported as such instead of piling up threads.
//!
//! Not here: the HTTP server ([`super::http`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bootsource_storage::Store;
use tokio::task::JoinHandle;

/// The loop wakes at least every minute; three missed wake-ups mean it is stuck.
pub const MAX_TICK_GAP: Duration = Duration::from_secs(180);
/// A catalog read taking longer than this is a hung one.
const CATALOG_TIMEOUT: Duration = Duration::from_secs(5);
/// A catalog verdict is reused for this long.
const CATALOG_FRESH: Duration = Duration::from_secs(1);

/// The loop's heartbeat and the catalog probe, shared with the HTTP task.
#[derive(Debug)]
pub struct Health {
    epoch: Instant,
    /// Milliseconds after `epoch` of the loop's last tick.
    last_tick: AtomicU64,
    store: Mutex<Arc<Store>>,
    catalog: tokio::sync::Mutex<CatalogProbe>,
}

#[derive(Debug, Default)]
struct CatalogProbe {
    verdict: Option<(Instant, Result<(), String>)>,
    /// A read that has not finished yet (and when it started).
    running: Option<(Instant, JoinHandle<Result<(), String>>)>,
}

impl Health {
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            epoch: Instant::now(),
            last_tick: AtomicU64::new(0),
            store: Mutex::new(store),
            catalog: tokio::sync::Mutex::default(),
        }
    }

    /// The control loop is alive now.
    pub fn tick(&self) {
        self.last_tick
            .store(millis(self.epoch.elapsed()), Ordering::Relaxed);
    }

    /// The store in force changed (a reload moved the state directory or backends).
    pub fn set_store(&self, store: Arc<Store>) {
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = store;
    }

    /// `Ok` when healthy, else what is wrong.
    pub async fn check(&self) -> Result<(), String> {
        loop_verdict(
            self.epoch.elapsed(),
            Duration::from_millis(self.last_tick.load(Ordering::Relaxed)),
        )?;
        self.catalog_verdict().await
    }

    async fn catalog_verdict(&self) -> Result<(), String> {
        let mut probe = self.catalog.lock().await;
        if let Some((at, verdict)) = &probe.verdict
            && at.elapsed() < CATALOG_FRESH
        {
            return verdict.clone();
        }
        let (started, handle) = match probe.running.take() {
            Some(running) => running,
            None => {
                let store = Arc::clone(&self.store.lock().unwrap_or_else(|e| e.into_inner()));
                let read = tokio::task::spawn_blocking(move || {
                    store
                        .sources()
                        .map(drop)
                        .map_err(|e| format!("{:#}", anyhow::Error::from(e)))
                });
                (Instant::now(), read)
            }
        };
        let left = CATALOG_TIMEOUT.saturating_sub(started.elapsed());
        let mut handle = handle;
        let verdict = match tokio::time::timeout(left, &mut handle).await {
            Ok(Ok(result)) => result.map_err(|e| format!("the catalog cannot be read: {e}")),
            Ok(Err(e)) => Err(format!("the catalog read failed: {e}")),
            Err(_) => {
                probe.running = Some((started, handle));
                Err(format!(
                    "the catalog read has not finished after {}s",
                    started.elapsed().as_secs()
                ))
            }
        };
        probe.verdict = Some((Instant::now(), verdict.clone()));
        verdict
    }
}

/// Whether a loop last seen `last_tick` into the daemon's life is alive at `now`.
fn loop_verdict(now: Duration, last_tick: Duration) -> Result<(), String> {
    let gap = now.saturating_sub(last_tick);
    if gap > MAX_TICK_GAP {
        Err(format!(
            "the control loop has not run for {}s",
            gap.as_secs()
        ))
    } else {
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_missed_three_wake_ups_is_wedged() {
        let s = Duration::from_secs;
        assert!(loop_verdict(s(10), s(0)).is_ok());
        assert!(loop_verdict(s(1000), s(1000 - 180)).is_ok());
        let err = loop_verdict(s(1000), s(1000 - 181)).unwrap_err();
        assert!(err.contains("181s"), "{err}");
    }
}
