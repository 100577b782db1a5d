//! One interface for every disk-format decoder: a disk file in, extents out.
//!
//! The pipeline feeds the disk file's bytes in file order to a [`DiskDecoder`] and
//! writes the [`Extent`]s it emits; it knows nothing of the format. A decoder says when
//! it knows the disk's virtual size (raw at once, qcow2 after its header), which is
//! when the pipeline asks for a place to write — a raw disk of unknown length knows at
//! once that its size is known only at its end ([`DiskSize::Unknown`]), and the place
//! grows — and whether it needs the file again
//! ([`PassEnd::Again`], for an image whose blocks came before their tables). New
//! formats plug in here: each is its own module with a pure state machine; VMDK, VHD,
//! VHDX and VDI share the [`Mapper`](crate::blockmap::Mapper) engine.

use bootsource_place::{DiskSize, zero};
use bytes::Bytes;

use crate::blockmap::{Layout, Mapper};
use crate::extent::{Extent, GuestOffset};
use crate::format::{DiskFormat, Subformat};
use crate::qcow2::{self, PassEnd};
use crate::report::Qcow2Info;
use crate::{Error, Result};
use crate::{ova, vdi, vhd, vhdx, vmdk};

/// A disk-format decoder: a pure state machine fed the disk file in order.
pub(crate) trait DiskDecoder: Send {
    /// Consumes the next bytes of the disk file; appends what they decode to.
    fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()>;
    /// Consumes `len` zero bytes of the disk file that were never stored (a hole of a
    /// sparse tar entry). By default they are fed as zeros; a decoder that needs no
    /// bytes to know what zeros mean (raw) skips them in no time.
    fn skip_zeros(&mut self, len: u64, out: &mut Vec<Extent>) -> Result<()> {
        static ZEROS: [u8; 1 << 20] = [0; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64);
            let chunk = Bytes::from_static(&ZEROS[..usize::try_from(n).expect("at most 1 MiB")]);
            self.feed(&chunk, out)?;
            left -= n;
        }
        Ok(())
    }
    /// The disk's virtual size, once the decoder knows it.
    fn virtual_size(&self) -> Option<u64>;
    /// What the decoder knows of the size, once it can say: known, or known only at
    /// the end (then writing may start, within the limit). `None`: not yet.
    fn size(&self) -> Option<DiskSize> {
        self.virtual_size().map(DiskSize::Known)
    }
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
    /// The variant of the format (fixed, streamOptimized, …), once known.
    fn subformat(&self) -> Option<Subformat> {
        None
    }
}

/// The decoder for `format`, for a disk file of `file_size` bytes starting with `head`.
/// A raw disk of unknown length is its stream, up to `max_virtual_size`; the formats
/// read through the block-map engine need the length; a qcow2 can do without (a
/// stream of unknown length).
pub(crate) fn decoder_for(
    format: DiskFormat,
    head: &[u8],
    file_size: Option<u64>,
    limits: qcow2::Limits,
    max_virtual_size: u64,
) -> Result<Box<dyn DiskDecoder>> {
    match (format, file_size) {
        (DiskFormat::Qcow2, Some(len)) => return Ok(Box::new(qcow2::Decoder::new(len, limits))),
        (DiskFormat::Qcow2, None) => return Ok(Box::new(qcow2::Decoder::new_unsized(limits))),
        (DiskFormat::Raw, None) => {
            return Ok(Box::new(RawDecoder {
                pos: 0,
                len: DiskSize::Unknown {
                    limit: max_virtual_size,
                },
            }));
        }
        _ => {}
    }
    let Some(len) = file_size else {
        return Err(Error::Internal(format!(
            "a {format} disk of unknown length"
        )));
    };
    Ok(match format {
        DiskFormat::Raw => Box::new(RawDecoder {
            pos: 0,
            len: DiskSize::Known(len),
        }),
        DiskFormat::Qcow2 => unreachable!("returned above"),
        DiskFormat::Vhd => Box::new(Mapper::new(vhd::VhdLayout::new(head, len), len, limits)),
        DiskFormat::Vmdk => Box::new(Mapper::new(vmdk::VmdkLayout::default(), len, limits)),
        DiskFormat::Vhdx => Box::new(Mapper::new(vhdx::VhdxLayout::default(), len, limits)),
        DiskFormat::Vdi => Box::new(Mapper::new(vdi::VdiLayout::default(), len, limits)),
        DiskFormat::Ova => Box::new(ova::OvaDecoder::new(len, limits)),
    })
}

impl<L: Layout + 'static> DiskDecoder for Mapper<L> {
    fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        Mapper::feed(self, chunk, out)
    }

    fn virtual_size(&self) -> Option<u64> {
        self.layout().virtual_size()
    }

    fn finish_pass(&mut self) -> Result<PassEnd> {
        Mapper::finish_pass(self)
    }

    fn passes(&self) -> u32 {
        self.pass()
    }

    fn spool_peak(&self) -> u64 {
        Mapper::spool_peak(self)
    }

    fn subformat(&self) -> Option<Subformat> {
        self.layout().subformat()
    }
}

/// A raw disk is its own image: bytes pass through at their file offset. Its length
/// was announced (a tar entry, a header), and a stream longer or shorter is an error;
/// or it is unknown, and the stream's end is the disk's, within the limit.
///
/// A chunk of zeros becomes no extent: a place reads as zeros wherever nothing was
/// written, and the writers would skip it anyway. Looking here, on the decoding thread,
/// while the decompressor's output is still in this core's cache, is what pays: a
/// chunk handed to a writer on another core has its cache lines cross between the cores
/// twice (read there, then written here again when its buffer is reused). Over the
/// bench link at 200 MB/s that made a raw disk of mostly zeros import in 2.13 s instead
/// of 2.68 s (median of 6, taking turns); the check itself costs the decoding thread
/// 0.06 s for 3.2 GB of zeros (`benches/results/2026-12-03-raw-zeros-ab.md`).
struct RawDecoder {
    pos: u64,
    len: DiskSize,
}

impl RawDecoder {
    /// Moves past `len` bytes, which must fit the announced length or the limit.
    fn advance(&mut self, len: u64) -> Result<u64> {
        let (at, end) = (self.pos, self.pos.saturating_add(len));
        match self.len {
            DiskSize::Known(announced) if end > announced => Err(Error::DiskLengthMismatch {
                announced,
                actual: end,
            }),
            DiskSize::Unknown { limit } if end > limit => Err(Error::DiskTooLarge {
                virtual_size: end,
                limit,
            }),
            _ => {
                self.pos = end;
                Ok(at)
            }
        }
    }
}

impl DiskDecoder for RawDecoder {
    fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        let at = self.advance(chunk.len() as u64)?;
        if zero::is_zero(chunk) {
            return Ok(());
        }
        out.push(Extent::Data {
            offset: GuestOffset(at),
            bytes: chunk.clone(),
        });
        Ok(())
    }

    fn skip_zeros(&mut self, len: u64, _out: &mut Vec<Extent>) -> Result<()> {
        // Never written: a place reads as zeros wherever nothing was written.
        self.advance(len).map(drop)
    }

    fn virtual_size(&self) -> Option<u64> {
        self.len.known()
    }

    fn size(&self) -> Option<DiskSize> {
        Some(self.len)
    }

    fn finish_pass(&mut self) -> Result<PassEnd> {
        match self.len {
            DiskSize::Known(announced) if self.pos != announced => Err(Error::DiskLengthMismatch {
                announced,
                actual: self.pos,
            }),
            // The stream ended: so did the disk.
            _ => {
                self.len = DiskSize::Known(self.pos);
                Ok(PassEnd::Complete)
            }
        }
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

/// A disk-format decoder on its own, as the pipeline drives it: for tests, fuzzing and
/// benchmarks. Feed the file in order, write the extents, and feed it again while
/// [`finish_pass`](Self::finish_pass) says [`PassEnd::Again`].
pub struct FormatDecoder(Box<dyn DiskDecoder>);

impl std::fmt::Debug for FormatDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormatDecoder").finish_non_exhaustive()
    }
}

impl FormatDecoder {
    /// The decoder for the file `name` of `file_size` bytes starting with `head` (its
    /// first 512 bytes at least, unless shorter), or why its format is refused.
    pub fn for_file(
        name: &str,
        head: &[u8],
        file_size: u64,
        limits: qcow2::Limits,
    ) -> std::result::Result<Self, crate::format::Refusal> {
        let format = crate::format::sniff(head, name)?;
        Ok(Self(
            decoder_for(format, head, Some(file_size), limits, u64::MAX).expect("a size is given"),
        ))
    }

    /// The decoder for `format`, whatever the file's magic says (for fuzzing).
    pub fn new(format: DiskFormat, head: &[u8], file_size: u64, limits: qcow2::Limits) -> Self {
        Self(decoder_for(format, head, Some(file_size), limits, u64::MAX).expect("a size is given"))
    }

    /// Consumes the next bytes of the file; appends what they decode to.
    pub fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        self.0.feed(chunk, out)
    }

    /// The disk's virtual size, once known.
    pub fn virtual_size(&self) -> Option<u64> {
        self.0.virtual_size()
    }

    /// The file ended: done, or feed it again from the start.
    pub fn finish_pass(&mut self) -> Result<PassEnd> {
        self.0.finish_pass()
    }

    /// Passes over the file so far.
    pub fn passes(&self) -> u32 {
        self.0.passes()
    }

    /// The most bytes held for data that arrived before its table.
    pub fn spool_peak(&self) -> u64 {
        self.0.spool_peak()
    }

    /// The variant of the format, once known.
    pub fn subformat(&self) -> Option<Subformat> {
        self.0.subformat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_disks_zero_chunks_become_no_extents() {
        let mut raw = RawDecoder {
            pos: 0,
            len: DiskSize::Known(3 << 20),
        };
        let mut out = Vec::new();
        let mut data = vec![0u8; 1 << 20];
        data[4097] = 7;
        for chunk in [vec![0u8; 1 << 20], data.clone(), vec![0u8; 1 << 20]] {
            raw.feed(&Bytes::from(chunk), &mut out).unwrap();
        }
        assert_eq!(raw.pos, 3 << 20);
        match &out[..] {
            [Extent::Data { offset, bytes }] => {
                assert_eq!(offset.0, 1 << 20);
                assert_eq!(bytes[..], data[..]);
            }
            other => panic!("{other:?}"),
        }
        // Past the announced length, zeros or not, is an error.
        assert!(raw.feed(&Bytes::from(vec![0u8; 512]), &mut out).is_err());
    }
}
