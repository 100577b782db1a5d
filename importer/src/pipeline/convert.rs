//! One disk file's conversion, across passes: sniffing, decoding, writing.
//!
//! The first chunk of the disk file decides the format; the decoder then says when
//! the virtual size is known, and only then is the target opened and the writer pool
//! started. A qcow2 that needs a second pass is fed again into the same conversion:
//! decoder state, target and writers carry over.

use std::io::{self, Read};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::thread::Scope;

use bytes::Bytes;

use super::chunks::ChunkPool;
use super::writer::Writer;
use crate::disk::DiskEntry;
use crate::extent::{Extent, GuestOffset};
use crate::format::DiskFormat;
use crate::progress::{Cancel, Progress};
use crate::qcow2::{self, PassEnd};
use crate::target::{Prepared, Target};
use crate::{Digest, Error, Result};

/// Settings the pipeline passes down.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub limits: qcow2::Limits,
    pub workers: usize,
    pub progress: std::sync::Arc<Progress>,
    pub cancel: Cancel,
}

enum Decoder {
    Raw { pos: u64, len: u64 },
    Qcow2(Box<qcow2::Decoder>),
}

impl Decoder {
    fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        match self {
            Self::Raw { pos, .. } => {
                out.push(Extent::Data {
                    offset: GuestOffset(*pos),
                    bytes: chunk.clone(),
                });
                *pos += chunk.len() as u64;
                Ok(())
            }
            Self::Qcow2(d) => d.feed(chunk, out),
        }
    }

    fn virtual_size(&self) -> Option<u64> {
        match self {
            Self::Raw { len, .. } => Some(*len),
            Self::Qcow2(d) => d.header().map(|h| h.virtual_size),
        }
    }
}

/// The state of converting one disk file.
pub(crate) struct Conversion<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    slot: &'env OnceLock<Target>,
    prepared: Option<Prepared>,
    settings: &'env Settings,
    decoder: Option<Decoder>,
    format: Option<DiskFormat>,
    writer: Option<Writer<'scope>>,
    extents: Vec<Extent>,
    chunks: ChunkPool,
}

/// What a finished conversion reports.
#[derive(Debug, Clone)]
pub(crate) struct Converted {
    pub format: DiskFormat,
    pub virtual_size: u64,
    pub passes: u32,
    pub spool_peak: u64,
}

impl<'scope, 'env> Conversion<'scope, 'env> {
    pub fn new(
        scope: &'scope Scope<'scope, 'env>,
        slot: &'env OnceLock<Target>,
        prepared: Prepared,
        settings: &'env Settings,
    ) -> Self {
        Self {
            scope,
            slot,
            prepared: Some(prepared),
            settings,
            decoder: None,
            format: None,
            writer: None,
            extents: Vec::new(),
            chunks: ChunkPool::default(),
        }
    }

    /// Feeds the whole disk file, found in `layer`, once. `io_error` names read failures.
    pub fn feed_entry(
        &mut self,
        layer: Digest,
        entry: &DiskEntry,
        reader: &mut dyn Read,
        io_error: &dyn Fn(io::Error) -> Error,
    ) -> Result<()> {
        let mut fed = 0;
        loop {
            if self.settings.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let chunk = self.chunks.read_chunk(reader).map_err(io_error)?;
            if chunk.is_empty() {
                if fed != entry.size {
                    return Err(Error::BadDiskEntry {
                        layer,
                        reason: format!(
                            "disk/{} ends after {fed} of its {} bytes (the layer is cut short)",
                            entry.name, entry.size
                        ),
                    });
                }
                return Ok(());
            }
            fed += chunk.len() as u64;
            if self.decoder.is_none() {
                self.start(entry, &chunk)?;
            }
            let decoder = self.decoder.as_mut().expect("started");
            decoder.feed(&chunk, &mut self.extents)?;
            if self.writer.is_none() {
                if let Some(size) = decoder.virtual_size() {
                    self.open_target(size)?;
                }
            }
            if let Some(writer) = &self.writer {
                let decoded: u64 = self.extents.iter().map(Extent::guest_len).sum();
                self.settings
                    .progress
                    .decoded
                    .fetch_add(decoded, Ordering::Relaxed);
                writer.send(self.extents.drain(..))?;
            }
        }
    }

    fn start(&mut self, entry: &DiskEntry, head: &[u8]) -> Result<()> {
        let format = super::sniff(entry, head)?;
        tracing::info!(disk = %entry.name, %format, size = entry.size, "found the disk image");
        self.format = Some(format);
        self.decoder = Some(match format {
            DiskFormat::Raw => Decoder::Raw {
                pos: 0,
                len: entry.size,
            },
            DiskFormat::Qcow2 => Decoder::Qcow2(Box::new(qcow2::Decoder::new(
                entry.size,
                self.settings.limits,
            ))),
        });
        Ok(())
    }

    fn open_target(&mut self, virtual_size: u64) -> Result<()> {
        let prepared = self.prepared.take().expect("target opened once");
        let target = prepared.open(virtual_size)?;
        self.settings
            .progress
            .virtual_size
            .store(virtual_size, Ordering::Relaxed);
        let target: &'env Target = self.slot.get_or_init(|| target);
        self.writer = Some(Writer::start(
            self.scope,
            target,
            self.settings.workers,
            &self.settings.progress,
        ));
        Ok(())
    }

    /// Ends a pass over the disk file: complete, or feed it again.
    pub fn end_pass(&mut self) -> Result<PassEnd> {
        match &mut self.decoder {
            // An empty raw file has no first chunk.
            None => {
                self.format = Some(DiskFormat::Raw);
                self.decoder = Some(Decoder::Raw { pos: 0, len: 0 });
                self.open_target(0)?;
                Ok(PassEnd::Complete)
            }
            Some(Decoder::Raw { .. }) => Ok(PassEnd::Complete),
            Some(Decoder::Qcow2(d)) => {
                let end = d.finish_pass()?;
                self.settings
                    .progress
                    .pass
                    .store(d.pass(), Ordering::Relaxed);
                Ok(end)
            }
        }
    }

    /// Waits for the writers; the target is then complete but not yet committed.
    pub fn finish(mut self) -> Result<Converted> {
        if let Some(writer) = self.writer.take() {
            writer.finish()?;
        }
        let (passes, spool_peak) = match &self.decoder {
            Some(Decoder::Qcow2(d)) => (d.pass(), d.spool_peak()),
            _ => (1, 0),
        };
        Ok(Converted {
            format: self.format.unwrap_or(DiskFormat::Raw),
            virtual_size: self
                .decoder
                .as_ref()
                .and_then(Decoder::virtual_size)
                .unwrap_or(0),
            passes,
            spool_peak,
        })
    }
}
