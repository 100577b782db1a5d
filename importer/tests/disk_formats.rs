//! The VMDK, VHD, VHDX and VDI stream decoders against qemu-img, the oracle.
//!
//! Each test has qemu-img write a guest disk in one format and subformat, feeds the
//! file to the decoder in chunks of awkward sizes (as many passes as it asks for),
//! applies the extents to a buffer and compares the buffer with what
//! `qemu-img convert -O raw` makes of the same file, and the size with what
//! `qemu-img info` reports. Sizes include ones that are not a multiple of any block.

// Test arithmetic on small, known images: truncation cannot happen here.
#![allow(clippy::cast_possible_truncation)]

use bootsource_importer::blockmap::ImageFeature;
use bootsource_importer::qcow2::Limits;
use bootsource_importer::{Error, Subformat};
use bytes::Bytes;

mod common;
use common::image::Image;
use common::{crc32c, decode};

const MIB: u64 = 1 << 20;

/// Blocks of the source disk: 3 × 64 KiB, so a VMDK grain (64 KiB) and a VHD or VDI
/// block (1–2 MiB) hold mixed kinds.
const BLOCK: usize = 192 << 10;

/// An image of `format` made by qemu-img from a source disk of `size` bytes.
fn converted(size: u64, format: &'static str, options: &[&str]) -> Image {
    Image::converted(size, BLOCK, format, options)
}

/// Converts a disk of `size` bytes with qemu-img and checks the decoder against the
/// oracle, fed in several chunk sizes.
fn check(size: u64, format: &'static str, options: &[&str], subformat: Subformat) {
    let image = converted(size, format, options);
    let oracle = image.oracle();
    let file = image.bytes();
    for chunk in [1 << 20, 65_521, 4096 + 7] {
        let decoded = decode(&image.name(), &file, chunk, Limits::default()).unwrap();
        assert_eq!(
            decoded.disk.len(),
            oracle.len(),
            "{format} {options:?}: virtual size"
        );
        assert!(
            decoded.disk == oracle,
            "{format} {options:?} chunk {chunk}: content differs"
        );
        assert_eq!(decoded.passes, 1, "{format} {options:?}");
        assert_eq!(decoded.subformat, Some(subformat));
    }
}

/// Not a multiple of 512, nor of any block or grain size.
const ODD: u64 = 10_000_000 + 123;

#[test]
fn vmdk_monolithic_sparse() {
    check(
        ODD,
        "vmdk",
        &["-o", "subformat=monolithicSparse"],
        Subformat::MonolithicSparse,
    );
    check(
        6 * MIB,
        "vmdk",
        &["-o", "subformat=monolithicSparse,zeroed_grain=on"],
        Subformat::MonolithicSparse,
    );
}

#[test]
fn vmdk_stream_optimized() {
    check(
        ODD,
        "vmdk",
        &["-o", "subformat=streamOptimized"],
        Subformat::StreamOptimized,
    );
}

#[test]
fn vhd_dynamic() {
    check(ODD, "vpc", &["-o", "subformat=dynamic"], Subformat::Dynamic);
    check(
        ODD,
        "vpc",
        &["-o", "subformat=dynamic,force_size=on"],
        Subformat::Dynamic,
    );
}

#[test]
fn vhd_fixed() {
    check(ODD, "vpc", &["-o", "subformat=fixed"], Subformat::Fixed);
    check(
        ODD,
        "vpc",
        &["-o", "subformat=fixed,force_size=on"],
        Subformat::Fixed,
    );
}

#[test]
fn vhdx_dynamic() {
    check(
        ODD,
        "vhdx",
        &["-o", "subformat=dynamic"],
        Subformat::Dynamic,
    );
    check(
        ODD,
        "vhdx",
        &["-o", "subformat=dynamic,block_size=1M,log_size=1M"],
        Subformat::Dynamic,
    );
}

#[test]
fn vhdx_fixed() {
    check(ODD, "vhdx", &["-o", "subformat=fixed"], Subformat::Fixed);
}

#[test]
fn vdi_dynamic_and_static() {
    check(ODD, "vdi", &[], Subformat::Dynamic);
    check(ODD, "vdi", &["-o", "static=on"], Subformat::Static);
}

/// A qemu-img image of `format` changed by `patch`, which must be refused as `feature`.
fn refused_after(
    format: &'static str,
    options: &[&str],
    patch: impl Fn(&mut [u8]),
    feature: ImageFeature,
) {
    let image = converted(ODD, format, options);
    let mut file = image.bytes().to_vec();
    patch(&mut file);
    let result = decode(&image.name(), &Bytes::from(file), 65_521, Limits::default());
    match result {
        Err(Error::UnsupportedImage { feature: got, .. }) => assert_eq!(got, feature),
        Err(e) => panic!("{format} {options:?}: refused as {e}, not as {feature}"),
        Ok(_) => panic!("{format} {options:?}: accepted, though {feature}"),
    }
}

fn le32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().unwrap())
}

/// Sets a VHD footer's disk type and recomputes its checksum (one's complement of
/// the byte sum, the checksum field left out).
fn set_vhd_type(footer: &mut [u8], kind: u32) {
    footer[60..64].copy_from_slice(&kind.to_be_bytes());
    footer[64..68].fill(0);
    let sum = footer
        .iter()
        .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    footer[64..68].copy_from_slice(&(!sum).to_be_bytes());
}

#[test]
fn a_differencing_vhd_is_refused() {
    let patch = |file: &mut [u8]| {
        let end = file.len() - 512;
        set_vhd_type(&mut file[..512], 4);
        set_vhd_type(&mut file[end..], 4);
    };
    refused_after(
        "vpc",
        &["-o", "subformat=dynamic"],
        patch,
        ImageFeature::VhdDifferencing,
    );
}

#[test]
fn a_vhdx_with_log_entries_is_refused() {
    const GUID: [u8; 16] = *b"log to replay!!!";
    let patch = |file: &mut [u8]| {
        for at in [64 << 10, 128 << 10] {
            let header = &mut file[at..at + (4 << 10)];
            header[48..64].copy_from_slice(&GUID);
            header[4..8].fill(0);
            let crc = crc32c(header);
            header[4..8].copy_from_slice(&crc.to_le_bytes());
        }
        let log = u64::from_le_bytes(file[(64 << 10) + 72..(64 << 10) + 80].try_into().unwrap());
        let entry = &mut file[log as usize..log as usize + 4096];
        entry[..4].copy_from_slice(b"loge");
        entry[32..48].copy_from_slice(&GUID);
    };
    refused_after(
        "vhdx",
        &["-o", "subformat=dynamic"],
        patch,
        ImageFeature::VhdxLog,
    );
}

#[test]
fn a_differencing_vhdx_is_refused() {
    // File parameters: caa16737-fa36-4d43-b3b6-33f0aa44e76b, as stored.
    const FILE_PARAMETERS: [u8; 16] = [
        0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7,
        0x6b,
    ];
    let patch = |file: &mut [u8]| {
        let find = |what: &[u8]| file.windows(what.len()).position(|w| w == what).unwrap();
        let (table, entry) = (find(b"metadata"), find(&FILE_PARAMETERS));
        let flags = table + le32(file, entry + 16) as usize + 4;
        file[flags] |= 2; // HasParent
    };
    refused_after(
        "vhdx",
        &["-o", "subformat=dynamic"],
        patch,
        ImageFeature::VhdxDifferencing,
    );
}

#[test]
fn a_differential_vdi_is_refused() {
    let patch = |file: &mut [u8]| file[76..80].copy_from_slice(&4u32.to_le_bytes());
    refused_after("vdi", &[], patch, ImageFeature::VdiType(4));
}
