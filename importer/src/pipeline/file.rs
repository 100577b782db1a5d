//! The pipeline's entry for a single disk file: no layers, the same conversion.
//!
//! The file's bytes are decompressed by magic ([`crate::decompress`]), then its first
//! 512 decompressed bytes decide: a tar (`ustar` at byte 257) is walked like a layer
//! and must hold exactly one regular file, the disk (an old GNU sparse entry's holes
//! stay holes) — unless it is an OVA (its first entry an `.ovf`), which is itself the
//! disk; anything else *is* the disk and goes straight to the format sniff, under the
//! file's name less its compression suffix (a fixed VHD is known by its `.vhd`, and
//! `azure.vhd.xz` holds `azure.vhd`). From there it is the container-disk pipeline:
//! [`Conversion`] sniffs, decodes, asks for a place once the size is known, writes.
//!
//! Every format but qcow2 needs the disk file's length before its first byte: a raw
//! disk's size is its length, a fixed VHD's footer and a VMDK's footer sit at its end,
//! and the block-map formats check their tables against it. It comes from the tar
//! entry's size, the file's length when uncompressed, or what the compression's
//! headers say ([`crate::stream_length`]). Failing those (gzip, bzip2, zstd from a
//! pipe, xz without ranges), a raw disk is announced as [`DiskSize::Unknown`] and
//! written as it arrives into a place that grows, one pass ([`UnknownLength::Grow`]).
//! Other formats, and a caller that cannot grow a place ([`UnknownLength::Measure`]: a
//! block pool), have a file or URL read once more to measure it, which one log line
//! says; standard input cannot be, and is refused. A qcow2 needs no length up front:
//! its header says the virtual size, and its stream ends where it ends.
//!
//! [`DiskSize::Unknown`]: bootsource_place::DiskSize::Unknown

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::conversion::Conversion;
use super::{Converted, Handshake, Settings};
use crate::decompress::{Compression, Decompressor, MAGIC_BYTES};
use crate::disk;
use crate::format::{self, DiskFormat};
use crate::origin::file::{FileOrigin, FileProblem};
use crate::qcow2::PassEnd;
use crate::stream_length;
use crate::{Digest, Error, Result, UnknownLength};

/// Decompressed bytes looked at before deciding what the file is.
const HEAD_BYTES: usize = 512;
/// Compressed bytes a zstd frame header takes at most.
const ZSTD_HEADER_BYTES: usize = 18;

/// What the pipeline did with a single file.
#[derive(Debug, Clone)]
pub(crate) struct FileOutcome {
    /// The sha256 of the file's bytes: the version's digest.
    pub sha256: Digest,
    pub converted: Converted,
}

/// Imports the disk in `origin` into the place `handshake` receives. Blocking.
pub(crate) fn run_file(
    origin: &FileOrigin,
    settings: &Settings,
    handshake: Handshake,
) -> Result<FileOutcome> {
    std::thread::scope(|scope| {
        let mut conversion = Conversion::new(scope, settings, handshake);
        let sha256 = loop {
            let sha256 = feed_once(origin, settings, &mut conversion)?;
            if conversion.end_pass()? == PassEnd::Complete {
                break sha256;
            }
            if !origin.rereadable() {
                return Err(problem(origin, FileProblem::StdinSecondPass));
            }
        };
        let converted = conversion.finish()?;
        settings
            .progress
            .written
            .store(converted.written, Ordering::Relaxed);
        Ok(FileOutcome { sha256, converted })
    })
}

/// One pass over the file: its disk fed to `conversion`, the file read to its verified
/// end. Returns the file's sha256.
fn feed_once(
    origin: &FileOrigin,
    settings: &Settings,
    conversion: &mut Conversion<'_, '_>,
) -> Result<Digest> {
    let mut stream = DiskStream::open(origin, settings)?;
    let image = origin.image();
    if stream.is_archive() {
        let what = stream.compression.describe("tar archive");
        let io = move |e| file_error(image, what, e);
        disk::walk_archive(&mut stream, image, &io, |entry, bytes| {
            conversion.feed_entry(None, entry, bytes, &io)
        })?;
    } else {
        let name = stream.compression.inner_name(origin.name());
        let size = disk_length(origin, settings, &stream, name)?;
        let what = stream.compression.describe("disk file");
        let io = move |e| file_error(image, what, e);
        conversion.feed(None, name, size, &mut stream, &io)?;
    }
    stream.finish(origin)
}

/// The length of the disk file `name` for every format that needs it (all but qcow2,
/// and formats refused anyway), from the cheapest source that knows it; `None` also
/// for a raw disk that is to grow as it arrives.
fn disk_length(
    origin: &FileOrigin,
    settings: &Settings,
    stream: &DiskStream,
    name: &str,
) -> Result<Option<u64>> {
    let format = format::sniff(&stream.head, name);
    if let Ok(DiskFormat::Qcow2) | Err(_) = format {
        return Ok(None);
    }
    let announced = match stream.compression {
        Compression::None => origin.length(),
        Compression::Zstd => stream_length::zstd_content_size(&stream.compressed_head),
        Compression::Xz => match (origin.length(), origin.tail(stream_length::XZ_TAIL_BYTES)?) {
            (Some(len), Some(tail)) => stream_length::xz_uncompressed_size(&tail, len),
            _ => None,
        },
        Compression::Gzip | Compression::Bzip2 => None,
    };
    if announced.is_some() {
        return Ok(announced);
    }
    if format == Ok(DiskFormat::Raw) && settings.unknown_length == UnknownLength::Grow {
        tracing::info!(image = %origin.image(), compression = ?stream.compression,
            "the raw disk's length is not in the file's headers; it is written as it arrives");
        return Ok(None);
    }
    if !origin.rereadable() {
        return Err(problem(origin, FileProblem::StdinLengthUnknown));
    }
    tracing::info!(image = %origin.image(), compression = ?stream.compression,
        "the disk's length is not in the file's headers; reading it once to measure it");
    let mut measure = DiskStream::open(origin, settings)?;
    let what = measure.compression.describe("disk file");
    let length =
        io::copy(&mut measure, &mut io::sink()).map_err(|e| file_error(origin.image(), what, e))?;
    measure.finish(origin)?;
    Ok(Some(length))
}

/// The file's decompressed bytes, with their first [`HEAD_BYTES`] read ahead.
struct DiskStream {
    compression: Compression,
    /// The compressed stream's first bytes (a zstd frame header).
    compressed_head: Vec<u8>,
    /// The first decompressed bytes, served before the rest.
    head: Vec<u8>,
    served: usize,
    decompressor: Decompressor,
}

impl DiskStream {
    fn open(origin: &FileOrigin, settings: &Settings) -> Result<Self> {
        let progress = &settings.progress;
        if let Some(len) = origin.length() {
            let downloaded = progress.downloaded.load(Ordering::Relaxed);
            progress
                .download_total
                .store(downloaded + len, Ordering::Relaxed);
        }
        let mut blob = origin.open(Arc::clone(progress), settings.cancel.clone())?;
        let peeked = match blob.peek(ZSTD_HEADER_BYTES.max(MAGIC_BYTES)) {
            Ok(head) => head.to_vec(),
            Err(e) => return Err(blob.error_from(e)),
        };
        let compression = Compression::sniff(&peeked);
        if let (Compression::None, Some(named)) =
            (compression, Compression::named_by(origin.name()))
        {
            return Err(problem(
                origin,
                FileProblem::NotAsNamed {
                    name: origin.name().to_owned(),
                    format: named.name(),
                },
            ));
        }
        let what = compression.describe("disk file");
        let mut decompressor = Decompressor::new(compression, blob)
            .map_err(|e| file_error(origin.image(), what, e))?;
        let mut head = Vec::with_capacity(HEAD_BYTES);
        (&mut decompressor)
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|e| file_error(origin.image(), what, e))?;
        Ok(Self {
            compression,
            compressed_head: peeked,
            head,
            served: 0,
            decompressor,
        })
    }

    /// Whether the decompressed bytes are a POSIX or GNU tar archive holding the disk
    /// (an OVA is a tar too, but the disk itself).
    fn is_archive(&self) -> bool {
        self.head.get(257..262) == Some(b"ustar") && !crate::ova::is_ova(&self.head)
    }

    /// Reads the rest (so that the checksum and length are checked); the file's sha256.
    fn finish(mut self, origin: &FileOrigin) -> Result<Digest> {
        let what = self.compression.describe("disk file");
        io::copy(&mut self, &mut io::sink()).map_err(|e| file_error(origin.image(), what, e))?;
        let blob = self.decompressor.blob();
        blob.drain()?;
        blob.sha256()
            .ok_or_else(|| Error::Internal("a drained file has no digest".into()))
    }
}

impl Read for DiskStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.served < self.head.len() {
            let n = buf.len().min(self.head.len() - self.served);
            buf[..n].copy_from_slice(&self.head[self.served..self.served + n]);
            self.served += n;
            return Ok(n);
        }
        self.decompressor.read(buf)
    }
}

/// An I/O error reading the file: the source's own error if it carries one, else the
/// decompressed stream or the archive is broken.
fn file_error(image: &str, what: &'static str, e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return e
            .downcast::<Error>()
            .unwrap_or_else(|e| Error::Internal(e.to_string()));
    }
    Error::CorruptFile {
        image: image.to_owned(),
        what,
        source: e,
    }
}

fn problem(origin: &FileOrigin, problem: FileProblem) -> Error {
    Error::FileSource {
        image: origin.image().to_owned(),
        problem,
    }
}
