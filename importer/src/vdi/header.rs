//! The VDI header: 512 bytes at the start of the file, little-endian.
//!
//! Checked as qemu's `block/vdi.c` checks it: signature, version 1.1, 512-byte
//! sectors, 1 MiB blocks with no extra bytes, block map and data on sector
//! boundaries, no parent or link, static or dynamic.

use crate::Result;
use crate::blockmap::{ImageFeature, ImageProblem, invalid, le32, le64, unsupported};
use crate::format::DiskFormat;

/// Bytes of the header read.
pub(crate) const HEADER: u64 = 512;
const HEADER_BYTES: usize = 512;
const SIGNATURE: u32 = 0xbeda_107f;
const VERSION: u32 = 0x0001_0001;
/// The only block size qemu reads.
const BLOCK_SIZE: u64 = 1 << 20;
/// qemu's limit on blocks: 0x3fffffff (about 1 PiB at 1 MiB blocks) → far more than
/// a disk we would import; the virtual size limit applies first.
const MAX_BLOCKS: u64 = 0x3fff_ffff;

/// A parsed VDI header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Static (every block allocated) rather than dynamic.
    pub is_static: bool,
    pub bmap_offset: u64,
    pub data_offset: u64,
    pub virtual_size: u64,
    pub block_size: u64,
    /// Block map entries the virtual size needs.
    pub blocks: u64,
}

/// Parses the header in `buf` (512 bytes).
pub(crate) fn parse(buf: &[u8]) -> Result<Header> {
    let bad = |at: u64, problem| invalid(DiskFormat::Vdi, at, problem);
    if buf.len() < HEADER_BYTES || le32(buf, 64) != SIGNATURE {
        return Err(bad(64, ImageProblem::Signature("VDI (0xbeda107f)")));
    }
    let version = le32(buf, 68);
    if version != VERSION {
        return Err(unsupported(
            DiskFormat::Vdi,
            ImageFeature::VdiVersion(version),
        ));
    }
    let is_static = match le32(buf, 76) {
        1 => false,
        2 => true,
        other => return Err(unsupported(DiskFormat::Vdi, ImageFeature::VdiType(other))),
    };
    let bmap_offset = u64::from(le32(buf, 340));
    let data_offset = u64::from(le32(buf, 344));
    for (at, what, value) in [
        (340, "block map offset", bmap_offset),
        (344, "data offset", data_offset),
    ] {
        if value % 512 != 0 {
            return Err(bad(
                at,
                ImageProblem::Misaligned {
                    what,
                    value,
                    unit: 512,
                },
            ));
        }
        if value < HEADER {
            return Err(bad(at, ImageProblem::InsideHeader(what)));
        }
    }
    let checks = [
        (360, "sector size", u64::from(le32(buf, 360)), 512..=512),
        (
            376,
            "block size",
            u64::from(le32(buf, 376)),
            BLOCK_SIZE..=BLOCK_SIZE,
        ),
        (
            380,
            "extra bytes per block",
            u64::from(le32(buf, 380)),
            0..=0,
        ),
        (
            384,
            "blocks in image",
            u64::from(le32(buf, 384)),
            0..=MAX_BLOCKS,
        ),
    ];
    for (at, what, value, allowed) in checks {
        if !allowed.contains(&value) {
            return Err(bad(at, ImageProblem::OutOfRange { what, value }));
        }
    }
    if buf[424..456].iter().any(|&b| b != 0) {
        return Err(unsupported(DiskFormat::Vdi, ImageFeature::VdiType(4)));
    }
    let virtual_size = le64(buf, 368) / 512 * 512;
    let blocks_in_image = u64::from(le32(buf, 384));
    let blocks = virtual_size.div_ceil(BLOCK_SIZE);
    if blocks > blocks_in_image {
        return Err(bad(
            384,
            ImageProblem::TableTooShort {
                what: "block map",
                entries: blocks_in_image,
                needed: blocks,
            },
        ));
    }
    Ok(Header {
        is_static,
        bmap_offset,
        data_offset,
        virtual_size,
        block_size: BLOCK_SIZE,
        blocks,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid header for a dynamic VDI of `size` bytes with the block map at 512 and
    /// data after it.
    pub(crate) fn header(size: u64) -> Vec<u8> {
        let blocks = u32::try_from(size.div_ceil(BLOCK_SIZE)).unwrap();
        let mut h = vec![0u8; 512];
        h[..40].copy_from_slice(b"<<< Oracle VM VirtualBox Disk Image >>>\n");
        h[64..68].copy_from_slice(&SIGNATURE.to_le_bytes());
        h[68..72].copy_from_slice(&VERSION.to_le_bytes());
        h[72..76].copy_from_slice(&0x190u32.to_le_bytes());
        h[76..80].copy_from_slice(&1u32.to_le_bytes());
        h[340..344].copy_from_slice(&512u32.to_le_bytes());
        let data = (512 + 4 * blocks).next_multiple_of(512);
        h[344..348].copy_from_slice(&data.to_le_bytes());
        h[360..364].copy_from_slice(&512u32.to_le_bytes());
        h[368..376].copy_from_slice(&size.to_le_bytes());
        h[376..380].copy_from_slice(&(1u32 << 20).to_le_bytes());
        h[384..388].copy_from_slice(&blocks.to_le_bytes());
        h
    }

    #[test]
    fn a_valid_header_parses() {
        let h = parse(&header(10_000_384)).unwrap();
        assert_eq!(
            (h.virtual_size, h.blocks, h.is_static),
            (10_000_384, 10, false)
        );
    }

    /// Each hostile header changes one field of a valid one.
    #[test]
    fn each_changed_field_is_refused_by_name() {
        let cases: [(usize, u32, &str); 7] = [
            (64, 0x1234, "signature"),
            (68, 0x0001_0000, "version"),
            (76, 4, "differential"),
            (340, 513, "misaligned block map"),
            (344, 0, "data inside the header"),
            (376, 4096, "block size"),
            (384, 1, "block map too short"),
        ];
        for (at, value, what) in cases {
            let mut h = header(10_000_384);
            h[at..at + 4].copy_from_slice(&value.to_le_bytes());
            assert!(parse(&h).is_err(), "{what} accepted");
        }
    }
}
