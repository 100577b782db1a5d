//! Property tests of the qcow2 stream decoder with a test encoder.
//!
//! qemu-img writes a handful of layouts; the encoder here writes any: the L1 table,
//! each L2 table and each data cluster (plain, deflate-compressed, or zero-flagged)
//! placed in a random order in the file. Whatever the order, the decoder must produce
//! exactly the guest disk within its three passes. And whatever bytes a hostile image
//! holds, the decoder must return an error or a disk — never panic, never write
//! outside the disk, never allocate on the image's say-so.

// Test arithmetic on small generated images.
#![allow(clippy::cast_possible_truncation)]

use std::collections::BTreeMap;
use std::io::Write;

use bootsource_importer::qcow2::{Decoder, Inflater, Limits, PassEnd};
use bootsource_importer::{Extent, Result};
use bytes::Bytes;
use proptest::prelude::*;

/// How one guest cluster is stored.
#[derive(Debug, Clone)]
enum Stored {
    Plain(Vec<u8>),
    Deflate(Vec<u8>),
    Zero,
}

/// A generated image: its bytes and the disk it must decode to.
struct Encoded {
    file: Vec<u8>,
    disk: Vec<u8>,
}

/// Writes a v3 qcow2 of `virtual_size` with `clusters` (by guest cluster index),
/// putting the L1 table, the L2 tables and the data clusters at file positions in
/// the order `order` gives (a permutation seed).
fn encode(
    cluster_bits: u32,
    virtual_size: u64,
    clusters: &BTreeMap<u64, Stored>,
    order: &[usize],
) -> Encoded {
    let cs = 1u64 << cluster_bits;
    let l2_entries = cs / 8;
    let l1_entries = virtual_size.div_ceil(cs).div_ceil(l2_entries).max(1);
    let l1_clusters = (l1_entries * 8).div_ceil(cs);
    let tables: Vec<u64> = clusters
        .keys()
        .map(|c| c / l2_entries)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();

    // Pieces to place after the header cluster: L1, each L2, each data cluster.
    #[derive(Clone, Copy)]
    enum Piece {
        L1,
        L2(u64),
        Data(u64),
    }
    let mut pieces: Vec<Piece> = vec![Piece::L1];
    pieces.extend(tables.iter().map(|&t| Piece::L2(t)));
    pieces.extend(
        clusters
            .iter()
            .filter(|(_, s)| !matches!(s, Stored::Zero))
            .map(|(&c, _)| Piece::Data(c)),
    );
    // A deterministic shuffle driven by `order`.
    for (i, &o) in order.iter().enumerate() {
        let (a, b) = (i % pieces.len(), o % pieces.len());
        pieces.swap(a, b);
    }

    // Lay out: whole clusters for tables and plain data; compressed data packed at
    // byte granularity as qemu does (sharing sectors), each in its own run of space.
    let mut file = vec![0u8; cs as usize]; // header cluster
    let mut l1_at = 0;
    let mut l2_at = BTreeMap::new();
    let mut data_at = BTreeMap::new();
    for p in &pieces {
        // Tables and plain clusters start on a cluster boundary; compressed data need not.
        if !matches!(p, Piece::Data(c) if matches!(clusters[c], Stored::Deflate(_))) {
            file.resize(file.len().next_multiple_of(cs as usize), 0);
        }
        match *p {
            Piece::L1 => {
                l1_at = file.len() as u64;
                file.resize(file.len() + (l1_clusters * cs) as usize, 0);
            }
            Piece::L2(t) => {
                l2_at.insert(t, file.len() as u64);
                file.resize(file.len() + cs as usize, 0);
            }
            Piece::Data(c) => match &clusters[&c] {
                Stored::Plain(bytes) => {
                    data_at.insert(c, (file.len() as u64, 0));
                    file.extend_from_slice(bytes);
                    file.resize(file.len().next_multiple_of(cs as usize), 0);
                }
                Stored::Deflate(bytes) => {
                    let z = deflate(bytes);
                    // Start anywhere in a sector, like qemu's byte allocator.
                    let at = file.len() as u64 + (c * 37 % 200);
                    file.resize(at as usize, 0xee);
                    file.extend_from_slice(&z);
                    data_at.insert(c, (at, z.len() as u64));
                }
                Stored::Zero => {}
            },
        }
    }
    // Fill in L1 and L2 entries now that positions are known.
    for (&t, &at) in &l2_at {
        let l1_entry = at | 1 << 63;
        file[(l1_at + t * 8) as usize..][..8].copy_from_slice(&l1_entry.to_be_bytes());
    }
    for (&c, stored) in clusters {
        let table = l2_at[&(c / l2_entries)];
        let slot = (table + (c % l2_entries) * 8) as usize;
        let entry = match stored {
            Stored::Zero => 1, // zero flag
            Stored::Plain(_) => data_at[&c].0 | 1 << 63,
            Stored::Deflate(_) => {
                let (at, len) = data_at[&c];
                let x = 62 - (cluster_bits - 8);
                let extra_sectors = (at + len - 1) / 512 - at / 512;
                1 << 62 | extra_sectors << x | at
            }
        };
        file[slot..slot + 8].copy_from_slice(&entry.to_be_bytes());
    }
    write_header(&mut file, cluster_bits, virtual_size, l1_entries, l1_at);

    let mut disk = vec![0u8; virtual_size as usize];
    for (&c, stored) in clusters {
        let at = (c * cs) as usize;
        let len = (cs as usize).min(disk.len() - at);
        if let Stored::Plain(b) | Stored::Deflate(b) = stored {
            disk[at..at + len].copy_from_slice(&b[..len]);
        }
    }
    Encoded { file, disk }
}

fn write_header(
    file: &mut [u8],
    cluster_bits: u32,
    virtual_size: u64,
    l1_entries: u64,
    l1_at: u64,
) {
    let h = &mut file[..112];
    h[0..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    h[20..24].copy_from_slice(&cluster_bits.to_be_bytes());
    h[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    h[36..40].copy_from_slice(&(l1_entries as u32).to_be_bytes());
    h[40..48].copy_from_slice(&l1_at.to_be_bytes());
    h[96..100].copy_from_slice(&4u32.to_be_bytes());
    h[100..104].copy_from_slice(&104u32.to_be_bytes());
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The disk as extents applied sparsely: offset → bytes (last write wins).
type Sparse = BTreeMap<u64, Vec<u8>>;

/// Feeds `file` in chunks of `chunk` bytes until complete; applies extents to a sparse map
/// after checking they stay inside the virtual size.
fn decode(file: &[u8], chunk: usize, limits: Limits) -> Result<(Sparse, u64, u32)> {
    let bytes = Bytes::copy_from_slice(file);
    let mut decoder = Decoder::new(bytes.len() as u64, limits);
    let mut inflater = Inflater::new().unwrap();
    let mut disk = Sparse::new();
    let mut out = Vec::new();
    loop {
        for start in (0..bytes.len()).step_by(chunk.max(1)) {
            let end = (start + chunk).min(bytes.len());
            decoder.feed(&bytes.slice(start..end), &mut out)?;
            let size = decoder.header().map_or(0, |h| h.virtual_size);
            for e in out.drain(..) {
                let (at, len) = (e.offset().0, e.guest_len());
                assert!(
                    at + len <= size,
                    "extent {at:#x}+{len:#x} beyond the disk ({size:#x})"
                );
                let data = match e {
                    Extent::Data { bytes, .. } => bytes.to_vec(),
                    Extent::Compressed {
                        codec, bytes, len, ..
                    } => {
                        let mut cluster = vec![0; len as usize];
                        if inflater.inflate(codec, &bytes, &mut cluster).is_err() {
                            continue; // a corrupt cluster: the writer reports it
                        }
                        cluster
                    }
                };
                disk.insert(at, data);
            }
        }
        if decoder.finish_pass()? == PassEnd::Complete {
            let size = decoder.header().map_or(0, |h| h.virtual_size);
            return Ok((disk, size, decoder.pass()));
        }
    }
}

fn flatten(sparse: &Sparse, size: u64) -> Vec<u8> {
    let mut disk = vec![0u8; size as usize];
    for (&at, bytes) in sparse {
        disk[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    }
    disk
}

fn stored(cs: usize) -> impl Strategy<Value = Stored> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), cs).prop_map(Stored::Plain),
        (any::<u8>(), 1usize..64).prop_map(move |(b, period)| {
            Stored::Deflate(
                (0..cs)
                    .map(|i| b.wrapping_add((i % period) as u8))
                    .collect(),
            )
        }),
        Just(Stored::Zero),
    ]
}

/// Small images: 512 B to 4 KiB clusters (many L2 tables), up to 48 clusters.
fn image() -> impl Strategy<Value = (u32, u64, BTreeMap<u64, Stored>, Vec<usize>)> {
    (9u32..=12).prop_flat_map(|bits| {
        let cs = 1usize << bits;
        let max_clusters = 48u64 * (cs as u64 / 8); // spread over several L2 tables
        (1u64..=max_clusters).prop_flat_map(move |guest_clusters| {
            (
                Just(bits),
                // Not always a whole number of clusters.
                (0..cs as u64).prop_map(move |tail| (guest_clusters - 1) * cs as u64 + tail + 1),
                prop::collection::btree_map(0..guest_clusters, stored(cs), 0..48),
                prop::collection::vec(any::<usize>(), 0..64),
            )
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_layout_round_trips((bits, size, clusters, order) in image(), chunk in 1usize..20_000, spool in 0u64..16_384) {
        let image = encode(bits, size, &clusters, &order);
        let limits = Limits { spool_bytes: spool, ..Limits::default() };
        let (sparse, decoded_size, passes) = decode(&image.file, chunk, limits).unwrap();
        prop_assert_eq!(decoded_size, size);
        prop_assert!(passes <= 3);
        prop_assert!(flatten(&sparse, size) == image.disk, "decoded disk differs");
    }

    #[test]
    fn corrupted_images_fail_cleanly(
        (bits, size, clusters, order) in image(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<usize>()),
        chunk in 1usize..9_000,
    ) {
        let mut file = encode(bits, size, &clusters, &order).file;
        for (at, byte) in flips {
            let i = at % file.len();
            file[i] = byte;
        }
        if let Some(cut) = cut {
            file.truncate(cut % file.len());
        }
        // Limits that keep a hostile header from asking for much memory.
        let limits = Limits { spool_bytes: 1 << 20, max_pending: 1 << 16, assembly_bytes: 1 << 20 };
        // Errors are fine; panics and out-of-disk extents (asserted in decode) are not.
        let _ = decode(&file, chunk, limits);
    }
}
