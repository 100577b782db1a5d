//! Property tests of the VMDK, VHD, VHDX, VDI and OVA decoders: random disks written
//! by test encoders that shuffle the layout must decode to the disk they encode.
//!
//! qemu-img always writes tables before the blocks they map; other writers (and
//! edited files) do not. Each encoder here places tables and blocks in a random order
//! (tables after their blocks, a grain directory at the end, grains in any guest
//! order), the file is fed in random chunk sizes with a random spool limit (from none
//! at all, which forces further passes, to the default), and the result must be the
//! guest disk exactly, within the passes the format allows.

// Test arithmetic on small, known images: truncation cannot happen here.
#![allow(clippy::cast_possible_truncation)]

use std::io::Write as _;

use bootsource_importer::qcow2::Limits;
use bytes::Bytes;
use proptest::prelude::*;

mod common;

/// A guest disk: blocks, each unallocated (`None`) or filled from a seed, and a
/// virtual size (a multiple of 512) that may end inside the last block.
#[derive(Debug, Clone)]
struct Guest {
    block: usize,
    blocks: Vec<Option<u64>>,
    size: usize,
}

impl Guest {
    fn data(&self, index: usize) -> Option<Vec<u8>> {
        let mut x = self.blocks[index]? | 1;
        Some(
            (0..self.block)
                .map(|i| {
                    // Runs of zeros and text as well as noise, so zero detection matters.
                    if (i / 512 + index).is_multiple_of(3) {
                        return b"sector text "[i % 12] & (x as u8 | 0x7f);
                    }
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect(),
        )
    }

    fn expected(&self) -> Vec<u8> {
        let mut disk = vec![0u8; self.blocks.len() * self.block];
        for i in 0..self.blocks.len() {
            if let Some(data) = self.data(i) {
                disk[i * self.block..(i + 1) * self.block].copy_from_slice(&data);
            }
        }
        disk.truncate(self.size);
        disk
    }

    fn allocated(&self) -> Vec<usize> {
        (0..self.blocks.len())
            .filter(|&i| self.blocks[i].is_some())
            .collect()
    }
}

fn guest(block: usize, max_blocks: usize) -> impl Strategy<Value = Guest> {
    prop::collection::vec(prop::option::weighted(0.7, any::<u64>()), 1..=max_blocks).prop_flat_map(
        move |blocks| {
            let n = blocks.len();
            ((n - 1) * block / 512 + 1..=n * block / 512).prop_map(move |sectors| Guest {
                block,
                blocks: blocks.clone(),
                size: sectors * 512,
            })
        },
    )
}

/// Shuffles `items` with a seed.
fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    let mut x = seed | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.swap(i, (x % (i as u64 + 1)) as usize);
    }
    items
}

/// A file being laid out: pieces placed one after another from `next`, aligned.
struct File {
    bytes: Vec<u8>,
    next: usize,
}

impl File {
    fn new(start: usize) -> File {
        File {
            bytes: vec![0; start],
            next: start,
        }
    }

    fn put(&mut self, at: usize, data: &[u8]) {
        if self.bytes.len() < at + data.len() {
            self.bytes.resize(at + data.len(), 0);
        }
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }

    /// Reserves `len` bytes at the next `align`ed offset.
    fn place(&mut self, len: usize, align: usize) -> usize {
        let at = self.next.next_multiple_of(align);
        self.next = at + len;
        if self.bytes.len() < self.next {
            self.bytes.resize(self.next, 0);
        }
        at
    }
}

/// What goes in a file, to be placed in a random order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    Table(usize),
    Block(usize),
}

fn spools() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(4096), Just(1 << 20), Just(64 << 20)]
}

fn check(
    name: &str,
    file: Vec<u8>,
    guest: &Guest,
    chunk: usize,
    spool: u64,
) -> Result<(), TestCaseError> {
    let limits = Limits {
        spool_bytes: spool,
        ..Limits::default()
    };
    let decoded = common::decode(name, &Bytes::from(file), chunk, limits)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert!(decoded.passes <= 5, "{} passes", decoded.passes);
    if spool >= 64 << 20 {
        // Every image here fits the default spool: one pass, whatever the layout.
        prop_assert_eq!(decoded.passes, 1);
    }
    prop_assert!(decoded.disk == guest.expected(), "content differs");
    Ok(())
}

// ---- VHD (dynamic) ----

fn vhd_footer(size: u64) -> Vec<u8> {
    let mut f = vec![0u8; 512];
    f[..8].copy_from_slice(b"conectix");
    f[16..24].copy_from_slice(&512u64.to_be_bytes());
    f[28..32].copy_from_slice(b"qem2"); // sized by current_size
    f[48..56].copy_from_slice(&size.to_be_bytes());
    f[60..64].copy_from_slice(&3u32.to_be_bytes());
    vhd_checksum(&mut f, 64);
    f
}

fn vhd_checksum(buf: &mut [u8], at: usize) {
    let sum = buf
        .iter()
        .map(|&b| u32::from(b))
        .fold(0u32, u32::wrapping_add);
    buf[at..at + 4].copy_from_slice(&(!sum).to_be_bytes());
}

fn vhd(guest: &Guest, seed: u64) -> Vec<u8> {
    let n = guest.blocks.len();
    let mut pieces = vec![Piece::Table(0)];
    pieces.extend(guest.allocated().into_iter().map(Piece::Block));
    let mut file = File::new(1536);
    let mut bat = vec![0xffu8; n * 4];
    let mut bat_at = 0;
    for piece in shuffled(pieces, seed) {
        match piece {
            Piece::Table(_) => bat_at = file.place(n * 4, 512),
            Piece::Block(i) => {
                let at = file.place(512 + guest.block, 512);
                file.put(at, &[0xff; 512]); // the sector bitmap
                file.put(at + 512, &guest.data(i).unwrap());
                bat[i * 4..i * 4 + 4].copy_from_slice(&((at / 512) as u32).to_be_bytes());
            }
        }
    }
    file.put(bat_at, &bat);
    let mut header = vec![0u8; 1024];
    header[..8].copy_from_slice(b"cxsparse");
    header[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    header[16..24].copy_from_slice(&(bat_at as u64).to_be_bytes());
    header[28..32].copy_from_slice(&(n as u32).to_be_bytes());
    header[32..36].copy_from_slice(&(guest.block as u32).to_be_bytes());
    vhd_checksum(&mut header, 36);
    let footer = vhd_footer(guest.size as u64);
    file.put(0, &footer);
    file.put(512, &header);
    let end = file.place(512, 512);
    file.put(end, &footer);
    file.bytes
}

// ---- VDI ----

const MIB: usize = 1 << 20;

fn vdi(guest: &Guest, seed: u64, map_last: bool) -> Vec<u8> {
    let n = guest.blocks.len();
    let allocated = guest.allocated();
    let slots = shuffled((0..allocated.len()).collect(), seed);
    let mut map = vec![0xffu8; n * 4];
    let mut file = File::new(MIB);
    for (&block, &slot) in allocated.iter().zip(&slots) {
        file.put(MIB + slot * MIB, &guest.data(block).unwrap());
        map[block * 4..block * 4 + 4].copy_from_slice(&(slot as u32).to_le_bytes());
    }
    let map_at = if map_last {
        MIB + allocated.len() * MIB
    } else {
        512
    };
    file.put(map_at, &map);
    let mut h = vec![0u8; 512];
    h[..40].copy_from_slice(b"<<< Oracle VM VirtualBox Disk Image >>>\n");
    h[64..68].copy_from_slice(&0xbeda_107fu32.to_le_bytes());
    h[68..72].copy_from_slice(&0x0001_0001u32.to_le_bytes());
    h[76..80].copy_from_slice(&1u32.to_le_bytes());
    h[340..344].copy_from_slice(&(map_at as u32).to_le_bytes());
    h[344..348].copy_from_slice(&(MIB as u32).to_le_bytes());
    h[360..364].copy_from_slice(&512u32.to_le_bytes());
    h[368..376].copy_from_slice(&(guest.size as u64).to_le_bytes());
    h[376..380].copy_from_slice(&(MIB as u32).to_le_bytes());
    h[384..388].copy_from_slice(&(n as u32).to_le_bytes());
    file.put(0, &h);
    file.bytes
}

// ---- VMDK ----

const GRAIN: usize = 4096;
const GTES: usize = 8;

fn vmdk_header(guest: &Guest, flags: u32, gd_sector: u64, grain_sector: u64) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..4].copy_from_slice(b"KDMV");
    h[4..8].copy_from_slice(&3u32.to_le_bytes());
    h[8..12].copy_from_slice(&(flags | 1).to_le_bytes());
    h[12..20].copy_from_slice(&(guest.size as u64 / 512).to_le_bytes());
    h[20..28].copy_from_slice(&((GRAIN / 512) as u64).to_le_bytes());
    h[28..36].copy_from_slice(&1u64.to_le_bytes());
    h[36..44].copy_from_slice(&1u64.to_le_bytes());
    h[44..48].copy_from_slice(&(GTES as u32).to_le_bytes());
    h[56..64].copy_from_slice(&gd_sector.to_le_bytes());
    h[64..72].copy_from_slice(&grain_sector.to_le_bytes());
    h[73..77].copy_from_slice(b"\n \r\n");
    h[77..79].copy_from_slice(&1u16.to_le_bytes());
    h
}

fn vmdk_descriptor(kind: &str) -> Vec<u8> {
    let mut d = format!(
        "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"{kind}\"\nRW 8 SPARSE \"x.vmdk\"\n"
    )
    .into_bytes();
    d.resize(512, 0);
    d
}

fn vmdk_sparse(guest: &Guest, seed: u64, gd_at_end: bool) -> Vec<u8> {
    let tables = guest.blocks.len().div_ceil(GTES);
    let mut pieces: Vec<Piece> = (0..=tables).map(Piece::Table).collect(); // 0: the GD
    pieces.extend(guest.allocated().into_iter().map(Piece::Block));
    let mut file = File::new(1024);
    let (mut gd, mut gts) = (vec![0u8; tables * 4], vec![vec![0u8; GTES * 4]; tables]);
    let mut gt_at = vec![0; tables];
    let mut gd_at = 0;
    for piece in shuffled(pieces, seed) {
        match piece {
            Piece::Table(0) => gd_at = file.place(tables * 4, 512),
            Piece::Table(t) => gt_at[t - 1] = file.place(GTES * 4, 512),
            Piece::Block(i) => {
                let at = file.place(GRAIN, 512);
                file.put(at, &guest.data(i).unwrap());
                gts[i / GTES][i % GTES * 4..i % GTES * 4 + 4]
                    .copy_from_slice(&((at / 512) as u32).to_le_bytes());
            }
        }
    }
    for t in 0..tables {
        file.put(gt_at[t], &gts[t]);
        gd[t * 4..t * 4 + 4].copy_from_slice(&((gt_at[t] / 512) as u32).to_le_bytes());
    }
    file.put(gd_at, &gd);
    let gd_sector = (gd_at / 512) as u64;
    if gd_at_end {
        file.put(0, &vmdk_header(guest, 0, u64::MAX, 2));
        let end = file.place(3 * 512, 512);
        file.put(end, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]); // footer marker
        file.put(end + 512, &vmdk_header(guest, 0, gd_sector, 2));
    } else {
        file.put(0, &vmdk_header(guest, 0, gd_sector, 2));
    }
    file.put(512, &vmdk_descriptor("monolithicSparse"));
    file.bytes
}

fn vmdk_stream(guest: &Guest, seed: u64) -> Vec<u8> {
    let mut file = File::new(1024);
    file.put(0, &vmdk_header(guest, (1 << 16) | (1 << 17), u64::MAX, 2));
    file.put(512, &vmdk_descriptor("streamOptimized"));
    for i in shuffled(guest.allocated(), seed) {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&guest.data(i).unwrap()).unwrap();
        let data = z.finish().unwrap();
        let at = file.place(12 + data.len(), 512);
        file.put(at, &((i * GRAIN / 512) as u64).to_le_bytes());
        file.put(at + 8, &(data.len() as u32).to_le_bytes());
        file.put(at + 12, &data);
    }
    // A grain table marker with one sector of table, then the end of the stream.
    let gt = file.place(1024, 512);
    file.put(gt, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let eos = file.place(512, 512);
    file.put(eos, &[0; 16]);
    file.bytes
}

// ---- VHDX (dynamic) ----

/// A GUID's 16 bytes as VHDX stores them.
fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[..4].copy_from_slice(&a.to_le_bytes());
    g[4..6].copy_from_slice(&b.to_le_bytes());
    g[6..8].copy_from_slice(&c.to_le_bytes());
    g[8..].copy_from_slice(&d);
    g
}

/// Writes `crc32c(buf)` into `buf[4..8]`, computed with the field zeroed.
fn vhdx_checksum(buf: &mut [u8]) {
    buf[4..8].fill(0);
    let crc = common::crc32c(buf);
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// The metadata region: file parameters, virtual size, logical sector size.
fn vhdx_metadata(guest: &Guest) -> Vec<u8> {
    let items: [([u8; 16], Vec<u8>); 3] = [
        (
            guid(
                0xcaa1_6737,
                0xfa36,
                0x4d43,
                [0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b],
            ),
            [(MIB as u32).to_le_bytes(), 0u32.to_le_bytes()].concat(),
        ),
        (
            guid(
                0x2fa5_4224,
                0xcd1b,
                0x4876,
                [0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8],
            ),
            (guest.size as u64).to_le_bytes().to_vec(),
        ),
        (
            guid(
                0x8141_bf1d,
                0xa96f,
                0x4709,
                [0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f],
            ),
            512u32.to_le_bytes().to_vec(),
        ),
    ];
    let mut m = vec![0u8; MIB];
    m[..8].copy_from_slice(b"metadata");
    m[10..12].copy_from_slice(&(items.len() as u16).to_le_bytes());
    for (i, (id, item)) in items.iter().enumerate() {
        let (entry, at) = (32 + 32 * i, (64 << 10) + 64 * i);
        m[entry..entry + 16].copy_from_slice(id);
        m[entry + 16..entry + 20].copy_from_slice(&(at as u32).to_le_bytes());
        m[entry + 20..entry + 24].copy_from_slice(&(item.len() as u32).to_le_bytes());
        m[entry + 24..entry + 28].copy_from_slice(&4u32.to_le_bytes()); // required
        m[at..at + item.len()].copy_from_slice(item);
    }
    m
}

/// The header region: two headers (the second current) and two region tables.
fn vhdx_header_region(file: &mut File, log_at: usize, regions: [([u8; 16], usize); 2]) {
    file.put(0, b"vhdxfile");
    for (at, sequence) in [(64 << 10, 1u64), (128 << 10, 2)] {
        let mut h = vec![0u8; 4 << 10];
        h[..4].copy_from_slice(b"head");
        h[8..16].copy_from_slice(&sequence.to_le_bytes());
        h[66..68].copy_from_slice(&1u16.to_le_bytes());
        h[68..72].copy_from_slice(&(MIB as u32).to_le_bytes());
        h[72..80].copy_from_slice(&(log_at as u64).to_le_bytes());
        vhdx_checksum(&mut h);
        file.put(at, &h);
    }
    let mut t = vec![0u8; 64 << 10];
    t[..4].copy_from_slice(b"regi");
    t[8..12].copy_from_slice(&2u32.to_le_bytes());
    for (i, (id, at)) in regions.iter().enumerate() {
        let e = 16 + 32 * i;
        t[e..e + 16].copy_from_slice(id);
        t[e + 16..e + 24].copy_from_slice(&(*at as u64).to_le_bytes());
        t[e + 24..e + 28].copy_from_slice(&(MIB as u32).to_le_bytes());
        t[e + 28..e + 32].copy_from_slice(&1u32.to_le_bytes());
    }
    vhdx_checksum(&mut t);
    file.put(192 << 10, &t);
    file.put(256 << 10, &t);
}

/// A dynamic VHDX of 1 MiB blocks: log, metadata, BAT and blocks in any order.
fn vhdx(guest: &Guest, seed: u64) -> Vec<u8> {
    let mut pieces: Vec<Piece> = (0..3).map(Piece::Table).collect();
    pieces.extend(guest.allocated().into_iter().map(Piece::Block));
    let mut file = File::new(MIB);
    let mut bat = vec![0u8; MIB];
    let mut at = [0; 3];
    for piece in shuffled(pieces, seed) {
        let here = file.place(MIB, MIB);
        match piece {
            Piece::Table(t) => at[t] = here,
            Piece::Block(i) => {
                file.put(here, &guest.data(i).unwrap());
                bat[i * 8..i * 8 + 8].copy_from_slice(&(here as u64 | 6).to_le_bytes());
            }
        }
    }
    let [log_at, metadata_at, bat_at] = at;
    file.put(metadata_at, &vhdx_metadata(guest));
    file.put(bat_at, &bat);
    let bat_id = guid(
        0x2dc2_7766,
        0xf623,
        0x4200,
        [0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08],
    );
    let metadata_id = guid(
        0x8b7c_a206,
        0x4790,
        0x4b9a,
        [0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e],
    );
    vhdx_header_region(
        &mut file,
        log_at,
        [(bat_id, bat_at), (metadata_id, metadata_at)],
    );
    file.bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn vhd_dynamic_in_any_layout(g in guest(4096, 40), seed: u64, chunk in 1usize..70_000, spool in spools()) {
        check("x.vhd", vhd(&g, seed), &g, chunk, spool)?;
    }

    #[test]
    fn vmdk_sparse_in_any_layout(
        g in guest(GRAIN, 60), seed: u64, at_end: bool, chunk in 1usize..70_000, spool in spools(),
    ) {
        check("x.vmdk", vmdk_sparse(&g, seed, at_end), &g, chunk, spool)?;
    }

    #[test]
    fn vmdk_stream_in_any_grain_order(g in guest(GRAIN, 60), seed: u64, chunk in 1usize..70_000) {
        check("x.vmdk", vmdk_stream(&g, seed), &g, chunk, 0)?;
    }
}

proptest! {
    // 1 MiB blocks: fewer, larger cases.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn vdi_in_any_layout(
        g in guest(MIB, 6), seed: u64, map_last: bool, chunk in 4096usize..300_000, spool in spools(),
    ) {
        check("x.vdi", vdi(&g, seed, map_last), &g, chunk, spool)?;
    }

    #[test]
    fn vhdx_in_any_layout(
        g in guest(MIB, 6), seed: u64, chunk in 4096usize..300_000, spool in spools(),
    ) {
        check("x.vhdx", vhdx(&g, seed), &g, chunk, spool)?;
    }
}

fn decode_err(name: &str, file: Vec<u8>) -> String {
    match common::decode(name, &Bytes::from(file), 65_536, Limits::default()) {
        Ok(_) => panic!("{name}: a hostile image decoded"),
        Err(e) => e.to_string(),
    }
}

fn sample(blocks: usize) -> Guest {
    Guest {
        block: 4096,
        blocks: (0..blocks).map(|i| Some(i as u64 + 1)).collect(),
        size: blocks * 4096,
    }
}

#[test]
fn a_grain_directory_at_the_end_takes_more_passes_without_a_spool() {
    let g = sample(20);
    let file = Bytes::from(vmdk_sparse(&g, 7, true));
    let limits = |spool_bytes| Limits {
        spool_bytes,
        ..Limits::default()
    };
    let one = common::decode("x.vmdk", &file, 4096, limits(64 << 20)).unwrap();
    assert_eq!((one.passes, one.disk == g.expected()), (1, true));
    let more = common::decode("x.vmdk", &file, 4096, limits(0)).unwrap();
    assert!(
        more.passes >= 2 && more.disk == g.expected(),
        "{} passes",
        more.passes
    );
}

/// Two BAT entries naming the same block would write its bytes twice (a write bomb
/// repeated over every entry): refused.
#[test]
fn vhd_bat_entries_sharing_a_block_are_refused() {
    let g = sample(4);
    let mut file = vhd(&g, 0);
    let bat = u64::from_be_bytes(file[528..536].try_into().unwrap()) as usize;
    let first = file[bat..bat + 4].to_vec();
    file[bat + 4..bat + 8].copy_from_slice(&first);
    let err = decode_err("x.vhd", file);
    assert!(err.contains("overlaps the data block"), "{err}");
}

#[test]
fn vdi_block_past_the_end_is_a_truncated_image() {
    let g = Guest {
        block: MIB,
        blocks: vec![Some(1), Some(2)],
        size: 2 * MIB,
    };
    let mut file = vdi(&g, 0, false);
    file[512..516].copy_from_slice(&9u32.to_le_bytes());
    let err = decode_err("x.vdi", file);
    assert!(err.contains("truncated vdi image: data block"), "{err}");
}

/// A header claiming a huge disk with a huge table asks for no memory on its word.
#[test]
fn vmdk_huge_capacity_is_bounded() {
    let g = sample(2);
    let mut file = vmdk_sparse(&g, 0, false);
    file[12..20].copy_from_slice(&(1u64 << 50).to_le_bytes()); // 512 PiB
    let err = decode_err("x.vmdk", file);
    assert!(err.contains("grain directory bytes"), "{err}");
}

/// A BAT entry naming the BAT itself as a data block would serve table bytes as the
/// disk (and, in a loop of such entries, the same bytes many times): refused.
#[test]
fn vhdx_block_over_its_own_bat_is_refused() {
    let g = Guest {
        block: MIB,
        blocks: vec![Some(1), Some(2)],
        size: 2 * MIB,
    };
    let mut file = vhdx(&g, 3);
    let bat = u64::from_le_bytes(file[(192 << 10) + 32..(192 << 10) + 40].try_into().unwrap());
    let at = bat as usize;
    file[at..at + 8].copy_from_slice(&(bat | 6).to_le_bytes());
    let err = decode_err("x.vhdx", file);
    assert!(err.contains("overlaps the BAT"), "{err}");
}

/// A grain table entry naming the grain directory (a loop through the tables) is
/// refused, not served as guest data.
#[test]
fn vmdk_grain_over_its_grain_directory_is_refused() {
    let g = sample(20);
    let mut file = vmdk_sparse(&g, 5, false);
    let gd_sector = u64::from_le_bytes(file[56..64].try_into().unwrap());
    let gd = gd_sector as usize * 512;
    let gt = u32::from_le_bytes(file[gd..gd + 4].try_into().unwrap()) as usize * 512;
    file[gt..gt + 4].copy_from_slice(&(gd_sector as u32).to_le_bytes());
    let err = decode_err("x.vmdk", file);
    assert!(err.contains("overlaps the grain directory"), "{err}");
}

// ---- OVA ----

/// An OVA: the OVF descriptor first, then the VMDK and `extras` other files (a
/// manifest, certificates) in a random order, GNU or ustar headers; a long disk name
/// takes a GNU long-name entry.
fn ova(vmdk: &[u8], extras: &[usize], seed: u64, gnu: bool, long_name: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut header = if gnu {
            tar::Header::new_gnu()
        } else {
            tar::Header::new_ustar()
        };
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, data).unwrap();
    };
    add("appliance.ovf", b"<?xml version=\"1.0\"?><Envelope/>\n");
    let disk_name = if long_name {
        format!("{}-disk1.vmdk", "appliance".repeat(12))
    } else {
        "appliance-disk1.vmdk".to_owned()
    };
    let mut entries: Vec<Option<usize>> = extras.iter().copied().map(Some).collect();
    entries.push(None);
    for entry in shuffled(entries, seed) {
        match entry {
            None => add(&disk_name, vmdk),
            Some(len) => add(&format!("file{len}.cert"), &vec![b'c'; len]),
        }
    }
    builder.into_inner().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn ova_with_its_vmdk_anywhere(
        g in guest(GRAIN, 30),
        seed: u64,
        extras in prop::collection::vec(0usize..3000, 0..4),
        gnu: bool,
        long_name: bool,
        stream: bool,
        chunk in 1usize..70_000,
    ) {
        let vmdk = if stream { vmdk_stream(&g, seed) } else { vmdk_sparse(&g, seed, false) };
        let file = ova(&vmdk, &extras, seed, gnu, gnu && long_name);
        check("x.ova", file, &g, chunk, 64 << 20)?;
    }
}
