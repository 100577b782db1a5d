//! Manifest and index parsing, and platform selection, on arbitrary JSON.
#![no_main]

use bootsource_importer::Platform;
use bootsource_importer::manifest::{self, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match manifest::parse(data, None) {
        Ok(Manifest::Index(entries)) => {
            let _ = manifest::select_platform(&entries, &Platform::host());
        }
        Ok(Manifest::Image(m)) => {
            for layer in &m.layers {
                let _ = layer.compression();
            }
        }
        Err(_) => {}
    }
});
