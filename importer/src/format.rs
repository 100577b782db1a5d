//! Disk format detection from the first bytes, never from the file name.
//!
//! kubevirt's container disks call a qcow2 file `disk.img`; vendors use `.qcow2`,
//! `.raw` or nothing. qcow2 is converted, raw is passed through, and formats we
//! recognise but do not convert (other hypervisors' images, compressed files) are
//! refused by name rather than copied as if they were a raw disk.

use serde::Serialize;

use crate::qcow2;

/// A disk file format we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// A raw disk image.
    Raw,
}

impl std::fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Qcow2 => "qcow2",
            Self::Raw => "raw",
        })
    }
}

/// Magic numbers of formats that must not be mistaken for raw.
const REFUSED: [(&[u8], &str); 8] = [
    (b"KDMV", "a VMDK image"),
    (b"# Disk DescriptorFile", "a VMDK descriptor"),
    (b"conectix", "a VHD image"),
    (b"vhdxfile", "a VHDX image"),
    (b"<<< ", "a VDI image"),
    (&[0x1f, 0x8b], "gzip-compressed"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz-compressed"),
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd-compressed"),
];

/// Why a disk file is refused: the format it looks like.
pub type Refusal = &'static str;

/// Identifies the format from the file's first bytes (at least 64 unless shorter).
pub fn sniff(head: &[u8]) -> Result<DiskFormat, Refusal> {
    if head.starts_with(&qcow2::MAGIC) {
        return Ok(DiskFormat::Qcow2);
    }
    if let Some((_, what)) = REFUSED.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Err(what);
    }
    Ok(DiskFormat::Raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcow2_raw_and_refusals() {
        assert_eq!(sniff(b"QFI\xfb\0\0\0\x03rest"), Ok(DiskFormat::Qcow2));
        assert_eq!(sniff(&[0; 512]), Ok(DiskFormat::Raw));
        assert_eq!(sniff(b"\xeb\x63\x90MBR boot code"), Ok(DiskFormat::Raw));
        assert_eq!(sniff(b""), Ok(DiskFormat::Raw));
        assert_eq!(sniff(b"KDMV\x01"), Err("a VMDK image"));
        assert_eq!(sniff(b"\x1f\x8b\x08\0"), Err("gzip-compressed"));
        assert_eq!(sniff(b"\xfd7zXZ\0"), Err("xz-compressed"));
    }
}
