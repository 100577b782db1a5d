//! The OVA decoder: a tar walked as it streams, its one VMDK fed to the VMDK decoder.
//!
//! An OVA is a tar holding the OVF descriptor first, then the files it names: disks,
//! manifests, certificates. The walker is push-based like every decoder (chunks in,
//! extents out): it parses each header block, passes over every entry but the disk,
//! and forwards the disk's bytes, as zero-copy slices, to a [`Mapper`] over a
//! [`VmdkLayout`] whose offsets start at the entry's data. Exactly one `.vmdk` entry
//! is allowed; another disk format inside is refused by the VMDK decoder.
//!
//! Memory: one header block and extension records of at most 64 KiB, plus the VMDK
//! decoder's own bound.

use bytes::Bytes;

use super::tar_header::{self, BLOCK, Header, Kind};
use crate::Result;
use crate::blockmap::{ImageFeature, ImageProblem, Mapper, invalid, unsupported};
use crate::decode::DiskDecoder;
use crate::extent::Extent;
use crate::format::{DiskFormat, Subformat};
use crate::qcow2::{Limits, PassEnd};
use crate::vmdk::VmdkLayout;

/// [`BLOCK`] as a length in memory.
const BLOCK_BYTES: usize = 512;
/// PAX records and GNU long names are refused past this.
const MAX_EXTENSION: u64 = 64 << 10;

/// Where the walk is.
#[derive(Debug)]
enum Walk {
    /// Gathering a header block.
    Header(Vec<u8>),
    /// Gathering a PAX or long-name entry's data (`left` bytes to come).
    Extension {
        kind: Kind,
        left: u64,
        data: Vec<u8>,
    },
    /// Inside an entry's data: `left` bytes, then padding to the block.
    Data { left: u64, disk: bool },
    /// Padding after an entry.
    Padding(u64),
    /// After the end-of-archive block.
    Done,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct OvaDecoder {
    file_size: u64,
    limits: Limits,
    pos: u64,
    walk: Walk,
    /// Overrides for the next entry from PAX records or a long name.
    next_name: Option<String>,
    next_size: Option<u64>,
    /// The disk entry's data offset in the OVA, and its decoder.
    disk: Option<(u64, Mapper<VmdkLayout>)>,
}

impl OvaDecoder {
    /// A decoder for an OVA of `file_size` bytes.
    pub fn new(file_size: u64, limits: Limits) -> Self {
        Self {
            file_size,
            limits,
            pos: 0,
            walk: Walk::Header(Vec::with_capacity(BLOCK_BYTES)),
            next_name: None,
            next_size: None,
            disk: None,
        }
    }

    fn on_header(&mut self, block: &[u8], at: u64) -> Result<Walk> {
        let Header::Entry { kind, name, size } = tar_header::parse(block, at)? else {
            return Ok(Walk::Done);
        };
        let name = self.next_name.take().unwrap_or(name);
        let size = self.next_size.take().unwrap_or(size);
        Ok(match kind {
            Kind::Pax | Kind::LongName if size > MAX_EXTENSION => {
                return Err(invalid(
                    DiskFormat::Ova,
                    at,
                    ImageProblem::OutOfRange {
                        what: "tar extension size",
                        value: size,
                    },
                ));
            }
            Kind::Pax | Kind::LongName => Walk::Extension {
                kind,
                left: size,
                data: Vec::new(),
            },
            Kind::File if is_disk(&name) => {
                let data_at = at + BLOCK;
                match &self.disk {
                    None => {
                        self.disk = Some((
                            data_at,
                            Mapper::new(VmdkLayout::default(), size, self.limits),
                        ));
                    }
                    Some((known, _)) if *known == data_at => {}
                    Some(_) => return Err(unsupported(DiskFormat::Ova, ImageFeature::OvaDisks(2))),
                }
                Walk::Data {
                    left: size,
                    disk: true,
                }
            }
            _ => Walk::Data {
                left: size,
                disk: false,
            },
        })
    }

    fn on_extension(&mut self, kind: Kind, data: &[u8]) {
        match kind {
            Kind::Pax => {
                let (path, size) = tar_header::pax(data);
                self.next_name = path.or(self.next_name.take());
                self.next_size = size.or(self.next_size);
            }
            _ => self.next_name = Some(tar_header::long_name(data)),
        }
    }

    /// Consumes `chunk[from..]` (at file offset `self.pos`); returns bytes used.
    fn step(&mut self, chunk: &Bytes, from: usize, out: &mut Vec<Extent>) -> Result<usize> {
        let rest = &chunk[from..];
        let at = self.pos;
        let (used, next) = match &mut self.walk {
            Walk::Done => (rest.len(), None),
            Walk::Header(block) => {
                let take = (BLOCK_BYTES - block.len()).min(rest.len());
                block.extend_from_slice(&rest[..take]);
                if block.len() < BLOCK_BYTES {
                    (take, None)
                } else {
                    let block = std::mem::take(block);
                    (
                        take,
                        Some(self.on_header(&block, at + take as u64 - BLOCK)?),
                    )
                }
            }
            Walk::Extension { kind, left, data } => {
                let take = up_to(*left, rest.len());
                data.extend_from_slice(&rest[..take]);
                *left -= take as u64;
                if *left > 0 {
                    (take, None)
                } else {
                    let (kind, data) = (*kind, std::mem::take(data));
                    self.on_extension(kind, &data);
                    (take, Some(padding_after(data.len() as u64)))
                }
            }
            Walk::Data { left, disk } => {
                let take = up_to(*left, rest.len());
                *left -= take as u64;
                let (left, disk) = (*left, *disk);
                if disk && take > 0 {
                    let (_, decoder) = self.disk.as_mut().expect("found before its data");
                    decoder.feed(&chunk.slice(from..from + take), out)?;
                }
                let size_end = at + take as u64;
                (take, (left == 0).then(|| padding_to(size_end)))
            }
            Walk::Padding(left) => {
                let take = up_to(*left, rest.len());
                *left -= take as u64;
                (
                    take,
                    (*left == 0).then(|| Walk::Header(Vec::with_capacity(BLOCK_BYTES))),
                )
            }
        };
        if let Some(next) = next {
            self.walk = next;
        }
        self.pos += used as u64;
        Ok(used)
    }
}

/// The walk after an entry's data ends at file offset `end`.
fn padding_to(end: u64) -> Walk {
    match end.next_multiple_of(BLOCK) - end {
        0 => Walk::Header(Vec::with_capacity(BLOCK_BYTES)),
        pad => Walk::Padding(pad),
    }
}

fn padding_after(len: u64) -> Walk {
    padding_to(len)
}

/// `left` bytes, but no more than `available`.
fn up_to(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

fn is_disk(name: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("vmdk"))
}

impl DiskDecoder for OvaDecoder {
    fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        let mut from = 0;
        while from < chunk.len() {
            from += self.step(chunk, from, out)?;
        }
        Ok(())
    }

    fn virtual_size(&self) -> Option<u64> {
        self.disk.as_ref().and_then(|(_, d)| d.virtual_size())
    }

    fn finish_pass(&mut self) -> Result<PassEnd> {
        debug_assert!(self.pos <= self.file_size);
        let Some((_, disk)) = &mut self.disk else {
            return Err(unsupported(DiskFormat::Ova, ImageFeature::OvaDisks(0)));
        };
        let end = disk.finish_pass()?;
        if end == PassEnd::Again {
            self.pos = 0;
            self.walk = Walk::Header(Vec::with_capacity(BLOCK_BYTES));
            self.next_name = None;
            self.next_size = None;
        }
        Ok(end)
    }

    fn passes(&self) -> u32 {
        self.disk.as_ref().map_or(1, |(_, d)| d.pass())
    }

    fn spool_peak(&self) -> u64 {
        self.disk.as_ref().map_or(0, |(_, d)| d.spool_peak())
    }

    fn subformat(&self) -> Option<Subformat> {
        self.disk
            .as_ref()
            .and_then(|(_, d)| DiskDecoder::subformat(d))
    }
}
