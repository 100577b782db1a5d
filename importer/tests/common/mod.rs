//! Decoding a whole image in memory through the public decoder, as the pipeline
//! drives it: shared by the disk-format test binaries.

// Test arithmetic on small, known images: truncation cannot happen here.
#![allow(clippy::cast_possible_truncation, dead_code)]

use bootsource_importer::qcow2::{Inflater, Limits, PassEnd};
use bootsource_importer::{Extent, FormatDecoder, Result, Subformat};
use bytes::Bytes;

pub mod image;

/// What decoding gave.
pub struct Decoded {
    pub disk: Vec<u8>,
    pub passes: u32,
    pub subformat: Option<Subformat>,
}

/// Decodes `file` fed in `chunk`-byte pieces, applying every extent to a buffer.
pub fn decode(name: &str, file: &Bytes, chunk: usize, limits: Limits) -> Result<Decoded> {
    let mut decoder = FormatDecoder::for_file(
        name,
        &file[..file.len().min(1 << 20)],
        file.len() as u64,
        limits,
    )
    .expect("a format we convert");
    let mut inflater = Inflater::new().unwrap();
    let mut disk = Vec::new();
    let mut out = Vec::new();
    // The pipeline opens its place the moment a size is known, even before any byte
    // is fed: once said, the size must never change.
    let mut said = decoder.virtual_size();
    loop {
        for piece in file.chunks(chunk) {
            decoder.feed(&file.slice_ref(piece), &mut out)?;
            if let Some(size) = decoder.virtual_size() {
                assert_eq!(*said.get_or_insert(size), size, "the virtual size changed");
                disk.resize(size as usize, 0);
            }
            for extent in out.drain(..) {
                apply(&mut disk, extent, &mut inflater);
            }
        }
        if decoder.finish_pass()? == PassEnd::Complete {
            return Ok(Decoded {
                disk,
                passes: decoder.passes(),
                subformat: decoder.subformat(),
            });
        }
    }
}

fn apply(disk: &mut [u8], extent: Extent, inflater: &mut Inflater) {
    match extent {
        Extent::Data { offset, bytes } => {
            let at = offset.0 as usize;
            disk[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        Extent::Compressed {
            offset,
            len,
            codec,
            bytes,
            ..
        } => {
            let at = offset.0 as usize;
            inflater
                .inflate(codec, &bytes, &mut disk[at..at + len as usize])
                .unwrap();
        }
    }
}

/// CRC-32C (Castagnoli), bit by bit: an oracle independent of the decoder's table.
pub fn crc32c(buf: &[u8]) -> u32 {
    !buf.iter().fold(!0u32, |crc, &b| {
        (0..8).fold(crc ^ u32::from(b), |c, _| {
            if c & 1 == 1 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            }
        })
    })
}
