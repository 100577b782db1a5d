//! The VHDX block allocation table: one 64-bit entry per block, sector bitmaps between.
//!
//! Each entry holds a state (low 3 bits) and the block's file offset in MiB (bits 20
//! and up). After every `chunk_ratio` payload entries comes one sector-bitmap entry,
//! which only differencing images use. Payload states: fully present (data in the
//! file), not present / undefined / zero / unmapped (zeros, without a parent), and
//! partially present (differencing images only: refused).

use super::header::MIB;
use super::metadata::Metadata;
use crate::Result;
use crate::blockmap::{
    ImageFeature, ImageProblem, Range, RangeRun, TableKind, invalid, le64, unsupported,
};
use crate::format::DiskFormat;

const FULLY_PRESENT: u64 = 6;
const PARTIALLY_PRESENT: u64 = 7;

/// Payload blocks per sector-bitmap block.
fn chunk_ratio(meta: &Metadata) -> u64 {
    ((1u64 << 23) * meta.logical_sector) / meta.block_size
}

/// Bytes of BAT the virtual size needs.
pub(crate) fn needed_bytes(meta: &Metadata) -> u64 {
    let blocks = meta.virtual_size.div_ceil(meta.block_size);
    let entries = blocks + blocks.saturating_sub(1) / chunk_ratio(meta);
    entries * 8
}

/// The data ranges of the BAT in `bat`, found at byte `at`.
pub(crate) fn ranges<T: TableKind>(meta: &Metadata, bat: &[u8], at: u64) -> Result<Vec<Range<T>>> {
    let ratio = chunk_ratio(meta);
    let blocks = meta.virtual_size.div_ceil(meta.block_size);
    let mut run = RangeRun::default();
    for block in 0..blocks {
        let index = block + block / ratio;
        let entry = le64(bat, usize::try_from(index * 8).expect("BAT in memory"));
        let guest = block * meta.block_size;
        match entry & 7 {
            FULLY_PRESENT => {
                let host = (entry >> 20) * MIB;
                if host < MIB {
                    return Err(invalid(
                        DiskFormat::Vhdx,
                        at + index * 8,
                        ImageProblem::InsideHeader("data block"),
                    ));
                }
                run.data(host, meta.block_size.min(meta.virtual_size - guest), guest);
            }
            PARTIALLY_PRESENT => {
                return Err(unsupported(
                    DiskFormat::Vhdx,
                    ImageFeature::VhdxPartialBlock,
                ));
            }
            0..=3 => {}
            state => {
                return Err(invalid(
                    DiskFormat::Vhdx,
                    at + index * 8,
                    ImageProblem::OutOfRange {
                        what: "BAT entry state",
                        value: state,
                    },
                ));
            }
        }
    }
    Ok(run.into_vec())
}
