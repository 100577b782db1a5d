//! The daemon's two jobs: polling a tag, and importing a digest into storage.
//!
//! Both run as tokio tasks and report back to the control loop. A poll is one cheap
//! `HEAD` (the index digest for a multi-arch tag). An import pins the reference to the
//! polled digest — the tag may move again meanwhile — streams it into a staging volume
//! the store hands out once the virtual size is known, then commits (seal + atomic
//! publish) or aborts, and collects garbage. Mirrors (`[[registry]]`) are tried in
//! order before the origin, each with a fresh registry client.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow};
use bootsource_importer::{
    Cancel, Digest, ImportOptions, Progress, RegistryOptions, SourceRef, TargetSpec,
};
use bootsource_poller::Failure;
use bootsource_storage::{Begin, Staging, Store, Version};

use crate::config::{Config, SourceConfig};

/// What a job needs from the configuration, copied so a reload does not disturb it.
#[derive(Debug, Clone)]
pub struct SourceJob {
    pub source: SourceConfig,
    pub backend: String,
    pub imports_to_keep: usize,
    /// The origin first; mirrors are put before it by [`candidates`](Self::candidates).
    mirrors: Vec<(String, bool)>,
    registry: RegistryOptions,
    spool_limit: u64,
}

impl SourceJob {
    pub fn new(config: &Config, source: &SourceConfig) -> Self {
        let mirrors = match &source.image {
            SourceRef::Registry(r) => config
                .registries
                .iter()
                .filter(|reg| reg.prefix == r.registry())
                .flat_map(|reg| reg.mirrors.iter().map(|m| (m.location.clone(), m.insecure)))
                .collect(),
            SourceRef::Layout { .. } => Vec::new(),
        };
        Self {
            source: source.clone(),
            backend: config.storage_of(source).to_owned(),
            imports_to_keep: source.imports_to_keep,
            mirrors,
            registry: RegistryOptions {
                tls_verify: true,
                cert_dir: None,
                auth_file: config.auth_file(),
                insecure_registries: config.insecure_registries.clone(),
            },
            spool_limit: config.spool_limit,
        }
    }

    /// Where to fetch `image` from, in order: each mirror, then the origin.
    fn candidates(&self, image: &SourceRef) -> Vec<(SourceRef, RegistryOptions)> {
        let SourceRef::Registry(r) = image else {
            return vec![(image.clone(), self.registry.clone())];
        };
        let mut out: Vec<_> = self
            .mirrors
            .iter()
            .map(|(location, insecure)| {
                let mut options = self.registry.clone();
                if *insecure {
                    options.insecure_registries.push(location.clone());
                }
                (SourceRef::Registry(r.on_registry(location)), options)
            })
            .collect();
        out.push((image.clone(), self.registry.clone()));
        out
    }

    fn import_options(
        &self,
        registry: RegistryOptions,
        progress: Arc<Progress>,
        cancel: Cancel,
    ) -> ImportOptions {
        let mut options = ImportOptions {
            registry,
            platform: self.source.platform.clone(),
            progress,
            cancel,
            ..ImportOptions::default()
        };
        options.limits.spool_bytes = self.spool_limit;
        options
    }
}

/// Resolves the source's tag to a digest, trying mirrors first.
pub async fn poll(ctx: &SourceJob) -> Result<Digest, Failure> {
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
    let name = ctx.source.name.clone();
    if let Some(version) = present(&store, ctx, digest).await? {
        let store = Arc::clone(&store);
        let version = blocking(move || {
            store
                .publish(&version)
                .context("publishing the existing version")
        })
        .await?;
        return Ok(Imported::AlreadyPresent(version));
    }
    let started = Instant::now();
    let mut last = None;
    for (candidate, registry) in ctx.candidates(&pinned(&ctx.source.image, digest)) {
        let options = ctx.import_options(registry, Arc::clone(&progress), cancel.clone());
        let staging: Arc<Mutex<Option<Staging>>> = Arc::default();
        let target = staging_target(&store, ctx, digest, &staging);
        let result = bootsource_importer::import(&candidate, target, &options).await;
        let staged = staging.lock().expect("not poisoned").take();
        match (result, staged) {
            (Ok(report), Some(staged)) => {
                if report.digest != digest {
                    abort(&store, staged).await;
                    return Err(anyhow!(
                        "{} now points at {}, not {digest}; will poll again",
                        ctx.source.image,
                        report.digest
                    ));
                }
                let store2 = Arc::clone(&store);
                let version =
                    blocking(move || store2.commit(staged).context("sealing and publishing"))
                        .await?;
                gc(&store, ctx).await;
                tracing::info!(source = %name, %digest, seconds = started.elapsed().as_secs_f64(), "imported and published");
                return Ok(Imported::New {
                    version,
                    downloaded: report.downloaded,
                    written: report.written,
                });
            }
            (Ok(_), None) => return Err(anyhow!("import finished without a staging volume")),
            (Err(e), staged) => {
                if let Some(staged) = staged {
                    abort(&store, staged).await;
                }
                if cancel.is_cancelled() {
                    return Err(anyhow::Error::from(e).context("import cancelled"));
                }
                tracing::warn!(source = %name, candidate = %candidate, error = %format!("{e:#}"), "import attempt failed");
                last = Some(e);
            }
        }
    }
    Err(
        anyhow::Error::from(last.expect("the origin is always a candidate"))
            .context(format!("importing {digest}")),
    )
}

/// The version with `digest` already on the source's backend, if any.
async fn present(
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
fn pinned(image: &SourceRef, digest: Digest) -> SourceRef {
    match image {
        SourceRef::Registry(r) => SourceRef::Registry(r.with_digest(digest)),
        layout @ SourceRef::Layout { .. } => layout.clone(),
    }
}

/// A target that asks the store for a staging volume once the disk's size is known.
///
/// A block pool has room for a fixed number of versions. When it is full, the version
/// that garbage collection would remove after this import is removed first (the
/// current one never is), so a pool sized for `imports_to_keep` devices keeps working.
fn staging_target(
    store: &Arc<Store>,
    ctx: &SourceJob,
    digest: Digest,
    slot: &Arc<Mutex<Option<Staging>>>,
) -> TargetSpec {
    let (store, slot) = (Arc::clone(store), Arc::clone(slot));
    let (source, backend, keep) = (
        ctx.source.name.clone(),
        ctx.backend.clone(),
        ctx.imports_to_keep,
    );
    TargetSpec::Provided(Box::new(move |virtual_size| -> Result<PathBuf, String> {
        let begin = || store.begin(&source, &backend, &digest, virtual_size);
        let begun = match begin() {
            Err(bootsource_storage::Error::PoolExhausted { .. }) if keep > 1 => {
                let freed = store
                    .gc(&source, keep - 1)
                    .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
                tracing::info!(source = %source, removed = freed.removed.len(),
                    "block pool full: removed the oldest kept version to make room");
                begin()
            }
            other => other,
        };
        match begun {
            Ok(Begin::Staging(staging)) => {
                let path = staging.path().to_owned();
                *slot.lock().expect("not poisoned") = Some(staging);
                Ok(path)
            }
            Ok(Begin::AlreadyPresent(_)) => Err("this version was imported meanwhile".into()),
            Err(e) => Err(format!("{:#}", anyhow::Error::from(e))),
        }
    }))
}

async fn abort(store: &Arc<Store>, staging: Staging) {
    let store = Arc::clone(store);
    if let Err(e) =
        blocking(move || store.abort(staging).context("removing the staging volume")).await
    {
        tracing::error!(error = %format!("{e:#}"), "cannot remove a staging volume; it is removed at the next start");
    }
}

async fn gc(store: &Arc<Store>, ctx: &SourceJob) {
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

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("storage thread failed")?
}

/// Describes an error for the poller: its text, and whether the registry asked us to
/// slow down (HTTP 429). oci-client does not pass `Retry-After` on, so backoff applies.
pub fn failure(e: &anyhow::Error) -> Failure {
    let rate_limited = e
        .chain()
        .filter_map(|c| c.downcast_ref::<bootsource_importer::Error>())
        .any(bootsource_importer::Error::is_rate_limited);
    let f = Failure::new(format!("{e:#}"));
    if rate_limited { f.rate_limited() } else { f }
}
