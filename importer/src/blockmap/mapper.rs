//! The stream engine of the block-table formats: ranges served as the stream passes.
//!
//! A pure state machine, fed the image file in order. Its [`Layout`] names ranges of
//! the file as it learns them from tables (the header first); each waits in `pending`,
//! keyed by where it starts, until the stream reaches it: data goes out as zero-copy
//! slices of the chunk, tables are gathered whole and handed back to the layout, which
//! names more ranges. Bytes no range claims are spooled while some table is still
//! unread (it may yet claim them) and dropped once every table is read.
//!
//! # When one pass is not enough
//!
//! A table placed after what it maps (a VMDK grain directory at the end, a VHD BAT
//! rewritten after its blocks) finds its ranges already passed: they are served from
//! the spool. If the spool outgrew its cap they are *missed*, and the next pass, which
//! starts with every table learnt so far, serves them. Each pass learns at least one
//! more level of the layout's chain of tables, so a valid image needs at most
//! [`Layout::MAX_PASSES`]; more means the tables are inconsistent.
//!
//! # Hostile images
//!
//! Every range must lie inside the stream and no two pending ranges may share a byte:
//! two table entries naming the same block (a write bomb, or a loop of tables) are an
//! error, so each byte of the file is written out at most once per pass. Nor may any
//! range share a byte with a table named earlier, read or not (`structures`).
//!
//! # Memory bound
//!
//! `spool_bytes + 56·pending ranges + assembly_bytes + 64·tables kept` plus what the
//! layout keeps (its own documentation says): the spool cap (default 64 MiB; images written by converters
//! need none), about 56 bytes per range named but not yet passed (capped by
//! `max_pending`; consecutive blocks stored in order are one range), and tables being
//! gathered (capped by `assembly_bytes`).

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use super::range::{Claim, Range, TableKind};
use super::structures::{Structures, overlapping};
use crate::extent::{Extent, GuestOffset};
use crate::format::{DiskFormat, Subformat};
use crate::qcow2::{Limit, Limits, PassEnd, Spool};
use crate::{Error, Result};

/// A format's knowledge: which ranges its tables name.
pub(crate) trait Layout: Send + std::fmt::Debug {
    /// Its tables.
    type Table: TableKind;
    /// The format, for errors.
    const FORMAT: DiskFormat;
    /// The most passes a valid image needs: one more than its chain of tables is deep.
    const MAX_PASSES: u32;

    /// The ranges known before any byte is read (the header, at least), for a file of
    /// `stream_len` bytes.
    fn start(&mut self, stream_len: u64) -> Result<Vec<Range<Self::Table>>>;

    /// The table `kind` at `host` has arrived whole: the ranges it names go to
    /// `ranges`, anything it decodes itself (compressed grains) to `out`.
    fn table(
        &mut self,
        kind: Self::Table,
        host: u64,
        bytes: Bytes,
        ranges: &mut Vec<Range<Self::Table>>,
        out: &mut Vec<Extent>,
    ) -> Result<()>;

    /// The disk's virtual size, once known.
    fn virtual_size(&self) -> Option<u64>;

    /// The variant of the format, once known.
    fn subformat(&self) -> Option<Subformat>;
}

/// A range waiting for its bytes, with a table's bytes gathered so far.
#[derive(Debug)]
struct Pending<T> {
    range: Range<T>,
    gathered: Vec<u8>,
}

/// Streams an image whose tables a [`Layout`] reads. See the module documentation.
#[derive(Debug)]
pub(crate) struct Mapper<L: Layout> {
    layout: L,
    stream_len: u64,
    limits: Limits,
    started: bool,
    pass: u32,
    /// Bytes of this pass passed so far: ranges below it are late.
    pos: u64,
    pending: BTreeMap<u64, Pending<L::Table>>,
    /// Every table named, read or not: nothing else may claim its bytes.
    structures: Structures,
    /// Tables pending or missed: while any is, unclaimed bytes may still be claimed.
    tables_unread: u64,
    gathering: u64,
    missed: Vec<Range<L::Table>>,
    spool: Spool,
    spool_full: bool,
}

impl<L: Layout> Mapper<L> {
    /// A mapper for a file of `stream_len` bytes laid out as `layout` says.
    pub fn new(layout: L, stream_len: u64, limits: Limits) -> Self {
        Self {
            layout,
            stream_len,
            limits,
            started: false,
            pass: 1,
            pos: 0,
            pending: BTreeMap::new(),
            structures: Structures::default(),
            tables_unread: 0,
            gathering: 0,
            missed: Vec::new(),
            spool: Spool::default(),
            spool_full: false,
        }
    }

    /// The layout, for what it has learnt.
    pub fn layout(&self) -> &L {
        &self.layout
    }

    /// The pass being fed, from 1.
    pub fn pass(&self) -> u32 {
        self.pass
    }

    /// The most bytes the spool held at once.
    pub fn spool_peak(&self) -> u64 {
        self.spool.peak()
    }

    fn ensure_started(&mut self) -> Result<()> {
        if !self.started {
            self.started = true;
            let ranges = self.layout.start(self.stream_len)?;
            let mut out = Vec::new();
            self.insert_all(ranges, &mut out)?;
            debug_assert!(out.is_empty(), "nothing is late before the first byte");
        }
        Ok(())
    }

    /// Feeds the next bytes of the file; appends the extents they complete to `out`.
    pub fn feed(&mut self, chunk: &Bytes, out: &mut Vec<Extent>) -> Result<()> {
        self.ensure_started()?;
        let start = self.pos;
        let end = start + chunk.len() as u64;
        if end > self.stream_len {
            return Err(Error::Internal(format!(
                "{} stream longer than its {} bytes",
                L::FORMAT,
                self.stream_len
            )));
        }
        let mut at = start;
        while at < end {
            at = match self.next_range(at) {
                Some((host, _)) if host <= at => self.serve(chunk, start, at, end, out)?,
                Some((host, _)) => self.unclaimed(chunk, start, at, host.min(end)),
                None => self.unclaimed(chunk, start, at, end),
            };
            self.pos = at;
        }
        Ok(())
    }

    /// The pending range covering `at`, else the next one after it: (host, end).
    fn next_range(&self, at: u64) -> Option<(u64, u64)> {
        let covering = self
            .pending
            .range(..=at)
            .next_back()
            .filter(|(_, p)| p.range.end() > at);
        covering
            .or_else(|| {
                self.pending
                    .range((Bound::Excluded(at), Bound::Unbounded))
                    .next()
            })
            .map(|(&host, p)| (host, p.range.end()))
    }

    /// Serves the pending range covering `at` up to `end` at most; returns where it stopped.
    fn serve(
        &mut self,
        chunk: &Bytes,
        chunk_start: u64,
        at: u64,
        end: u64,
        out: &mut Vec<Extent>,
    ) -> Result<u64> {
        let (host, _) = self.next_range(at).expect("a range covers `at`");
        let mut p = self.pending.remove(&host).expect("listed");
        let to = p.range.end().min(end);
        let slice = || chunk.slice(idx(at - chunk_start)..idx(to - chunk_start));
        match p.range.claim {
            Claim::Data(GuestOffset(guest)) => out.push(Extent::Data {
                offset: GuestOffset(guest + (at - p.range.host)),
                bytes: slice(),
            }),
            Claim::Skip => {}
            Claim::Table(kind) => {
                let whole = p.gathered.is_empty() && at == p.range.host && to == p.range.end();
                let bytes = if whole {
                    slice()
                } else {
                    self.gather(
                        &mut p.gathered,
                        &chunk[idx(at - chunk_start)..idx(to - chunk_start)],
                    )?;
                    if to < p.range.end() {
                        self.pending.insert(host, p);
                        return Ok(to);
                    }
                    self.gathering -= p.gathered.len() as u64;
                    Bytes::from(p.gathered)
                };
                self.tables_unread -= 1;
                self.pos = to;
                self.on_table(kind, p.range.host, bytes, out)?;
                return Ok(to);
            }
        }
        if to < p.range.end() {
            self.pending.insert(
                to,
                Pending {
                    range: p.range.from(to),
                    gathered: Vec::new(),
                },
            );
        }
        Ok(to)
    }

    fn gather(&mut self, gathered: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
        self.gathering += bytes.len() as u64;
        if self.gathering > self.limits.assembly_bytes {
            return Err(Error::ImageLimit {
                format: L::FORMAT,
                limit: Limit::Assembly {
                    limit: self.limits.assembly_bytes,
                    at: self.pos,
                },
            });
        }
        gathered.extend_from_slice(bytes);
        Ok(())
    }

    /// Bytes `from..to` no range claims: kept while a table may still claim them.
    fn unclaimed(&mut self, chunk: &Bytes, chunk_start: u64, from: u64, to: u64) -> u64 {
        if self.tables_unread > 0 && !self.spool_full {
            self.spool
                .push(from, &chunk[idx(from - chunk_start)..idx(to - chunk_start)]);
            if self.spool.len() > self.limits.spool_bytes {
                tracing::debug!(pass = self.pass, at = to, format = %L::FORMAT, "spool full; the image will be read again");
                self.spool.clear();
                self.spool_full = true;
            }
        }
        to
    }

    /// A table is whole: the layout reads it, and every table it makes whole in turn.
    fn on_table(
        &mut self,
        kind: L::Table,
        host: u64,
        bytes: Bytes,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        let mut ranges = Vec::new();
        self.layout.table(kind, host, bytes, &mut ranges, out)?;
        self.insert_all(ranges, out)?;
        if self.tables_unread == 0 {
            self.spool.clear(); // nothing can claim those bytes any more
        }
        Ok(())
    }

    fn insert_all(&mut self, ranges: Vec<Range<L::Table>>, out: &mut Vec<Extent>) -> Result<()> {
        let mut late_tables = Vec::new();
        for range in ranges {
            self.insert(range, out, &mut late_tables)?;
        }
        for (kind, host, bytes) in late_tables {
            self.tables_unread -= 1;
            self.on_table(kind, host, bytes, out)?;
        }
        Ok(())
    }

    /// Files a range: ahead of the stream it waits; behind it, its bytes come from the
    /// spool, or the next pass.
    fn insert(
        &mut self,
        range: Range<L::Table>,
        out: &mut Vec<Extent>,
        late_tables: &mut Vec<(L::Table, u64, Bytes)>,
    ) -> Result<()> {
        if range.len == 0 {
            return Ok(());
        }
        if range.end() > self.stream_len {
            return Err(Error::ImagePastEnd {
                format: L::FORMAT,
                what: range.what(),
                offset: range.host,
                len: range.len,
                stream_len: self.stream_len,
            });
        }
        if let Err((other, other_host)) = self.structures.claim(&range) {
            return Err(super::invalid(
                L::FORMAT,
                range.host,
                super::ImageProblem::Overlap { other, other_host },
            ));
        }
        if range.host >= self.pos {
            return self.wait(range, Vec::new());
        }
        let passed_end = range.end().min(self.pos);
        let prefix = self.spool.copy_prefix(range.host, passed_end);
        if (prefix.len() as u64) < passed_end - range.host {
            return self.miss(range);
        }
        self.spool.remove(range.host, passed_end);
        match range.claim {
            Claim::Data(offset) => out.push(Extent::Data {
                offset,
                bytes: Bytes::from(prefix),
            }),
            Claim::Skip => {}
            Claim::Table(kind) if passed_end == range.end() => {
                // Unread until read: the spool must outlive it.
                self.tables_unread += 1;
                late_tables.push((kind, range.host, Bytes::from(prefix)));
                return Ok(());
            }
            Claim::Table(_) => {
                self.gathering += prefix.len() as u64;
                return self.wait(range, prefix);
            }
        }
        if range.end() > self.pos {
            self.wait(range.from(self.pos), Vec::new())?;
        }
        Ok(())
    }

    /// Puts a range in `pending`, refusing one that shares bytes with another.
    fn wait(&mut self, range: Range<L::Table>, gathered: Vec<u8>) -> Result<()> {
        if let Some((&other_host, p)) = overlapping(&self.pending, &range, |p| p.range.end()) {
            return Err(super::invalid(
                L::FORMAT,
                range.host,
                super::ImageProblem::Overlap {
                    other: p.range.what(),
                    other_host,
                },
            ));
        }
        self.count(&range)?;
        self.pending.insert(range.host, Pending { range, gathered });
        Ok(())
    }

    fn miss(&mut self, range: Range<L::Table>) -> Result<()> {
        self.count(&range)?;
        self.missed.push(range);
        Ok(())
    }

    /// Counts a range about to wait (pending or missed), within `max_pending`.
    fn count(&mut self, range: &Range<L::Table>) -> Result<()> {
        if self.pending.len() + self.missed.len() >= self.limits.max_pending {
            return Err(Error::ImageLimit {
                format: L::FORMAT,
                limit: Limit::Pending(self.limits.max_pending),
            });
        }
        if matches!(range.claim, Claim::Table(_)) {
            self.tables_unread += 1;
        }
        Ok(())
    }

    /// Ends a pass: call once all `stream_len` bytes have been fed.
    pub fn finish_pass(&mut self) -> Result<PassEnd> {
        self.ensure_started()?;
        if self.pos != self.stream_len {
            return Err(Error::ImagePastEnd {
                format: L::FORMAT,
                what: "image",
                offset: self.pos,
                len: self.stream_len - self.pos,
                stream_len: self.pos,
            });
        }
        // Every range ends inside the stream, so none can be left; be safe anyway.
        let left: Vec<_> = std::mem::take(&mut self.pending)
            .into_values()
            .map(|p| p.range)
            .collect();
        self.missed.extend(left);
        if self.missed.is_empty() {
            return Ok(PassEnd::Complete);
        }
        if self.pass >= L::MAX_PASSES {
            return Err(Error::ImageTooManyPasses {
                format: L::FORMAT,
                passes: self.pass,
            });
        }
        tracing::info!(
            pass = self.pass,
            late = self.missed.len(),
            format = %L::FORMAT,
            "blocks arrived before their tables; reading the image again"
        );
        self.pass += 1;
        self.pos = 0;
        self.gathering = 0;
        self.tables_unread = 0;
        self.spool.clear();
        self.spool_full = false;
        for range in std::mem::take(&mut self.missed) {
            self.wait(range, Vec::new())?;
        }
        Ok(PassEnd::Again)
    }
}

/// An in-memory index from a stream offset known to fit.
fn idx(n: u64) -> usize {
    usize::try_from(n).expect("offset within a chunk")
}
