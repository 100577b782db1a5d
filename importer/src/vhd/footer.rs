//! The VHD footer: 512 bytes at the end of every VHD, copied to its start when dynamic.
//!
//! Big-endian. It gives the disk type and the virtual size, which is where VHD readers
//! disagree: Virtual PC sizes the disk by its CHS geometry, Hyper-V and others by
//! `current_size`. We size it exactly as qemu-img does (`block/vpc.c`), choosing by the
//! creator application: the oracle for the tests is qemu-img.

use crate::Result;
use crate::blockmap::{ImageProblem, be16, be32, be64, invalid};
use crate::format::DiskFormat;

/// Bytes of a footer.
pub(crate) const FOOTER: u64 = 512;
const FOOTER_BYTES: usize = 512;
/// `conectix`.
pub(crate) const COOKIE: &[u8; 8] = b"conectix";
/// qemu's largest VHD: 2040 GiB, in sectors.
const MAX_SECTORS: u64 = 0xff00_0000;
/// The largest CHS geometry: its product is not the size, `current_size` is.
const MAX_GEOMETRY: u64 = 65535 * 16 * 255;
/// Creator applications whose images are sized by `current_size` (Hyper-V, qemu with
/// `force_size`, disk2vhd, XenConverter, XenServer, Azure).
const SIZED_BY_CURRENT_SIZE: [&[u8; 4]; 6] =
    [b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0", b"wa\0\0"];

/// What a VHD is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiskType {
    /// Raw data, then the footer.
    Fixed,
    /// A dynamic header, a BAT and blocks.
    Dynamic,
    /// Dynamic, over a parent.
    Differencing,
    /// Anything else.
    Other(u32),
}

/// A parsed footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub disk_type: DiskType,
    /// Where the dynamic header is.
    pub data_offset: u64,
    /// The virtual size, as qemu-img reads it.
    pub virtual_size: u64,
}

/// Parses the footer in `buf` (512 bytes), found at byte `at` of the file.
pub(crate) fn parse(buf: &[u8], at: u64) -> Result<Footer> {
    let bad = |problem| invalid(DiskFormat::Vhd, at, problem);
    if buf.len() < FOOTER_BYTES || &buf[..8] != COOKIE {
        return Err(bad(ImageProblem::Signature("VHD footer (conectix)")));
    }
    let buf = &buf[..FOOTER_BYTES];
    if checksum(buf, 64) != be32(buf, 64) {
        return Err(bad(ImageProblem::Checksum("VHD footer")));
    }
    let disk_type = match be32(buf, 60) {
        2 => DiskType::Fixed,
        3 => DiskType::Dynamic,
        4 => DiskType::Differencing,
        other => DiskType::Other(other),
    };
    let chs = u64::from(be16(buf, 56)) * u64::from(buf[58]) * u64::from(buf[59]);
    let creator: &[u8; 4] = buf[28..32].try_into().expect("4 bytes");
    let sectors = if SIZED_BY_CURRENT_SIZE.contains(&creator) || chs == MAX_GEOMETRY {
        be64(buf, 48) / 512
    } else {
        chs
    };
    if sectors > MAX_SECTORS {
        return Err(bad(ImageProblem::OutOfRange {
            what: "virtual size in sectors",
            value: sectors,
        }));
    }
    Ok(Footer {
        disk_type,
        data_offset: be64(buf, 16),
        virtual_size: sectors * 512,
    })
}

/// The one's complement of the byte sum of `buf`, leaving out the 4-byte checksum
/// field at `field` (the checksum of footers and dynamic headers).
pub(crate) fn checksum(buf: &[u8], field: usize) -> u32 {
    let sum: u32 = buf
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .map(|(_, &b)| u32::from(b))
        .fold(0, u32::wrapping_add);
    !sum
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid footer: `creator`, CHS geometry, `current_size`, type.
    pub(crate) fn footer(
        creator: &[u8; 4],
        chs: (u16, u8, u8),
        current: u64,
        kind: u32,
    ) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        f[..8].copy_from_slice(COOKIE);
        f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        let data_offset: u64 = if kind == 2 { u64::MAX } else { 512 };
        f[16..24].copy_from_slice(&data_offset.to_be_bytes());
        f[28..32].copy_from_slice(creator);
        f[40..48].copy_from_slice(&current.to_be_bytes());
        f[48..56].copy_from_slice(&current.to_be_bytes());
        f[56..58].copy_from_slice(&chs.0.to_be_bytes());
        f[58] = chs.1;
        f[59] = chs.2;
        f[60..64].copy_from_slice(&kind.to_be_bytes());
        let sum = checksum(&f, 64);
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        f
    }

    #[test]
    fn size_by_geometry_or_current_size_as_qemu_does() {
        // qemu-img's own dynamic VHD of 10000000 bytes: CHS 304/16/17 (not current_size).
        let f = parse(&footer(b"qemu", (304, 16, 17), 10_000_384, 3), 0).unwrap();
        assert_eq!(f.virtual_size, 304 * 16 * 17 * 512);
        assert_eq!(f.disk_type, DiskType::Dynamic);
        let f = parse(&footer(b"win ", (304, 16, 17), 10_000_384, 2), 0).unwrap();
        assert_eq!((f.virtual_size, f.disk_type), (10_000_384, DiskType::Fixed));
        let f = parse(&footer(b"vpc ", (65535, 16, 255), 3 << 40, 3), 0);
        assert!(
            matches!(f, Err(crate::Error::InvalidImage { .. })),
            "over 2040 GiB"
        );
    }

    #[test]
    fn one_changed_byte_fails_the_checksum() {
        let mut f = footer(b"qemu", (304, 16, 17), 10_000_384, 3);
        f[100] ^= 1;
        let err = parse(&f, 7).unwrap_err();
        assert!(
            matches!(
                err,
                crate::Error::InvalidImage {
                    offset: 7,
                    problem: ImageProblem::Checksum(_),
                    ..
                }
            ),
            "{err}"
        );
    }
}
