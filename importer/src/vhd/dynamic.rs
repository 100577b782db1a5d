//! A dynamic VHD's header and block allocation table (BAT).
//!
//! The dynamic header (1024 bytes, `cxsparse`) names the BAT and the block size; the
//! BAT gives, per block of the guest disk, the sector where the block's bitmap starts
//! (`0xffffffff`: not allocated, reads as zeros); its data follows the bitmap. Like
//! qemu-img, we read allocated blocks whole and do not consult the bitmaps (writers
//! zero-fill new blocks): the output is what qemu-img convert gives.

use super::footer::checksum;
use crate::Result;
use crate::blockmap::{ImageProblem, Range, RangeRun, TableKind, be32, be64, invalid};
use crate::format::DiskFormat;

/// Bytes of the dynamic header.
pub(crate) const HEADER: u64 = 1024;
const UNALLOCATED: u32 = 0xffff_ffff;

/// A parsed dynamic header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DynamicHeader {
    pub bat_offset: u64,
    /// BAT entries the virtual size needs.
    pub bat_entries: u64,
    pub block_size: u64,
    /// Bytes of the bitmap before each block.
    pub bitmap_size: u64,
}

/// Parses the dynamic header at byte `at`, for a disk of `virtual_size` bytes.
pub(crate) fn parse_header(buf: &[u8], at: u64, virtual_size: u64) -> Result<DynamicHeader> {
    let bad = |problem| invalid(DiskFormat::Vhd, at, problem);
    if &buf[..8] != b"cxsparse" {
        return Err(bad(ImageProblem::Signature(
            "VHD dynamic header (cxsparse)",
        )));
    }
    if checksum(buf, 36) != be32(buf, 36) {
        return Err(bad(ImageProblem::Checksum("VHD dynamic header")));
    }
    let max_entries = u64::from(be32(buf, 28));
    let block_size = u64::from(be32(buf, 32));
    if !block_size.is_power_of_two() || block_size < 512 {
        return Err(bad(ImageProblem::OutOfRange {
            what: "block size",
            value: block_size,
        }));
    }
    let needed = virtual_size.div_ceil(block_size);
    if max_entries < needed {
        return Err(bad(ImageProblem::TableTooShort {
            what: "BAT",
            entries: max_entries,
            needed,
        }));
    }
    Ok(DynamicHeader {
        bat_offset: be64(buf, 16),
        bat_entries: needed,
        block_size,
        bitmap_size: (block_size / (8 * 512)).next_multiple_of(512),
    })
}

/// The data ranges the BAT in `bat` maps (entries past the virtual size ignored).
pub(crate) fn bat_ranges<T: TableKind>(
    header: &DynamicHeader,
    bat: &[u8],
    virtual_size: u64,
) -> Vec<Range<T>> {
    let mut run = RangeRun::default();
    for (block, entry) in (0u64..).zip(bat.chunks_exact(4)) {
        let sector = be32(entry, 0);
        if sector == UNALLOCATED {
            continue;
        }
        let guest = block * header.block_size;
        let len = header.block_size.min(virtual_size - guest);
        run.data(u64::from(sector) * 512 + header.bitmap_size, len, guest);
    }
    run.into_vec()
}
