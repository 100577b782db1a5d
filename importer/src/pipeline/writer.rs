//! The writer pool: inflates compressed clusters and writes extents, on all cores.
//!
//! The decoding thread is the pipeline's bottleneck (gzip inflates on one core), so
//! everything that can leave it does: compressed qcow2 clusters are inflated here, in
//! parallel, and every `pwrite` happens here. Extents arrive through a bounded
//! channel, which also bounds memory: each extent pins at most the chunk it slices, so
//! at most `QUEUE` queued + one per worker + the decoder's own chunks are alive: 67 MiB
//! of [`CHUNK`](super::chunks::CHUNK)s on 2 cores, reached when every extent is a whole
//! chunk (a fixed VHD or VHDX, a static VDI) and the disk writes slower than the file
//! reads (`benches/formats.sh` measured 82 MiB peak RSS for the whole import).
//!
//! The first error stops the whole pool at once: the failing worker records it and
//! raises a flag the others and the decoding thread check, so a corrupt cluster or a
//! full disk ends the import without downloading and writing the rest of the layer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

use bootsource_place::Place;
use crossbeam_channel::{Receiver, Sender};

use crate::extent::Extent;
use crate::progress::Progress;
use crate::qcow2::Inflater;
use crate::{Error, Result};

/// Extents queued between the decoder and the workers.
const QUEUE: usize = 64;

/// What the workers share: the first error, and the flag that stops them all.
#[derive(Default)]
struct Stop {
    raised: AtomicBool,
    error: Mutex<Option<Error>>,
}

impl Stop {
    fn raise(&self, error: Error) {
        self.error
            .lock()
            .expect("not poisoned")
            .get_or_insert(error);
        self.raised.store(true, Ordering::Release);
    }

    fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    fn take(&self) -> Option<Error> {
        self.error.lock().expect("not poisoned").take()
    }
}

/// A running pool bound to one place.
pub(crate) struct Writer<'scope> {
    sender: Sender<Extent>,
    workers: Vec<ScopedJoinHandle<'scope, ()>>,
    stop: Arc<Stop>,
}

impl<'scope> Writer<'scope> {
    /// Starts `workers` threads writing to `place`.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        place: &Arc<dyn Place>,
        workers: usize,
        progress: &'scope Progress,
    ) -> Self {
        let (sender, receiver) = crossbeam_channel::bounded(QUEUE);
        let stop = Arc::new(Stop::default());
        let workers = (0..workers.max(1))
            .map(|i| {
                let receiver: Receiver<Extent> = receiver.clone();
                let (stop, place) = (Arc::clone(&stop), Arc::clone(place));
                std::thread::Builder::new()
                    .name(format!("bootsource-writer-{i}"))
                    .spawn_scoped(scope, move || {
                        if let Err(e) = work(&receiver, &*place, progress, &stop) {
                            stop.raise(e);
                        }
                    })
                    .expect("spawning a writer thread")
            })
            .collect();
        Self {
            sender,
            workers,
            stop,
        }
    }

    /// Fails with the workers' error once one has failed.
    pub fn check(&self) -> Result<()> {
        if self.stop.is_raised() {
            return Err(self.failure());
        }
        Ok(())
    }

    /// Queues extents; fails with the workers' error if they have stopped.
    pub fn send(&self, extents: impl IntoIterator<Item = Extent>) -> Result<()> {
        for extent in extents {
            self.check()?;
            if self.sender.send(extent).is_err() {
                return Err(self.failure());
            }
        }
        Ok(())
    }

    fn failure(&self) -> Error {
        self.stop
            .take()
            .unwrap_or_else(|| Error::Internal("writer threads stopped".into()))
    }

    /// Waits for everything queued to be written.
    pub fn finish(self) -> Result<()> {
        drop(self.sender);
        for w in self.workers {
            if w.join().is_err() {
                return Err(Error::Internal("a writer thread panicked".into()));
            }
        }
        match self.stop.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn work(
    receiver: &Receiver<Extent>,
    place: &dyn Place,
    progress: &Progress,
    stop: &Stop,
) -> Result<()> {
    let mut inflater =
        Inflater::new().map_err(|e| Error::Internal(format!("decompressor: {e}")))?;
    let mut cluster = Vec::new();
    for extent in receiver {
        if stop.is_raised() {
            break;
        }
        match extent {
            Extent::Data { offset, bytes } => place.write_at(offset.0, &bytes)?,
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
                    .map_err(|source| Error::CorruptCluster {
                        host,
                        guest: offset.0,
                        source,
                    })?;
                place.write_at(offset.0, &cluster)?;
            }
        }
        progress
            .written
            .store(place.bytes_written(), Ordering::Relaxed);
    }
    Ok(())
}
