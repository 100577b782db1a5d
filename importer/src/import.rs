//! [`Import`]: one import, in two steps around the moment the disk's size is known.
//!
//! [`Import::start`] resolves the image, finds the disk in its layers and decodes just
//! far enough to know the disk's format and virtual size; then the pipeline pauses
//! (see `pipeline::handshake`). The caller opens a place of that size — storage stages
//! a volume, the CLI opens its target — and [`Import::write_into`] streams the rest into
//! it. Nothing is written before the place is handed over, and the importer never
//! opens a storage path. Dropping an `Import` instead cancels it: `inspect` is a start
//! without a write.

use std::sync::Arc;
use std::time::Instant;

use bootsource_place::Place;

use crate::origin::{Origin, ResolvedImage};
use crate::pipeline::{self, Caller, Outcome};
use crate::trust::{self, Candidate};
use crate::{DiskInfo, Error, ImageRef, ImportOptions, ImportReport, Result, Verdict};

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
    image: ResolvedImage,
    verdict: Verdict,
    disk: DiskInfo,
    place: std::sync::mpsc::SyncSender<Arc<dyn Place>>,
    pipeline: tokio::task::JoinHandle<Result<Outcome>>,
    options: ImportOptions,
    started: Instant,
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
        let started = Instant::now();
        let origin = Origin::connect(reference, &options.registry).await?;
        let image = origin.resolve(&options.platform()).await?;
        let verdict = judge(&origin, reference, &image, options, enforce).await?;
        check_layers(&image)?;
        tracing::info!(image = %reference, digest = %image.digest, layers = image.layers.len(), "importing");
        let (handshake, Caller { announced, place }) = pipeline::handshake();
        let settings = options.settings();
        let resolved = image.clone();
        let pipeline = tokio::task::spawn_blocking(move || {
            pipeline::run(&origin, &resolved, &settings, handshake)
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
            disk,
            place,
            pipeline,
            options: options.clone(),
            started,
        })
    }

    /// The image, resolved to one platform.
    pub fn image(&self) -> &ResolvedImage {
        &self.image
    }

    /// What the signature policy decided, and the signatures found.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The disk found: layer, name, format, virtual size.
    pub fn disk(&self) -> &DiskInfo {
        &self.disk
    }

    /// Streams the disk into `place`, opened for [`disk().virtual_size`](DiskInfo)
    /// bytes. The place is complete when this returns, but not finished: its owner
    /// zeroes what was skipped, fsyncs and publishes it.
    pub async fn write_into(self, place: Arc<dyn Place>) -> Result<ImportReport> {
        // A closed channel means the pipeline failed meanwhile; its error follows.
        let _ = self.place.send(place);
        let outcome = joined(self.pipeline.await)?;
        let converted = outcome.converted;
        Ok(ImportReport {
            image: self.reference,
            digest: self.image.digest,
            manifest_digest: self.image.manifest_digest,
            platform: self.image.platform,
            layer: outcome.layer.digest,
            disk: converted.disk.name,
            format: converted.disk.format,
            virtual_size: converted.disk.virtual_size,
            downloaded: self.options.progress.snapshot().downloaded,
            written: converted.written,
            passes: converted.passes,
            spool_peak: converted.spool_peak,
            seconds: self.started.elapsed().as_secs_f64(),
            trust: self.verdict,
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
