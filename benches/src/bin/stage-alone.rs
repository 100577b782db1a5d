//! The stages of an import measured one at a time, for `floor.sh` (issue 13's CPU floor):
//! each subcommand does one stage's work on the same bytes the import handles, with the
//! importer's own crates and read size, and nothing else. `floor.sh` takes each one's CPU
//! time; `decompress` (gunzip) and `convert-disk … /dev/null` (cluster inflate) are the
//! other two stages.
//!
//! ```text
//! stage-alone sha256 FILE          # the layer digest, as the download verifies it
//! stage-alone tar TAR              # walk the layer's tar, read its disk entry to nowhere
//! stage-alone write LIKE TARGET    # write LIKE's data ranges (SEEK_DATA) to a new TARGET
//! ```
//! Each prints `<bytes> <seconds>`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;
use std::time::Instant;

use nix::errno::Errno;
use nix::unistd::{Whence, lseek};
use sha2::{Digest as _, Sha256};

/// Read and write size, as the pipeline's.
const CHUNK: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let bytes = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["sha256", file] => sha256(file)?,
        ["tar", tar] => walk_tar(tar)?,
        ["write", like, target] => write_like(like, target)?,
        _ => return Err("usage: stage-alone sha256 FILE | tar TAR | write LIKE TARGET".into()),
    };
    println!("{bytes} {:.3}", started.elapsed().as_secs_f64());
    Ok(())
}

fn sha256(path: &str) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let (mut hasher, mut buf, mut total) = (Sha256::new(), vec![0; CHUNK], 0);
    loop {
        match file.read(&mut buf)? {
            0 => break,
            n => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
        }
    }
    eprintln!("sha256:{:x}", hasher.finalize());
    Ok(total)
}

/// Reads every entry's header and the entry under `disk/` to nowhere, as the importer's
/// tar walk does before its decoder sees a byte.
fn walk_tar(path: &str) -> io::Result<u64> {
    let mut archive = tar::Archive::new(File::open(path)?);
    let (mut buf, mut total) = (vec![0; CHUNK], 0);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.path_bytes().starts_with(b"disk/") {
            continue;
        }
        loop {
            match entry.read(&mut buf)? {
                0 => break,
                n => total += n as u64,
            }
        }
    }
    Ok(total)
}

/// Writes LIKE's data ranges, in 1 MiB pieces at the same offsets, to a new sparse file
/// of LIKE's length, then `fdatasync`: the bytes and places an import writes.
fn write_like(like: &str, target: &str) -> io::Result<u64> {
    let source = File::open(like)?;
    let len = source.metadata()?.len();
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)?;
    out.set_len(len)?;
    let buf = vec![0xa5; CHUNK];
    let (mut at, mut total) = (0, 0);
    while at < len {
        let Some(start) = seek(&source, at, Whence::SeekData)? else {
            break;
        };
        let end = seek(&source, start, Whence::SeekHole)?.unwrap_or(len);
        let mut offset = start;
        while offset < end {
            let n = usize::try_from(end - offset).map_or(CHUNK, |left| left.min(CHUNK));
            out.write_all_at(&buf[..n], offset)?;
            offset += n as u64;
        }
        total += end - start;
        at = end;
    }
    out.sync_data()?;
    Ok(total)
}

/// `lseek(SEEK_DATA/SEEK_HOLE)`; `None` past the last data (ENXIO).
fn seek(file: &File, from: u64, whence: Whence) -> io::Result<Option<u64>> {
    let from = i64::try_from(from).map_err(io::Error::other)?;
    match lseek(file, from, whence) {
        Ok(at) => Ok(Some(at.unsigned_abs())),
        Err(Errno::ENXIO) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
