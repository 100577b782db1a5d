//! The VHDX header region: the first MiB of the file.
//!
//! The file identifier (`vhdxfile`) at 0; two headers (at 64 KiB and 128 KiB, 4 KiB
//! each, CRC-32C) of which the valid one with the higher sequence number is current;
//! two copies of the region table (at 192 KiB and 256 KiB, 64 KiB, CRC-32C) naming
//! where the BAT and the metadata region are. Little-endian throughout.

use super::crc32c::crc32c_without;
use crate::Result;
use crate::blockmap::{ImageProblem, invalid, le16, le32, le64};
use crate::format::DiskFormat;

/// The header region.
pub(crate) const REGION: u64 = 1 << 20;
/// Everything in the file is aligned to this.
pub(crate) const MIB: u64 = 1 << 20;
const HEADERS: [usize; 2] = [64 << 10, 128 << 10];
const HEADER_LEN: usize = 4 << 10;
const REGION_TABLES: [usize; 2] = [192 << 10, 256 << 10];
const REGION_TABLE_LEN: usize = 64 << 10;
const MAX_REGIONS: u32 = 2047;
/// GUIDs as stored (little-endian fields).
const BAT_GUID: [u8; 16] = guid(
    0x2dc2_7766,
    0xf623,
    0x4200,
    [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08],
);
const METADATA_GUID: [u8; 16] = guid(
    0x8b7c_a206,
    0x4790,
    0x4b9a,
    [0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e],
);

/// A GUID's 16 bytes as VHDX stores them.
pub(crate) const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// Where things are, from the current header and the region table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Regions {
    /// The log's GUID: all zeros when the log is empty.
    pub log_guid: [u8; 16],
    pub log: (u64, u64),
    pub bat: (u64, u64),
    pub metadata: (u64, u64),
}

/// Parses the header region (its first 320 KiB at least).
pub(crate) fn parse(buf: &[u8]) -> Result<Regions> {
    let bad = |at: usize, problem| invalid(DiskFormat::Vhdx, at as u64, problem);
    if !buf.starts_with(b"vhdxfile") {
        return Err(bad(
            0,
            ImageProblem::Signature("VHDX file identifier (vhdxfile)"),
        ));
    }
    let header = HEADERS
        .iter()
        .map(|&at| &buf[at..at + HEADER_LEN])
        .filter(|h| h.starts_with(b"head") && crc32c_without(h, 4) == le32(h, 4))
        .max_by_key(|h| le64(h, 8))
        .ok_or(bad(HEADERS[0], ImageProblem::Checksum("VHDX header")))?;
    let at = |h: &[u8]| (h.as_ptr() as usize) - (buf.as_ptr() as usize);
    let version = le16(header, 66);
    if version != 1 {
        return Err(bad(
            at(header) + 66,
            ImageProblem::OutOfRange {
                what: "VHDX version",
                value: version.into(),
            },
        ));
    }
    let log = (le64(header, 72), u64::from(le32(header, 68)));
    let table = REGION_TABLES
        .iter()
        .map(|&at| &buf[at..at + REGION_TABLE_LEN])
        .find(|t| t.starts_with(b"regi") && crc32c_without(t, 4) == le32(t, 4))
        .ok_or(bad(
            REGION_TABLES[0],
            ImageProblem::Checksum("VHDX region table"),
        ))?;
    let (bat, metadata) = regions(table, at(table))?;
    Ok(Regions {
        log_guid: header[48..64].try_into().expect("16 bytes"),
        log,
        bat,
        metadata,
    })
}

/// The BAT and metadata regions of a region table found at `table_at`.
fn regions(table: &[u8], table_at: usize) -> Result<((u64, u64), (u64, u64))> {
    let bad = |at: usize, problem| invalid(DiskFormat::Vhdx, (table_at + at) as u64, problem);
    let count = le32(table, 8);
    if count > MAX_REGIONS {
        return Err(bad(
            8,
            ImageProblem::OutOfRange {
                what: "region count",
                value: count.into(),
            },
        ));
    }
    let (mut bat, mut metadata) = (None, None);
    for i in 0..count as usize {
        let entry = &table[16 + 32 * i..48 + 32 * i];
        let (offset, len) = (le64(entry, 16), u64::from(le32(entry, 24)));
        for (what, value) in [("region offset", offset), ("region length", len)] {
            if value % MIB != 0 || value == 0 {
                return Err(bad(
                    16 + 32 * i,
                    ImageProblem::Misaligned {
                        what,
                        value,
                        unit: MIB,
                    },
                ));
            }
        }
        if offset < REGION {
            return Err(bad(16 + 32 * i, ImageProblem::InsideHeader("region")));
        }
        match entry[..16].try_into().expect("16 bytes") {
            BAT_GUID => bat = Some((offset, len)),
            METADATA_GUID => metadata = Some((offset, len)),
            _ if le32(entry, 28) & 1 != 0 => {
                return Err(bad(16 + 32 * i, ImageProblem::UnknownRequired));
            }
            _ => {}
        }
    }
    match (bat, metadata) {
        (Some(bat), Some(metadata)) => Ok((bat, metadata)),
        (None, _) => Err(bad(0, ImageProblem::MissingMetadata("BAT region"))),
        (_, None) => Err(bad(0, ImageProblem::MissingMetadata("metadata region"))),
    }
}
