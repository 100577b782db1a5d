//! The daemon's two jobs: polling a tag, and importing a digest into storage.
//!
//! Both run as tokio tasks and report back to the control loop. A poll is one cheap
//! `HEAD` (the index digest for a multi-arch tag). An import pins the reference to the
//! polled digest — the tag may move again meanwhile — and starts it: the importer
//! pauses once it knows the disk's virtual size. Then the store stages a volume of
//! that size (on a blocking thread, making room in a full block pool) and hands over
//! its opened place; the importer fills it; the store commits (finish, seal, atomic
//! publish) or aborts, and collects garbage. Mirrors ([`Registries`]) are tried in
//! order before the origin, each with a fresh registry client; a storage failure ends
//! the import at once, since another registry would not make room on this node.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, anyhow};
use bootsource_importer::{
    Cancel, Digest, DiskSize, HttpOptions, ImageRef, Import, ImportOptions, Progress,
    RegistryOptions, TrustPolicy, UnknownLength,
};
use bootsource_poller::{Failure, RetryAfter};
use bootsource_storage::{BackendKind, Stage, Staging, Store, Version};

use super::files::SeenFiles;
use crate::config::{Config, SourceConfig};
use crate::registries::Registries;

/// What a job needs from the configuration, copied so a reload does not disturb it.
#[derive(Debug, Clone)]
pub struct SourceJob {
    pub source: SourceConfig,
    pub backend: String,
    pub imports_to_keep: usize,
    /// Mirrors, `location` rewrites and `pull-from-mirror` rules.
    registries: Registries,
    pub(super) registry: RegistryOptions,
    /// A single file's checksum settings.
    http: HttpOptions,
    /// What single-file sources saw last (see [`files`](super::files)).
    pub(super) seen: SeenFiles,
    spool_limit: u64,
    max_virtual_size: u64,
    /// A raw disk of unknown length: one pass into a growing file, or measured first
    /// for a block pool, which chooses a device by size.
    unknown_length: UnknownLength,
    /// The signature policy: a version it refuses is not imported.
    trust: Arc<TrustPolicy>,
}

impl SourceJob {
    pub fn new(config: &Config, source: &SourceConfig, trust: Arc<TrustPolicy>) -> Self {
        Self {
            source: source.clone(),
            backend: config.storage_of(source).to_owned(),
            imports_to_keep: source.imports_to_keep,
            registries: config.containers.clone(),
            registry: RegistryOptions {
                tls_verify: true,
                cert_dir: None,
                certs_d: config.certs_d(),
                auth_file: config.auth_file(),
                insecure_registries: config.insecure_registries.clone(),
            },
            http: HttpOptions {
                checksum: source.checksum.clone(),
                checksum_url: source.checksum_url.clone(),
                ..HttpOptions::default()
            },
            seen: SeenFiles::new(&config.state_dir),
            spool_limit: config.spool_limit,
            max_virtual_size: config.max_virtual_size,
            unknown_length: match config.storage.get(config.storage_of(source)) {
                Some(b) if b.kind == BackendKind::Block => UnknownLength::Measure,
                _ => UnknownLength::Grow,
            },
            trust,
        }
    }

    /// Where to fetch `image` from, in order: each mirror that may serve it (a tag
    /// never comes from a digest-only mirror), then the origin.
    fn candidates(&self, image: &ImageRef) -> Vec<(ImageRef, RegistryOptions)> {
        let ImageRef::Registry(r) = image else {
            return vec![(image.clone(), self.registry.clone())];
        };
        self.registries
            .candidates(r)
            .into_iter()
            .map(|c| {
                let mut options = self.registry.clone();
                if c.insecure {
                    options
                        .insecure_registries
                        .push(c.reference.registry().to_owned());
                }
                (ImageRef::Registry(c.reference), options)
            })
            .collect()
    }

    pub(super) fn import_options(
        &self,
        registry: RegistryOptions,
        progress: Arc<Progress>,
        cancel: Cancel,
    ) -> ImportOptions {
        let mut options = ImportOptions {
            registry,
            http: self.http.clone(),
            platform: self.source.platform.clone(),
            progress,
            cancel,
            trust: Arc::clone(&self.trust),
            // A mirror's copy is judged as the image the source names.
            policy_reference: Some(self.source.image.clone()),
            ..ImportOptions::default()
        };
        options.limits.spool_bytes = self.spool_limit;
        options.max_virtual_size = self.max_virtual_size;
        options.unknown_length = self.unknown_length;
        options
    }
}

/// Resolves the source's tag to a digest, trying mirrors first.
pub async fn poll(ctx: &SourceJob) -> Result<Digest, Failure> {
    if ctx.source.image.is_single_file() {
        return super::files::poll(ctx).await;
    }
    let mut last = None;
    for (candidate, registry) in ctx.candidates(&ctx.source.image) {
        let options = ctx.import_options(registry, Progress::new(), Cancel::default());
        match bootsource_importer::resolve_digest(&candidate, &options).await {
            Ok(digest) => return Ok(digest),
            Err(e) => {
                tracing::debug!(source = %ctx.source.name, candidate = %candidate, error = %e, "poll failed");
                last = Some(e);
            }
        }
    }
    Err(failure(&anyhow::Error::from(
        last.expect("the origin is always a candidate"),
    )))
}

/// How an import ended well.
#[derive(Debug)]
pub enum Imported {
    /// Streamed, sealed and published.
    New {
        version: Version,
        downloaded: u64,
        written: u64,
    },
    /// The digest was already on this backend: published again, nothing downloaded.
    AlreadyPresent(Version),
}

/// Imports `digest` of the source into its backend and publishes it.
pub async fn import(
    store: Arc<Store>,
    ctx: &SourceJob,
    digest: Digest,
    progress: Arc<Progress>,
    cancel: Cancel,
) -> anyhow::Result<Imported> {
    if ctx.source.image.is_single_file() {
        return super::files::import(store, ctx, digest, progress, cancel).await;
    }
    if let Some(version) = present(&store, ctx, digest).await? {
        return publish_again(&store, version).await;
    }
    let started = Instant::now();
    let mut last = None;
    for (candidate, registry) in ctx.candidates(&pinned(&ctx.source.image, digest)) {
        let options = ctx.import_options(registry, Arc::clone(&progress), cancel.clone());
        let attempt = match Import::start(&candidate, &options).await {
            Ok(attempt) => attempt,
            Err(e) => {
                last = Some(next_candidate(e, &cancel, ctx, &candidate)?);
                continue;
            }
        };
        let resolved = attempt.image().map(|i| i.digest);
        if resolved != Some(digest) {
            return Err(anyhow!(
                "{} now points at {}, not {digest}; will poll again",
                ctx.source.image,
                resolved.map_or_else(|| "no image".to_owned(), |d| d.to_string())
            ));
        }
        let size = attempt.disk().virtual_size;
        let staging = match stage(&store, ctx, digest, size).await? {
            Stage::AlreadyPresent(version) => return publish_again(&store, version).await,
            Stage::Staging(staging) => staging,
        };
        match attempt.write_into(staging.place()).await {
            Ok(report) => {
                let (store2, progress) = (Arc::clone(&store), Arc::clone(&progress));
                let version = blocking(move || {
                    progress
                        .time_commit(|| store2.commit(staging))
                        .context("sealing and publishing")
                })
                .await?;
                gc(&store, ctx).await;
                tracing::info!(source = %ctx.source.name, %digest,
                    seconds = started.elapsed().as_secs_f64(), "imported and published");
                return Ok(Imported::New {
                    version,
                    downloaded: report.downloaded,
                    written: report.written,
                });
            }
            Err(e) => {
                abort(&store, staging).await;
                last = Some(next_candidate(e, &cancel, ctx, &candidate)?);
            }
        }
    }
    Err(
        anyhow::Error::from(last.expect("the origin is always a candidate"))
            .context(format!("importing {digest}")),
    )
}

/// Decides after a failed attempt: an error worth trying the next registry for is
/// returned to be kept; a cancel, or a failure of the place written on this node, ends
/// the import.
fn next_candidate(
    e: bootsource_importer::Error,
    cancel: &Cancel,
    ctx: &SourceJob,
    candidate: &ImageRef,
) -> anyhow::Result<bootsource_importer::Error> {
    if cancel.is_cancelled() {
        return Err(anyhow::Error::from(e).context("import cancelled"));
    }
    if matches!(e, bootsource_importer::Error::Place(_)) {
        return Err(anyhow::Error::from(e).context("writing the staging volume"));
    }
    tracing::warn!(source = %ctx.source.name, candidate = %candidate,
        error = %format!("{e:#}"), "import attempt failed");
    Ok(e)
}

/// Asks the store for a staging volume of `size`, on a blocking thread.
pub(super) async fn stage(
    store: &Arc<Store>,
    ctx: &SourceJob,
    digest: Digest,
    size: DiskSize,
) -> anyhow::Result<Stage> {
    let store = Arc::clone(store);
    let (source, backend, keep) = (
        ctx.source.name.clone(),
        ctx.backend.clone(),
        ctx.imports_to_keep,
    );
    blocking(move || {
        store
            .stage(&source, &backend, &digest, size, keep)
            .context("staging a volume")
    })
    .await
}

/// Makes a version already on this backend current again: nothing to download.
pub(super) async fn publish_again(
    store: &Arc<Store>,
    version: Version,
) -> anyhow::Result<Imported> {
    let store = Arc::clone(store);
    let version = blocking(move || {
        store
            .publish(&version)
            .context("publishing the existing version")
    })
    .await?;
    Ok(Imported::AlreadyPresent(version))
}

/// The version with `digest` already on the source's backend, if any.
pub(super) async fn present(
    store: &Arc<Store>,
    ctx: &SourceJob,
    digest: Digest,
) -> anyhow::Result<Option<Version>> {
    let (store, name, backend) = (
        Arc::clone(store),
        ctx.source.name.clone(),
        ctx.backend.clone(),
    );
    blocking(move || {
        let versions = store.versions(&name).context("reading the catalog")?;
        Ok(versions
            .into_iter()
            .find(|v| v.backend == backend && v.digest == digest))
    })
    .await
}

/// Pins a registry reference to `digest` so a moving tag cannot change what is imported.
fn pinned(image: &ImageRef, digest: Digest) -> ImageRef {
    match image {
        ImageRef::Registry(r) => ImageRef::Registry(r.with_digest(digest)),
        other => other.clone(),
    }
}

pub(super) async fn abort(store: &Arc<Store>, staging: Staging) {
    let store = Arc::clone(store);
    if let Err(e) =
        blocking(move || store.abort(staging).context("removing the staging volume")).await
    {
        tracing::error!(error = %format!("{e:#}"), "cannot remove a staging volume; it is removed at the next start");
    }
}

pub(super) async fn gc(store: &Arc<Store>, ctx: &SourceJob) {
    let (store, name, keep) = (
        Arc::clone(store),
        ctx.source.name.clone(),
        ctx.imports_to_keep,
    );
    match blocking(move || store.gc(&name, keep).context("removing old versions")).await {
        Ok(report) if !report.removed.is_empty() => {
            tracing::info!(source = %ctx.source.name, removed = report.removed.len(), "old versions removed");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(source = %ctx.source.name, error = %format!("{e:#}"), "garbage collection failed")
        }
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("storage thread failed")?
}

/// Describes an error for the poller: its text, whether the registry asked us to slow
/// down (HTTP 429), and its `Retry-After` if it sent one.
pub fn failure(e: &anyhow::Error) -> Failure {
    let import = e
        .chain()
        .find_map(|c| c.downcast_ref::<bootsource_importer::Error>());
    let mut f = Failure::new(format!("{e:#}"));
    if import.is_some_and(bootsource_importer::Error::is_rate_limited) {
        f = f.rate_limited();
    }
    match import.and_then(bootsource_importer::Error::retry_after) {
        Some(value) => match value.parse::<RetryAfter>() {
            Ok(retry_after) => f.with_retry_after(retry_after),
            Err(error) => {
                tracing::debug!(value, %error, "ignoring an unreadable Retry-After");
                f
            }
        },
        None => f,
    }
}
