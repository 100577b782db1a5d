//! Cleaning up after crashes, and keeping the `current` links true to the catalog.
//!
//! A record in state `staging` or `removing` whose volume lock can be taken belongs to
//! a process that is gone: its data is removed (staging file or subvolume, a sealed
//! copy that never got published, or a block device, which is discarded) and then its
//! record. Files in a `.staging/` directory that no record names are removed too, but
//! only if their name is a volume id of that source: the sweep never deletes what it
//! does not recognise. Ready versions are never touched here, so the previous current
//! version survives any crash.
//!
//! The `current` links are rewritten from the catalog under the catalog lock, so a
//! process holding an older reading of the catalog can never point a link backwards.

use std::fs;
use std::path::{Path, PathBuf};

use crate::backend::{btrfs, files};
use crate::catalog::{Catalog, State};
use crate::config::BackendKind;
use crate::durable;
use crate::error::Result;
use crate::gc::Current;
use crate::lock::{FileLock, Mode};
use crate::names::{self, VolumeId};
use crate::store::Store;

impl Store {
    /// Removes leftovers of imports and removals whose process died, and repairs the
    /// `current` links. Run by [`Store::open`] and before each import; the daemon may
    /// also call it after cancelling an import whose [`Staging`](crate::Staging) was
    /// dropped.
    pub fn recover(&self) -> Result<()> {
        self.writable()?;
        self.sweep_dead()?;
        let locked = self.catalog.lock()?;
        locked.remove_stale_temp()?;
        self.reconcile_links(&locked.catalog)
    }

    /// Removes the data and records of dead staging and removing volumes.
    pub(crate) fn sweep_dead(&self) -> Result<()> {
        let mut dead: Vec<(crate::catalog::VolumeKey, FileLock)> = Vec::new();
        {
            let locked = self.catalog.lock()?;
            for r in locked
                .catalog
                .volumes
                .iter()
                .filter(|r| r.state != State::Ready)
            {
                if let Some(lock) = self.volume_lock(&r.key(), Mode::ExclusiveNow)? {
                    tracing::info!(volume = %r.volume, source = %r.source, state = ?r.state,
                        "removing leftover of an interrupted operation");
                    dead.push((r.key(), lock));
                }
            }
            self.remove_stray_staging(&locked.catalog)?;
        }
        self.retire(dead, Current::Keep)?;
        Ok(())
    }

    /// Removes entries of `.staging/` directories that no record names.
    fn remove_stray_staging(&self, catalog: &Catalog) -> Result<()> {
        let claimed: Vec<&Path> = catalog
            .volumes
            .iter()
            .filter_map(|r| r.staging_path.as_deref())
            .collect();
        for b in &self.backends {
            let Some(root) = b.root() else { continue };
            for (source, entry) in staging_entries(&root.join(self.namespace())) {
                let is_claimed = claimed
                    .iter()
                    .any(|&p| p == entry || p.parent() == Some(&entry));
                if is_claimed || !VolumeId::is_volume_of(&file_name(&entry), &source) {
                    continue;
                }
                tracing::info!(path = %entry.display(), "removing stray staging entry");
                match b.kind {
                    BackendKind::Btrfs => btrfs::remove(&entry.join(files::DISK_FILE))?,
                    _ => files::remove(&entry)?,
                }
            }
        }
        Ok(())
    }

    /// Points `<state>/<ns>/<source>/current` at the current version (or removes it).
    /// Call with the catalog lock held.
    pub(crate) fn link_current(
        &self,
        catalog: &Catalog,
        namespace: &str,
        source: &str,
    ) -> Result<()> {
        let dir = self.config.state_dir.join(namespace).join(source);
        let link = dir.join("current");
        durable::remove_stale_temp(&link)?;
        match catalog.current(namespace, source) {
            Some(r) => {
                durable::create_dirs(&dir)?;
                durable::replace_symlink(&link, &r.path)
            }
            None => {
                if durable::remove_if_exists(&link)? {
                    durable::fsync_dir(&dir)?;
                }
                Ok(())
            }
        }
    }

    /// Rewrites every `current` link of every source the catalog or the state
    /// directory knows, in every namespace. Call with the catalog lock held.
    pub(crate) fn reconcile_links(&self, catalog: &Catalog) -> Result<()> {
        let mut pairs: Vec<(String, String)> = catalog
            .volumes
            .iter()
            .map(|r| (r.namespace.clone(), r.source.clone()))
            .collect();
        let mut namespaces: Vec<String> = subdirs(&self.config.state_dir)
            .into_iter()
            .filter(|ns| names::check_namespace(ns).is_ok())
            .collect();
        namespaces.sort();
        namespaces.dedup();
        for ns in &namespaces {
            for source in subdirs(&self.config.state_dir.join(ns)) {
                if names::check_source_name(&source).is_ok() {
                    pairs.push((ns.clone(), source));
                }
            }
        }
        pairs.sort();
        pairs.dedup();
        for (ns, source) in &pairs {
            self.link_current(catalog, ns, source)?;
        }
        Ok(())
    }
}

/// `(source, <root-ns>/<source>/.staging/<entry>)` for every staging entry.
fn staging_entries(namespace_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for source in subdirs(namespace_dir) {
        let staging = namespace_dir.join(&source).join(files::STAGING_DIR);
        let Ok(entries) = fs::read_dir(&staging) else {
            continue;
        };
        out.extend(entries.flatten().map(|e| (source.clone(), e.path())));
    }
    out
}

/// Names of the subdirectories of `dir` (none if it does not exist).
fn subdirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
