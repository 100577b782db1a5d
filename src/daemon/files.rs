//! Boot sources that are single files over HTTP(S): polling them, importing them.
//!
//! A registry names every version by a digest a `HEAD` returns; a web server does not.
//! A version's digest is the sha256 of the file's bytes, and a poll names what the
//! server has now as well as it can without downloading it:
//!
//! - a checksum (configured, or the checksum file's line): its sha256 *is* the digest;
//!   a sha512 names the content too, and the digest it was last seen with is reused;
//! - else one conditional request (`If-None-Match` / `If-Modified-Since`) with the
//!   validators of the version imported last: unchanged (304, or the same `ETag`),
//!   the digest imported then;
//! - a change (or nothing known yet) gets a *provisional* digest, derived from the URL
//!   and the new validators: stable across polls, never a content digest. The import
//!   stages under it and, once the bytes are in, publishes under their sha256
//!   (`Store::commit_as`; an unchanged file re-uploaded is published again, not kept
//!   twice), and tells the poller which digest it was (`import_succeeded_as`), so
//!   `outdated` is 0 again at once;
//! - a server with no validators at all is polled by downloading the file and hashing
//!   it (one log line says so).
//!
//! What was seen last is remembered per source in `<state_dir>/file-sources/NAME.json`
//! (`image`, `identity`, `validators`, `digest`), written after each import. It is a
//! cache: lost, the next poll downloads the file once and finds it unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bootsource_importer::{
    Cancel, Digest, ImageRef, Import, ImportReport, Probe, Progress, Validators,
};
use bootsource_poller::Failure;
use bootsource_storage::{Committed, Stage, Store};
use serde::{Deserialize, Serialize};

use super::jobs::{self, Imported, SourceJob};

/// What was last imported for a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The source's `image` then (a changed URL forgets everything).
    pub image: String,
    /// What named the file's content: its checksum, or its validators.
    pub identity: String,
    /// Sent back in the next poll's conditional request.
    pub validators: Option<Validators>,
    /// The sha256 of the bytes imported.
    pub digest: Digest,
}

/// `<state_dir>/file-sources/`, one JSON file per source.
#[derive(Debug, Clone)]
pub struct SeenFiles {
    dir: PathBuf,
}

impl SeenFiles {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("file-sources"),
        }
    }

    fn path(&self, source: &str) -> PathBuf {
        self.dir.join(format!("{source}.json"))
    }

    /// What was seen for `source` with `image`, if anything.
    pub fn get(&self, source: &str, image: &ImageRef) -> Option<Seen> {
        let bytes = std::fs::read(self.path(source)).ok()?;
        let seen: Seen = serde_json::from_slice(&bytes).ok()?;
        (seen.image == image.to_string()).then_some(seen)
    }

    /// Records `seen` for `source` (temp file + rename).
    pub fn put(&self, source: &str, seen: &Seen) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{source}.json.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(seen)?)?;
        std::fs::rename(tmp, self.path(source))
    }
}

/// The digest a single-file source's content has now, as far as one request tells.
pub async fn poll(ctx: &SourceJob) -> Result<Digest, Failure> {
    let image = &ctx.source.image;
    let seen = ctx.seen.get(&ctx.source.name, image);
    let options = ctx.import_options(ctx.registry.clone(), Progress::new(), Cancel::default());
    let known = seen.as_ref().and_then(|s| s.validators.as_ref());
    let probe = bootsource_importer::probe_file(image, &options, known)
        .await
        .map_err(|e| jobs::failure(&anyhow::Error::from(e)))?;
    Ok(match probe {
        Probe::Checksum(c) => match c.as_digest() {
            Some(digest) => digest,
            None => named(seen.as_ref(), image, &identity_of_checksum(&c)),
        },
        Probe::Hashed(digest) => digest,
        Probe::NotModified => match &seen {
            Some(s) => s.digest,
            None => provisional(image, "not modified, nothing known"),
        },
        Probe::Changed(v) => named(seen.as_ref(), image, &v.identity().unwrap_or_default()),
    })
}

fn identity_of_checksum(c: &bootsource_importer::Checksum) -> String {
    format!("checksum {c}")
}

/// The digest last seen under `identity`, else a provisional one.
fn named(seen: Option<&Seen>, image: &ImageRef, identity: &str) -> Digest {
    match seen {
        Some(s) if s.identity == identity => s.digest,
        _ => provisional(image, identity),
    }
}

/// A stable stand-in digest for content known only by `identity`.
fn provisional(image: &ImageRef, identity: &str) -> Digest {
    Digest::of(format!("bootsource provisional digest\n{image}\n{identity}\n").as_bytes())
}

/// Imports the file into the source's backend under `digest` (real or provisional)
/// and publishes it under the sha256 of its bytes.
pub async fn import(
    store: Arc<Store>,
    ctx: &SourceJob,
    digest: Digest,
    progress: Arc<Progress>,
    cancel: Cancel,
) -> anyhow::Result<Imported> {
    if let Some(version) = jobs::present(&store, ctx, digest).await? {
        return jobs::publish_again(&store, version).await;
    }
    let options = ctx.import_options(ctx.registry.clone(), Arc::clone(&progress), cancel);
    let image = &ctx.source.image;
    let attempt = Import::start(image, &options)
        .await
        .with_context(|| format!("importing {image}"))?;
    let size = attempt.disk().virtual_size;
    let staging = match jobs::stage(&store, ctx, digest, size).await? {
        Stage::AlreadyPresent(version) => return jobs::publish_again(&store, version).await,
        Stage::Staging(staging) => staging,
    };
    let report = match attempt.write_into(staging.place()).await {
        Ok(report) => report,
        Err(e) => {
            jobs::abort(&store, staging).await;
            return Err(anyhow::Error::from(e).context(format!("importing {image}")));
        }
    };
    let (store2, sha256) = (Arc::clone(&store), report.digest);
    let committed = jobs::blocking(move || {
        progress
            .time_commit(|| store2.commit_as(staging, &sha256))
            .context("sealing and publishing")
    })
    .await?;
    remember(ctx, &report);
    jobs::gc(&store, ctx).await;
    Ok(match committed {
        Committed::New(version) => Imported::New {
            version,
            downloaded: report.downloaded,
            written: report.written,
        },
        Committed::AlreadyPresent(version) => Imported::AlreadyPresent(version),
    })
}

/// Records what this import saw, for the next poll.
fn remember(ctx: &SourceJob, report: &ImportReport) {
    let identity = report
        .checksum
        .as_ref()
        .map(identity_of_checksum)
        .or_else(|| report.validators.as_ref().and_then(Validators::identity));
    let Some(identity) = identity else {
        return;
    };
    let seen = Seen {
        image: ctx.source.image.to_string(),
        identity,
        validators: report.validators.clone(),
        digest: report.digest,
    };
    if let Err(e) = ctx.seen.put(&ctx.source.name, &seen) {
        tracing::warn!(source = %ctx.source.name, error = %e,
            "cannot record the file's validators; the next poll downloads it once to compare");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_files_round_trip_and_forget_another_image() {
        let dir = tempfile::tempdir().unwrap();
        let files = SeenFiles::new(dir.path());
        let image: ImageRef = "https://127.0.0.1:1/a.qcow2".parse().unwrap();
        assert_eq!(files.get("a", &image), None);
        let seen = Seen {
            image: image.to_string(),
            identity: "etag \"1\"".into(),
            validators: None,
            digest: Digest::of(b"a"),
        };
        files.put("a", &seen).unwrap();
        assert_eq!(files.get("a", &image), Some(seen.clone()));
        let other: ImageRef = "https://127.0.0.1:1/b.qcow2".parse().unwrap();
        assert_eq!(files.get("a", &other), None);
        // The same identity names the digest seen; another gets a stable stand-in.
        assert_eq!(named(Some(&seen), &image, "etag \"1\""), seen.digest);
        let p = named(Some(&seen), &image, "etag \"2\"");
        assert_ne!(p, seen.digest);
        assert_eq!(p, named(None, &image, "etag \"2\""));
    }
}
