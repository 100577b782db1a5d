//! Decompression found by magic bytes: gzip, zstd, xz, bzip2, or none.
//!
//! One decompressor for layers and single files alike, reading straight from the
//! [`BlobReader`]'s chunks (`BufRead`), so bytes are copied once: into the decompressed
//! buffer. Layers take gzip and zstd (what OCI allows); single files take all four, as
//! vendors publish them (`.raw.xz`, `.qcow2.xz`, `.tar.xz`, `.img.gz`, `.bz2`). Each
//! decoder reads concatenated streams (pigz/pbzip2/`xz -T` output, `cat a.gz b.gz`);
//! bytes after the last stream that are not another stream are an error.
//!
//! The decoders: flate2 with zlib-rs (see [`crate::gzip`]), libzstd, the reference
//! liblzma (C; pure-Rust lzma-rs decodes at about half its speed; multi-threaded, see
//! [`crate::xz`]) and libbz2-rs-sys (a
//! pure-Rust port of libbzip2, as fast as the C library).
//!
//! Memory is bounded whatever a stream's headers ask: xz's decoder has a limit (see
//! [`crate::xz`]), zstd's refuses windows over 128 MiB by default, gzip and bzip2 need
//! a fixed few hundred KiB.
//!
//! The time spent in a decoder, less its waits for the blob's next chunk, is the
//! import's `decompress` stage ([`crate::stages`]).

use std::io::{self, Read};
use std::sync::Arc;

use crate::Progress;
use crate::blob::BlobReader;
use crate::gzip::GzipReader;
use crate::xz::XzReader;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// A zstd skippable frame: 0x184D2A50 to 0x184D2A5F, little-endian. pzstd starts its
/// files with one (an index of the frames), and a decoder skips them.
const ZSTD_SKIPPABLE_MAGIC: [u8; 3] = [0x2a, 0x4d, 0x18];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
const BZIP2_MAGIC: [u8; 3] = *b"BZh";

/// Bytes [`Compression::sniff`] needs.
pub(crate) const MAGIC_BYTES: usize = 6;

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    /// The format whose magic `head` starts with.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&GZIP_MAGIC) {
            Self::Gzip
        } else if head.starts_with(&ZSTD_MAGIC)
            || (head.first().is_some_and(|b| b & 0xf0 == 0x50)
                && head.get(1..4) == Some(&ZSTD_SKIPPABLE_MAGIC[..]))
        {
            Self::Zstd
        } else if head.starts_with(&XZ_MAGIC) {
            Self::Xz
        } else if head.starts_with(&BZIP2_MAGIC)
            && head.get(3).is_some_and(|b| (b'1'..=b'9').contains(b))
        {
            Self::Bzip2
        } else {
            Self::None
        }
    }

    /// The format's name: `gzip`, `zstd`, `xz`, `bzip2`, or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Xz => "xz",
            Self::Bzip2 => "bzip2",
        }
    }

    /// What a stream in this format is, for error messages.
    pub fn describe(self, inner: &'static str) -> &'static str {
        match self {
            Self::None => inner,
            Self::Gzip => "gzip stream",
            Self::Zstd => "zstd stream",
            Self::Xz => "xz stream",
            Self::Bzip2 => "bzip2 stream",
        }
    }

    /// The name of the file inside: `name` less this compression's suffix, if it has
    /// one (`disk.vhd.xz` holds `disk.vhd`), matched regardless of case.
    pub fn inner_name(self, name: &str) -> &str {
        self.suffixes()
            .iter()
            .find_map(|suffix| strip_suffix(name, suffix))
            .unwrap_or(name)
    }

    /// The compression `name`'s suffix says (`.gz`, `.xz`, `.zst`, `.bz2`, …), if any.
    pub fn named_by(name: &str) -> Option<Self> {
        [Self::Gzip, Self::Zstd, Self::Xz, Self::Bzip2]
            .into_iter()
            .find(|c| c.inner_name(name) != name)
    }

    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Self::None => &[],
            Self::Gzip => &[".gz", ".gzip"],
            Self::Zstd => &[".zst", ".zstd"],
            Self::Xz => &[".xz"],
            Self::Bzip2 => &[".bz2", ".bzip2"],
        }
    }
}

/// `name` less `suffix` (any case), unless nothing would be left.
fn strip_suffix<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = name.len().checked_sub(suffix.len())?;
    let tail = name.get(cut..)?;
    (cut > 0 && tail.eq_ignore_ascii_case(suffix)).then(|| &name[..cut])
}

/// A blob, decompressed.
pub(crate) struct Decompressor {
    decoder: Decoder,
    progress: Arc<Progress>,
}

enum Decoder {
    Plain(BlobReader),
    Gzip(Box<GzipReader<BlobReader>>),
    Zstd(zstd::stream::read::Decoder<'static, BlobReader>),
    Xz(Box<XzReader>),
    Bzip2(Box<bzip2::bufread::MultiBzDecoder<BlobReader>>),
}

impl Decompressor {
    /// Wraps `blob` in the decoder for `compression`.
    pub fn new(compression: Compression, blob: BlobReader) -> io::Result<Self> {
        let progress = Arc::clone(blob.progress());
        let decoder = match compression {
            Compression::None => Decoder::Plain(blob),
            Compression::Gzip => Decoder::Gzip(Box::new(GzipReader::new(blob))),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(blob)?),
            Compression::Xz => Decoder::Xz(Box::new(XzReader::new(blob)?)),
            Compression::Bzip2 => {
                Decoder::Bzip2(Box::new(bzip2::bufread::MultiBzDecoder::new(blob)))
            }
        };
        Ok(Self { decoder, progress })
    }

    /// The blob under the decoder, e.g. to drain what follows the compressed stream.
    pub fn blob(&mut self) -> &mut BlobReader {
        match &mut self.decoder {
            Decoder::Plain(b) => b,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zstd(d) => d.get_mut(),
            Decoder::Xz(d) => d.get_mut(),
            Decoder::Bzip2(d) => d.get_mut(),
        }
    }
}

impl Read for Decompressor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let decoder: &mut dyn Read = match &mut self.decoder {
            Decoder::Plain(b) => return b.read(buf),
            Decoder::Gzip(d) => d,
            Decoder::Zstd(d) => d,
            Decoder::Xz(d) => d,
            Decoder::Bzip2(d) => d,
        };
        let stages = &self.progress.stages;
        stages
            .decompress
            .time_less(&stages.waiting_for_input, || decoder.read(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(Compression::sniff(b"\x1f\x8b\x08"), Compression::Gzip);
        assert_eq!(
            Compression::sniff(b"\x28\xb5\x2f\xfd\x04"),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"\xfd7zXZ\0\0"), Compression::Xz);
        assert_eq!(Compression::named_by("disk.raw.XZ"), Some(Compression::Xz));
        assert_eq!(
            Compression::named_by("disk.img.gz"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::named_by("disk.qcow2"), None);
        assert_eq!(Compression::named_by(".xz"), None);
        // pzstd: a skippable frame first.
        assert_eq!(
            Compression::sniff(b"\x50\x2a\x4d\x18\x04\0"),
            Compression::Zstd
        );
        assert_eq!(
            Compression::sniff(b"\x5f\x2a\x4d\x18\x04\0"),
            Compression::Zstd
        );
        assert_eq!(
            Compression::sniff(b"\x60\x2a\x4d\x18\x04\0"),
            Compression::None
        );
        assert_eq!(Compression::sniff(b"BZh91AY&SY"), Compression::Bzip2);
        assert_eq!(Compression::sniff(b"BZhx"), Compression::None);
        assert_eq!(Compression::sniff(b"QFI\xfb"), Compression::None);
        assert_eq!(Compression::sniff(b""), Compression::None);
    }

    #[test]
    fn inner_names_lose_the_compression_suffix_only() {
        assert_eq!(Compression::Xz.inner_name("azure.vhd.xz"), "azure.vhd");
        assert_eq!(Compression::Gzip.inner_name("disk.VHD.GZ"), "disk.VHD");
        assert_eq!(Compression::Zstd.inner_name("disk.vhd.zstd"), "disk.vhd");
        assert_eq!(Compression::Bzip2.inner_name("disk.vhd.bz2"), "disk.vhd");
        assert_eq!(Compression::Gzip.inner_name("disk.vhd.xz"), "disk.vhd.xz");
        assert_eq!(Compression::None.inner_name("disk.vhd.gz"), "disk.vhd.gz");
        assert_eq!(Compression::Gzip.inner_name(".gz"), ".gz");
        assert_eq!(Compression::Xz.inner_name("stdin"), "stdin");
    }
}
