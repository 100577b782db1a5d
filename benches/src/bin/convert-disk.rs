//! The bootsource contender of `formats.sh`: converts a local disk file (VMDK, VHD,
//! VHDX, VDI, OVA, qcow2) to a sparse raw file with the importer's stream decoder, fed
//! in 1 MiB reads as the pipeline feeds it, zero extents skipped, compressed grains
//! inflated on the same thread, and fsync at the end — `qemu-img convert -O raw` does
//! the same job on the same file.
//!
//! ```text
//! convert-disk DISK-FILE OUTPUT   # prints: <virtual size> <passes> <seconds>
//! ```
//!
//! `floor.sh` converts to `/dev/null` to time the cluster inflate alone: an OUTPUT that
//! is not a regular file is neither sized nor synced.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;
use std::time::Instant;

use bootsource_importer::qcow2::{Inflater, Limits, PassEnd};
use bootsource_importer::{Extent, FormatDecoder};
use bytes::Bytes;

const CHUNK: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: convert-disk DISK-FILE OUTPUT".into());
    };
    let started = Instant::now();
    let len = std::fs::metadata(&input)?.len();
    let mut head = vec![0; CHUNK.min(usize::try_from(len)?)];
    File::open(&input)?.read_exact(&mut head)?;
    let mut decoder = FormatDecoder::for_file(&input, &head, len, Limits::default())
        .map_err(|what| format!("{input} is {what}"))?;
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&output)?;
    let sized = out.metadata()?.is_file();
    let mut inflater = Inflater::new()?;
    let (mut extents, mut grain) = (Vec::new(), Vec::new());
    loop {
        let mut file = File::open(&input)?;
        loop {
            let mut buf = vec![0; CHUNK];
            let n = read_full(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            decoder.feed(&Bytes::from(buf), &mut extents)?;
            if let Some(size) = decoder.virtual_size().filter(|_| sized) {
                out.set_len(size)?;
            }
            for extent in extents.drain(..) {
                write(&out, extent, &mut inflater, &mut grain)?;
            }
        }
        if decoder.finish_pass()? == PassEnd::Complete {
            break;
        }
    }
    if sized {
        out.sync_all()?;
    }
    let size = decoder.virtual_size().unwrap_or(0);
    println!(
        "{size} {} {:.3}",
        decoder.passes(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn write(
    out: &File,
    extent: Extent,
    inflater: &mut Inflater,
    grain: &mut Vec<u8>,
) -> io::Result<()> {
    let (offset, bytes): (u64, &[u8]) = match &extent {
        Extent::Data { offset, bytes } => (offset.0, bytes),
        Extent::Compressed {
            offset,
            len,
            codec,
            bytes,
            ..
        } => {
            grain.resize(usize::try_from(*len).expect("a grain fits"), 0);
            inflater
                .inflate(*codec, bytes, grain)
                .map_err(io::Error::other)?;
            (offset.0, grain)
        }
    };
    if bytes.iter().any(|&b| b != 0) {
        out.write_all_at(bytes, offset)?;
    }
    Ok(())
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
