//! The limit contender of `compare.sh`: decompresses a layer blob to nowhere, with the
//! importer's own decoders (its gzip reader, which skips the CRC-32, on flate2 and
//! zlib-rs; zstd; xz, the one decoder on every core), on one thread. Nothing in a one-pass import can beat this without
//! inflating the layer in parallel. (Before 2026-12-03 this used flate2's
//! `MultiGzDecoder`, which checks the CRC-32: about 10% slower on raw disks.)
//!
//! ```text
//! decompress LAYER-BLOB                  # prints: <blob bytes> <decompressed bytes> <seconds>
//! decompress LAYER-BLOB --rates 100,200  # … then, per rate: <MB/s> <floor seconds>
//! ```
//!
//! With `--rates`, it also says when a one-thread decoder could finish at best if the
//! blob arrived at each rate (MB/s, 10^6 bytes) — `link.sh`'s decode floor. Decoding
//! cannot run ahead of the bytes, and the time it takes per byte varies enormously: a
//! megabyte of gzip may hold a gigabyte of zeros. So the floor is the latest, over the
//! points of the blob, of "when this byte arrives" plus "how long decoding the rest
//! takes" (both measured here, the second from this run's own clock).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::rc::Rc;
use std::time::Instant;

/// Read size, as the pipeline's (`importer/src/pipeline/convert.rs`, 1 MiB).
const CHUNK: usize = 1 << 20;

fn main() -> io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let usage = || io::Error::other("usage: decompress LAYER-BLOB [--rates MB/s,…]");
    let path = args.next().ok_or_else(usage)?;
    let rates: Vec<f64> = match (args.next(), args.next()) {
        (None, _) => Vec::new(),
        (Some(flag), Some(list)) if flag == "--rates" => list
            .to_string_lossy()
            .split(',')
            .map(|r| r.trim().parse().map_err(|_| usage()))
            .collect::<io::Result<_>>()?,
        _ => return Err(usage()),
    };
    let file = File::open(&path)?;
    let blob_len = file.metadata()?.len();
    let consumed = Rc::new(Cell::new(0u64));
    let counted = Counted {
        inner: file,
        read: Rc::clone(&consumed),
    };
    let mut input = BufReader::with_capacity(CHUNK, counted);
    let started = Instant::now();
    let head = io::BufRead::fill_buf(&mut input)?;
    let mut reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(bootsource_importer::bench::gzip(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(input)?)
    } else if head.starts_with(b"\xfd7zXZ\0") {
        Box::new(bootsource_importer::bench::xz(input)?)
    } else {
        return Err(io::Error::other("neither gzip, zstd nor xz"));
    };
    let mut buf = vec![0; CHUNK];
    let mut out_len = 0u64;
    // (blob bytes read so far, seconds since the start) before each read.
    let mut points = Vec::new();
    loop {
        points.push((consumed.get(), started.elapsed().as_secs_f64()));
        match reader.read(&mut buf)? {
            0 => break,
            n => out_len += n as u64,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{blob_len} {out_len} {seconds:.3}");
    for rate in rates {
        let floor = points
            .iter()
            .map(|&(at, t)| at as f64 / (rate * 1e6) + (seconds - t))
            .fold(seconds, f64::max);
        println!("{rate} {floor:.3}");
    }
    Ok(())
}

/// A reader that counts the bytes read through it.
struct Counted {
    inner: File,
    read: Rc<Cell<u64>>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}
