//! The pause between "the disk's size is known" and "here is where to write it".
//!
//! The pipeline thread announces the disk ([`DiskInfo`]: format, virtual size) the
//! moment its decoder knows the size, then blocks until the caller hands over a place
//! opened for that size. The caller does its own work meanwhile — storage stages a
//! volume, makes room in a full pool, opens the file or device — on its own thread and
//! with its own errors; nothing of it runs on the pipeline thread. A caller that drops
//! its end (it only wanted to inspect, or staging failed) ends the pipeline, which
//! stops reading the network and writes nothing.

use std::sync::Arc;
use std::sync::mpsc;

use bootsource_place::Place;
use tokio::sync::oneshot;

use crate::{DiskInfo, Error, Result};

/// The pipeline's end.
#[derive(Debug)]
pub(crate) struct Handshake {
    announce: oneshot::Sender<DiskInfo>,
    place: mpsc::Receiver<Arc<dyn Place>>,
}

/// The caller's end.
#[derive(Debug)]
pub(crate) struct Caller {
    /// Completes with the disk's facts; closed if the pipeline failed before.
    pub announced: oneshot::Receiver<DiskInfo>,
    /// Where to send the place.
    pub place: mpsc::SyncSender<Arc<dyn Place>>,
}

/// A connected pair.
pub(crate) fn pair() -> (Handshake, Caller) {
    let (announce, announced) = oneshot::channel();
    let (place_tx, place_rx) = mpsc::sync_channel(1);
    (
        Handshake {
            announce,
            place: place_rx,
        },
        Caller {
            announced,
            place: place_tx,
        },
    )
}

impl Handshake {
    /// Announces `disk` and blocks until the caller hands over its place, which must
    /// have been opened for the disk's size (known, or unknown within the same limit).
    pub fn exchange(self, disk: DiskInfo) -> Result<Arc<dyn Place>> {
        let size = disk.virtual_size;
        self.announce.send(disk).map_err(|_| Error::Cancelled)?;
        let place = self.place.recv().map_err(|_| Error::Cancelled)?;
        if place.size() != size {
            return Err(Error::Internal(format!(
                "the place was opened for {:?}, the disk is {size:?}",
                place.size()
            )));
        }
        Ok(place)
    }
}
