//! Which host bytes the L2 tables have handed out: the guard against write bombs.
//!
//! In a valid image each host cluster of plain data backs one guest cluster of the
//! active tables (its refcount is 1: qemu never shares one between two guest offsets),
//! and compressed clusters, packed at byte granularity, share at most a boundary sector
//! with a neighbour: two never start at the same byte. A hostile image that points many
//! L2 entries at the same bytes turns a layer of a few hundred bytes into gigabytes of
//! writes. So every L2 entry claims its host bytes here when its table is read, and a
//! claim on bytes another entry holds is refused before anything is emitted for it.
//! Each L2 table is read once however many passes the image takes, so a later pass
//! never claims again what an earlier one did.
//!
//! This knows nothing of tables or passes: `mapping` makes the claims, one per entry.
//!
//! # Memory bound
//!
//! One bit per host cluster holding plain data and one per host cluster holding
//! compressed data, in 4 KiB pages allocated when first touched (a page covers 32768
//! clusters: 2 GiB of image at 64 KiB clusters), and about 32 bytes per compressed
//! cluster. Past `cap` bytes ([`MAX_BYTES`] in the decoder) the image is refused:
//! 64 MiB covers every host cluster of a 32 TiB image at 64 KiB clusters, or
//! two million compressed clusters.

use std::collections::BTreeMap;

use super::problem::{Limit, Qcow2Problem, invalid};
use crate::{Error, Result};

/// The most bytes the record may take.
pub(super) const MAX_BYTES: u64 = 64 << 20;
/// Compressed clusters may share this much with a neighbour: the sector where one ends
/// and the next begins.
const SECTOR: u64 = 512;
/// 64-bit words per page of a [`ClusterSet`]: 4 KiB.
const PAGE_WORDS: usize = 512;
const PAGE_BITS: u64 = 64 * PAGE_WORDS as u64;
/// A page and its entry in the page map.
const PAGE_COST: u64 = 8 * PAGE_WORDS as u64 + 64;
/// An entry of a `BTreeMap<u64, u32>`, nodes included: 21 to 29 bytes measured.
const COMPRESSED_COST: u64 = 32;

/// The host bytes claimed so far by the L2 entries read.
#[derive(Debug)]
pub(super) struct HostUse {
    cluster_bits: u32,
    /// Host clusters holding one entry's plain data (or subclusters).
    data: ClusterSet,
    /// Host clusters holding bytes of compressed clusters.
    packed: ClusterSet,
    /// Compressed clusters by first byte: their length in the file.
    compressed: BTreeMap<u64, u32>,
    bytes: u64,
    cap: u64,
}

impl HostUse {
    /// An empty record for an image of `2^cluster_bits`-byte clusters, of at most
    /// `cap` bytes.
    pub fn new(cluster_bits: u32, cap: u64) -> Self {
        Self {
            cluster_bits,
            data: ClusterSet::default(),
            packed: ClusterSet::default(),
            compressed: BTreeMap::new(),
            bytes: 0,
            cap,
        }
    }

    /// Claims the host cluster holding `host` for the plain data of the L2 entry at
    /// file offset `at`.
    pub fn claim_data(&mut self, host: u64, at: u64) -> Result<()> {
        let cluster = host >> self.cluster_bits;
        let start = cluster << self.cluster_bits;
        if self.data.contains(cluster) {
            return Err(invalid(at, Qcow2Problem::DataClusterShared(start)));
        }
        if self.packed.contains(cluster) {
            return Err(invalid(at, Qcow2Problem::DataClusterPacked(start)));
        }
        self.charge(self.data.page_cost(cluster), at)?;
        self.data.insert(cluster);
        Ok(())
    }

    /// Claims `host..end` for the compressed cluster of the L2 entry at file offset
    /// `at`: it may share only its first and last sectors with its neighbours.
    pub fn claim_compressed(&mut self, host: u64, end: u64, at: u64) -> Result<()> {
        if self.compressed.contains_key(&host) {
            return Err(invalid(at, Qcow2Problem::CompressedShared(host)));
        }
        if let Some((&before, &len)) = self.compressed.range(..host).next_back()
            && before + u64::from(len) > host + SECTOR
        {
            return Err(overlap(host, before, at));
        }
        if let Some((&after, _)) = self.compressed.range(host + 1..).next()
            && end > after + SECTOR
        {
            return Err(overlap(host, after, at));
        }
        let clusters = (host >> self.cluster_bits)..=((end - 1) >> self.cluster_bits);
        if let Some(cluster) = clusters.clone().find(|&c| self.data.contains(c)) {
            return Err(invalid(
                at,
                Qcow2Problem::CompressedInData {
                    host,
                    cluster: cluster << self.cluster_bits,
                },
            ));
        }
        self.charge(COMPRESSED_COST, at)?;
        let len = u32::try_from(end - host).expect("compressed clusters are at most 4 MiB");
        self.compressed.insert(host, len);
        for cluster in clusters {
            self.charge(self.packed.page_cost(cluster), at)?;
            self.packed.insert(cluster);
        }
        Ok(())
    }

    fn charge(&mut self, cost: u64, at: u64) -> Result<()> {
        if self.bytes + cost > self.cap {
            return Err(Error::LimitExceeded(Limit::HostUseRecord {
                limit: self.cap,
                at,
            }));
        }
        self.bytes += cost;
        Ok(())
    }
}

fn overlap(host: u64, other: u64, at: u64) -> Error {
    invalid(at, Qcow2Problem::CompressedOverlap { host, other })
}

/// A set of cluster numbers: a bitmap in pages allocated as first touched.
#[derive(Debug, Default)]
pub(crate) struct ClusterSet {
    pages: BTreeMap<u64, Box<[u64]>>,
}

impl ClusterSet {
    pub(crate) fn contains(&self, cluster: u64) -> bool {
        let (page, word, bit) = slot(cluster);
        self.pages
            .get(&page)
            .is_some_and(|words| words[word] & bit != 0)
    }

    /// The bytes inserting `cluster` allocates.
    pub(crate) fn page_cost(&self, cluster: u64) -> u64 {
        if self.pages.contains_key(&slot(cluster).0) {
            0
        } else {
            PAGE_COST
        }
    }

    pub(crate) fn insert(&mut self, cluster: u64) {
        let (page, word, bit) = slot(cluster);
        self.pages
            .entry(page)
            .or_insert_with(|| vec![0; PAGE_WORDS].into_boxed_slice())[word] |= bit;
    }
}

/// The page, the word in it and the bit in that word of `cluster`.
fn slot(cluster: u64) -> (u64, usize, u64) {
    let word = usize::try_from(cluster % PAGE_BITS / 64).expect("below PAGE_WORDS");
    (cluster / PAGE_BITS, word, 1 << (cluster % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 64 KiB clusters, no cap to speak of.
    fn record() -> HostUse {
        HostUse::new(16, MAX_BYTES)
    }

    fn refusal(result: Result<()>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn a_data_cluster_is_claimed_once() {
        let mut used = record();
        used.claim_data(0x50000, 0x40000).unwrap();
        used.claim_data(0x60000, 0x40008).unwrap();
        let err = refusal(used.claim_data(0x50000, 0x40010));
        assert!(err.contains("at byte 0x40010"), "{err}");
        assert!(
            err.contains("data cluster 0x50000 is already mapped"),
            "{err}"
        );
        // Far apart: another page.
        used.claim_data(1 << 40, 0x40018).unwrap();
        assert!(refusal(used.claim_data(1 << 40, 0x40020)).contains("already mapped"));
    }

    #[test]
    fn compressed_neighbours_may_share_a_boundary_sector() {
        let mut used = record();
        // qemu's packing: each starts just after the last byte of the one before, in
        // the sector where that one's recorded length ends.
        used.claim_compressed(0x10000, 0x10400, 1).unwrap();
        used.claim_compressed(0x103f0, 0x10a00, 2).unwrap();
        // Several small ones in one sector.
        used.claim_compressed(0x109f0, 0x10a00, 3).unwrap();
        used.claim_compressed(0x109f8, 0x10c00, 4).unwrap();
        // Claimed out of order, the rule is the same from both sides.
        used.claim_compressed(0x20100, 0x20400, 5).unwrap();
        used.claim_compressed(0x1ff00, 0x20200, 6).unwrap();
    }

    #[test]
    fn compressed_clusters_never_start_together_or_overlap_more() {
        let mut used = record();
        used.claim_compressed(0x10000, 0x10800, 1).unwrap();
        let err = refusal(used.claim_compressed(0x10000, 0x10200, 2));
        assert!(
            err.contains("compressed cluster at 0x10000 is already mapped by another L2 entry"),
            "{err}"
        );
        // Starts inside the other's first sectors.
        assert!(refusal(used.claim_compressed(0x10200, 0x10400, 3)).contains("overlaps"));
        // Ends more than a sector into the next one.
        let err = refusal(used.claim_compressed(0xf000, 0x10201, 4));
        assert!(err.contains("0xf000 overlaps the one at 0x10000"), "{err}");
        used.claim_compressed(0xf000, 0x10200, 5).unwrap();
    }

    #[test]
    fn compressed_and_plain_data_never_share_a_cluster() {
        let mut used = record();
        used.claim_data(0x50000, 1).unwrap();
        let err = refusal(used.claim_compressed(0x4ff00, 0x50200, 2));
        assert!(err.contains("lies in data cluster 0x50000"), "{err}");
        used.claim_compressed(0x60000, 0x60200, 3).unwrap();
        let err = refusal(used.claim_data(0x60000, 4));
        assert!(err.contains("0x60000 holds compressed clusters"), "{err}");
    }

    #[test]
    fn past_the_cap_the_image_is_refused() {
        // Room for one page and one compressed cluster, not for a second page.
        let mut used = HostUse::new(9, PAGE_COST + COMPRESSED_COST);
        used.claim_data(0, 1).unwrap();
        used.claim_data(512, 2).unwrap();
        let err = used.claim_data(PAGE_BITS * 512, 3).unwrap_err();
        assert!(
            matches!(err, Error::LimitExceeded(Limit::HostUseRecord { .. })),
            "{err}"
        );
        let mut used = HostUse::new(9, 3 * COMPRESSED_COST + PAGE_COST);
        for i in 0..3 {
            used.claim_compressed(0x1000 + i * 512, 0x1200 + i * 512, i)
                .unwrap();
        }
        let err = used.claim_compressed(0x2000, 0x2200, 4).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
    }
}
