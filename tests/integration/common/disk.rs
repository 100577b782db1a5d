//! Test disks: a deterministic raw disk, its qcow2 conversions, and the oracle.
//!
//! The raw disk mixes what a real disk has, in 64 KiB chunks cycling through five kinds:
//! incompressible (pseudo-random) data, compressible text, a zero chunk, a chunk whose
//! first 4 KiB only is data (a cluster partly zero), and another zero chunk. The first
//! and last 512 bytes always hold data, so a converter that drops the tail is caught.
//! Zero chunks are holes in the file. The same `(size, seed)` always gives the same bytes;
//! another seed gives another disk (a "v2" of an image).
//!
//! The oracle is `qemu-img compare`: the tests never trust our own reading of a format.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use super::tools;

const CHUNK: usize = 64 * 1024;
const SECTOR: usize = 512;

/// Writes a raw disk of `size` bytes (a multiple of 512) at `path`, sparse where zero.
pub fn write_raw_disk(path: &Path, size: u64, seed: u64) {
    assert!(
        size > 0 && size.is_multiple_of(512),
        "disk size {size} is not a positive multiple of 512"
    );
    let mut file = File::create(path).unwrap();
    let mut offset = 0u64;
    let mut index = 0u64;
    while offset < size {
        let len = usize::try_from((size - offset).min(CHUNK as u64)).unwrap();
        let mut chunk = chunk_bytes(index, seed, len);
        if offset == 0 {
            fill_random(&mut chunk[..SECTOR.min(len)], seed ^ 0x5eed);
        }
        if offset + len as u64 == size {
            fill_random(&mut chunk[len - SECTOR..], seed ^ 0x7a11);
        }
        if chunk.iter().any(|&b| b != 0) {
            file.seek(SeekFrom::Start(offset)).unwrap();
            file.write_all(&chunk).unwrap();
        }
        offset += len as u64;
        index += 1;
    }
    file.set_len(size).unwrap();
    file.sync_all().unwrap();
}

/// Converts `raw` to qcow2 at `out` with extra `qemu-img convert` options, e.g.
/// `["-c", "-o", "compression_type=zstd,cluster_size=2M"]`.
pub fn qcow2(raw: &Path, out: &Path, options: &[&str]) {
    convert(raw, out, "qcow2", options);
}

/// `qemu-img convert -O {format} {options} {input} {output}`.
pub fn convert(input: &Path, output: &Path, format: &str, options: &[&str]) {
    tools::require("qemu-img", "qemu-utils");
    tools::run_command(
        Command::new("qemu-img")
            .args(["convert", "-O", format])
            .args(options)
            .arg(input)
            .arg(output),
    );
}

/// Whether two images have the same guest content (`qemu-img compare`: exit 0 identical,
/// 1 different; anything else is an error and panics). Formats are probed; a larger image
/// compares equal if its extra tail is zero, so check virtual sizes separately.
pub fn qemu_img_compare(a: &Path, b: &Path) -> bool {
    tools::require("qemu-img", "qemu-utils");
    let mut command = Command::new("qemu-img");
    command.arg("compare").arg(a).arg(b);
    let output = tools::run_any_status(&mut command);
    match output.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "{} failed ({}): {}",
            tools::describe(&command),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// `qemu-img info --output=json`.
pub fn qemu_img_info(path: &Path) -> serde_json::Value {
    tools::require("qemu-img", "qemu-utils");
    let stdout = tools::run_command(
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(path),
    )
    .stdout;
    serde_json::from_slice(&stdout).unwrap()
}

/// The virtual (guest) size of an image.
pub fn virtual_size(path: &Path) -> u64 {
    qemu_img_info(path)["virtual-size"]
        .as_u64()
        .expect("virtual-size")
}

/// Bytes the file occupies on its filesystem (less than its length when sparse).
pub fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata(path).unwrap().blocks() * 512
}

fn chunk_bytes(index: u64, seed: u64, len: usize) -> Vec<u8> {
    let mut chunk = vec![0u8; len];
    match (index + seed) % 5 {
        0 => fill_random(&mut chunk, seed.wrapping_mul(31).wrapping_add(index)),
        1 => fill_text(&mut chunk, index),
        3 => {
            let data = len.min(4096);
            fill_random(
                &mut chunk[..data],
                seed.wrapping_mul(37).wrapping_add(index),
            );
        }
        _ => {}
    }
    chunk
}

fn fill_text(buf: &mut [u8], index: u64) {
    let line = format!("bootsource test disk, chunk {index}: compressible text.\n");
    for (dst, src) in buf.iter_mut().zip(line.bytes().cycle()) {
        *dst = src;
    }
}

/// splitmix64: fast, deterministic, incompressible enough for gzip and zstd.
fn fill_random(buf: &mut [u8], seed: u64) {
    let mut state = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    for block in buf.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        block.copy_from_slice(&z.to_le_bytes()[..block.len()]);
    }
}
