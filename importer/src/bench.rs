//! Entry points for the benchmarks in `benches/`; not a stable API.
//!
//! A bench that measures one stage alone must run the importer's own code for it, not
//! a look-alike: `benches/src/bin/decompress.rs` (compare.sh's limit, link.sh's decode
//! floor) decodes gzip layers here.

use std::io::{self, BufRead, Read};

/// The pipeline's gzip reader over `inner`: multi-member, no CRC-32 (see
/// [`crate::gzip`]).
pub fn gzip<R: BufRead>(inner: R) -> impl Read {
    crate::gzip::GzipReader::new(inner)
}

/// The pipeline's xz decoder settings (multi-threaded, memory-limited; see
/// [`crate::xz`]) over `inner`: one stream, as `xz -T` writes a file.
pub fn xz<R: BufRead>(inner: R) -> io::Result<impl Read> {
    Ok(liblzma::bufread::XzDecoder::new_stream(
        inner,
        crate::xz::stream()?,
    ))
}
