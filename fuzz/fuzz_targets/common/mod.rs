//! What every disk-format fuzz target does: decode arbitrary bytes as one format, fed
//! in chunks of a size the first byte picks, over every pass the decoder asks for.
//! It must end in an error or a disk, never panic, never emit an extent outside the
//! disk, never allocate on the image's word (limits are small here).

use bootsource_importer::qcow2::{Inflater, Limits, PassEnd};
use bootsource_importer::{DiskFormat, Extent, FormatDecoder};
use bytes::Bytes;

#[allow(dead_code)] // used by the targets of the large formats only
pub mod sparse;

/// Decodes `data` after its first byte, which picks the chunk size.
#[allow(dead_code)] // unused by the targets of the large formats
pub fn decode(format: DiskFormat, data: &[u8]) {
    let Some((&split, image)) = data.split_first() else { return };
    decode_image(format, Bytes::copy_from_slice(image), usize::from(split).max(1) * 97);
}

/// Decodes `image` fed in `chunk`-byte pieces.
pub fn decode_image(format: DiskFormat, image: Bytes, chunk: usize) {
    let limits = Limits { spool_bytes: 1 << 20, max_pending: 1 << 16, assembly_bytes: 4 << 20 };
    let mut decoder = FormatDecoder::new(format, &image, image.len() as u64, limits);
    let mut inflater = Inflater::new().unwrap();
    let mut out = Vec::new();
    let mut grain = Vec::new();
    loop {
        for start in (0..image.len()).step_by(chunk) {
            let end = (start + chunk).min(image.len());
            if decoder.feed(&image.slice(start..end), &mut out).is_err() {
                return;
            }
            let size = decoder.virtual_size().unwrap_or(0);
            for e in out.drain(..) {
                assert!(e.offset().0 + e.guest_len() <= size, "extent outside the disk");
                if let Extent::Compressed { codec, bytes, len, .. } = e {
                    grain.resize(len as usize, 0);
                    let _ = inflater.inflate(codec, &bytes, &mut grain);
                }
            }
        }
        match decoder.finish_pass() {
            Ok(PassEnd::Again) => {}
            Ok(PassEnd::Complete) | Err(_) => return,
        }
    }
}
