//! [`Import`]: one import, in two steps around the moment the disk's size is known.
//!
//! [`Import::start`] resolves the image, finds the disk in its layers and decodes just
//! far enough to know the disk's format and virtual size; then the pipeline pauses
//! (see `pipeline::handshake`). The caller opens a place of that size — storage stages
//! a volume, the CLI opens its target — and [`Import::write_into`] streams the rest into
//! it. Nothing is written before the place is handed over, and the importer never
//! opens a storage path. Dropping an `Import` instead cancels it: `inspect` is a start
//! without a write.
//!
//! A single disk file (`https://…`, `file:`, `-`) takes the same two steps through
//! `pipeline::run_file`; its digest is the sha256 of its bytes, known at its end.

use std::sync::Arc;
use std::time::Instant;

use bootsource_place::Place;

use crate::origin::file::FileOrigin;
use crate::origin::{Origin, ResolvedImage, Validators};
use crate::pipeline::{self, Caller, Converted, Handshake};
use crate::trust::{self, Candidate};
use crate::{Digest, DiskInfo, Error, ImageRef, ImportOptions, ImportReport, Result, Verdict};

/// Whether a refusal by the signature policy stops the import (`inspect` only shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enforce {
    Yes,
    No,
}

/// An import paused before its first write, knowing its image and disk.
#[derive(Debug)]
pub struct Import {
    reference: String,
    /// The container image; `None` for a single file.
    image: Option<ResolvedImage>,
    /// The signature policy's verdict; `None` for a single file, which checksums
    /// vouch for (containers' policy.json speaks of container images only).
    verdict: Option<Verdict>,
    file: Option<Arc<FileOrigin>>,
    disk: DiskInfo,
    place: std::sync::mpsc::SyncSender<Arc<dyn Place>>,
    pipeline: tokio::task::JoinHandle<Result<Finished>>,
    options: ImportOptions,
    started: Instant,
}

/// What the pipeline did: the blob the disk came from (a layer, or the single file,
/// by its sha256) and the conversion.
#[derive(Debug)]
struct Finished {
    blob: Digest,
    converted: Converted,
}

impl Import {
    /// Resolves `reference`, checks it against the signature policy, finds its disk
    /// and reads up to the disk's virtual size. An image the policy refuses ends here,
    /// with [`Error::Refused`], before any layer is read.
    pub async fn start(reference: &ImageRef, options: &ImportOptions) -> Result<Self> {
        Self::begin(reference, options, Enforce::Yes).await
    }

    pub(crate) async fn begin(
        reference: &ImageRef,
        options: &ImportOptions,
        enforce: Enforce,
    ) -> Result<Self> {
        if reference.is_single_file() {
            return Self::start_file(reference, options).await;
        }
        let started = Instant::now();
        let origin = Origin::connect(reference, &options.registry).await?;
        let image = origin.resolve(&options.platform()).await?;
        let verdict = judge(&origin, reference, &image, options, enforce).await?;
        check_layers(&image)?;
        tracing::info!(image = %reference, digest = %image.digest, layers = image.layers.len(), "importing");
        let settings = options.settings();
        let resolved = image.clone();
        Self::paused(
            reference,
            Some(image),
            Some(verdict),
            None,
            options,
            started,
            move |handshake| {
                pipeline::run(&origin, &resolved, &settings, handshake).map(|o| Finished {
                    blob: o.layer.digest,
                    converted: o.converted,
                })
            },
        )
        .await
    }

    /// [`start`](Self::start) for a single disk file (`https://…`, `file:`, `-`).
    async fn start_file(reference: &ImageRef, options: &ImportOptions) -> Result<Self> {
        let started = Instant::now();
        let origin = Arc::new(FileOrigin::connect(reference, options).await?);
        tracing::info!(image = %reference, checksum = ?origin.checksum(), "importing a single file");
        let settings = options.settings();
        let file = Arc::clone(&origin);
        Self::paused(
            reference,
            None,
            None,
            Some(origin),
            options,
            started,
            move |handshake| {
                pipeline::run_file(&file, &settings, handshake).map(|o| Finished {
                    blob: o.sha256,
                    converted: o.converted,
                })
            },
        )
        .await
    }

    /// Runs `pipeline` on a blocking thread until it announces the disk.
    async fn paused(
        reference: &ImageRef,
        image: Option<ResolvedImage>,
        verdict: Option<Verdict>,
        file: Option<Arc<FileOrigin>>,
        options: &ImportOptions,
        started: Instant,
        pipeline: impl FnOnce(Handshake) -> Result<Finished> + Send + 'static,
    ) -> Result<Self> {
        let (handshake, Caller { announced, place }) = pipeline::handshake();
        let progress = Arc::clone(&options.progress);
        let pipeline = tokio::task::spawn_blocking(move || {
            (progress.stages.decode_thread).time(|| pipeline(handshake))
        });
        let disk = match announced.await {
            Ok(disk) => disk,
            // The pipeline ended before the disk's size was known: its error says why.
            Err(_) => return Err(joined(pipeline.await).err().unwrap_or_else(stopped_early)),
        };
        Ok(Self {
            reference: reference.to_string(),
            image,
            verdict,
            file,
            disk,
            place,
            pipeline,
            options: options.clone(),
            started,
        })
    }

    /// The container image, resolved to one platform; `None` for a single file.
    pub fn image(&self) -> Option<&ResolvedImage> {
        self.image.as_ref()
    }

    /// A single file's HTTP validators (`ETag`, `Last-Modified`), as first answered.
    pub fn validators(&self) -> Option<Validators> {
        self.file.as_ref().and_then(|f| f.validators())
    }

    /// Reads a single file to its end without writing it: its sha256 (checked against
    /// its checksum, if one was given). `None` for a container image.
    pub(crate) async fn hash_file(&self) -> Result<Option<Digest>> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        if let Some(digest) = file.checksum().and_then(crate::Checksum::as_digest) {
            return Ok(Some(digest));
        }
        let mut blob = file.open(crate::Progress::new(), self.options.cancel.clone())?;
        tokio::task::spawn_blocking(move || {
            blob.drain()?;
            Ok(blob.sha256())
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing thread failed: {e}")))?
    }

    /// What the signature policy decided, and the signatures found.
    /// `None` for a single file.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// The disk found: layer, name, format, virtual size.
    pub fn disk(&self) -> &DiskInfo {
        &self.disk
    }

    /// Streams the disk into `place`, opened for [`disk().virtual_size`](DiskInfo)
    /// (a known size, or one known at the end, within the same limit). The place is complete when this returns, but not finished: its owner
    /// zeroes what was skipped, fsyncs and publishes it.
    pub async fn write_into(self, place: Arc<dyn Place>) -> Result<ImportReport> {
        // A closed channel means the pipeline failed meanwhile; its error follows.
        let _ = self.place.send(place);
        let outcome = joined(self.pipeline.await)?;
        let converted = outcome.converted;
        let validators = self.file.as_ref().and_then(|f| f.validators());
        let (digest, manifest_digest, platform) = match self.image {
            Some(image) => (image.digest, image.manifest_digest, image.platform),
            None => (outcome.blob, outcome.blob, None),
        };
        Ok(ImportReport {
            image: self.reference,
            digest,
            manifest_digest,
            platform,
            layer: outcome.blob,
            disk: converted.disk.name,
            format: converted.disk.format,
            virtual_size: converted.virtual_size,
            downloaded: self.options.progress.snapshot().downloaded,
            written: converted.written,
            passes: converted.passes,
            spool_peak: converted.spool_peak,
            seconds: self.started.elapsed().as_secs_f64(),
            stages: self.options.progress.stage_times(),
            trust: self.verdict,
            checksum: self.file.as_ref().and_then(|f| f.checksum().cloned()),
            validators,
        })
    }
}

fn joined<T>(joined: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    joined.map_err(|e| Error::Internal(format!("pipeline thread failed: {e}")))?
}

fn stopped_early() -> Error {
    Error::Internal("the pipeline stopped before finding the disk's size".into())
}

/// The policy's verdict on the manifest about to be imported; a refusal is an error
/// unless only inspecting.
async fn judge(
    origin: &Origin,
    reference: &ImageRef,
    image: &ResolvedImage,
    options: &ImportOptions,
    enforce: Enforce,
) -> Result<Verdict> {
    let candidate = Candidate {
        fetched: reference,
        named: options.policy_reference.as_ref().unwrap_or(reference),
        manifest: image.manifest_digest,
    };
    let verdict = trust::judge(origin, candidate, &options.trust, &options.registry).await?;
    match &verdict.refusal {
        Some(refusal) if enforce == Enforce::Yes => Err(Error::Refused {
            image: candidate.named.to_string(),
            refusal: Box::new(trust::PolicyRefusal {
                policy: verdict.policy.clone(),
                scope: verdict.scope.clone(),
                refusal: refusal.clone(),
            }),
        }),
        _ => {
            tracing::debug!(image = %candidate.named, scope = %verdict.scope,
                accepted = verdict.accepted, "signature policy evaluated");
            Ok(verdict)
        }
    }
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
