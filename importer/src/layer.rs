//! Layer decompression, chosen by the bytes rather than the label.
//!
//! A layer's media type says gzip, zstd or plain tar; the first bytes say what it
//! really is, and those win (a mislabelled layer is logged, not fatal). The decoders
//! read straight from the [`BlobReader`]'s chunks (`BufRead`), so bytes are copied once:
//! into the decompressed buffer.

use std::io::{self, Read};

use crate::blob::BlobReader;
use crate::decompress::{Compression, Decompressor, MAGIC_BYTES};
use crate::manifest::{Layer, LayerCompression};
use crate::{Digest, Error, Result};

/// A layer's tar stream.
pub(crate) struct LayerReader {
    digest: Digest,
    compression: LayerCompression,
    decompressor: Decompressor,
}

impl std::fmt::Debug for LayerReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerReader")
            .field("digest", &self.digest)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

impl LayerReader {
    /// Wraps `blob`, the bytes of `layer`, in the decompressor its magic calls for.
    pub fn new(layer: &Layer, mut blob: BlobReader) -> Result<Self> {
        let declared = layer.compression()?;
        let digest = layer.digest;
        let head = blob
            .peek(MAGIC_BYTES)
            .map_err(|e| crate::blob::into_error(digest, e))?;
        // OCI layers are gzip, zstd or plain tar: other magic is tar's problem.
        let (sniffed, compression) = match Compression::sniff(head) {
            Compression::Gzip => (LayerCompression::Gzip, Compression::Gzip),
            Compression::Zstd => (LayerCompression::Zstd, Compression::Zstd),
            _ => (LayerCompression::None, Compression::None),
        };
        if sniffed != declared {
            tracing::warn!(layer = %layer.digest, ?declared, ?sniffed, "layer media type does not match its bytes; trusting the bytes");
        }
        let decompressor = Decompressor::new(compression, blob)
            .map_err(|e| Error::Internal(format!("zstd decoder: {e}")))?;
        Ok(Self {
            digest: layer.digest,
            compression: sniffed,
            decompressor,
        })
    }

    /// The compression actually found.
    pub fn compression(&self) -> LayerCompression {
        self.compression
    }

    /// Reads the rest of the layer — decompressed, then whatever follows the
    /// compressed stream — so that the blob's size and digest are checked.
    pub fn drain(mut self) -> Result<()> {
        io::copy(&mut self, &mut io::sink()).map_err(|e| self.error(e))?;
        self.blob().drain()
    }

    /// Reads the rest of the blob without decompressing it: its size and digest
    /// verdict, even when the decompressed stream is broken. A second pass that went
    /// wrong asks this first, since bytes that changed are a mismatch whatever they
    /// broke on the way.
    pub fn blob_verdict(mut self) -> Result<()> {
        self.blob().drain()
    }

    fn blob(&mut self) -> &mut BlobReader {
        self.decompressor.blob()
    }

    /// Names an I/O error from this stack: a blob error it carries, or the layer's
    /// format being broken.
    pub fn error(&self, e: io::Error) -> Error {
        layer_error(self.digest, describe(self.compression), e)
    }
}

/// What a layer with `compression` is, for error messages.
pub(crate) fn describe(compression: LayerCompression) -> &'static str {
    match compression {
        LayerCompression::None => "tar archive",
        LayerCompression::Gzip => "gzip stream",
        LayerCompression::Zstd => "zstd stream",
    }
}

/// An I/O error from reading a layer: the blob error it carries if any, else the
/// layer's `what` (gzip stream, tar archive, …) is corrupt.
pub(crate) fn layer_error(digest: Digest, what: &'static str, e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return crate::blob::into_error(digest, e);
    }
    Error::CorruptLayer {
        layer: digest,
        what,
        source: e,
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decompressor.read(buf)
    }
}
