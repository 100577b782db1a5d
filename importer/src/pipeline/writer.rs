//! The writer pool: inflates compressed clusters and writes extents, on all cores.
//!
//! The decoding thread is the pipeline's bottleneck (gzip inflates on one core), so
//! everything that can leave it does: compressed qcow2 clusters are inflated here, in
//! parallel, and every `pwrite` happens here. Extents arrive through a channel whose
//! bound is in bytes, not extents ([`IN_FLIGHT_BYTES`]): a raw disk's extents are whole
//! 1 MiB chunks and a compressed cluster's a few KiB, and what must stay small is the
//! memory the queued extents pin, whatever their size.
//!
//! The first error stops the whole pool at once: the failing worker records it and
//! raises a flag the others and the decoding thread check, so a corrupt cluster or a
//! full disk ends the import without downloading and writing the rest of the layer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Instant;

use bootsource_place::Place;
use crossbeam_channel::{Receiver, Sender};

use crate::extent::Extent;
use crate::progress::Progress;
use crate::qcow2::Inflater;
use crate::{Error, Result};

/// Bytes of extents queued or being written at most (one extent is always let
/// through, however large). Enough to keep every worker busy while the decoder
/// produces the next chunk; more only holds memory.
pub(crate) const IN_FLIGHT_BYTES: usize = 16 << 20;

/// What the workers share: the first error, the flag that stops them all, and the
/// bytes in flight.
#[derive(Default)]
struct Shared {
    raised: AtomicBool,
    error: Mutex<Option<Error>>,
    in_flight: Mutex<u64>,
    /// Signalled when bytes in flight are written, or when the pool stops.
    room: Condvar,
}

impl Shared {
    fn raise(&self, error: Error) {
        self.error
            .lock()
            .expect("not poisoned")
            .get_or_insert(error);
        self.raised.store(true, Ordering::Release);
        // Taking the lock orders the flag before a waiting sender's next check.
        drop(self.in_flight.lock().expect("not poisoned"));
        self.room.notify_all();
    }

    /// Waits until `bytes` more fit in flight (or nothing is), then counts them.
    /// Returns false if the pool stopped meanwhile.
    fn admit(&self, bytes: u64) -> bool {
        let mut in_flight = self.in_flight.lock().expect("not poisoned");
        while *in_flight > 0 && *in_flight + bytes > IN_FLIGHT_BYTES as u64 {
            if self.is_raised() {
                return false;
            }
            in_flight = self.room.wait(in_flight).expect("not poisoned");
        }
        *in_flight += bytes;
        !self.is_raised()
    }

    /// Counts `bytes` as written.
    fn release(&self, bytes: u64) {
        *self.in_flight.lock().expect("not poisoned") -= bytes;
        self.room.notify_one();
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
    shared: Arc<Shared>,
    progress: &'scope Progress,
}

impl<'scope> Writer<'scope> {
    /// Starts `workers` threads writing to `place`.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        place: &Arc<dyn Place>,
        workers: usize,
        progress: &'scope Progress,
    ) -> Self {
        // Unbounded in extents: `Shared::admit` bounds the bytes.
        let (sender, receiver) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared::default());
        let workers = (0..workers.max(1))
            .map(|i| {
                let receiver: Receiver<Extent> = receiver.clone();
                let (shared, place) = (Arc::clone(&shared), Arc::clone(place));
                std::thread::Builder::new()
                    .name(format!("bootsource-writer-{i}"))
                    .spawn_scoped(scope, move || {
                        if let Err(e) = work(&receiver, &*place, progress, &shared) {
                            shared.raise(e);
                        }
                    })
                    .expect("spawning a writer thread")
            })
            .collect();
        Self {
            sender,
            workers,
            shared,
            progress,
        }
    }

    /// Fails with the workers' error once one has failed.
    pub fn check(&self) -> Result<()> {
        if self.shared.is_raised() {
            return Err(self.failure());
        }
        Ok(())
    }

    /// Queues extents; fails with the workers' error if they have stopped.
    pub fn send(&self, extents: impl IntoIterator<Item = Extent>) -> Result<()> {
        let waiting = &self.progress.stages.waiting_for_writers;
        for extent in extents {
            let admitted = waiting.time(|| self.shared.admit(pinned(&extent)));
            if !admitted || self.sender.send(extent).is_err() {
                return Err(self.failure());
            }
        }
        Ok(())
    }

    fn failure(&self) -> Error {
        self.shared
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
        match self.shared.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn work(
    receiver: &Receiver<Extent>,
    place: &dyn Place,
    progress: &Progress,
    shared: &Shared,
) -> Result<()> {
    let mut inflater =
        Inflater::new().map_err(|e| Error::Internal(format!("decompressor: {e}")))?;
    let mut cluster = Vec::new();
    for extent in receiver {
        if shared.is_raised() {
            break;
        }
        let bytes = pinned(&extent);
        let started = Instant::now();
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
        progress.stages.write.add_since(started);
        shared.release(bytes);
        progress
            .written
            .store(place.bytes_written(), Ordering::Relaxed);
    }
    Ok(())
}

/// The bytes an extent holds while it waits: its data, or its compressed cluster.
fn pinned(extent: &Extent) -> u64 {
    match extent {
        Extent::Data { bytes, .. } | Extent::Compressed { bytes, .. } => bytes.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use super::*;
    use crate::extent::GuestOffset;

    /// A place whose writes wait until it is opened.
    #[derive(Debug, Default)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        writes: AtomicUsize,
    }

    impl Place for Gate {
        fn size(&self) -> bootsource_place::DiskSize {
            bootsource_place::DiskSize::Known(u64::MAX)
        }

        fn end_at(&self, _length: u64) -> bootsource_place::Result<()> {
            Ok(())
        }

        fn write_at(&self, _offset: u64, _data: &[u8]) -> bootsource_place::Result<()> {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            self.writes.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }

        fn bytes_written(&self) -> u64 {
            0
        }
    }

    #[test]
    fn queued_extents_never_hold_more_than_the_byte_budget() {
        const MIB: usize = 1 << 20;
        let gate = Arc::new(Gate::default());
        let place: Arc<dyn Place> = Arc::clone(&gate) as _;
        let progress = Progress::default();
        let sent = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let writer = Writer::start(scope, &place, 2, &progress);
            let sender = scope.spawn(|| {
                let chunk = Bytes::from(vec![1u8; MIB]);
                for i in 0..40u64 {
                    let offset = GuestOffset(i * MIB as u64);
                    let bytes = chunk.clone();
                    writer.send([Extent::Data { offset, bytes }]).unwrap();
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                writer.finish().unwrap();
            });
            let budget = IN_FLIGHT_BYTES / MIB;
            let deadline = Instant::now() + Duration::from_secs(30);
            while sent.load(Ordering::Relaxed) < budget && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(sent.load(Ordering::Relaxed), budget, "writes are blocked");
            *gate.open.lock().unwrap() = true;
            gate.opened.notify_all();
            sender.join().unwrap();
        });
        assert_eq!(gate.writes.load(Ordering::Relaxed), 40);
    }
}
