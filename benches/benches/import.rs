//! A whole import of a cached OCI layout onto a file in tmpfs, as `bootsource import`
//! does it: `Import::start`, a `Target` opened at the disk's size, `write_into`, commit.
//!
//! Measured through the public entry points: layer decompression, tar walk, qcow2 decoding, parallel inflate, zero skipping and
//! `pwrite`, without a disk or a network in the way. The layout's blob is read from the
//! page cache after the first iteration. Throughput is in bytes of disk (virtual size).
//!
//! ```text
//! sudo benches/build-images.sh --no-push && cargo bench -p bootsource-benches --bench import
//! ```

use std::path::PathBuf;
use std::time::Duration;

use bootsource_importer::{ImageRef, Import, ImportOptions, ImportReport};
use bootsource_place::Target;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LAYOUTS: [&str; 4] = [
    "micro-qcow2-deflate.gzip",
    "micro-qcow2-zstd.zstd",
    "micro-qcow2.gzip",
    "micro-raw.gzip",
];

/// A directory in tmpfs (or the temp dir where there is no /dev/shm), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let base = PathBuf::from("/dev/shm");
        let base = if base.is_dir() {
            base
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("bootsource-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn imports(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let scratch = Scratch::new();
    let target = scratch.0.join("disk.img");
    let mut group = c.benchmark_group("import_to_tmpfs");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(35));
    for name in LAYOUTS {
        let oci = format!("oci/{name}");
        let Some(layout) = bootsource_benches::cached(&oci) else {
            bootsource_benches::missing(&oci);
            continue;
        };
        let source: ImageRef = format!("oci:{}:bench", layout.display())
            .parse()
            .expect("an oci: reference");
        let run = || {
            let report = runtime
                .block_on(import_to(&source, &target))
                .expect("import");
            std::fs::remove_file(&target).expect("removing the target");
            report
        };
        group.throughput(Throughput::Bytes(run().virtual_size));
        group.bench_function(name, |b| b.iter(run));
    }
    group.finish();
}

async fn import_to(
    source: &ImageRef,
    target: &std::path::Path,
) -> Result<ImportReport, Box<dyn std::error::Error>> {
    let checked = Target::check(target)?;
    let import = Import::start(source, &ImportOptions::default()).await?;
    let open = checked.open(import.disk().virtual_size, None)?;
    let report = import.write_into(open.place()).await?;
    open.commit()?;
    Ok(report)
}

criterion_group!(benches, imports);
criterion_main!(benches);
