//! bootsource's importer: a container disk in, a raw disk image out, in one pass.
//!
//! The pipeline, stage by stage (each its own module):
//!
//! ```text
//! source (registry | OCI layout) → blob bytes, sha256 checked while streaming
//!   → layer decompression (gzip | zstd | none) → tar walk to disk/<file>
//!   → format sniff → qcow2 stream decoder | raw passthrough → extents
//!   → writer (inflate compressed clusters in parallel, skip zeros, pwrite) → target
//! ```
//!
//! Nothing goes through a scratch copy: a qcow2 whose clusters arrive before their
//! tables is read a second time from the immutable blob instead (see [`qcow2`]).
//!
//! ```no_run
//! # async fn f() -> bootsource_importer::Result<()> {
//! use bootsource_importer::{ImportOptions, TargetSpec, import};
//! let source = "docker://127.0.0.1:5000/os/fedora:41".parse().unwrap();
//! let report = import(&source, TargetSpec::Path("/var/lib/vms/fedora.img".into()), &ImportOptions::default()).await?;
//! println!("{} bytes written", report.written);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod blob;
mod disk;
mod error;
mod extent;
mod format;
#[doc(hidden)]
pub mod fuzz;
mod gzip;
mod layer;
mod local_file;
pub mod manifest;
mod pipeline;
mod platform;
mod progress;
pub mod qcow2;
mod reference;
mod report;
mod source;
mod target;

use std::sync::Arc;
use std::time::Instant;

pub use bootsource_digest::{Digest, ParseDigestError};
pub use disk::DiskEntry;
pub use error::{Error, Result};
pub use extent::{Extent, GuestOffset};
pub use format::DiskFormat;
pub use local_file::read_regular_file;
pub use platform::{ParsePlatformError, Platform};
pub use progress::{Cancel, Progress, ProgressSnapshot};
pub use reference::{ParseSourceError, RegistryRef, SourceRef};
pub use report::{DiskInfo, ImageInfo, ImportReport, Qcow2Info};
pub use source::{RegistryOptions, ResolvedImage};
pub use target::{ProvideTarget, TargetSpec};

use pipeline::Settings;
use source::ImageSource;

/// Entry points for the micro-benchmarks in `benches/`; not a stable API.
#[doc(hidden)]
pub mod bench {
    use std::path::PathBuf;

    pub use crate::target::Target;
    pub use crate::target::zero::is_zero;

    /// A sparse file target of `size` bytes at `path`, as `import` opens one.
    pub fn file_target(path: PathBuf, size: u64) -> crate::Result<Target> {
        crate::TargetSpec::Path(path).prepare()?.open(size)
    }
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Registry access: TLS, CA certificates, credentials.
    pub registry: RegistryOptions,
    /// The platform to pick from a multi-arch index (default: this host's).
    pub platform: Option<Platform>,
    /// Memory bounds of the qcow2 decoder.
    pub limits: qcow2::Limits,
    /// Writer threads (inflate + write); default: the number of CPUs.
    pub workers: usize,
    /// Live counters, for a progress display or metrics.
    pub progress: Arc<Progress>,
    /// Set to stop the import.
    pub cancel: Cancel,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            registry: RegistryOptions::default(),
            platform: None,
            limits: qcow2::Limits::default(),
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            progress: Progress::new(),
            cancel: Cancel::default(),
        }
    }
}

impl ImportOptions {
    fn settings(&self) -> Settings {
        Settings {
            limits: self.limits,
            workers: self.workers,
            progress: Arc::clone(&self.progress),
            cancel: self.cancel.clone(),
        }
    }

    fn platform(&self) -> Platform {
        self.platform.clone().unwrap_or_else(Platform::host)
    }
}

/// The digest `source` points at now: a `HEAD` request for a registry (the index
/// digest for a multi-arch tag), the index entry for a layout. What the poller compares.
pub async fn resolve_digest(source: &SourceRef, options: &ImportOptions) -> Result<Digest> {
    ImageSource::connect(source, &options.registry)
        .await?
        .digest()
        .await
}

/// Describes `source` and its disk, reading only the start of the disk's layer.
pub async fn inspect(source: &SourceRef, options: &ImportOptions) -> Result<ImageInfo> {
    let src = ImageSource::connect(source, &options.registry).await?;
    let image = src.resolve(&options.platform()).await?;
    check_layers(&image)?;
    let settings = options.settings();
    let (src2, image2) = (src.clone(), image.clone());
    let disk = blocking(move || pipeline::inspect(&src2, &image2, &settings)).await?;
    Ok(ImageInfo {
        source: source.to_string(),
        digest: image.digest,
        manifest_digest: image.manifest_digest,
        platform: image.platform,
        layers: image.layers,
        disk,
    })
}

/// Imports the disk of `source` into `target`.
pub async fn import(
    source: &SourceRef,
    target: TargetSpec,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let started = Instant::now();
    let prepared = target.prepare()?;
    let src = ImageSource::connect(source, &options.registry).await?;
    let image = src.resolve(&options.platform()).await?;
    check_layers(&image)?;
    tracing::info!(source = %source, digest = %image.digest, layers = image.layers.len(), "importing");
    let settings = options.settings();
    let image2 = image.clone();
    let outcome = blocking(move || pipeline::run(&src, &image2, prepared, &settings)).await?;
    Ok(ImportReport {
        source: source.to_string(),
        digest: image.digest,
        manifest_digest: image.manifest_digest,
        platform: image.platform,
        layer: outcome.layer.digest,
        disk: outcome.disk.name,
        format: outcome.converted.format,
        virtual_size: outcome.converted.virtual_size,
        downloaded: options.progress.snapshot().downloaded,
        written: outcome.written,
        passes: outcome.converted.passes,
        spool_peak: outcome.converted.spool_peak,
        seconds: started.elapsed().as_secs_f64(),
        target: outcome.target,
    })
}

/// Refuses unknown layer types before anything is downloaded.
fn check_layers(image: &ResolvedImage) -> Result<()> {
    if image.layers.is_empty() {
        return Err(Error::NoDisk);
    }
    image
        .layers
        .iter()
        .try_for_each(|l| l.compression().map(drop))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("pipeline thread failed: {e}")))?
}
