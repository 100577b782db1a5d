//! Disk format detection from the first bytes, never from the file name — with one
//! exception.
//!
//! kubevirt's container disks call a qcow2 file `disk.img`; vendors use `.qcow2`,
//! `.raw` or nothing. qcow2, VMDK, VHD (dynamic), VHDX, VDI and OVA are recognised by
//! their magic and converted, raw is passed through, and formats we recognise but do
//! not convert (compressed files) are refused by name rather than copied as if they
//! were a raw disk.
//!
//! The exception is the fixed VHD: a raw disk with a 512-byte footer at its *end*, so
//! nothing at its start tells it from raw (qemu-img probes it as raw too). A file whose
//! name ends in `.vhd` and has no other magic is taken as a fixed VHD: its virtual size
//! is its size less the footer, and the footer is checked when the stream reaches it.

use serde::Serialize;

use crate::qcow2;

/// A disk file format we convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// A raw disk image.
    Raw,
    /// VMware's virtual disk: one monolithicSparse or streamOptimized file.
    Vmdk,
    /// Virtual PC / Azure's virtual hard disk, fixed or dynamic.
    Vhd,
    /// Hyper-V's virtual hard disk v2, fixed or dynamic.
    Vhdx,
    /// VirtualBox's disk image, static or dynamic.
    Vdi,
    /// An OVF appliance archive (a tar) holding one VMDK.
    Ova,
}

/// The variant of a format, as `qemu-img convert -o subformat=` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Subformat {
    /// VMDK: a hosted sparse extent with its descriptor embedded.
    MonolithicSparse,
    /// VMDK: compressed grains with markers, written for streaming.
    StreamOptimized,
    /// VHD, VHDX: every block allocated in order.
    Fixed,
    /// VHD, VHDX, VDI: blocks allocated as written.
    Dynamic,
    /// VDI: every block allocated in order.
    Static,
}

impl std::fmt::Display for Subformat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MonolithicSparse => "monolithicSparse",
            Self::StreamOptimized => "streamOptimized",
            Self::Fixed => "fixed",
            Self::Dynamic => "dynamic",
            Self::Static => "static",
        })
    }
}

impl std::fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Qcow2 => "qcow2",
            Self::Raw => "raw",
            Self::Vmdk => "vmdk",
            Self::Vhd => "vhd",
            Self::Vhdx => "vhdx",
            Self::Vdi => "vdi",
            Self::Ova => "ova",
        })
    }
}

/// Magic numbers of the formats we convert, at the start of the file.
const CONVERTED: [(&[u8], DiskFormat); 6] = [
    (&qcow2::MAGIC, DiskFormat::Qcow2),
    (b"KDMV", DiskFormat::Vmdk),
    (b"# Disk DescriptorFile", DiskFormat::Vmdk), // refused by the VMDK decoder, by kind
    (b"conectix", DiskFormat::Vhd),
    (b"vhdxfile", DiskFormat::Vhdx),
    (b"<<< ", DiskFormat::Vdi),
];

/// Magic numbers of formats that must not be mistaken for raw.
const REFUSED: [(&[u8], &str); 3] = [
    (&[0x1f, 0x8b], "gzip-compressed"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz-compressed"),
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd-compressed"),
];

/// Why a disk file is refused: the format it looks like.
pub type Refusal = &'static str;

/// Identifies the format of the file `name` from its first bytes (at least 512
/// unless shorter).
pub fn sniff(head: &[u8], name: &str) -> Result<DiskFormat, Refusal> {
    if let Some((_, format)) = CONVERTED.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Ok(*format);
    }
    if let Some((_, what)) = REFUSED.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Err(what);
    }
    if crate::ova::is_ova(head) {
        return Ok(DiskFormat::Ova);
    }
    if has_extension(name, "vhd") {
        return Ok(DiskFormat::Vhd); // fixed: the footer is at the end
    }
    Ok(DiskFormat::Raw)
}

fn has_extension(name: &str, ext: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcow2_raw_and_refusals() {
        let sniff = |head: &[u8]| sniff(head, "disk.img");
        assert_eq!(sniff(b"QFI\xfb\0\0\0\x03rest"), Ok(DiskFormat::Qcow2));
        assert_eq!(sniff(&[0; 512]), Ok(DiskFormat::Raw));
        assert_eq!(sniff(b"\xeb\x63\x90MBR boot code"), Ok(DiskFormat::Raw));
        assert_eq!(sniff(b""), Ok(DiskFormat::Raw));
        assert_eq!(sniff(b"\x1f\x8b\x08\0"), Err("gzip-compressed"));
        assert_eq!(sniff(b"\xfd7zXZ\0"), Err("xz-compressed"));
    }

    #[test]
    fn other_hypervisors_formats_by_magic() {
        let sniff = |head: &[u8]| sniff(head, "disk.img");
        assert_eq!(sniff(b"KDMV\x01"), Ok(DiskFormat::Vmdk));
        assert_eq!(sniff(b"# Disk DescriptorFile\n"), Ok(DiskFormat::Vmdk));
        assert_eq!(sniff(b"conectix\0\0"), Ok(DiskFormat::Vhd));
        assert_eq!(sniff(b"vhdxfileQ\0E\0"), Ok(DiskFormat::Vhdx));
        assert_eq!(
            sniff(b"<<< Oracle VM VirtualBox Disk Image >>>\n"),
            Ok(DiskFormat::Vdi)
        );
    }

    #[test]
    fn a_fixed_vhd_is_known_by_its_name_only() {
        assert_eq!(super::sniff(&[0; 512], "azure.VHD"), Ok(DiskFormat::Vhd));
        assert_eq!(super::sniff(&[0; 512], "disk.vhdx"), Ok(DiskFormat::Raw));
        assert_eq!(
            super::sniff(b"QFI\xfb\0\0\0\x03", "x.vhd"),
            Ok(DiskFormat::Qcow2)
        );
    }
}
