//! The VHDX metadata region: block size, virtual size, sector size, parent.
//!
//! A table (`metadata`, up to 2047 entries of 32 bytes) of items by GUID, each at an
//! offset inside the region. Items we do not know are ignored unless marked required.

use super::header::guid;
use crate::Result;
use crate::blockmap::{ImageFeature, ImageProblem, invalid, le16, le32, le64, unsupported};
use crate::format::DiskFormat;

const FILE_PARAMETERS: [u8; 16] = guid(
    0xcaa1_6737,
    0xfa36,
    0x4d43,
    [0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b],
);
const VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2fa5_4224,
    0xcd1b,
    0x4876,
    [0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8],
);
const PAGE_83: [u8; 16] = guid(
    0xbeca_12ab,
    0xb2e6,
    0x4523,
    [0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46],
);
const LOGICAL_SECTOR: [u8; 16] = guid(
    0x8141_bf1d,
    0xa96f,
    0x4709,
    [0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f],
);
const PHYSICAL_SECTOR: [u8; 16] = guid(
    0xcda3_48c7,
    0x445d,
    0x4471,
    [0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56],
);
const PARENT_LOCATOR: [u8; 16] = guid(
    0xa8d3_5f2d,
    0xb30b,
    0x454d,
    [0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c],
);
const MAX_ENTRIES: u16 = 2047;
const MIN_BLOCK: u64 = 1 << 20;
const MAX_BLOCK: u64 = 256 << 20;
/// The specification's limit: 64 TiB.
const MAX_VIRTUAL_SIZE: u64 = 64 << 40;

/// What the metadata says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub block_size: u64,
    /// Every block allocated at creation: a fixed VHDX.
    pub fixed: bool,
    pub virtual_size: u64,
    pub logical_sector: u64,
}

/// Parses the metadata region in `buf`, found at byte `at`.
pub(crate) fn parse(buf: &[u8], at: u64) -> Result<Metadata> {
    let bad = |field: usize, problem| invalid(DiskFormat::Vhdx, at + field as u64, problem);
    if buf.len() < 64 << 10 || !buf.starts_with(b"metadata") {
        return Err(bad(0, ImageProblem::Signature("VHDX metadata table")));
    }
    let count = le16(buf, 10);
    if count > MAX_ENTRIES {
        return Err(bad(
            10,
            ImageProblem::OutOfRange {
                what: "metadata entries",
                value: count.into(),
            },
        ));
    }
    let (mut params, mut size, mut sector) = (None, None, None);
    for i in 0..usize::from(count) {
        let entry = &buf[32 + 32 * i..64 + 32 * i];
        let (offset, len) = (le32(entry, 16) as usize, le32(entry, 20) as usize);
        let item = |want: usize| {
            (len >= want
                && offset >= 64 << 10
                && offset.checked_add(len).is_some_and(|e| e <= buf.len()))
            .then(|| &buf[offset..offset + want])
            .ok_or(bad(
                32 + 32 * i,
                ImageProblem::OutOfRange {
                    what: "metadata item",
                    value: offset as u64,
                },
            ))
        };
        match entry[..16].try_into().expect("16 bytes") {
            FILE_PARAMETERS => params = Some(item(8)?),
            VIRTUAL_DISK_SIZE => size = Some(le64(item(8)?, 0)),
            LOGICAL_SECTOR => sector = Some(u64::from(le32(item(4)?, 0))),
            PARENT_LOCATOR => {
                return Err(unsupported(
                    DiskFormat::Vhdx,
                    ImageFeature::VhdxDifferencing,
                ));
            }
            PAGE_83 | PHYSICAL_SECTOR => {}
            _ if le32(entry, 24) & 4 != 0 => {
                return Err(bad(32 + 32 * i, ImageProblem::UnknownRequired));
            }
            _ => {}
        }
    }
    let params = params.ok_or(bad(0, ImageProblem::MissingMetadata("file parameters")))?;
    let virtual_size = size.ok_or(bad(0, ImageProblem::MissingMetadata("virtual disk size")))?;
    let logical_sector =
        sector.ok_or(bad(0, ImageProblem::MissingMetadata("logical sector size")))?;
    let (block_size, flags) = (u64::from(le32(params, 0)), le32(params, 4));
    if flags & 2 != 0 {
        return Err(unsupported(
            DiskFormat::Vhdx,
            ImageFeature::VhdxDifferencing,
        ));
    }
    let checks = [
        (
            "block size",
            block_size,
            block_size.is_power_of_two() && (MIN_BLOCK..=MAX_BLOCK).contains(&block_size),
        ),
        (
            "logical sector size",
            logical_sector,
            matches!(logical_sector, 512 | 4096),
        ),
        (
            "virtual disk size",
            virtual_size,
            virtual_size <= MAX_VIRTUAL_SIZE,
        ),
    ];
    for (what, value, ok) in checks {
        if !ok {
            return Err(bad(0, ImageProblem::OutOfRange { what, value }));
        }
    }
    Ok(Metadata {
        block_size,
        fixed: flags & 1 != 0,
        virtual_size: virtual_size / 512 * 512,
        logical_sector,
    })
}
