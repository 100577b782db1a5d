//! The limit contender of `compare.sh`: decompresses a layer blob to nowhere, with the
//! codecs and settings the importer uses (flate2 on zlib-rs with runtime CPU detection,
//! `MultiGzDecoder`; zstd), on one thread. Nothing in a one-pass import can beat this
//! without inflating the layer in parallel.
//!
//! ```text
//! decompress LAYER-BLOB      # prints: <blob bytes> <decompressed bytes> <seconds>
//! ```

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::time::Instant;

use flate2::bufread::MultiGzDecoder;

/// Read size, as the pipeline's (`importer/src/pipeline/convert.rs`, 1 MiB).
const CHUNK: usize = 1 << 20;

fn main() -> io::Result<()> {
    let path = std::env::args_os()
        .nth(1)
        .ok_or_else(|| io::Error::other("usage: decompress LAYER-BLOB"))?;
    let file = File::open(&path)?;
    let blob_len = file.metadata()?.len();
    let mut input = BufReader::with_capacity(CHUNK, file);
    let started = Instant::now();
    let head = io::BufRead::fill_buf(&mut input)?;
    let mut reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(input)?)
    } else {
        return Err(io::Error::other("neither gzip nor zstd"));
    };
    let mut buf = vec![0; CHUNK];
    let mut out_len = 0u64;
    loop {
        match reader.read(&mut buf)? {
            0 => break,
            n => out_len += n as u64,
        }
    }
    println!(
        "{blob_len} {out_len} {:.3}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
