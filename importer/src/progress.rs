//! Import progress, shared between the pipeline threads and whoever displays it.
//!
//! Plain atomic counters: the pipeline adds, a terminal renderer or the metrics
//! endpoint reads [`Progress::snapshot`] whenever it likes. Nothing here blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::stages::{StageClocks, StageTimes};

/// Live counters of one import.
#[derive(Debug, Default)]
pub struct Progress {
    pub(crate) downloaded: AtomicU64,
    pub(crate) download_total: AtomicU64,
    pub(crate) decoded: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) virtual_size: AtomicU64,
    pub(crate) pass: AtomicU32,
    /// Where the time goes, per stage.
    pub(crate) stages: StageClocks,
}

/// A consistent-enough reading of [`Progress`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProgressSnapshot {
    /// Compressed layer bytes received so far (all passes).
    pub downloaded: u64,
    /// Bytes that will have been received when the current layer is done.
    pub download_total: u64,
    /// Guest bytes produced by the decoder.
    pub decoded: u64,
    /// Bytes written to the target (all-zero blocks are skipped, not written).
    pub written: u64,
    /// The disk's virtual size, once known.
    pub virtual_size: u64,
    /// The pass over the layer (2 or 3 only for images edited after creation).
    pub pass: u32,
}

impl Progress {
    /// A fresh, shareable progress record.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Reads the counters.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            downloaded: self.downloaded.load(Ordering::Relaxed),
            download_total: self.download_total.load(Ordering::Relaxed),
            decoded: self.decoded.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            virtual_size: self.virtual_size.load(Ordering::Relaxed),
            pass: self.pass.load(Ordering::Relaxed),
        }
    }

    /// Where the import's time went so far.
    pub fn stage_times(&self) -> StageTimes {
        self.stages.times()
    }

    /// Runs `commit` (the place's owner making it complete, durable and published
    /// after the pipeline) and counts its time as the `commit` stage.
    pub fn time_commit<T>(&self, commit: impl FnOnce() -> T) -> T {
        self.stages.commit.time(commit)
    }
}

/// A cancellation flag: set it and the import stops — at its next chunk, or at once
/// when it is waiting for the network — removing a partial file target.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    flag: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Cancel {
    /// Asks the import to stop.
    pub fn cancel(&self) {
        self.0.flag.store(true, Ordering::Relaxed);
        self.0.wake.notify_waiters();
    }

    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::Relaxed)
    }

    /// Completes once stopping is asked for.
    pub async fn cancelled(&self) {
        loop {
            let woken = self.0.wake.notified();
            tokio::pin!(woken);
            // Registered before the check, so a cancel in between is not missed.
            woken.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            woken.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancelled_wakes_waiters_and_returns_at_once_afterwards() {
        let cancel = Cancel::default();
        let waiter = tokio::spawn({
            let c = cancel.clone();
            async move { c.cancelled().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        cancel.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        cancel.cancelled().await;
        assert!(cancel.is_cancelled());
    }
}
