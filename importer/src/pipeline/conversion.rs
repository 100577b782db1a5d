//! One disk file's conversion, across passes: sniffing, decoding, writing.
//!
//! Its phases are a type: nothing is written before the decoder knows the disk's
//! virtual size, and nothing is decoded before the first bytes chose the format. When
//! the size is known the pipeline asks its caller for a place ([`Handshake`]) and
//! starts the writer pool. A raw disk whose length is known only at its end asks at
//! once for a place of [`DiskSize::Unknown`] size, and gives it its length when the
//! stream ends. A qcow2 that needs another pass is fed again into the same
//! conversion: decoder state, place and writers carry over.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::Scope;

use bootsource_place::{DiskSize, Place};

use super::chunks::ChunkPool;
use super::handshake::Handshake;
use super::writer::Writer;
use crate::decode::{self, DiskDecoder};
use crate::disk::{DiskEntry, DiskEntryProblem};
use crate::extent::Extent;
use crate::progress::{Cancel, Progress};
use crate::qcow2::{self, PassEnd};
use crate::{Digest, DiskInfo, Error, Result};

/// Settings the pipeline passes down.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub limits: qcow2::Limits,
    pub max_virtual_size: u64,
    pub unknown_length: crate::UnknownLength,
    pub workers: usize,
    pub progress: Arc<Progress>,
    pub cancel: Cancel,
}

/// Where a conversion is.
enum Phase<'scope> {
    /// No byte of the disk file yet: the format is unknown.
    Unstarted(Handshake),
    /// Decoding, but the virtual size is not known yet: nowhere to write.
    Sizing {
        disk: DiskInfo,
        decoder: Box<dyn DiskDecoder>,
        handshake: Handshake,
    },
    /// Writing into the place the caller handed over.
    Writing {
        disk: DiskInfo,
        decoder: Box<dyn DiskDecoder>,
        place: Arc<dyn Place>,
        writer: Writer<'scope>,
    },
    /// Left behind by a transition that failed; the conversion is abandoned.
    Failed,
}

/// The state of converting one disk file.
pub(crate) struct Conversion<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    settings: &'env Settings,
    phase: Phase<'scope>,
    extents: Vec<Extent>,
    chunks: ChunkPool,
}

/// What a finished conversion reports.
#[derive(Debug, Clone)]
pub(crate) struct Converted {
    pub disk: DiskInfo,
    /// The size of the raw disk written (known at the latest at its end).
    pub virtual_size: u64,
    pub passes: u32,
    pub spool_peak: u64,
    pub written: u64,
}

impl<'scope, 'env> Conversion<'scope, 'env> {
    pub fn new(
        scope: &'scope Scope<'scope, 'env>,
        settings: &'env Settings,
        handshake: Handshake,
    ) -> Self {
        Self {
            scope,
            settings,
            phase: Phase::Unstarted(handshake),
            extents: Vec::new(),
            chunks: ChunkPool::default(),
        }
    }

    /// Feeds the whole disk file, a tar entry found in `layer` (or in a single-file
    /// archive: `None`), once. `io_error` names read failures. A sparse entry's runs
    /// are fed at their offsets and its holes skipped.
    pub fn feed_entry(
        &mut self,
        layer: Option<Digest>,
        entry: &DiskEntry,
        reader: &mut dyn Read,
        io_error: &dyn Fn(io::Error) -> Error,
    ) -> Result<()> {
        let (name, size) = (entry.name.as_str(), Some(entry.size));
        let Some(map) = &entry.sparse else {
            return self.feed(layer, name, size, reader, io_error);
        };
        if entry.size > self.settings.max_virtual_size {
            // Raw or not, a disk file larger than the largest disk allowed is refused
            // before its holes could cost anything.
            return Err(Error::DiskTooLarge {
                virtual_size: entry.size,
                limit: self.settings.max_virtual_size,
            });
        }
        let mut at = 0;
        for run in &map.runs {
            self.skip_zeros(layer, name, size, run.offset - at)?;
            let fed = self.feed_all(layer, name, size, &mut reader.take(run.len), io_error)?;
            if fed != run.len {
                return Err(match layer {
                    Some(layer) => cut_short(layer, name, run.len - fed),
                    None => Error::DiskLengthMismatch {
                        announced: entry.size,
                        actual: run.offset + fed,
                    },
                });
            }
            at = run.offset + run.len;
        }
        self.skip_zeros(layer, name, size, map.real_size - at)
    }

    /// Feeds the whole disk file `name` once: from `layer`, or a single file (`None`).
    /// Its `size`, when known, is checked; a qcow2 may come without one.
    pub fn feed(
        &mut self,
        layer: Option<Digest>,
        name: &str,
        size: Option<u64>,
        reader: &mut dyn Read,
        io_error: &dyn Fn(io::Error) -> Error,
    ) -> Result<()> {
        if size == Some(0) {
            self.start(layer, name, size, &[])?;
        }
        let fed = self.feed_all(layer, name, size, reader, io_error)?;
        match (size, layer) {
            (Some(size), Some(layer)) if fed != size => {
                Err(cut_short(layer, name, size.saturating_sub(fed)))
            }
            (Some(announced), None) if fed != announced => Err(Error::DiskLengthMismatch {
                announced,
                actual: fed,
            }),
            _ if fed == 0 => self.start(layer, name, Some(0), &[]),
            _ => Ok(()),
        }
    }

    /// Feeds what `reader` yields, to its end; returns how many bytes that was.
    fn feed_all(
        &mut self,
        layer: Option<Digest>,
        name: &str,
        size: Option<u64>,
        reader: &mut dyn Read,
        io_error: &dyn Fn(io::Error) -> Error,
    ) -> Result<u64> {
        let mut fed = 0;
        loop {
            self.check_running()?;
            let chunk = self.chunks.read_chunk(reader).map_err(io_error)?;
            if chunk.is_empty() {
                return Ok(fed);
            }
            fed += chunk.len() as u64;
            self.start(layer, name, size, &chunk)?;
            self.decode(|decoder, out| decoder.feed(&chunk, out))?;
        }
    }

    /// Tells the decoder of `len` zero bytes a sparse disk file does not store.
    fn skip_zeros(
        &mut self,
        layer: Option<Digest>,
        name: &str,
        size: Option<u64>,
        len: u64,
    ) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.check_running()?;
        self.start(layer, name, size, &[0; 512][..len.min(512) as usize])?;
        self.decode(|decoder, out| decoder.skip_zeros(len, out))
    }

    /// Stops at once on cancel, or when a writer has failed.
    fn check_running(&self) -> Result<()> {
        if self.settings.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        match &self.phase {
            Phase::Writing { writer, .. } => writer.check(),
            _ => Ok(()),
        }
    }

    /// Chooses the format from the file's first bytes (once).
    fn start(
        &mut self,
        layer: Option<Digest>,
        name: &str,
        size: Option<u64>,
        head: &[u8],
    ) -> Result<()> {
        if !matches!(self.phase, Phase::Unstarted(_)) {
            return Ok(());
        }
        let format = super::sniff(name, head)?;
        tracing::info!(disk = %name, %format, size, "found the disk image");
        let decoder = decode::decoder_for(
            format,
            head,
            size,
            self.settings.limits,
            self.settings.max_virtual_size,
        )?;
        let Phase::Unstarted(handshake) = std::mem::replace(&mut self.phase, Phase::Failed) else {
            unreachable!("checked above");
        };
        let disk = DiskInfo {
            layer,
            name: name.to_owned(),
            file_size: size,
            format,
            virtual_size: DiskSize::Unknown {
                limit: self.settings.max_virtual_size,
            },
            qcow2: None,
            subformat: None,
        };
        self.phase = Phase::Sizing {
            disk,
            decoder,
            handshake,
        };
        self.open_place_once_sized()
    }

    /// Runs one decoder step, then hands what it emitted to the writers.
    fn decode(
        &mut self,
        step: impl FnOnce(&mut dyn DiskDecoder, &mut Vec<Extent>) -> Result<()>,
    ) -> Result<()> {
        match &mut self.phase {
            Phase::Sizing { decoder, .. } | Phase::Writing { decoder, .. } => {
                step(decoder.as_mut(), &mut self.extents)?;
            }
            Phase::Unstarted(_) | Phase::Failed => return Err(not_started()),
        }
        self.hand_over()
    }

    /// Hands what the decoder emitted to the writers (once there are some).
    fn hand_over(&mut self) -> Result<()> {
        self.open_place_once_sized()?;
        if let Phase::Writing { writer, .. } = &self.phase {
            let decoded: u64 = self.extents.iter().map(Extent::guest_len).sum();
            self.settings
                .progress
                .decoded
                .fetch_add(decoded, Ordering::Relaxed);
            writer.send(self.extents.drain(..))?;
        }
        Ok(())
    }

    /// Moves from sizing to writing as soon as the decoder knows the virtual size (or
    /// that it is known only at the end): checks it against the limit, announces the
    /// disk and starts the writers.
    fn open_place_once_sized(&mut self) -> Result<()> {
        let size = match &self.phase {
            Phase::Sizing { decoder, .. } => decoder.size(),
            _ => None,
        };
        let Some(size) = size else {
            return Ok(());
        };
        if let DiskSize::Known(known) = size
            && known > self.settings.max_virtual_size
        {
            return Err(Error::DiskTooLarge {
                virtual_size: known,
                limit: self.settings.max_virtual_size,
            });
        }
        let Phase::Sizing {
            mut disk,
            decoder,
            handshake,
        } = std::mem::replace(&mut self.phase, Phase::Failed)
        else {
            unreachable!("matched above");
        };
        disk.virtual_size = size;
        disk.qcow2 = decoder.qcow2_info();
        disk.subformat = decoder.subformat();
        let progress = &self.settings.progress;
        let place =
            (progress.stages.waiting_for_place).time(|| handshake.exchange(disk.clone()))?;
        if let DiskSize::Known(known) = size {
            progress.virtual_size.store(known, Ordering::Relaxed);
        }
        let writer = Writer::start(self.scope, &place, self.settings.workers, progress);
        self.phase = Phase::Writing {
            disk,
            decoder,
            place,
            writer,
        };
        Ok(())
    }

    /// Ends a pass over the disk file: complete, or feed it again.
    pub fn end_pass(&mut self) -> Result<PassEnd> {
        let decoder = match &mut self.phase {
            Phase::Sizing { decoder, .. } | Phase::Writing { decoder, .. } => decoder,
            Phase::Unstarted(_) | Phase::Failed => {
                return Err(Error::Internal("a pass ended before the disk began".into()));
            }
        };
        let end = decoder.finish_pass()?;
        self.settings
            .progress
            .pass
            .store(decoder.passes(), Ordering::Relaxed);
        Ok(end)
    }

    /// Waits for the writers and tells the place where the disk ended; the place then
    /// holds the whole disk, not yet finished (its owner zeroes what was skipped and
    /// fsyncs).
    pub fn finish(self) -> Result<Converted> {
        let Phase::Writing {
            mut disk,
            decoder,
            place,
            writer,
        } = self.phase
        else {
            return Err(Error::Internal(
                "the disk ended before its size was known".into(),
            ));
        };
        writer.finish()?;
        let virtual_size = decoder
            .virtual_size()
            .ok_or_else(|| Error::Internal("a complete disk of unknown size".into()))?;
        place.end_at(virtual_size)?;
        disk.virtual_size = DiskSize::Known(virtual_size);
        self.settings
            .progress
            .virtual_size
            .store(virtual_size, Ordering::Relaxed);
        Ok(Converted {
            disk,
            virtual_size,
            passes: decoder.passes(),
            spool_peak: decoder.spool_peak(),
            written: place.bytes_written(),
        })
    }
}

fn not_started() -> Error {
    Error::Internal("decoding before the format is known".into())
}

fn cut_short(layer: Digest, name: &str, missing: u64) -> Error {
    Error::BadDiskEntry {
        layer,
        problem: DiskEntryProblem::CutShort {
            name: name.to_owned(),
            missing,
        },
    }
}
