//! The vhdx stream decoder on arbitrary images (see `common`), described sparsely.
//!
//! Input: a chunk-size byte, a flags byte, then a sparse image (`common::sparse`): a
//! VHDX is MiB-aligned, so several MiB of mostly zeros. Flag bit 0 recomputes the
//! CRC-32C of both headers and both region tables, as a writer would, so that mutations
//! reach what lies behind the checksums (the log, the metadata, the BAT) instead of
//! stopping at a checksum mismatch; inputs without it still test the checks.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use bootsource_importer::DiskFormat;
use bytes::Bytes;

/// Where the checksummed structures are, and how long each is.
const CHECKSUMMED: [(usize, usize); 4] =
    [(64 << 10, 4 << 10), (128 << 10, 4 << 10), (192 << 10, 64 << 10), (256 << 10, 64 << 10)];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&[split, flags], rest)) = data.split_first_chunk::<2>() else { return };
    let Some(mut image) = common::sparse::expand(rest) else { return };
    if flags & 1 == 1 {
        fix_checksums(&mut image);
    }
    // MiB-sized images in chunks of 4 KiB to 1 MiB: small chunks would cost the fuzzer
    // its speed, not find more (other targets cover odd chunk sizes).
    let chunk = usize::from(split).max(1) * 4099;
    common::decode_image(DiskFormat::Vhdx, Bytes::from(image), chunk);
});

fn fix_checksums(image: &mut [u8]) {
    for (at, len) in CHECKSUMMED {
        let Some(structure) = image.get_mut(at..at + len) else { continue };
        structure[4..8].fill(0);
        let crc = crc32c(structure);
        structure[4..8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// CRC-32C (Castagnoli), bit by bit: independent of the decoder's table.
fn crc32c(buf: &[u8]) -> u32 {
    !buf.iter().fold(!0u32, |crc, &b| {
        (0..8).fold(crc ^ u32::from(b), |c, _| if c & 1 == 1 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 })
    })
}
