//! bootsource's importer: a container disk in, a raw disk image out, in one pass.
//!
//! The pipeline, stage by stage (each its own module):
//!
//! ```text
//! origin (registry | OCI layout | http(s) | file | stdin) → blob bytes, sha256 (and
//!   any checksum) checked while streaming
//!   → decompression by magic (gzip | zstd | xz | bzip2 | none)
//!   → tar walk to disk/<file> (a layer; a single file: tar with one file, or the file)
//!   → format sniff → qcow2 stream decoder | raw passthrough → extents
//!   → writer (inflate compressed clusters in parallel, skip zeros, pwrite) → target
//! ```
//!
//! Nothing goes through a scratch copy: a qcow2 whose clusters arrive before their
//! tables is read a second time from the immutable blob instead (see [`qcow2`]).
//!
//! The importer writes into a [`Place`](bootsource_place::Place) it is handed and
//! never opens a storage path: [`Import::start`] pauses once the disk's virtual size is
//! known, the caller opens a place of that size, [`Import::write_into`] fills it. A raw
//! disk whose length no header tells (in gzip or bzip2) is announced with
//! [`DiskSize::Unknown`]: its place grows, and takes its length at the end
//! ([`UnknownLength`] chooses that or a measuring read first).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use bootsource_importer::{Import, ImportOptions};
//! use bootsource_place::Target;
//! let image = "docker://127.0.0.1:5000/os/fedora:41".parse()?;
//! let target = Target::check("/var/lib/vms/fedora.img".as_ref())?; // fails fast
//! let import = Import::start(&image, &ImportOptions::default()).await?;
//! let open = target.open(import.disk().virtual_size, None)?; // known, or grows
//! let report = import.write_into(open.place()).await?;
//! open.commit()?;
//! println!("{} bytes written", report.written);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod bench;
mod blob;
pub mod blockmap;
mod checksum;
mod checksum_file;
mod decode;
mod decompress;
mod disk;
mod error;
mod extent;
mod format;
#[doc(hidden)]
pub mod fuzz;
mod gzip;
mod import;
mod layer;
mod local_file;
pub mod manifest;
mod origin;
mod ova;
mod pipeline;
mod platform;
mod progress;
pub mod qcow2;
mod read_full;
mod reference;
mod report;
mod stages;
mod stream_length;
mod text;
pub mod trust;
mod vdi;
mod vhd;
mod vhdx;
mod vmdk;
mod xz;

use std::sync::Arc;

pub use bootsource_digest::{Digest, ParseDigestError};
pub use bootsource_place::DiskSize;
pub use checksum::{Checksum, ParseChecksumError};
pub use checksum_file::ChecksumFileProblem;
pub use decode::FormatDecoder;
pub use disk::{ArchiveProblem, DiskEntry, DiskEntryProblem, SparseMapProblem};
pub use error::{Error, Result};
pub use extent::{Extent, GuestOffset};
pub use format::{DiskFormat, Subformat};
pub use import::Import;
pub use local_file::read_regular_file;
pub use origin::{
    Credentials, CredentialsProblem, ExtraHeader, FileProblem, HttpOptions, LayoutProblem,
    ParseCredentialsError, ParseHeaderError, Probe, RegistryError, RegistryOptions, ResolvedImage,
    TlsProblem, Validators,
};
pub use platform::{ParsePlatformError, Platform};
pub use progress::{Cancel, Progress, ProgressSnapshot};
pub use reference::{ImageRef, ParseImageRefError, ReferenceProblem, RegistryRef, UrlProblem};
pub use report::{DiskInfo, ImageInfo, ImportReport, Qcow2Info};
pub use reqwest::Url;
pub use stages::{Stage, StageTimes};
pub use text::{escape_controls, printable};
pub use trust::{TrustPolicy, Verdict};

use origin::Origin;
use pipeline::Settings;

/// The largest virtual size imported unless configured otherwise: 1 TiB.
pub const DEFAULT_MAX_VIRTUAL_SIZE: u64 = 1 << 40;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Registry access: TLS, CA certificates, credentials (TLS and the auth file apply
    /// to single files over HTTPS too).
    pub registry: RegistryOptions,
    /// Single files over HTTP(S): credentials, headers, checksum.
    pub http: HttpOptions,
    /// The platform to pick from a multi-arch index (default: this host's).
    pub platform: Option<Platform>,
    /// Memory bounds of the qcow2 decoder.
    pub limits: qcow2::Limits,
    /// Disks larger than this are refused before anything is written (a raw disk of
    /// unknown length: as soon as it grows past it).
    pub max_virtual_size: u64,
    /// A raw disk whose length no header tells: written as it comes into a place that
    /// grows, or measured first.
    pub unknown_length: UnknownLength,
    /// Writer threads (inflate + write); default: the number of CPUs.
    pub workers: usize,
    /// Live counters, for a progress display or metrics.
    pub progress: Arc<Progress>,
    /// Set to stop the import.
    pub cancel: Cancel,
    /// The signature policy; an image it refuses is not imported (default: accept anything).
    pub trust: Arc<TrustPolicy>,
    /// The reference the policy judges when the one imported is a mirror of it
    /// (default: the reference imported).
    pub policy_reference: Option<ImageRef>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            registry: RegistryOptions::default(),
            http: HttpOptions::default(),
            platform: None,
            limits: qcow2::Limits::default(),
            max_virtual_size: DEFAULT_MAX_VIRTUAL_SIZE,
            unknown_length: UnknownLength::Grow,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            progress: Progress::new(),
            cancel: Cancel::default(),
            trust: Arc::new(TrustPolicy::accept_anything()),
            policy_reference: None,
        }
    }
}

impl ImportOptions {
    fn settings(&self) -> Settings {
        Settings {
            limits: self.limits,
            max_virtual_size: self.max_virtual_size,
            unknown_length: self.unknown_length,
            workers: self.workers,
            progress: Arc::clone(&self.progress),
            cancel: self.cancel.clone(),
        }
    }

    fn platform(&self) -> Platform {
        self.platform.clone().unwrap_or_else(Platform::host)
    }
}

/// What to do with a raw disk whose length no header tells before its end: one in a
/// gzip or bzip2 stream, zstd without a content size, xz from a server without ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownLength {
    /// Announce [`DiskSize::Unknown`] and write the disk as it arrives, in one pass:
    /// the caller opens a place that grows (a file), or one large enough (a device).
    Grow,
    /// Read the file once first to measure it, then announce its size: for a caller
    /// that must choose a place by size (a block pool). Standard input cannot be read
    /// twice and is refused.
    Measure,
}

/// The digest `image` points at now: a `HEAD` request for a registry (the index
/// digest for a multi-arch tag), the index entry for a layout. What the poller compares.
pub async fn resolve_digest(image: &ImageRef, options: &ImportOptions) -> Result<Digest> {
    Origin::connect(image, &options.registry)
        .await?
        .digest()
        .await
}

/// What a poll of a single-file source (`https://…`) finds: one conditional request
/// against the validators of the version imported last (`known`), or the checksum
/// file's line, or the configured checksum.
pub async fn probe_file(
    image: &ImageRef,
    options: &ImportOptions,
    known: Option<&Validators>,
) -> Result<Probe> {
    origin::file::probe(image, options, known).await
}

/// Describes the image `reference` names and its disk, reading the disk's layer only
/// up to its size. A single file is read to its end to name it by its sha256 (unless
/// its checksum is a sha256). The policy's verdict is shown, not enforced: an image it
/// refuses is described too.
pub async fn inspect(reference: &ImageRef, options: &ImportOptions) -> Result<ImageInfo> {
    // Inspecting writes nothing: the size is worth a measuring read.
    let options = &ImportOptions {
        unknown_length: UnknownLength::Measure,
        ..options.clone()
    };
    let import = Import::begin(reference, options, import::Enforce::No).await?;
    let mut disk = import.disk().clone();
    let (digest, manifest_digest, platform, layers) = match import.image() {
        Some(resolved) => (
            resolved.digest,
            resolved.manifest_digest,
            resolved.platform.clone(),
            resolved.layers.clone(),
        ),
        None => {
            let digest = import
                .hash_file()
                .await?
                .ok_or_else(|| Error::Internal("a single file without a digest".into()))?;
            disk.layer = Some(digest);
            (digest, digest, None, Vec::new())
        }
    };
    Ok(ImageInfo {
        image: reference.to_string(),
        digest,
        manifest_digest,
        platform,
        layers,
        disk,
        trust: import.verdict().cloned(),
    })
}
