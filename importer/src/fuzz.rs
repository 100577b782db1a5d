//! Entry points for the fuzz targets in `fuzz/`; not a stable API.
//!
//! Each runs one parser of untrusted bytes on arbitrary input as an import runs it,
//! and checks what must hold whatever the input. Output is read up to [`OUTPUT_CAP`],
//! not to the end: a few hostile bytes can inflate (or expand as sparse holes) to
//! terabytes, which an import streams to disk but a fuzzer must not wait for.

use std::io::{self, Read};

use crate::Digest;
use crate::disk::{self, Whiteouts};
use crate::gzip::GzipReader;

/// Bytes of output read from a decoder, at most.
pub const OUTPUT_CAP: u64 = 4 << 20;

/// Walks `tar` as one layer with the whiteouts of none above it, reading the disk
/// entry (up to [`OUTPUT_CAP`]) as the import does; then `names` (one per line) are
/// checked against the whiteouts the layer left for the layers below.
///
/// # Panics
///
/// When the disk entry yields more bytes than its size says.
pub fn walk_tar(tar: &[u8], stop_after_disk: bool, names: &str) {
    let mut whiteouts = Whiteouts::default();
    let _ = disk::walk_layer(
        tar,
        Digest::of(b"fuzz"),
        &mut whiteouts,
        stop_after_disk,
        |entry, bytes| {
            if let Ok(read) = io::copy(&mut bytes.take(OUTPUT_CAP), &mut io::sink()) {
                assert!(
                    read <= entry.size,
                    "disk/{} yielded {read} bytes; its size is {}",
                    entry.name,
                    entry.size
                );
            }
            Ok(())
        },
    );
    for name in names.lines() {
        let _ = whiteouts.hides(name);
    }
}

/// Decodes `stream` with our gzip reader and, as an oracle, flate2's multi-member
/// decoder (which also checks each member's CRC-32).
///
/// # Panics
///
/// When both decode the stream (up to [`OUTPUT_CAP`]) but to different bytes.
pub fn gunzip(stream: &[u8]) {
    let ours = read_prefix(GzipReader::new(stream));
    let theirs = read_prefix(flate2::bufread::MultiGzDecoder::new(stream));
    if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
        assert!(ours == theirs, "our gzip reader and flate2 disagree");
    }
}

/// The first [`OUTPUT_CAP`] bytes `reader` gives (all of them if fewer).
fn read_prefix(reader: impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(OUTPUT_CAP).read_to_end(&mut out)?;
    Ok(out)
}

/// The credentials an auth file `document` holds for `registry`, or why it cannot be
/// used.
///
/// A document naming a credential helper (`credHelpers`, `credsStore`) makes this run
/// the program `docker-credential-NAME`, as docker does: a fuzzer must not feed it one.
pub fn parse_credentials(
    document: &[u8],
    registry: &str,
) -> Result<(), crate::origin::CredentialsProblem> {
    crate::origin::parse_credentials(document, registry).map(drop)
}
