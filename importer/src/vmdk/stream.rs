//! Stream-optimized VMDK: compressed grains, each behind a marker naming its place.
//!
//! From the header's grain offset on, the file is a chain of markers, each at a sector
//! boundary: a grain marker (`lba: u64, size: u32`, then `size` bytes of zlib data) or
//! a metadata marker (`sectors: u64, 0: u32, type: u32`, padded to a sector, then
//! `sectors` sectors of grain table, grain directory or footer). The end-of-stream
//! marker (type 0) ends the chain. Grains carry their own guest offset, so the chain
//! alone rebuilds the disk in one pass, whatever order the tables come in, and the
//! tables are passed over.
//!
//! A guest grain may be written once: a second marker for it is refused (the
//! `GrainSet` record takes one bit per grain, in 4 KiB pages, at most 64 MiB).

use bytes::Bytes;

use crate::blockmap::{ImageProblem, Range, invalid, le32, le64};
use crate::extent::{Extent, GuestOffset};
use crate::format::DiskFormat;
use crate::qcow2::{ClusterSet, Codec, Limit};
use crate::{Error, Result};

/// Bytes of a marker that precede a grain's data.
pub(crate) const MARKER: u64 = 12;
const SECTOR: u64 = 512;
const MAX_RECORD_BYTES: u64 = 64 << 20;

/// What a marker announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// `len` bytes of compressed grain at `host` for the grain at `guest`.
    Grain { host: u64, len: u64, guest: u64 },
    /// A metadata marker: its type word is at `host`, its payload `sectors` long.
    Metadata { host: u64, sectors: u64 },
}

/// Reads the marker at `host`: its 12 bytes in `bytes`.
pub(crate) fn marker(bytes: &[u8], host: u64, grain_bytes: u64, virtual_size: u64) -> Result<Next> {
    let lba = le64(bytes, 0);
    let size = u64::from(le32(bytes, 8));
    if size == 0 {
        return Ok(Next::Metadata {
            host: host + MARKER,
            sectors: lba,
        });
    }
    let bad = |problem| invalid(DiskFormat::Vmdk, host, problem);
    let guest = lba
        .checked_mul(SECTOR)
        .filter(|g| *g < virtual_size)
        .ok_or(bad(ImageProblem::OutOfRange {
            what: "grain marker LBA",
            value: lba,
        }))?;
    if guest % grain_bytes != 0 {
        return Err(bad(ImageProblem::Misaligned {
            what: "grain marker offset",
            value: guest,
            unit: grain_bytes,
        }));
    }
    // Deflate never grows data by much: anything larger is not a grain.
    if size > 2 * grain_bytes + 1024 {
        return Err(bad(ImageProblem::OutOfRange {
            what: "compressed grain size",
            value: size,
        }));
    }
    Ok(Next::Grain {
        host: host + MARKER,
        len: size,
        guest,
    })
}

/// Where the marker after a grain of `len` bytes at `host` is.
pub(crate) fn after_grain(host: u64, len: u64) -> u64 {
    (host + len).next_multiple_of(SECTOR)
}

/// The ranges after a metadata marker's type word at `host` (`None`: the stream ended).
pub(crate) fn after_metadata(ty: u32, host: u64, sectors: u64) -> Result<Option<(u64, u64)>> {
    let marker = host - MARKER;
    match ty {
        0 => Ok(None),
        1..=3 => {
            let next = sectors
                .checked_add(1)
                .and_then(|s| s.checked_mul(SECTOR))
                .and_then(|b| b.checked_add(marker))
                .ok_or(invalid(
                    DiskFormat::Vmdk,
                    marker,
                    ImageProblem::OutOfRange {
                        what: "metadata sectors",
                        value: sectors,
                    },
                ))?;
            Ok(Some((host + 4, next)))
        }
        other => Err(invalid(
            DiskFormat::Vmdk,
            marker,
            ImageProblem::MarkerType(other),
        )),
    }
}

/// The compressed grain in `bytes` (at `host`, for `guest`), as an extent: its zlib
/// header is checked and dropped, the deflate data goes to the writer's inflaters.
pub(crate) fn grain(
    bytes: Bytes,
    host: u64,
    guest: u64,
    grain_bytes: u64,
    virtual_size: u64,
) -> Result<Extent> {
    let header_ok = bytes.len() > 2
        && bytes[0] & 0x0f == 8
        && bytes[0] >> 4 <= 7
        && bytes[1] & 0x20 == 0
        && (u16::from(bytes[0]) << 8 | u16::from(bytes[1])) % 31 == 0;
    if !header_ok {
        return Err(invalid(DiskFormat::Vmdk, host, ImageProblem::GrainHeader));
    }
    let len = grain_bytes.min(virtual_size - guest);
    Ok(Extent::Compressed {
        offset: GuestOffset(guest),
        len: u32::try_from(len).expect("grains are at most 1 GiB"),
        codec: Codec::Deflate,
        bytes: bytes.slice(2..),
        host: host + 2,
    })
}

/// The guest grains written so far: each may be written once.
#[derive(Debug, Default)]
pub(crate) struct GrainSet {
    set: ClusterSet,
    bytes: u64,
}

impl GrainSet {
    /// Records grain `index` (for the marker at `host`); refuses a second time.
    pub fn insert(&mut self, index: u64, host: u64) -> Result<()> {
        if self.set.contains(index) {
            return Err(invalid(
                DiskFormat::Vmdk,
                host,
                ImageProblem::GuestTwice(index),
            ));
        }
        self.bytes += self.set.page_cost(index);
        if self.bytes > MAX_RECORD_BYTES {
            return Err(Error::ImageLimit {
                format: DiskFormat::Vmdk,
                limit: Limit::HostUseRecord {
                    limit: MAX_RECORD_BYTES,
                    at: host,
                },
            });
        }
        self.set.insert(index);
        Ok(())
    }
}

/// A range type for the marker walk's skips.
pub(crate) fn pad<T: crate::blockmap::TableKind>(from: u64, to: u64) -> Option<Range<T>> {
    (to > from).then(|| Range::skip(from, to - from))
}
