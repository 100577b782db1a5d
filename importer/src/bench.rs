//! Entry points for the benchmarks in `benches/`; not a stable API.
//!
//! A bench that measures one stage alone must run the importer's own code for it, not
//! a look-alike: `benches/src/bin/decompress.rs` (compare.sh's limit, link.sh's decode
//! floor) decodes gzip and xz here.

use std::io::{self, BufRead, Read};

/// The pipeline's gzip reader over `inner`: multi-member, no CRC-32 (see
/// [`crate::gzip`]).
pub fn gzip<R: BufRead>(inner: R) -> impl Read {
    crate::gzip::GzipReader::new(inner)
}

/// The pipeline's xz reader over `inner`: multi-threaded, memory-limited, streams
/// chained (see [`crate::xz`]).
pub fn xz<R: BufRead>(inner: R) -> io::Result<impl Read> {
    crate::xz::XzReader::new(inner)
}
