//! The writer pool: inflates compressed clusters and writes extents, on all cores.
//!
//! The decoding thread is the pipeline's bottleneck (gzip inflates on one core), so
//! everything that can leave it does: compressed qcow2 clusters are inflated here, in
//! parallel, and every `pwrite` happens here. Extents arrive through a bounded
//! channel, which also bounds memory: each extent pins at most the chunk it slices.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

use crossbeam_channel::{Receiver, Sender};

use crate::extent::Extent;
use crate::progress::Progress;
use crate::qcow2::Inflater;
use crate::target::Target;
use crate::{Error, Result};

/// Extents queued between the decoder and the workers.
const QUEUE: usize = 64;

/// A running pool bound to one target.
pub(crate) struct Writer<'scope> {
    sender: Option<Sender<Extent>>,
    workers: Vec<ScopedJoinHandle<'scope, ()>>,
    failure: Arc<Mutex<Option<Error>>>,
}

impl<'scope> Writer<'scope> {
    /// Starts `workers` threads writing to `target`.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        target: &'scope Target,
        workers: usize,
        progress: &'scope Progress,
    ) -> Self {
        let (sender, receiver) = crossbeam_channel::bounded(QUEUE);
        let failure = Arc::new(Mutex::new(None));
        let workers = (0..workers.max(1))
            .map(|i| {
                let receiver: Receiver<Extent> = receiver.clone();
                let failure = Arc::clone(&failure);
                std::thread::Builder::new()
                    .name(format!("bootsource-writer-{i}"))
                    .spawn_scoped(scope, move || {
                        if let Err(e) = work(&receiver, target, progress) {
                            failure.lock().expect("not poisoned").get_or_insert(e);
                        }
                    })
                    .expect("spawning a writer thread")
            })
            .collect();
        Self {
            sender: Some(sender),
            workers,
            failure,
        }
    }

    /// Queues extents; fails with the workers' error if they have stopped.
    pub fn send(&self, extents: impl IntoIterator<Item = Extent>) -> Result<()> {
        let sender = self.sender.as_ref().expect("writer not finished");
        for extent in extents {
            if sender.send(extent).is_err() {
                return Err(self.take_failure());
            }
        }
        Ok(())
    }

    fn take_failure(&self) -> Error {
        self.failure
            .lock()
            .expect("not poisoned")
            .take()
            .unwrap_or_else(|| Error::Internal("writer threads stopped".into()))
    }

    /// Waits for everything queued to be written.
    pub fn finish(mut self) -> Result<()> {
        drop(self.sender.take());
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                return Err(Error::Internal("a writer thread panicked".into()));
            }
        }
        match self.failure.lock().expect("not poisoned").take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn work(receiver: &Receiver<Extent>, target: &Target, progress: &Progress) -> Result<()> {
    let mut inflater =
        Inflater::new().map_err(|e| Error::Internal(format!("decompressor: {e}")))?;
    let mut cluster = Vec::new();
    for extent in receiver {
        match extent {
            Extent::Data { offset, bytes } => target.write(offset.0, &bytes)?,
            Extent::Compressed {
                offset,
                len,
                codec,
                bytes,
                host,
            } => {
                cluster.resize(usize::try_from(len).expect("a cluster fits in memory"), 0);
                inflater
                    .inflate(codec, &bytes, &mut cluster)
                    .map_err(|reason| Error::CorruptCluster {
                        host,
                        guest: offset.0,
                        reason,
                    })?;
                target.write(offset.0, &cluster)?;
            }
        }
        progress
            .written
            .store(target.bytes_written(), Ordering::Relaxed);
    }
    Ok(())
}
