//! Extents: what a disk decoder asks the writer to put where.
//!
//! Decoders (raw passthrough, the qcow2 stream decoder) turn the disk file into extents
//! in whatever order its bytes arrive. Everything not covered by an extent reads as
//! zeros: the writer guarantees that for the whole virtual size.

use bytes::Bytes;

use crate::qcow2::Codec;

/// A byte offset in the guest disk (the raw output), as opposed to an offset in the
/// image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestOffset(pub u64);

/// One piece of the guest disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extent {
    /// Bytes to write at `offset`.
    Data {
        /// Where in the guest disk.
        offset: GuestOffset,
        /// The bytes.
        bytes: Bytes,
    },
    /// A compressed qcow2 cluster: decompress `bytes` to exactly `len` bytes, then write
    /// them at `offset`. Left to the writer's workers so that inflating runs in
    /// parallel with parsing.
    Compressed {
        /// Where in the guest disk.
        offset: GuestOffset,
        /// Decompressed length (a cluster, or less at the end of the disk).
        len: u32,
        /// The encoding.
        codec: Codec,
        /// The compressed bytes; may run past the end of the compressed stream.
        bytes: Bytes,
        /// Offset of `bytes` in the image file, for error messages.
        host: u64,
    },
}

impl Extent {
    /// The guest offset this extent starts at.
    pub fn offset(&self) -> GuestOffset {
        match self {
            Self::Data { offset, .. } | Self::Compressed { offset, .. } => *offset,
        }
    }

    /// The number of guest bytes this extent covers.
    pub fn guest_len(&self) -> u64 {
        match self {
            Self::Data { bytes, .. } => bytes.len() as u64,
            Self::Compressed { len, .. } => u64::from(*len),
        }
    }
}
