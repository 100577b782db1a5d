//! The qcow2 stream decoder: image bytes in file order in, guest extents out.
//!
//! A pure state machine: no I/O, no clock. The caller feeds the image in chunks of any
//! size, in order, and collects [`Extent`]s; at the end of the stream it calls
//! [`Decoder::finish_pass`], which either says the disk is complete or asks for the
//! same bytes once more.
//!
//! # How bytes find their place
//!
//! The header names the L1 table; the L1 table names the L2 tables; each L2 table maps
//! guest clusters to host byte ranges. Every range the decoder knows about waits in
//! `pending`, keyed by its host offset, and is served as the stream passes it: data is
//! emitted at once (zero-copy slices of the chunk), L2 tables and compressed clusters are
//! gathered whole. Bytes that nothing claims yet go to the [`Spool`], because a table
//! further on may still map them; once every L2 table has been read, unclaimed bytes
//! are garbage (refcount blocks, freed clusters) and are dropped.
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
//! `spool_bytes + 8·l1_entries + 40·pending + assembly_bytes + cs` bytes:
//! the spool cap (default 64 MiB; qemu-img output needs a few KiB), the L1 table
//! (at most 32 MiB, QEMU's limit; 16 KiB per TiB at 64 KiB clusters), about 40 bytes per
//! mapping read but not yet served (one or two L2 tables' worth in written-in-order
//! images: 8192 per table at 64 KiB clusters; capped by `max_pending`), and compressed
//! clusters or L2 tables split across chunks (capped by `assembly_bytes`).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::header::{Header, MAX_HEADER_BYTES};
use super::inflate::Inflater;
use super::mapping::{self, Kind, Mapping};
use super::refcount::RefcountRegions;
use super::spool::Spool;
use crate::extent::{Extent, GuestOffset};
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

/// A range waiting for its bytes, with what has been gathered so far.
#[derive(Debug)]
struct Pending {
    mapping: Mapping,
    gathered: Vec<u8>,
}

/// Streaming qcow2 → raw decoder. See the module documentation.
#[derive(Debug)]
pub struct Decoder {
    stream_len: u64,
    limits: Limits,
    /// Bytes of this pass fed so far.
    pos: u64,
    /// Bytes below this have been served or spooled; mappings below it are late.
    cursor: u64,
    pass: u32,
    header_bytes: Vec<u8>,
    header: Option<Header>,
    refcounts: Option<RefcountRegions>,
    l1_bytes: Vec<u8>,
    l1_done: bool,
    l2_unread: u64,
    pending: BTreeMap<(u64, u64), Pending>,
    next_seq: u64,
    gathering: u64,
    missed: Vec<Mapping>,
    spool: Spool,
    spooling: bool,
    salvage: Option<Inflater>,
}

/// Work found while serving one segment, done once the segment is decided.
enum Completed {
    L1,
    Whole(Mapping, Bytes),
}

impl Decoder {
    /// A decoder for an image of `stream_len` bytes.
    pub fn new(stream_len: u64, limits: Limits) -> Self {
        Self {
            stream_len,
            limits,
            pos: 0,
            cursor: 0,
            pass: 1,
            header_bytes: Vec::with_capacity(MAX_HEADER_BYTES),
            header: None,
            refcounts: None,
            l1_bytes: Vec::new(),
            l1_done: false,
            l2_unread: 0,
            pending: BTreeMap::new(),
            next_seq: 0,
            gathering: 0,
            missed: Vec::new(),
            spool: Spool::default(),
            spooling: true,
            salvage: None,
        }
    }

    /// The header, once enough bytes have been fed.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The pass being fed, from 1.
    pub fn pass(&self) -> u32 {
        self.pass
    }

    /// The most bytes the spool held at once.
    pub fn spool_peak(&self) -> u64 {
        self.spool.peak()
    }

    /// Feeds the next bytes of the image and appends the extents they complete to `out`.
    pub fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        let end = self.pos + chunk.len() as u64;
        if end > self.stream_len {
            return Err(Error::Internal(format!(
                "qcow2 stream longer than its {} bytes",
                self.stream_len
            )));
        }
        let chunk_start = self.pos;
        if self.header.is_none() {
            self.read_header(chunk)?;
        }
        let Some(cs) = self.header.as_ref().map(Header::cluster_size) else {
            self.pos = end;
            return Ok(());
        };
        let mut early_claims = Vec::new();
        let mut s = chunk_start;
        while s < end {
            let e = end.min((s / cs + 1) * cs);
            self.serve_segment(chunk, chunk_start, s, e, &mut early_claims, out)?;
            s = e;
        }
        self.pos = end;
        Ok(())
    }

    fn read_header(&mut self, chunk: &Bytes) -> Result<()> {
        let take = (MAX_HEADER_BYTES - self.header_bytes.len()).min(chunk.len());
        self.header_bytes.extend_from_slice(&chunk[..take]);
        match Header::parse(&self.header_bytes, self.stream_len)? {
            Some(h) => {
                self.l1_bytes.reserve_exact(
                    usize::try_from(h.l1_entries * 8).expect("L1 is at most 32 MiB"),
                );
                self.l1_done = h.l1_entries == 0;
                self.spooling = !self.l1_done;
                self.refcounts = Some(RefcountRegions::new(&h, self.stream_len));
                self.header = Some(h);
                Ok(())
            }
            None if self.pos + take as u64 >= self.stream_len => Err(Error::Qcow2PastEnd {
                what: "header",
                offset: 0,
                len: MAX_HEADER_BYTES as u64,
                stream_len: self.stream_len,
            }),
            None => Ok(()),
        }
    }

    /// Serves the bytes `s..e` (within one cluster) of `chunk`, which starts at `chunk_start`.
    fn serve_segment(
        &mut self,
        chunk: &Bytes,
        chunk_start: u64,
        s: u64,
        e: u64,
        early_claims: &mut Vec<(u64, u64)>,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        let header = self.header.clone().expect("header parsed");
        let cs = header.cluster_size();
        let slice =
            |from: u64, to: u64| chunk.slice(idx(from - chunk_start)..idx(to - chunk_start));
        let mut claims: Vec<(u64, u64)> = early_claims
            .iter()
            .copied()
            .filter(|&(a, b)| a < e && b > s)
            .collect();
        if s < cs {
            claims.push((s, e.min(cs))); // the header cluster is never spooled
        }
        let mut completed = Vec::new();

        let refcounts = self.refcounts.as_mut().expect("set with the header");
        claims.extend(refcounts.claim(s, e, &chunk[idx(s - chunk_start)..idx(e - chunk_start)]));
        let l1_end = header.l1_offset + header.l1_entries * 8;
        // The rest of the L1 table's last cluster is slack, never data.
        let l1_cluster_end = l1_end.next_multiple_of(cs);
        if s < l1_cluster_end && e > header.l1_offset {
            claims.push((s.max(header.l1_offset), e.min(l1_cluster_end)));
        }
        let (l1_from, l1_to) = (s.max(header.l1_offset), e.min(l1_end));
        if l1_from < l1_to && !self.l1_done {
            self.l1_bytes
                .extend_from_slice(&chunk[idx(l1_from - chunk_start)..idx(l1_to - chunk_start)]);
            if l1_to == l1_end {
                self.l1_done = true;
                completed.push(Completed::L1);
            }
        }

        let lookback = (s.saturating_sub(2 * cs), 0);
        let keys: Vec<(u64, u64)> = self
            .pending
            .range(lookback..(e, 0))
            .map(|(k, _)| *k)
            .collect();
        let chunk_end = chunk_start + chunk.len() as u64;
        for key in keys {
            let p = self.pending.get_mut(&key).expect("key just listed");
            let (host, end) = (p.mapping.host, p.mapping.end());
            let (from, to) = (s.max(host), e.min(end));
            if from >= to {
                continue;
            }
            claims.push((from, to.min(own_end(&p.mapping))));
            if let Kind::Data { guest } = p.mapping.kind {
                out.push(Extent::Data {
                    offset: GuestOffset(guest + (from - host)),
                    bytes: slice(from, to),
                });
                if end <= e {
                    self.pending.remove(&key);
                }
            } else if p.gathered.is_empty()
                && from == host
                && host >= chunk_start
                && end <= chunk_end
            {
                // Whole inside this chunk: no copy; later segments must not spool it.
                early_claims.push((e, own_end(&p.mapping)));
                let p = self.pending.remove(&key).expect("present");
                completed.push(Completed::Whole(p.mapping, slice(host, end)));
            } else {
                p.gathered
                    .extend_from_slice(&chunk[idx(from - chunk_start)..idx(to - chunk_start)]);
                self.gathering += to - from;
                if self.gathering > self.limits.assembly_bytes {
                    return Err(Error::LimitExceeded(format!(
                        "more than {} bytes of overlapping tables or compressed clusters at byte {from:#x}",
                        self.limits.assembly_bytes
                    )));
                }
                if end <= e {
                    let p = self.pending.remove(&key).expect("present");
                    self.gathering -= p.gathered.len() as u64;
                    completed.push(Completed::Whole(p.mapping, Bytes::from(p.gathered)));
                }
            }
        }

        self.spool_unclaimed(chunk, chunk_start, s, e, claims);
        self.cursor = e;
        for c in completed {
            match c {
                Completed::L1 => self.on_l1(out)?,
                Completed::Whole(m, bytes) => self.on_whole(m, bytes, out)?,
            }
        }
        Ok(())
    }

    fn spool_unclaimed(
        &mut self,
        chunk: &Bytes,
        chunk_start: u64,
        s: u64,
        e: u64,
        mut claims: Vec<(u64, u64)>,
    ) {
        if !self.spooling {
            return;
        }
        claims.sort_unstable();
        let mut next = s;
        for (a, b) in claims.into_iter().chain([(e, e)]) {
            if a > next {
                self.spool
                    .push(next, &chunk[idx(next - chunk_start)..idx(a - chunk_start)]);
            }
            next = next.max(b);
        }
        if self.spool.len() > self.limits.spool_bytes {
            tracing::debug!(
                pass = self.pass,
                at = e,
                "spool full; the image will be read again"
            );
            self.spool.clear();
            self.spooling = false;
        }
    }

    fn on_l1(&mut self, out: &mut Vec<Extent>) -> Result<()> {
        let header = self.header.clone().expect("header parsed");
        let l1: Vec<u64> = self
            .l1_bytes
            .chunks_exact(8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
            .collect();
        self.l1_bytes = Vec::new();
        let tables = mapping::l2_tables(&header, &l1, self.stream_len)?;
        self.l2_unread = tables.len() as u64;
        if self.l2_unread == 0 {
            self.all_tables_read();
        }
        for t in tables {
            self.insert(t, out)?;
        }
        Ok(())
    }

    fn on_whole(&mut self, m: Mapping, bytes: Bytes, out: &mut Vec<Extent>) -> Result<()> {
        match m.kind {
            Kind::Data { guest } => out.push(Extent::Data {
                offset: GuestOffset(guest),
                bytes,
            }),
            Kind::Compressed { guest, out_len } => out.push(Extent::Compressed {
                offset: GuestOffset(guest),
                len: out_len,
                codec: self.header.as_ref().expect("header parsed").codec,
                bytes,
                host: m.host,
            }),
            Kind::L2Table { l1_index } => {
                let header = self.header.clone().expect("header parsed");
                let mappings =
                    mapping::parse_l2(&header, l1_index, &bytes, m.host, self.stream_len)?;
                for data in mappings {
                    self.insert(data, out)?;
                }
                // Only now: the mappings just inserted may still need spooled bytes.
                self.l2_unread -= 1;
                if self.l2_unread == 0 {
                    self.all_tables_read();
                }
            }
        }
        Ok(())
    }

    /// No mapping can appear any more: what is spooled now, or unclaimed later, is garbage.
    fn all_tables_read(&mut self) {
        self.spool.clear();
        self.spooling = false;
    }

    /// Files a mapping: ahead of the cursor it waits; behind it, its bytes must be spooled.
    fn insert(&mut self, m: Mapping, out: &mut Vec<Extent>) -> Result<()> {
        if self.pending.len() >= self.limits.max_pending {
            return Err(Error::LimitExceeded(format!(
                "more than {} clusters mapped ahead of their data",
                self.limits.max_pending
            )));
        }
        if m.host >= self.cursor {
            self.wait_for(m, Vec::new());
            return Ok(());
        }
        let passed_end = m.end().min(self.cursor);
        let prefix = self.spool.copy_prefix(m.host, passed_end);
        if (prefix.len() as u64) < passed_end - m.host {
            return self.late_without_bytes(m, prefix, out);
        }
        self.forget_spooled(&m, passed_end);
        if m.end() > self.cursor {
            self.continue_later(m, prefix, out);
            return Ok(());
        }
        self.on_whole(m, Bytes::from(prefix), out)
    }

    fn wait_for(&mut self, m: Mapping, gathered: Vec<u8>) {
        self.gathering += gathered.len() as u64;
        self.pending.insert(
            (m.host, self.next_seq),
            Pending {
                mapping: m,
                gathered,
            },
        );
        self.next_seq += 1;
    }

    /// A mapping whose first bytes came from the spool and whose rest is still ahead.
    fn continue_later(&mut self, m: Mapping, prefix: Vec<u8>, out: &mut Vec<Extent>) {
        if let Kind::Data { guest } = m.kind {
            let done = self.cursor - m.host;
            // Served now; the rest waits as a mapping of its own.
            out.push(Extent::Data {
                offset: GuestOffset(guest),
                bytes: Bytes::from(prefix),
            });
            let rest = Mapping {
                host: self.cursor,
                len: m.len - done,
                kind: Kind::Data {
                    guest: guest + done,
                },
            };
            self.wait_for(rest, Vec::new());
        } else {
            self.wait_for(m, prefix);
        }
    }

    /// Takes the bytes a mapping used out of the spool. Compressed clusters share their
    /// first and last sectors with their neighbours (lengths are known to the sector),
    /// so only the sectors wholly inside one are dropped.
    fn forget_spooled(&mut self, m: &Mapping, passed_end: u64) {
        match m.kind {
            Kind::Compressed { .. } => {
                let first = m.host.next_multiple_of(512);
                let last = m.end().saturating_sub(512).min(passed_end);
                self.spool.remove(first, last);
            }
            _ => self.spool.remove(m.host, passed_end),
        }
    }

    /// The mapping's bytes went by and were not all kept. A compressed cluster may
    /// still be whole: its recorded length runs up to a sector past its data, and that
    /// slack may have been served to its neighbour. Otherwise: next pass.
    fn late_without_bytes(
        &mut self,
        m: Mapping,
        prefix: Vec<u8>,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        if let Kind::Compressed { guest, out_len } = m.kind {
            if m.end() <= self.cursor && prefix.len() as u64 + 512 > m.len {
                let codec = self.header.as_ref().expect("header parsed").codec;
                let inflater = match &mut self.salvage {
                    Some(i) => i,
                    None => self
                        .salvage
                        .insert(Inflater::new().map_err(|e| Error::Internal(e.to_string()))?),
                };
                let mut cluster = vec![0; idx(u64::from(out_len))];
                if inflater.inflate(codec, &prefix, &mut cluster).is_ok() {
                    self.forget_spooled(&m, m.host + prefix.len() as u64);
                    out.push(Extent::Data {
                        offset: GuestOffset(guest),
                        bytes: Bytes::from(cluster),
                    });
                    return Ok(());
                }
            }
        }
        self.missed.push(m);
        Ok(())
    }

    /// Ends a pass: call once all `stream_len` bytes have been fed.
    pub fn finish_pass(&mut self) -> Result<PassEnd> {
        if self.pos != self.stream_len || self.header.is_none() {
            return Err(Error::Qcow2PastEnd {
                what: "image",
                offset: self.pos,
                len: self.stream_len - self.pos,
                stream_len: self.pos,
            });
        }
        // Every waiting range ends inside the stream, so none can be left; be safe anyway.
        let leftover: Vec<Mapping> = std::mem::take(&mut self.pending)
            .into_values()
            .map(|p| p.mapping)
            .collect();
        self.missed.extend(leftover);
        if self.missed.is_empty() {
            debug_assert_eq!(self.l2_unread, 0);
            return Ok(PassEnd::Complete);
        }
        if self.pass >= MAX_PASSES {
            return Err(Error::TooManyPasses { passes: self.pass });
        }
        tracing::info!(
            pass = self.pass,
            late = self.missed.len(),
            "qcow2 clusters arrived before their tables; reading the image again"
        );
        self.pass += 1;
        self.pos = 0;
        self.cursor = 0;
        self.gathering = 0;
        self.spool.clear();
        self.spooling = self.l2_unread > 0;
        for m in std::mem::take(&mut self.missed) {
            self.wait_for(m, Vec::new());
        }
        Ok(PassEnd::Again)
    }
}

/// Where the bytes that surely belong to `m` end. A compressed cluster's recorded
/// length runs to the end of the sector holding its last byte, so its last sector may
/// begin the next compressed cluster — possibly one whose table is still to come.
/// Those bytes are spooled as if unclaimed, so that cluster can still be served.
fn own_end(m: &Mapping) -> u64 {
    match m.kind {
        Kind::Compressed { .. } => m.host.max(m.end().saturating_sub(512)),
        _ => m.end(),
    }
}

/// An in-memory index from a stream offset that is known to fit.
fn idx(n: u64) -> usize {
    usize::try_from(n).expect("offset within a chunk")
}
