//! One interface for every disk-format decoder: a disk file in, extents out.
//!
//! The pipeline feeds the disk file's bytes in file order to a [`DiskDecoder`] and
//! writes the [`Extent`]s it emits; it knows nothing of the format. A decoder says when
//! it knows the disk's virtual size (raw at once, qcow2 after its header), which is
//! when the pipeline asks for a place to write, and whether it needs the file again
//! ([`PassEnd::Again`], for a qcow2 whose clusters came before their tables). New
//! formats plug in here: each is its own module with a pure state machine.

use bytes::Bytes;

use crate::extent::{Extent, GuestOffset};
use crate::format::DiskFormat;
use crate::qcow2::{self, PassEnd};
use crate::report::Qcow2Info;
use crate::{Error, Result};

/// A disk-format decoder: a pure state machine fed the disk file in order.
pub(crate) trait DiskDecoder: Send {
    /// Consumes the next bytes of the disk file; appends what they decode to.
    fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()>;
    /// The disk's virtual size, once the decoder knows it.
    fn virtual_size(&self) -> Option<u64>;
    /// The file ended: done, or feed it again from the start.
    fn finish_pass(&mut self) -> Result<PassEnd>;
    /// Passes over the file so far (1 while in the first).
    fn passes(&self) -> u32 {
        1
    }
    /// The most bytes held for data that arrived before its mapping.
    fn spool_peak(&self) -> u64 {
        0
    }
    /// qcow2 header facts, for `inspect`.
    fn qcow2_info(&self) -> Option<Qcow2Info> {
        None
    }
}

/// The decoder for `format`, for a disk file of `file_size` bytes: a raw disk needs
/// it (its size is its length); a qcow2 can do without (a stream of unknown length).
pub(crate) fn decoder_for(
    format: DiskFormat,
    file_size: Option<u64>,
    limits: qcow2::Limits,
) -> Result<Box<dyn DiskDecoder>> {
    Ok(match (format, file_size) {
        (DiskFormat::Raw, Some(len)) => Box::new(RawDecoder { pos: 0, len }),
        (DiskFormat::Raw, None) => {
            return Err(Error::Internal("a raw disk of unknown length".into()));
        }
        (DiskFormat::Qcow2, Some(len)) => Box::new(qcow2::Decoder::new(len, limits)),
        (DiskFormat::Qcow2, None) => Box::new(qcow2::Decoder::new_unsized(limits)),
    })
}

/// A raw disk is its own image: bytes pass through at their file offset. Its length
/// was announced (a tar entry, a header); a stream longer or shorter is an error.
struct RawDecoder {
    pos: u64,
    len: u64,
}

impl DiskDecoder for RawDecoder {
    fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        let end = self.pos + chunk.len() as u64;
        if end > self.len {
            return Err(Error::DiskLengthMismatch {
                announced: self.len,
                actual: end,
            });
        }
        out.push(Extent::Data {
            offset: GuestOffset(self.pos),
            bytes: chunk.clone(),
        });
        self.pos = end;
        Ok(())
    }

    fn virtual_size(&self) -> Option<u64> {
        Some(self.len)
    }

    fn finish_pass(&mut self) -> Result<PassEnd> {
        if self.pos != self.len {
            return Err(Error::DiskLengthMismatch {
                announced: self.len,
                actual: self.pos,
            });
        }
        Ok(PassEnd::Complete)
    }
}

impl DiskDecoder for qcow2::Decoder {
    fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        qcow2::Decoder::feed(self, chunk, out)
    }

    fn virtual_size(&self) -> Option<u64> {
        self.header().map(|h| h.virtual_size)
    }

    fn finish_pass(&mut self) -> Result<PassEnd> {
        qcow2::Decoder::finish_pass(self)
    }

    fn passes(&self) -> u32 {
        self.pass()
    }

    fn spool_peak(&self) -> u64 {
        qcow2::Decoder::spool_peak(self)
    }

    fn qcow2_info(&self) -> Option<Qcow2Info> {
        self.header().cloned().map(Into::into)
    }
}
