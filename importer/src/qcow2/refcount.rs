//! Refcount metadata: the part of a qcow2 image a converter never needs.
//!
//! `qemu-img convert` puts the refcount table and its first block right after the
//! header, long before the last L2 table; without recognising them the decoder would
//! spool them (4 MiB with 2 MiB clusters) until every table is read. The table's place
//! is in the header; the blocks' places are read from the table as it streams by.

use std::collections::BTreeSet;

use super::Header;

/// Refcount tables larger than this are claimed but not read for block places.
const MAX_TABLE_BYTES: u64 = 8 << 20;

#[derive(Debug)]
pub(super) struct RefcountRegions {
    cluster_size: u64,
    table: (u64, u64),
    table_bytes: Option<Vec<u8>>,
    blocks: BTreeSet<u64>,
}

impl RefcountRegions {
    pub fn new(h: &Header, stream_len: u64) -> Self {
        let cs = h.cluster_size();
        let len = u64::from(h.refcount_table_clusters) * cs;
        let start = h.refcount_table_offset;
        let usable = start.is_multiple_of(cs)
            && start >= cs
            && start.checked_add(len).is_some_and(|end| end <= stream_len);
        let table = if usable { (start, start + len) } else { (0, 0) };
        Self {
            cluster_size: cs,
            table,
            table_bytes: (usable && len <= MAX_TABLE_BYTES).then(Vec::new),
            blocks: BTreeSet::new(),
        }
    }

    /// The part of `s..e` (inside one cluster; `bytes` are its contents) that is
    /// refcount metadata, if any.
    pub fn claim(&mut self, s: u64, e: u64, bytes: &[u8]) -> Option<(u64, u64)> {
        let (from, to) = (s.max(self.table.0), e.min(self.table.1));
        if from < to {
            self.read_table(&bytes[idx(from - s)..idx(to - s)], to == self.table.1);
            return Some((from, to));
        }
        let cluster = s - s % self.cluster_size;
        self.blocks.contains(&cluster).then_some((s, e))
    }

    fn read_table(&mut self, part: &[u8], last: bool) {
        let Some(table) = &mut self.table_bytes else {
            return;
        };
        table.extend_from_slice(part);
        if !last {
            return;
        }
        let cs = self.cluster_size;
        self.blocks = table
            .chunks_exact(8)
            .map(|e| u64::from_be_bytes(e.try_into().expect("8 bytes")) & !0x1ff)
            .filter(|&block| block != 0 && block % cs == 0)
            .collect();
        self.table_bytes = None;
    }
}

fn idx(n: u64) -> usize {
    usize::try_from(n).expect("within one cluster")
}
