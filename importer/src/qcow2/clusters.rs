//! Serving an image whose header is known: each byte range to what its tables say.
//!
//! The header names the L1 table; the L1 table names the L2 tables; each L2 table maps
//! guest clusters to host byte ranges. Every range the decoder knows about waits in
//! `pending`, keyed by its host offset, and is served as the stream passes it: data is
//! emitted at once (zero-copy slices of the chunk), L2 tables and compressed clusters are
//! gathered whole. Bytes that nothing claims yet go to the [`Spool`], because a table
//! further on may still map them; once every L2 table has been read ([`Tables::Read`]),
//! unclaimed bytes are garbage (refcount blocks, freed clusters) and are dropped.
//!
//! This owns one pass's serving and what carries over between passes; the
//! [`Decoder`](super::Decoder) owns the phases and the stream position.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::decoder::{Limits, MAX_PASSES, PassEnd};
use super::header::Header;
use super::host_use::{self, HostUse};
use super::inflate::Inflater;
use super::mapping::{self, Kind, Mapping};
use super::problem::Limit;
use super::refcount::RefcountRegions;
use super::spool::Spool;
use crate::extent::{Extent, GuestOffset};
use crate::{Error, Result};

/// How far the reading of the tables has come.
#[derive(Debug)]
enum Tables {
    /// The L1 table's bytes gathered so far.
    L1(Vec<u8>),
    /// The L1 table is read; `unread` (at least 1) of the L2 tables it names are not.
    L2 { unread: u64 },
    /// Every table is read: no mapping can appear any more.
    Read,
}

/// A range waiting for its bytes, with what has been gathered so far.
#[derive(Debug)]
struct Pending {
    mapping: Mapping,
    gathered: Vec<u8>,
}

/// Work found while serving one segment, done once the segment is decided.
enum Completed {
    /// The L2 tables the L1 table names.
    L2Tables(Vec<Mapping>),
    Whole(Mapping, Bytes),
}

/// The decoder once the header is known. See the module documentation.
#[derive(Debug)]
pub(super) struct Clusters {
    header: Header,
    stream_len: u64,
    limits: Limits,
    pass: u32,
    /// Bytes below this have been served or spooled; mappings below it are late.
    cursor: u64,
    refcounts: RefcountRegions,
    tables: Tables,
    /// The host bytes the L2 entries read so far were given.
    host_use: HostUse,
    pending: BTreeMap<(u64, u64), Pending>,
    next_seq: u64,
    gathering: u64,
    missed: Vec<Mapping>,
    spool: Spool,
    /// The spool outgrew its cap in this pass: unclaimed bytes are dropped.
    spool_full: bool,
    salvage: Option<Inflater>,
}

impl Clusters {
    pub fn new(header: Header, stream_len: u64, limits: Limits) -> Self {
        let tables = if header.l1_entries == 0 {
            Tables::Read
        } else {
            Tables::L1(Vec::with_capacity(idx(header.l1_entries * 8)))
        };
        Self {
            refcounts: RefcountRegions::new(&header, stream_len),
            host_use: HostUse::new(header.cluster_bits, host_use::MAX_BYTES),
            header,
            stream_len,
            limits,
            pass: 1,
            cursor: 0,
            tables,
            pending: BTreeMap::new(),
            next_seq: 0,
            gathering: 0,
            missed: Vec::new(),
            spool: Spool::default(),
            spool_full: false,
            salvage: None,
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn pass(&self) -> u32 {
        self.pass
    }

    pub fn spool_peak(&self) -> u64 {
        self.spool.peak()
    }

    /// Serves `chunk`, which starts at byte `chunk_start` of the image.
    pub fn serve(&mut self, chunk: &Bytes, chunk_start: u64, out: &mut Vec<Extent>) -> Result<()> {
        let cs = self.header.cluster_size();
        let end = chunk_start + chunk.len() as u64;
        let mut early_claims = Vec::new();
        let mut s = chunk_start;
        while s < end {
            let e = end.min((s / cs + 1) * cs);
            self.serve_segment(chunk, chunk_start, s, e, &mut early_claims, out)?;
            s = e;
        }
        Ok(())
    }

    /// Whether bytes no table claims are kept: not once every table is read.
    fn spooling(&self) -> bool {
        !self.spool_full && !matches!(self.tables, Tables::Read)
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
        let cs = self.header.cluster_size();
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

        claims.extend(self.refcounts.claim(
            s,
            e,
            &chunk[idx(s - chunk_start)..idx(e - chunk_start)],
        ));
        let l1_offset = self.header.l1_offset;
        let l1_end = l1_offset + self.header.l1_entries * 8;
        // The rest of the L1 table's last cluster is slack, never data.
        let l1_cluster_end = l1_end.next_multiple_of(cs);
        if s < l1_cluster_end && e > l1_offset {
            claims.push((s.max(l1_offset), e.min(l1_cluster_end)));
        }
        let (l1_from, l1_to) = (s.max(l1_offset), e.min(l1_end));
        if let Tables::L1(l1) = &mut self.tables
            && l1_from < l1_to
        {
            l1.extend_from_slice(&chunk[idx(l1_from - chunk_start)..idx(l1_to - chunk_start)]);
            if l1_to == l1_end {
                let l1 = std::mem::take(l1);
                completed.push(Completed::L2Tables(self.on_l1(&l1)?));
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
                    return Err(Error::LimitExceeded(Limit::Assembly {
                        limit: self.limits.assembly_bytes,
                        at: from,
                    }));
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
                Completed::L2Tables(tables) => {
                    for t in tables {
                        self.insert(t, out)?;
                    }
                }
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
        if !self.spooling() {
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
            self.spool_full = true;
        }
    }

    /// The whole L1 table has arrived: the L2 tables it names, which the tables now
    /// wait for.
    fn on_l1(&mut self, l1: &[u8]) -> Result<Vec<Mapping>> {
        let l1: Vec<u64> = l1
            .chunks_exact(8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let tables = mapping::l2_tables(&self.header, &l1, self.stream_len)?;
        match tables.len() as u64 {
            0 => self.all_tables_read(),
            unread => self.tables = Tables::L2 { unread },
        }
        Ok(tables)
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
                codec: self.header.codec,
                bytes,
                host: m.host,
            }),
            Kind::L2Table { l1_index } => {
                let mappings = mapping::parse_l2(
                    &self.header,
                    l1_index,
                    &bytes,
                    m.host,
                    self.stream_len,
                    &mut self.host_use,
                )?;
                for data in mappings {
                    self.insert(data, out)?;
                }
                // Only now: the mappings just inserted may still need spooled bytes.
                if let Tables::L2 { unread } = &mut self.tables {
                    *unread -= 1;
                    if *unread == 0 {
                        self.all_tables_read();
                    }
                }
            }
        }
        Ok(())
    }

    /// No mapping can appear any more: what is spooled now, or unclaimed later, is garbage.
    fn all_tables_read(&mut self) {
        self.tables = Tables::Read;
        self.spool.clear();
    }

    /// Files a mapping: ahead of the cursor it waits; behind it, its bytes must be spooled.
    fn insert(&mut self, m: Mapping, out: &mut Vec<Extent>) -> Result<()> {
        if self.pending.len() >= self.limits.max_pending {
            return Err(Error::LimitExceeded(Limit::Pending(
                self.limits.max_pending,
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
        if let Kind::Compressed { guest, out_len } = m.kind
            && m.end() <= self.cursor
            && prefix.len() as u64 + 512 > m.len
        {
            let codec = self.header.codec;
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
        self.missed.push(m);
        Ok(())
    }

    /// Ends a pass over the whole stream: complete, or the missed mappings wait for the
    /// next one.
    pub fn finish_pass(&mut self) -> Result<PassEnd> {
        // Every waiting range ends inside the stream, so none can be left; be safe anyway.
        let leftover: Vec<Mapping> = std::mem::take(&mut self.pending)
            .into_values()
            .map(|p| p.mapping)
            .collect();
        self.missed.extend(leftover);
        if self.missed.is_empty() {
            debug_assert!(matches!(self.tables, Tables::Read));
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
        self.cursor = 0;
        self.gathering = 0;
        self.spool.clear();
        self.spool_full = false;
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
