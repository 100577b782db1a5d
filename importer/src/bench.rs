//! Entry points for the benchmarks in `benches/`; not a stable API.
//!
//! A bench that measures one stage alone must run the importer's own code for it, not
//! a look-alike: `benches/src/bin/decompress.rs` (compare.sh's limit, link.sh's decode
//! floor) decodes gzip layers here.

use std::io::{BufRead, Read};

/// The pipeline's gzip reader over `inner`: multi-member, no CRC-32 (see
/// [`crate::gzip`]).
pub fn gzip<R: BufRead>(inner: R) -> impl Read {
    crate::gzip::GzipReader::new(inner)
}
