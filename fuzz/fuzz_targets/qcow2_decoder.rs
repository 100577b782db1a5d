//! The qcow2 stream decoder on arbitrary bytes: it must end in an error or a disk,
//! never panic, never emit an extent outside the disk, never allocate on the image's
//! word (limits are small here so a hostile header cannot ask for much).
#![no_main]

use bootsource_importer::Extent;
use bootsource_importer::qcow2::{Decoder, Inflater, Limits, PassEnd};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, image)) = data.split_first() else { return };
    let image = Bytes::copy_from_slice(image);
    let chunk = usize::from(split).max(1) * 97;
    let limits = Limits { spool_bytes: 1 << 20, max_pending: 1 << 16, assembly_bytes: 1 << 20 };
    let mut decoder = Decoder::new(image.len() as u64, limits);
    let mut inflater = Inflater::new().unwrap();
    let mut out = Vec::new();
    let mut cluster = Vec::new();
    loop {
        for start in (0..image.len()).step_by(chunk) {
            let end = (start + chunk).min(image.len());
            if decoder.feed(&image.slice(start..end), &mut out).is_err() {
                return;
            }
            let size = decoder.header().map_or(0, |h| h.virtual_size);
            for e in out.drain(..) {
                assert!(e.offset().0 + e.guest_len() <= size, "extent outside the disk");
                if let Extent::Compressed { codec, bytes, len, .. } = e {
                    cluster.resize(len as usize, 0);
                    let _ = inflater.inflate(codec, &bytes, &mut cluster);
                }
            }
        }
        match decoder.finish_pass() {
            Ok(PassEnd::Again) => {}
            Ok(PassEnd::Complete) | Err(_) => return,
        }
    }
});
