//! Mappings: which byte range of the image file holds what, learnt from L1 and L2 tables.
//!
//! Reading an L2 table turns each entry into zero or more mappings from a host (file)
//! range to a guest range: a plain cluster, a run of allocated subclusters (extended L2),
//! or a compressed cluster. Unallocated and zero entries need no mapping: the target
//! reads as zeros wherever nothing is written. Every range is checked against the image
//! length here, so the decoder never waits for bytes that cannot come, and each entry
//! claims its host bytes in the [`HostUse`], so no two entries are given the same.

use super::Header;
use super::host_use::HostUse;
use super::problem::{Qcow2Problem, invalid};
use crate::{Error, Result};

/// Bits 9–55 of L1 and standard L2 entries: a cluster-aligned host offset.
pub(super) const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const COMPRESSED: u64 = 1 << 62;
const ZERO_FLAG: u64 = 1;
/// Bits 1–8 and 56–61 of a standard L2 entry are reserved.
const RESERVED: u64 = 0x3f00_0000_0000_01fe;
const SECTOR: u64 = 512;

/// A host byte range and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mapping {
    /// First byte in the image file.
    pub host: u64,
    /// Length in the image file.
    pub len: u64,
    /// What the bytes are.
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Guest data, stored as is.
    Data { guest: u64 },
    /// A compressed cluster that inflates to `out_len` bytes at `guest`.
    Compressed { guest: u64, out_len: u32 },
    /// The L2 table for L1 entry `l1_index`.
    L2Table { l1_index: u64 },
}

impl Mapping {
    /// One past the last host byte.
    pub fn end(&self) -> u64 {
        self.host + self.len
    }
}

/// The L2 tables an L1 table points to, checked: aligned, inside the image, and each
/// referenced once (a shared L2 table is corruption, and would multiply the work).
pub(super) fn l2_tables(h: &Header, l1: &[u64], stream_len: u64) -> Result<Vec<Mapping>> {
    let cs = h.cluster_size();
    let mut tables = Vec::new();
    for (index, &entry) in (0u64..).zip(l1) {
        let host = entry & OFFSET_MASK;
        let at = h.l1_offset + index * 8;
        if host == 0 {
            continue;
        }
        if !host.is_multiple_of(cs) {
            return Err(invalid(at, Qcow2Problem::L2Misaligned(host)));
        }
        check_in_stream("L2 table", host, cs, stream_len)?;
        tables.push(Mapping {
            host,
            len: cs,
            kind: Kind::L2Table { l1_index: index },
        });
    }
    let mut by_host: Vec<&Mapping> = tables.iter().collect();
    by_host.sort_unstable_by_key(|m| m.host);
    if let Some(w) = by_host.windows(2).find(|w| w[0].host == w[1].host) {
        return Err(invalid(w[0].host, Qcow2Problem::L2Shared));
    }
    Ok(tables)
}

/// One L2 entry as read from its table.
struct Entry {
    /// Where the entry sits in the file, for messages.
    at: u64,
    /// The guest offset of the cluster it maps.
    guest: u64,
    /// The cluster descriptor.
    word: u64,
    /// The subcluster bitmap of an extended L2 entry.
    bitmap: Option<u64>,
}

/// The mappings of one L2 table, each entry's host bytes claimed in `used`.
/// `table_host` is where the table sits, for messages.
pub(super) fn parse_l2(
    h: &Header,
    l1_index: u64,
    table: &[u8],
    table_host: u64,
    stream_len: u64,
    used: &mut HostUse,
) -> Result<Vec<Mapping>> {
    let entry_bytes = usize::try_from(h.l2_entry_bytes()).expect("8 or 16");
    let mut out = Vec::new();
    let first_cluster = l1_index * h.l2_entries();
    for (i, raw) in (0u64..).zip(table.chunks_exact(entry_bytes)) {
        let guest = (first_cluster + i) * h.cluster_size();
        if guest >= h.virtual_size {
            break;
        }
        let word = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        let bitmap =
            (entry_bytes == 16).then(|| u64::from_be_bytes(raw[8..].try_into().expect("8 bytes")));
        let entry = Entry {
            at: table_host + i * h.l2_entry_bytes(),
            guest,
            word,
            bitmap,
        };
        entry_mappings(h, &entry, stream_len, used, &mut out)?;
    }
    Ok(out)
}

fn entry_mappings(
    h: &Header,
    entry: &Entry,
    stream_len: u64,
    used: &mut HostUse,
    out: &mut Vec<Mapping>,
) -> Result<()> {
    let &Entry {
        at,
        guest,
        word,
        bitmap,
    } = entry;
    let cs = h.cluster_size();
    let guest_len = cs.min(h.virtual_size - guest);
    if word & COMPRESSED != 0 {
        let m = compressed(h, guest, guest_len, word, stream_len)?;
        used.claim_compressed(m.host, m.end(), at)?;
        out.push(m);
        return Ok(());
    }
    let host = word & OFFSET_MASK;
    if word & RESERVED != 0 {
        return Err(invalid(at, Qcow2Problem::ReservedBits(word)));
    }
    if !host.is_multiple_of(cs) {
        return Err(invalid(at, Qcow2Problem::DataMisaligned(host)));
    }
    let Some(bitmap) = bitmap else {
        // Zero flag (v3), or unallocated: reads as zeros either way without a backing file.
        let zero = h.version >= 3 && word & ZERO_FLAG != 0;
        if host != 0 && !zero {
            check_in_stream("data cluster", host, guest_len, stream_len)?;
            used.claim_data(host, at)?;
            out.push(Mapping {
                host,
                len: guest_len,
                kind: Kind::Data { guest },
            });
        }
        return Ok(());
    };
    subcluster_mappings(h, entry, host, bitmap, stream_len, used, out)
}

/// Extended L2: bits 0–31 say which of the 32 subclusters hold data, bits 32–63 which
/// read as zeros. Runs of allocated subclusters become one mapping each.
fn subcluster_mappings(
    h: &Header,
    &Entry { at, guest, .. }: &Entry,
    host: u64,
    bitmap: u64,
    stream_len: u64,
    used: &mut HostUse,
    out: &mut Vec<Mapping>,
) -> Result<()> {
    let allocated = bitmap & 0xffff_ffff;
    let zeros = bitmap >> 32;
    if allocated & zeros != 0 {
        return Err(invalid(at + 8, Qcow2Problem::SubclustersAllocatedAndZero));
    }
    if allocated != 0 && host == 0 {
        return Err(invalid(at, Qcow2Problem::SubclustersWithoutCluster));
    }
    if allocated != 0 {
        used.claim_data(host, at)?;
    }
    let sc = h.cluster_size() / 32;
    let mut bit = 0u64;
    while bit < 32 {
        if allocated & (1 << bit) == 0 {
            bit += 1;
            continue;
        }
        let run = (allocated >> bit).trailing_ones();
        let start = guest + bit * sc;
        let run_end = (start + u64::from(run) * sc).min(h.virtual_size);
        if start < run_end {
            let host_start = host + bit * sc;
            check_in_stream("data subcluster", host_start, run_end - start, stream_len)?;
            out.push(Mapping {
                host: host_start,
                len: run_end - start,
                kind: Kind::Data { guest: start },
            });
        }
        bit += u64::from(run);
    }
    Ok(())
}

/// A compressed descriptor: with `x = 62 - (cluster_bits - 8)`, bits 0..x hold the
/// byte offset and bits x..62 the number of 512-byte sectors after the first. The
/// length is therefore only known to sector precision and may overlap the next
/// compressed cluster; it is cut at the end of the image.
fn compressed(
    h: &Header,
    guest: u64,
    guest_len: u64,
    word: u64,
    stream_len: u64,
) -> Result<Mapping> {
    let x = 62 - (h.cluster_bits - 8);
    let host = word & ((1 << x) - 1);
    let extra_sectors = (word >> x) & ((1 << (h.cluster_bits - 8)) - 1);
    let len = (extra_sectors + 1) * SECTOR - (host % SECTOR);
    if host == 0 || host >= stream_len {
        return Err(Error::Qcow2PastEnd {
            what: "compressed cluster",
            offset: host,
            len,
            stream_len,
        });
    }
    Ok(Mapping {
        host,
        len: len.min(stream_len - host),
        kind: Kind::Compressed {
            guest,
            out_len: u32::try_from(guest_len).expect("clusters are at most 2 MiB"),
        },
    })
}

fn check_in_stream(what: &'static str, host: u64, len: u64, stream_len: u64) -> Result<()> {
    if host.checked_add(len).is_none_or(|end| end > stream_len) {
        return Err(Error::Qcow2PastEnd {
            what,
            offset: host,
            len,
            stream_len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qcow2::Codec;
    use crate::qcow2::host_use::MAX_BYTES;

    fn header(cluster_bits: u32, virtual_size: u64, extended_l2: bool) -> Header {
        Header {
            version: 3,
            cluster_bits,
            virtual_size,
            l1_offset: 3 << cluster_bits,
            l1_entries: 1,
            codec: Codec::Deflate,
            extended_l2,
            dirty: false,
            refcount_table_offset: 1 << cluster_bits,
            refcount_table_clusters: 1,
        }
    }

    fn table(entries: &[u64]) -> Vec<u8> {
        entries.iter().flat_map(|e| e.to_be_bytes()).collect()
    }

    /// Parses `table` as the L2 table of L1 entry 0, at 0x40000, with nothing claimed yet.
    fn parse(h: &Header, table: &[u8], stream_len: u64) -> Result<Vec<Mapping>> {
        let mut used = HostUse::new(h.cluster_bits, MAX_BYTES);
        parse_l2(h, 0, table, 0x40000, stream_len, &mut used)
    }

    const LEN: u64 = 1 << 30;

    #[test]
    fn plain_zero_and_unallocated_entries() {
        let h = header(16, 4 << 16, false);
        let t = table(&[0x50000 | 1 << 63, 0, 0x60000 | ZERO_FLAG, 0x70000]);
        let m = parse(&h, &t, LEN).unwrap();
        assert_eq!(
            m,
            vec![
                Mapping {
                    host: 0x50000,
                    len: 0x10000,
                    kind: Kind::Data { guest: 0 }
                },
                Mapping {
                    host: 0x70000,
                    len: 0x10000,
                    kind: Kind::Data { guest: 0x30000 }
                },
            ]
        );
    }

    #[test]
    fn the_last_cluster_is_cut_at_the_virtual_size() {
        let h = header(16, 0x10000 + 1000, false);
        let m = parse(&h, &table(&[0x50000, 0x60000, 0x70000]), LEN).unwrap();
        assert_eq!(m.len(), 2, "entries past the virtual size are ignored");
        assert_eq!(m[1].len, 1000);
    }

    #[test]
    fn compressed_descriptor_with_64k_clusters() {
        let h = header(16, 1 << 20, false);
        // x = 54: offset 0x12345 (unaligned), 3 additional sectors.
        let word = COMPRESSED | (3 << 54) | 0x12345;
        let m = parse(&h, &table(&[word]), LEN).unwrap();
        assert_eq!(m[0].host, 0x12345);
        assert_eq!(m[0].len, 4 * 512 - 0x145);
        assert_eq!(
            m[0].kind,
            Kind::Compressed {
                guest: 0,
                out_len: 0x10000
            }
        );
    }

    #[test]
    fn compressed_descriptor_with_2m_clusters_and_cut_at_the_end() {
        let h = header(21, 4 << 21, false);
        // x = 49: 13-bit sector count.
        let word = COMPRESSED | (0x1fff << 49) | 0x200;
        let m = parse(&h, &table(&[0, word]), 0x10000).unwrap();
        assert_eq!(m[0].host, 0x200);
        assert_eq!(
            m[0].len,
            0x10000 - 0x200,
            "length is cut at the end of the image"
        );
        assert_eq!(
            m[0].kind,
            Kind::Compressed {
                guest: 2 << 20,
                out_len: 2 << 20
            }
        );
    }

    #[test]
    fn subcluster_runs_become_mappings() {
        let h = header(16, 1 << 20, true);
        // Subclusters 0-1 and 4 allocated, 2 reads as zero; 2 KiB each.
        let bitmap = 0b1_0011 | (0b100 << 32);
        let m = parse(&h, &table(&[0x50000, bitmap]), LEN).unwrap();
        assert_eq!(
            m,
            vec![
                Mapping {
                    host: 0x50000,
                    len: 0x1000,
                    kind: Kind::Data { guest: 0 }
                },
                Mapping {
                    host: 0x52000,
                    len: 0x800,
                    kind: Kind::Data { guest: 0x2000 }
                },
            ]
        );
    }

    #[test]
    fn refuses_inconsistent_entries() {
        let h = header(16, 1 << 20, false);
        let err = |entries: &[u64], len| parse(&h, &table(entries), len).unwrap_err().to_string();
        assert!(err(&[0x58000], LEN).contains("not cluster aligned"));
        assert!(err(&[0x50000 | 0x4], LEN).contains("reserved"));
        assert!(err(&[0x50000 | 1 << 56], LEN).contains("reserved"));
        assert!(err(&[0x50000 | 1 << 61], LEN).contains("reserved"));
        assert!(err(&[0x50000], 0x58000).contains("past its end"));
        assert!(err(&[COMPRESSED | 0x60000], 0x58000).contains("past its end"));
        let x = header(16, 1 << 20, true);
        let err = |e: &[u64]| parse(&x, &table(e), LEN).unwrap_err().to_string();
        assert!(err(&[0x50000, 1 | (1 << 32)]).contains("both allocated and zero"));
        assert!(err(&[0, 1]).contains("without a host cluster"));
    }

    #[test]
    fn entries_sharing_host_bytes_are_refused() {
        let h = header(16, 1 << 20, false);
        let err = parse(&h, &table(&[0x50000, 0x60000, 0x50000 | 1 << 63]), LEN)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at byte 0x40010"), "{err}");
        assert!(
            err.contains("data cluster 0x50000 is already mapped"),
            "{err}"
        );
        let word = COMPRESSED | (3 << 54) | 0x12345;
        let err = parse(&h, &table(&[word, 0, word]), LEN).unwrap_err();
        assert!(
            err.to_string().contains("0x12345 is already mapped"),
            "{err}"
        );
        // Extended L2: one entry's runs share its host cluster; another entry may not,
        // even for other subclusters.
        let x = header(16, 1 << 20, true);
        parse(&x, &table(&[0x50000, 0b101]), LEN).unwrap();
        let err = parse(&x, &table(&[0x50000, 0b1, 0x50000, 0b10]), LEN).unwrap_err();
        assert!(err.to_string().contains("at byte 0x40010"), "{err}");
    }

    #[test]
    fn claims_hold_across_tables() {
        let h = header(16, 1 << 30, false);
        let mut used = HostUse::new(h.cluster_bits, MAX_BYTES);
        parse_l2(&h, 0, &table(&[0x50000]), 0x40000, LEN, &mut used).unwrap();
        let err = parse_l2(&h, 1, &table(&[0x50000]), 0x60000, LEN, &mut used).unwrap_err();
        assert!(err.to_string().contains("at byte 0x60000"), "{err}");
    }

    #[test]
    fn l1_entries_are_checked() {
        let h = header(16, 1 << 30, false);
        assert_eq!(
            l2_tables(&h, &[0, 0x50000 | 1 << 63], LEN).unwrap()[0].kind,
            Kind::L2Table { l1_index: 1 }
        );
        let err = |l1: &[u64]| l2_tables(&h, l1, LEN).unwrap_err().to_string();
        assert!(err(&[0x50000, 0x50000]).contains("same L2 table"));
        assert!(err(&[0x50200]).contains("not cluster aligned"));
        assert!(err(&[LEN]).contains("past its end"));
    }
}
