//! The VMDK, VHD, VHDX and VDI stream decoders against qemu-img, the oracle.
//!
//! Each test has qemu-img write a guest disk in one format and subformat, feeds the
//! file to the decoder in chunks of awkward sizes (as many passes as it asks for),
//! applies the extents to a buffer and compares the buffer with what
//! `qemu-img convert -O raw` makes of the same file, and the size with what
//! `qemu-img info` reports. Sizes include ones that are not a multiple of any block.

// Test arithmetic on small, known images: truncation cannot happen here.
#![allow(clippy::cast_possible_truncation)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bootsource_importer::blockmap::ImageFeature;
use bootsource_importer::qcow2::Limits;
use bootsource_importer::{Error, Subformat};
use bytes::Bytes;

mod common;
use common::{crc32c, decode};

const MIB: u64 = 1 << 20;

fn run(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (install qemu-utils)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A guest disk with incompressible, compressible and zero regions, and data in its
/// last bytes.
fn source_disk(dir: &Path, size: u64) -> PathBuf {
    let path = dir.join("source.raw");
    let mut disk = vec![0u8; size as usize];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ size;
    for (i, block) in disk.chunks_mut(192 << 10).enumerate() {
        match i % 4 {
            0 => block.iter_mut().for_each(|b| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }),
            1 => block
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = b"golden image text "[j % 18]),
            2 if i % 3 == 0 => block[100..200].fill(0x5a),
            _ => {}
        }
    }
    let n = disk.len() - 10;
    disk[n..].copy_from_slice(b"the end..\n");
    std::fs::write(&path, disk).unwrap();
    path
}

/// An image made by qemu-img from a fresh source disk.
struct Image {
    _dir: tempfile::TempDir,
    file: PathBuf,
    format: &'static str,
}

impl Image {
    fn converted(size: u64, format: &'static str, options: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let src = source_disk(dir.path(), size);
        // A fixed VHD is known by its name: qemu's format is "vpc", the file's ".vhd".
        let ext = if format == "vpc" { "vhd" } else { format };
        let file = dir.path().join(format!("image.{ext}"));
        let mut args = vec!["convert", "-f", "raw", "-O", format];
        args.extend_from_slice(options);
        args.extend([src.to_str().unwrap(), file.to_str().unwrap()]);
        run("qemu-img", &args);
        Self {
            _dir: dir,
            file,
            format,
        }
    }

    /// The raw disk qemu-img reads from the image.
    fn oracle(&self) -> Vec<u8> {
        let raw = self.file.with_extension("oracle");
        let (file, raw_s) = (self.file.to_str().unwrap(), raw.to_str().unwrap());
        run(
            "qemu-img",
            &["convert", "-f", self.format, "-O", "raw", file, raw_s],
        );
        std::fs::read(&raw).unwrap()
    }

    fn bytes(&self) -> Bytes {
        Bytes::from(std::fs::read(&self.file).unwrap())
    }

    fn name(&self) -> String {
        self.file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

/// Converts a disk of `size` bytes with qemu-img and checks the decoder against the
/// oracle, fed in several chunk sizes.
fn check(size: u64, format: &'static str, options: &[&str], subformat: Subformat) {
    let image = Image::converted(size, format, options);
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
    let image = Image::converted(ODD, format, options);
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
