//! The qcow2 stream decoder against qemu-img, the oracle.
//!
//! Each test builds an image with qemu-img / qemu-io (every layout option the decoder
//! must handle, and images edited after creation), feeds it to the decoder in chunks of
//! awkward sizes, applies the extents to a buffer and compares the buffer with what
//! `qemu-img convert -O raw` makes of the same image.

// Test arithmetic on small, known images: truncation cannot happen here.
#![allow(clippy::cast_possible_truncation)]

use bootsource_importer::qcow2::{Decoder, Inflater, Limits, PassEnd};
use bootsource_importer::{Extent, Result};
use bytes::Bytes;

mod common;
use common::image::{Image, run};

const MIB: u64 = 1 << 20;

/// Blocks of the source disk: one 64 KiB cluster each by default.
const BLOCK: usize = 64 << 10;

/// A qcow2 image made by `qemu-img convert` of a fresh source disk with `options`.
fn converted(size: u64, options: &[&str]) -> Image {
    Image::converted(size, BLOCK, "qcow2", options)
}

struct Decoded {
    disk: Vec<u8>,
    passes: u32,
    spool_peak: u64,
}

/// Feeds `image` in chunks whose sizes cycle through `chunk_sizes`.
fn decode(image: &[u8], limits: Limits, chunk_sizes: &[usize]) -> Result<Decoded> {
    let image = Bytes::copy_from_slice(image);
    let mut decoder = Decoder::new(image.len() as u64, limits);
    let mut inflater = Inflater::new().unwrap();
    let mut disk: Option<Vec<u8>> = None;
    let mut extents = Vec::new();
    loop {
        let mut at = 0;
        let mut sizes = chunk_sizes.iter().cycle();
        while at < image.len() {
            let end = (at + sizes.next().unwrap()).min(image.len());
            decoder.feed(&image.slice(at..end), &mut extents)?;
            at = end;
            let disk = disk
                .get_or_insert_with(|| vec![0; decoder.header().unwrap().virtual_size as usize]);
            for extent in extents.drain(..) {
                apply(disk, &mut inflater, extent);
            }
        }
        if decoder.finish_pass()? == PassEnd::Complete {
            return Ok(Decoded {
                disk: disk.unwrap_or_default(),
                passes: decoder.pass(),
                spool_peak: decoder.spool_peak(),
            });
        }
    }
}

fn apply(disk: &mut [u8], inflater: &mut Inflater, extent: Extent) {
    let at = extent.offset().0 as usize;
    let len = extent.guest_len() as usize;
    assert!(
        at + len <= disk.len(),
        "extent {at:#x}+{len:#x} past the disk"
    );
    match extent {
        Extent::Data { bytes, .. } => disk[at..at + len].copy_from_slice(&bytes),
        Extent::Compressed { codec, bytes, .. } => {
            inflater
                .inflate(codec, &bytes, &mut disk[at..at + len])
                .unwrap();
        }
    }
}

const AWKWARD: &[usize] = &[1 << 20, 4099, 77_777, 512, 131_072, 3];

fn assert_round_trip(image: &Image, limits: Limits) -> Decoded {
    let bytes = std::fs::read(&image.file).unwrap();
    let expected = image.oracle();
    let mut last = None;
    for sizes in [&[1 << 20][..], AWKWARD] {
        let decoded = decode(&bytes, limits, sizes).unwrap();
        assert_eq!(decoded.disk.len(), expected.len(), "virtual size");
        if let Some(i) = decoded.disk.iter().zip(&expected).position(|(a, b)| a != b) {
            panic!("first difference at guest byte {i:#x} with chunk sizes {sizes:?}");
        }
        last = Some(decoded);
    }
    last.unwrap()
}

fn one_pass(options: &[&str]) {
    let image = converted(24 * MIB + 4096, options);
    let d = assert_round_trip(&image, Limits::default());
    assert_eq!(d.passes, 1, "{options:?}");
    // Only compressed clusters placed ahead of their table are kept (a few KiB).
    assert!(
        d.spool_peak <= 256 << 10,
        "{options:?}: spooled {}",
        d.spool_peak
    );
}

#[test]
fn default_layout() {
    one_pass(&[]);
}

#[test]
fn deflate_compressed() {
    one_pass(&["-c"]);
}

#[test]
fn compressed_clusters_placed_before_their_table() {
    // Small clusters make many L2 tables; qemu's compressed-byte allocator then puts
    // some compressed clusters in the unused tail of an older cluster, before the L2
    // table that maps them, sharing a sector with a cluster mapped earlier.
    one_pass(&["-c", "-o", "cluster_size=4096"]);
    one_pass(&["-c", "-o", "cluster_size=16384,compression_type=zstd"]);
}

#[test]
fn zstd_compressed() {
    one_pass(&["-c", "-o", "compression_type=zstd"]);
}

#[test]
fn tiny_clusters() {
    one_pass(&["-o", "cluster_size=512"]);
}

#[test]
fn large_clusters_plain_and_compressed() {
    one_pass(&["-o", "cluster_size=2M"]);
    one_pass(&["-c", "-o", "cluster_size=2M"]);
}

#[test]
fn extended_l2() {
    one_pass(&["-o", "extended_l2=on"]);
    one_pass(&["-o", "extended_l2=on,cluster_size=128k"]);
}

#[test]
fn preallocated_metadata() {
    one_pass(&["-o", "preallocation=metadata"]);
}

#[test]
fn version_2() {
    one_pass(&["-o", "compat=0.10"]);
    one_pass(&["-c", "-o", "compat=0.10"]);
}

#[test]
fn out_of_order_writes() {
    one_pass(&["-W"]);
}

#[test]
fn zero_flag_and_partial_subclusters() {
    let image = converted(16 * MIB, &["-o", "extended_l2=on"]);
    image.io(&[
        "write -z 1M 1M",
        "write -P 0x77 5M 3000",
        "write -z -u 8M 64k",
        "write -P 0x11 9M 2k",
    ]);
    assert_eq!(assert_round_trip(&image, Limits::default()).passes, 1);
    let plain = converted(16 * MIB, &[]);
    plain.io(&["write -z 1M 1M", "write -z -u 3M 128k"]);
    assert_eq!(assert_round_trip(&plain, Limits::default()).passes, 1);
}

#[test]
fn resized_image_has_its_l1_at_the_end() {
    // Any growth of the L1 table allocates a new one at the end of the file; with
    // 4 KiB clusters an L1 entry covers 2 MiB, so 16 MiB -> 64 MiB grows it.
    let image = converted(16 * MIB, &["-o", "cluster_size=4096"]);
    run("qemu-img", &["resize", image.path(), "64M"]);
    let small_spool = Limits {
        spool_bytes: MIB,
        ..Limits::default()
    };
    let d = assert_round_trip(&image, small_spool);
    assert_eq!(
        d.passes, 2,
        "pass 1 learns the L1 at the end, pass 2 does the rest"
    );
    // With room to spool the whole image, one pass suffices.
    assert_eq!(assert_round_trip(&image, Limits::default()).passes, 1);
}

#[test]
fn internal_snapshot_moves_l2_tables_to_the_end() {
    let image = converted(16 * MIB, &[]);
    run("qemu-img", &["snapshot", "-c", "before", image.path()]);
    image.io(&["write -P 0xcd 1M 64k", "write -P 0xce 9M 64k"]);
    let small_spool = Limits {
        spool_bytes: 256 << 10,
        ..Limits::default()
    };
    assert_eq!(assert_round_trip(&image, small_spool).passes, 2);
}

#[test]
fn freed_clusters_reused_before_their_table() {
    // 4 KiB clusters: an L2 table maps 2 MiB, so a 24 MiB disk has a dozen of them
    // spread through the file. Discarding the start frees clusters before them, and
    // a later write into a range mapped by an existing table reuses them.
    let image = converted(24 * MIB, &["-o", "cluster_size=4096"]);
    image.io(&["discard 0 6M", "write -P 0xab 20M 2M"]);
    let small_spool = Limits {
        spool_bytes: 256 << 10,
        ..Limits::default()
    };
    assert!(assert_round_trip(&image, small_spool).passes >= 2);
    assert_eq!(assert_round_trip(&image, Limits::default()).passes, 1);
}

#[test]
fn compressed_image_rewritten_after_creation() {
    let image = converted(24 * MIB, &["-c"]);
    image.io(&["write -P 0x42 2M 3M", "write -P 0x43 20M 1M"]);
    assert_eq!(assert_round_trip(&image, Limits::default()).passes, 1);
}

/// Images edited the ways qemu edits them: clusters freed and reused, compressed
/// writes into an existing image, snapshots taken and reverted to. Snapshots share
/// clusters with the active tables, never two active entries one cluster: none of
/// these may be taken for a write bomb.
#[test]
fn edited_images_share_no_host_bytes() {
    let image = converted(24 * MIB, &["-c", "-o", "cluster_size=4096"]);
    // Compressed writes need unallocated clusters: the discarded range, a zero block.
    image.io(&[
        "discard 0 6M",
        "write -P 0xab 1M 3M",
        "write -c -P 0xac 5M 64k",
        "write -c -P 0xad 8256k 64k",
    ]);
    assert_round_trip(&image, Limits::default());
    let image = converted(16 * MIB, &["-c"]);
    run("qemu-img", &["snapshot", "-c", "one", image.path()]);
    image.io(&["write -P 0x61 1M 1M", "write -c -P 0x62 4M 64k"]);
    run("qemu-img", &["snapshot", "-c", "two", image.path()]);
    image.io(&["discard 0 2M", "write -P 0x63 6M 1M"]);
    run("qemu-img", &["snapshot", "-a", "one", image.path()]);
    image.io(&["write -P 0x64 9M 64k", "write -c -P 0x65 10496k 64k"]);
    assert_round_trip(&image, Limits::default());
}

#[test]
fn empty_disk() {
    let image = converted(0, &[]);
    let d = assert_round_trip(&image, Limits::default());
    assert!(d.disk.is_empty());
}

#[test]
fn truncated_image_is_an_error_not_zeros() {
    let image = converted(8 * MIB, &[]);
    let bytes = std::fs::read(&image.file).unwrap();
    for cut in [50, 0x30000 + 4, bytes.len() / 2, bytes.len() - 1] {
        let err = decode(&bytes[..cut], Limits::default(), &[1 << 20]).err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("truncated"), "cut at {cut}: {text:?}");
    }
}

// ---- write bombs: L2 entries sharing host bytes ----
//
// Each image is a valid qemu-img conversion whose first L2 table is then rewritten so
// that every entry repeats one allocated entry: a file of a few MiB that would write the
// same cluster hundreds of times. In a valid image each host cluster backs at most one
// guest cluster, so the decoder must refuse — naming the offsets — having written no
// more than the file holds.

/// Where L1 entry 0's L2 table sits in a qcow2 file.
fn first_l2_table(image: &[u8]) -> usize {
    let l1 = be64(image, 40) as usize;
    let table = be64(image, l1) & OFFSET_MASK;
    assert_ne!(table, 0, "L1 entry 0 is unallocated");
    table as usize
}

fn be64(image: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(image[at..at + 8].try_into().unwrap())
}

/// Rewrites every entry of the first L2 table that maps a guest cluster of the disk as a
/// copy of the first entry whose descriptor `allocated` accepts; that descriptor.
fn repeat_one_l2_entry(image: &mut [u8], allocated: impl Fn(u64) -> bool) -> u64 {
    let cluster_bits = u32::from_be_bytes(image[20..24].try_into().unwrap());
    let extended = be64(image, 72) & (1 << 4) != 0;
    let entry_len = if extended { 16 } else { 8 };
    let virtual_size = be64(image, 24);
    let entries = ((1usize << cluster_bits) / entry_len)
        .min(virtual_size.div_ceil(1 << cluster_bits) as usize);
    let table = first_l2_table(image);
    let first = (0..entries)
        .map(|i| table + i * entry_len)
        .find(|&at| allocated(be64(image, at)))
        .expect("an allocated L2 entry");
    let entry = image[first..first + entry_len].to_vec();
    for i in 0..entries {
        let at = table + i * entry_len;
        image[at..at + entry_len].copy_from_slice(&entry);
    }
    be64(&entry, 0)
}

/// Decodes a hostile image that must be refused; the error and the guest bytes the
/// decoder emitted before refusing.
fn refusal(image: &[u8]) -> (bootsource_importer::Error, u64) {
    let image = Bytes::copy_from_slice(image);
    let mut decoder = Decoder::new(image.len() as u64, Limits::default());
    let mut extents = Vec::new();
    let mut emitted = 0;
    for _ in 0..bootsource_importer::qcow2::MAX_PASSES {
        for chunk in image.chunks(1 << 20) {
            let fed = decoder.feed(&image.slice_ref(chunk), &mut extents);
            emitted += extents.drain(..).map(|e| e.guest_len()).sum::<u64>();
            if let Err(e) = fed {
                return (e, emitted);
            }
        }
        match decoder.finish_pass() {
            Ok(PassEnd::Again) => {}
            Ok(PassEnd::Complete) => panic!("decoded, writing {emitted} bytes"),
            Err(e) => return (e, emitted),
        }
    }
    unreachable!("finish_pass ends after MAX_PASSES");
}

fn assert_refused_as_shared(image: &[u8], host: u64) {
    let (err, emitted) = refusal(image);
    let text = err.to_string();
    assert!(
        matches!(err, bootsource_importer::Error::Qcow2Invalid { .. }),
        "{err:?}"
    );
    assert!(text.contains(&format!("{host:#x}")), "{text}");
    assert!(
        emitted <= image.len() as u64,
        "{emitted} bytes emitted from a {}-byte file before the refusal",
        image.len()
    );
}

const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const COMPRESSED: u64 = 1 << 62;

#[test]
fn plain_clusters_sharing_one_host_cluster_are_refused() {
    let image = converted(24 * MIB, &[]);
    let mut bytes = std::fs::read(&image.file).unwrap();
    let word = repeat_one_l2_entry(&mut bytes, |e| e & OFFSET_MASK != 0 && e & COMPRESSED == 0);
    assert_refused_as_shared(&bytes, word & OFFSET_MASK);
}

#[test]
fn compressed_clusters_sharing_one_host_offset_are_refused() {
    for options in [&["-c"][..], &["-c", "-o", "compression_type=zstd"]] {
        let image = converted(24 * MIB, options);
        let mut bytes = std::fs::read(&image.file).unwrap();
        let word = repeat_one_l2_entry(&mut bytes, |e| e & COMPRESSED != 0);
        // 64 KiB clusters: the host offset is bits 0..54.
        assert_refused_as_shared(&bytes, word & ((1 << 54) - 1));
    }
}

#[test]
fn subcluster_runs_sharing_one_host_cluster_are_refused() {
    let image = converted(24 * MIB, &["-o", "extended_l2=on"]);
    let mut bytes = std::fs::read(&image.file).unwrap();
    let word = repeat_one_l2_entry(&mut bytes, |e| e & OFFSET_MASK != 0);
    assert_refused_as_shared(&bytes, word & OFFSET_MASK);
}
