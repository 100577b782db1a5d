//! The qcow2 stream decoder: image bytes in file order in, guest extents out.
//!
//! A pure state machine: no I/O, no clock. The caller feeds the image in chunks of any
//! size, in order, and collects [`Extent`](crate::Extent)s; at the end of the stream it
//! calls [`Decoder::finish_pass`], which either says the disk is complete or asks for
//! the same bytes once more.
//!
//! # Phases
//!
//! Until its header parses, the decoder holds nothing but the header's first bytes
//! ([`Phase::Header`]). From then on it serves clusters as the stream passes them
//! ([`Phase::Clusters`], see `clusters`), and its tables go from waiting for the L1
//! table, to waiting for the L2 tables it names, to all read. Each phase holds exactly
//! what it knows, so no step needs to ask whether the header was parsed yet.
//!
//! # When one pass is not enough
//!
//! If the spool would grow past its cap (an edited image: freed clusters reused, an
//! internal snapshot, a resize that moved the L1 table to the end), the decoder drops
//! the spool and goes on; mappings that later point back at dropped bytes are *missed*.
//! The next pass starts with everything learnt so far, so it needs no spool for them:
//! pass 1 always learns the L1 table, pass 2 every L2 table, pass 3 every data cluster.
//! A valid image therefore never needs more than three passes.
//!
//! # Memory bound
//!
//! With cluster size `cs`, at most
//! `spool_bytes + 8·l1_entries + 40·pending + assembly_bytes + host_use + cs` bytes:
//! the spool cap (default 64 MiB; qemu-img output needs a few KiB), the L1 table
//! (at most 32 MiB, QEMU's limit; 16 KiB per TiB at 64 KiB clusters), about 40 bytes per
//! mapping read but not yet served (one or two L2 tables' worth in written-in-order
//! images: 8192 per table at 64 KiB clusters; capped by `max_pending`), compressed
//! clusters or L2 tables split across chunks (capped by `assembly_bytes`), and the
//! record of host bytes the L2 entries were given, which refuses two entries sharing
//! them (a write bomb): two bits per host cluster in 4 KiB pages allocated as first
//! touched, plus about 32 bytes per compressed cluster, capped at 64 MiB (past it the
//! image is refused with `LimitExceeded`). A 10 GiB image at 64 KiB clusters needs
//! 40 KiB of pages, plus 5 MiB if every cluster is compressed.

use bytes::Bytes;

use super::clusters::Clusters;
use super::header::{Header, MAX_HEADER_BYTES};
use crate::extent::Extent;
use crate::{Error, Result};

/// A valid image never needs more passes (see the module docs).
pub const MAX_PASSES: u32 = 3;

/// Bounds on what the decoder holds in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes kept for ranges no table has claimed yet; past this, read again instead.
    pub spool_bytes: u64,
    /// Mappings read from L2 tables whose bytes have not arrived yet.
    pub max_pending: usize,
    /// Bytes of L2 tables and compressed clusters being gathered across chunks.
    pub assembly_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            spool_bytes: 64 << 20,
            max_pending: 4 << 20,
            assembly_bytes: 64 << 20,
        }
    }
}

/// What the end of a pass means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassEnd {
    /// Every cluster has been emitted: the disk is complete.
    Complete,
    /// Some clusters arrived before their tables and were not kept: feed the same
    /// image again from its first byte.
    Again,
}

/// Streaming qcow2 → raw decoder. See the module documentation.
#[derive(Debug)]
pub struct Decoder {
    stream_len: u64,
    /// False for a stream whose length is learnt at its end (a pipe, a compressed
    /// file): until then `stream_len` is `u64::MAX` and bounds are the header's.
    length_known: bool,
    limits: Limits,
    /// Bytes of this pass fed so far.
    pos: u64,
    phase: Phase,
}

/// What the decoder knows of the image so far.
#[derive(Debug)]
enum Phase {
    /// The header's first bytes, until they are enough to parse it.
    Header(Vec<u8>),
    /// The header is known: tables and data are served as the stream passes them.
    Clusters(Box<Clusters>),
}

impl Decoder {
    /// A decoder for an image of `stream_len` bytes.
    pub fn new(stream_len: u64, limits: Limits) -> Self {
        Self {
            stream_len,
            length_known: true,
            limits,
            pos: 0,
            phase: Phase::Header(Vec::with_capacity(MAX_HEADER_BYTES)),
        }
    }

    /// A decoder for an image whose length is known only when its stream ends. Tables
    /// and clusters past the real end are never served, so the pass ends with them
    /// missing and asks for another, which then knows the length.
    pub fn new_unsized(limits: Limits) -> Self {
        Self {
            length_known: false,
            ..Self::new(u64::MAX, limits)
        }
    }

    /// The header, once enough bytes have been fed.
    pub fn header(&self) -> Option<&Header> {
        match &self.phase {
            Phase::Header(_) => None,
            Phase::Clusters(clusters) => Some(clusters.header()),
        }
    }

    /// The pass being fed, from 1.
    pub fn pass(&self) -> u32 {
        match &self.phase {
            Phase::Header(_) => 1,
            Phase::Clusters(clusters) => clusters.pass(),
        }
    }

    /// The most bytes the spool held at once.
    pub fn spool_peak(&self) -> u64 {
        match &self.phase {
            Phase::Header(_) => 0,
            Phase::Clusters(clusters) => clusters.spool_peak(),
        }
    }

    /// Feeds the next bytes of the image and appends the extents they complete to `out`.
    pub fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        let start = self.pos;
        let end = start + chunk.len() as u64;
        if end > self.stream_len {
            return Err(Error::Internal(format!(
                "qcow2 stream longer than its {} bytes",
                self.stream_len
            )));
        }
        match &mut self.phase {
            Phase::Clusters(clusters) => clusters.serve(chunk, start, out)?,
            Phase::Header(bytes) => {
                if let Some(header) = read_header(bytes, chunk, start, self.stream_len)? {
                    // The chunk is served whole: its first bytes are the header cluster's.
                    let mut clusters =
                        Box::new(Clusters::new(header, self.stream_len, self.limits));
                    clusters.serve(chunk, start, out)?;
                    self.phase = Phase::Clusters(clusters);
                }
            }
        }
        self.pos = end;
        Ok(())
    }

    /// Ends a pass: call once all `stream_len` bytes have been fed.
    pub fn finish_pass(&mut self) -> Result<PassEnd> {
        if !self.length_known {
            self.stream_len = self.pos;
            self.length_known = true;
        }
        match &mut self.phase {
            Phase::Clusters(clusters) if self.pos == self.stream_len => {
                let end = clusters.finish_pass()?;
                if end == PassEnd::Again {
                    self.pos = 0;
                }
                Ok(end)
            }
            // Cut short, or too short to hold a header.
            _ => Err(Error::Qcow2PastEnd {
                what: "image",
                offset: self.pos,
                len: self.stream_len - self.pos,
                stream_len: self.pos,
            }),
        }
    }
}

/// Adds the header's bytes from `chunk` (fed at `start`) to `bytes`; the header once
/// they are enough.
fn read_header(
    bytes: &mut Vec<u8>,
    chunk: &Bytes,
    start: u64,
    stream_len: u64,
) -> Result<Option<Header>> {
    let take = (MAX_HEADER_BYTES - bytes.len()).min(chunk.len());
    bytes.extend_from_slice(&chunk[..take]);
    match Header::parse(bytes, stream_len)? {
        Some(header) => Ok(Some(header)),
        None if start + take as u64 >= stream_len => Err(Error::Qcow2PastEnd {
            what: "header",
            offset: 0,
            len: MAX_HEADER_BYTES as u64,
            stream_len,
        }),
        None => Ok(None),
    }
}
