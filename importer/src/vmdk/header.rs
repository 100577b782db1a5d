//! The VMDK hosted sparse extent header (`KDMV`): 512 bytes, little-endian.
//!
//! Checked as qemu's `block/vmdk.c` checks it: version 1 to 3, grains of at most
//! 2^21 sectors, at most 512 entries per grain table, a grain directory of at most
//! 32 MiB, the newline check bytes intact, deflate as the only compression.

use crate::Result;
use crate::blockmap::{ImageFeature, ImageProblem, invalid, le16, le32, le64, unsupported};
use crate::format::DiskFormat;

/// Bytes of the header.
pub(crate) const HEADER: u64 = 512;
const HEADER_BYTES: usize = 512;
/// `gd_offset` of a stream-optimized file whose grain directory is in the footer.
pub(crate) const GD_AT_END: u64 = u64::MAX;
const FLAG_NL_DETECT: u32 = 1 << 0;
const FLAG_RGD: u32 = 1 << 1;
const FLAG_ZERO_GRAIN: u32 = 1 << 2;
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;
const CHECK_BYTES: [u8; 4] = *b"\n \r\n";
const MAX_GRAIN_SECTORS: u64 = 0x20_0000;
const MAX_GTES: u64 = 512;
const MAX_GD_BYTES: u64 = 32 << 20;

/// How grains are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grains {
    /// Raw grains where the grain tables say.
    Sparse,
    /// Deflate-compressed grains, each after a marker naming its guest sector.
    Stream,
}

/// A parsed sparse header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub virtual_size: u64,
    pub grain_bytes: u64,
    /// Where the embedded descriptor is, and its length (bytes); none in a split extent.
    pub descriptor: Option<(u64, u64)>,
    pub gtes_per_gt: u64,
    /// Grain directory entries the virtual size needs.
    pub gd_entries: u64,
    /// The redundant grain directory, if it is kept.
    pub rgd_offset: Option<u64>,
    /// `GD_AT_END` in a file whose footer holds the real one.
    pub gd_offset: u64,
    pub grain_offset: u64,
    pub zero_grains: bool,
    pub grains: Grains,
}

/// Parses the header in `buf` (512 bytes), found at byte `at`.
pub(crate) fn parse(buf: &[u8], at: u64) -> Result<Header> {
    let bad = |field: u64, problem| invalid(DiskFormat::Vmdk, at + field, problem);
    if buf.len() < HEADER_BYTES || &buf[..4] != b"KDMV" {
        return Err(bad(0, ImageProblem::Signature("VMDK sparse header (KDMV)")));
    }
    let version = le32(buf, 4);
    if !(1..=3).contains(&version) {
        return Err(unsupported(
            DiskFormat::Vmdk,
            ImageFeature::VmdkVersion(version),
        ));
    }
    let flags = le32(buf, 8);
    if flags & FLAG_NL_DETECT != 0 && buf[73..77] != CHECK_BYTES {
        return Err(bad(73, ImageProblem::Signature("VMDK newline check bytes")));
    }
    let grains = match (flags & FLAG_COMPRESSED != 0, flags & FLAG_MARKERS != 0) {
        (false, _) => Grains::Sparse,
        (true, true) => Grains::Stream,
        (true, false) => {
            return Err(unsupported(
                DiskFormat::Vmdk,
                ImageFeature::VmdkCompressedWithoutMarkers,
            ));
        }
    };
    let algorithm = le16(buf, 77);
    if grains == Grains::Stream && algorithm != 1 {
        return Err(unsupported(
            DiskFormat::Vmdk,
            ImageFeature::VmdkCompression(algorithm),
        ));
    }
    let capacity = le64(buf, 12);
    let grain_sectors = le64(buf, 20);
    let gtes_per_gt = u64::from(le32(buf, 44));
    let checks = [
        (12, "capacity in sectors", capacity, 1..=(u64::MAX >> 9)),
        (
            20,
            "grain size in sectors",
            grain_sectors,
            1..=MAX_GRAIN_SECTORS,
        ),
        (44, "grain table entries", gtes_per_gt, 1..=MAX_GTES),
    ];
    for (field, what, value, allowed) in checks {
        if !allowed.contains(&value) {
            return Err(bad(field, ImageProblem::OutOfRange { what, value }));
        }
    }
    let gd_entries = capacity.div_ceil(gtes_per_gt * grain_sectors);
    if gd_entries * 4 > MAX_GD_BYTES {
        return Err(bad(
            12,
            ImageProblem::OutOfRange {
                what: "grain directory bytes",
                value: gd_entries * 4,
            },
        ));
    }
    let sectors = |field: usize| le64(buf, field).checked_mul(512);
    let descriptor = match (sectors(28), sectors(36)) {
        (Some(0), _) => None,
        (Some(offset), Some(len)) => Some((offset, len)),
        _ => {
            return Err(bad(
                28,
                ImageProblem::OutOfRange {
                    what: "descriptor",
                    value: le64(buf, 28),
                },
            ));
        }
    };
    let gd_offset = match le64(buf, 56) {
        GD_AT_END => GD_AT_END,
        s => s.checked_mul(512).ok_or(bad(
            56,
            ImageProblem::OutOfRange {
                what: "grain directory offset",
                value: s,
            },
        ))?,
    };
    let rgd_offset = match (flags & FLAG_RGD != 0, le64(buf, 48)) {
        (true, s) if s != 0 && s != GD_AT_END => Some(s.checked_mul(512).ok_or(bad(
            48,
            ImageProblem::OutOfRange {
                what: "redundant grain directory offset",
                value: s,
            },
        ))?),
        _ => None,
    };
    let grain_offset = le64(buf, 64).checked_mul(512).ok_or(bad(
        64,
        ImageProblem::OutOfRange {
            what: "grain offset",
            value: le64(buf, 64),
        },
    ))?;
    Ok(Header {
        virtual_size: capacity * 512,
        grain_bytes: grain_sectors * 512,
        descriptor,
        gtes_per_gt,
        gd_entries,
        rgd_offset,
        gd_offset,
        grain_offset,
        zero_grains: flags & FLAG_ZERO_GRAIN != 0,
        grains,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A monolithicSparse header as qemu-img writes it for `capacity` sectors.
    pub(crate) fn header(capacity: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(b"KDMV");
        h[4..8].copy_from_slice(&1u32.to_le_bytes());
        h[8..12].copy_from_slice(&(FLAG_NL_DETECT | FLAG_RGD).to_le_bytes());
        h[12..20].copy_from_slice(&capacity.to_le_bytes());
        h[20..28].copy_from_slice(&128u64.to_le_bytes());
        h[28..36].copy_from_slice(&1u64.to_le_bytes());
        h[36..44].copy_from_slice(&20u64.to_le_bytes());
        h[44..48].copy_from_slice(&512u32.to_le_bytes());
        h[48..56].copy_from_slice(&21u64.to_le_bytes());
        h[56..64].copy_from_slice(&26u64.to_le_bytes());
        h[64..72].copy_from_slice(&128u64.to_le_bytes());
        h[73..77].copy_from_slice(&CHECK_BYTES);
        h
    }

    #[test]
    fn qemu_img_header_parses() {
        let h = parse(&header(19532), 0).unwrap();
        assert_eq!(h.virtual_size, 19532 * 512);
        assert_eq!(
            (h.grain_bytes, h.gd_entries, h.gd_offset),
            (65536, 1, 26 * 512)
        );
        assert_eq!(
            (h.rgd_offset, h.descriptor),
            (Some(21 * 512), Some((512, 20 * 512)))
        );
        assert_eq!(h.grains, Grains::Sparse);
    }

    /// Each hostile header changes one field of a valid one.
    #[test]
    fn each_changed_field_is_refused() {
        let cases: [(usize, u64, &str); 6] = [
            (4, 4, "version 4"),
            (20, 0, "no grain"),
            (20, 1 << 22, "grains of 2 GiB"),
            (44, 513, "grain tables of 513 entries"),
            (12, u64::MAX, "capacity past u64 bytes"),
            (8, u64::from(FLAG_COMPRESSED), "compressed without markers"),
        ];
        for (at, value, what) in cases {
            let mut h = header(19532);
            let width = if matches!(at, 4 | 8 | 44) { 4 } else { 8 };
            h[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            assert!(parse(&h, 0).is_err(), "{what} accepted");
        }
        let mut h = header(19532);
        h[75] = b'\n'; // an FTP transfer in text mode
        assert!(parse(&h, 0).is_err());
    }
}
