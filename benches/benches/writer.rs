//! The zero detector and the sparse writer, alone.
//!
//! `is_zero` decides, per 4 KiB block, what becomes a hole; the writer splits chunks
//! into non-zero runs, `pwrite`s them and keeps the page cache in check. Both run on the
//! writer threads beside decompression, so their cost is what they take from it.
//! Throughput is in bytes examined (zero detector) or bytes handed to the writer.
//!
//! ```text
//! cargo bench -p bootsource-benches --bench writer
//! ```

use std::hint::black_box;
use std::path::PathBuf;

use bootsource_place::Target;
use bootsource_place::zero::is_zero;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const MIB: usize = 1 << 20;

fn zero_detector(c: &mut Criterion) {
    let mut group = c.benchmark_group("zero_detector");
    group.throughput(Throughput::Bytes(MIB as u64));
    let zeros = vec![0u8; MIB];
    group.bench_function("all_zero_1MiB", |b| b.iter(|| is_zero(black_box(&zeros))));
    let mut last = vec![0u8; MIB];
    last[MIB - 1] = 1;
    group.bench_function("nonzero_last_byte_1MiB", |b| {
        b.iter(|| is_zero(black_box(&last)))
    });
    group.finish();
}

/// 64 MiB in 1 MiB chunks, every other 64 KiB all zeros (holes), to a tmpfs file.
fn sparse_writer(c: &mut Criterion) {
    let dir = PathBuf::from(if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    });
    let path = dir.join(format!(
        "bootsource-bench-writer-{}.img",
        std::process::id()
    ));
    let size = 64 * MIB;
    let mut chunk = vec![0u8; MIB];
    for (i, block) in chunk.chunks_mut(64 << 10).enumerate() {
        if i % 2 == 0 {
            block
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = u8::try_from(j % 251).unwrap() | 1);
        }
    }
    let mut group = c.benchmark_group("sparse_writer");
    group.throughput(Throughput::Bytes(size as u64));
    group.sample_size(10);
    group.bench_function("half_holes_64MiB_to_tmpfs", |b| {
        b.iter(|| {
            let target = Target::check(&path)
                .and_then(|t| t.open(bootsource_place::DiskSize::Known(size as u64), None))
                .expect("opening the target");
            let place = target.place();
            for at in (0..size).step_by(MIB) {
                place.write_at(at as u64, &chunk).expect("writing");
            }
            drop(place);
            target.commit().expect("committing");
        });
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, zero_detector, sparse_writer);
criterion_main!(benches);
