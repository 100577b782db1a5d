//! The qcow2 stream decoder from memory, and inflating compressed clusters.
//!
//! Inputs are the small images of `build-images.sh` (the first 384 MiB of the golden
//! ext4 disk, converted by qemu-img: uncompressed, deflate clusters, zstd clusters),
//! read into memory once. Throughput is in bytes of the qcow2 file for decoding (what
//! the decoding thread must keep up with) and in bytes of disk produced for inflating.
//!
//! ```text
//! sudo benches/build-images.sh --no-push && cargo bench -p bootsource-benches --bench qcow2
//! ```

use std::hint::black_box;
use std::time::Duration;

use bootsource_importer::Extent;
use bootsource_importer::qcow2::{Codec, Decoder, Inflater, Limits, PassEnd};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The pipeline's chunk size (`importer/src/pipeline/convert.rs`).
const CHUNK: usize = 1 << 20;

const IMAGES: [(&str, &str); 3] = [
    ("uncompressed", "micro-plain.qcow2"),
    ("deflate", "micro-deflate.qcow2"),
    ("zstd", "micro-zstd.qcow2"),
];

fn load(name: &str) -> Option<Bytes> {
    let Some(path) = bootsource_benches::cached(name) else {
        bootsource_benches::missing(name);
        return None;
    };
    Some(Bytes::from(
        std::fs::read(path).expect("reading a cached image"),
    ))
}

/// Decodes `image` in pipeline-sized chunks, handing each batch of extents to `sink`.
fn decode(image: &Bytes, mut sink: impl FnMut(&mut Vec<Extent>)) {
    let mut decoder = Decoder::new(image.len() as u64, Limits::default());
    let mut extents = Vec::new();
    loop {
        for chunk in image.chunks(CHUNK) {
            decoder
                .feed(&image.slice_ref(chunk), &mut extents)
                .expect("a valid image");
            sink(&mut extents);
            extents.clear();
        }
        if decoder.finish_pass().expect("a valid image") == PassEnd::Complete {
            return;
        }
    }
}

/// The compressed clusters of `image`: (codec, compressed bytes, decompressed length).
fn compressed_clusters(image: &Bytes) -> Vec<(Codec, Bytes, usize)> {
    let mut clusters = Vec::new();
    decode(image, |extents| {
        for e in extents.drain(..) {
            if let Extent::Compressed {
                codec, bytes, len, ..
            } = e
            {
                clusters.push((codec, bytes, len as usize));
            }
        }
    });
    clusters
}

fn decoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("qcow2_decode");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for (label, name) in IMAGES {
        let Some(image) = load(name) else { continue };
        group.throughput(Throughput::Bytes(image.len() as u64));
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut extents = 0usize;
                decode(&image, |batch| extents += batch.len());
                black_box(extents)
            });
        });
    }
    group.finish();
}

fn inflate(c: &mut Criterion) {
    let mut group = c.benchmark_group("qcow2_inflate_one_thread");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(30));
    for (label, name) in &IMAGES[1..] {
        let Some(image) = load(name) else { continue };
        let clusters = compressed_clusters(&image);
        let out_bytes: usize = clusters.iter().map(|(_, _, len)| len).sum();
        group.throughput(Throughput::Bytes(out_bytes as u64));
        let mut inflater = Inflater::new().expect("decompressor");
        let mut out = vec![0u8; 1 << 21];
        group.bench_function(*label, |b| {
            b.iter(|| {
                for (codec, bytes, len) in &clusters {
                    inflater
                        .inflate(*codec, bytes, &mut out[..*len])
                        .expect("a valid cluster");
                }
                black_box(out[0])
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decoder, inflate);
criterion_main!(benches);
