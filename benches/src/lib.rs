//! Benchmarks of bootsource: criterion micro-benchmarks in `benches/`, the end-to-end
//! comparison against the CDI-style pipeline in `compare.sh`, and the two helpers it
//! runs (`src/bin/decompress.rs`, the limit contender; `src/bin/bench-report.rs`, the
//! results table). Images come from `build-images.sh`, cached under `benches/cache/`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The cache `build-images.sh` fills (`$BOOTSOURCE_BENCH_CACHE` or `benches/cache`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BOOTSOURCE_BENCH_CACHE").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("cache"),
        PathBuf::from,
    )
}

/// A file built by `build-images.sh` (`micro-deflate.qcow2`, `oci/micro-raw.gzip`, …),
/// from the newest golden-image directory that has it; `None` before the images exist.
pub fn cached(name: &str) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(cache_dir())
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("golden-"))
        .map(|e| e.path().join(name))
        .filter(|p| p.exists())
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Says how to get the images, for a bench that finds none.
pub fn missing(name: &str) {
    eprintln!(
        "skipping: {name} not found under {}; run `sudo benches/build-images.sh --no-push` first",
        cache_dir().display()
    );
}
