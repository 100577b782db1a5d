//! The [`Store`]: opening it, and what it reports.
//!
//! A `Store` holds only its validated configuration; every operation reads the catalog
//! from disk (under the catalog lock when it changes it), so any number of `Store`s —
//! the daemon's, a `bootsource clone`, a `bootsource status`, threads of one process —
//! can be open on the same state directory at once. [`Store::open`] is for processes
//! that change things: it creates directories, probes the backends and runs
//! [`recover`](Store::recover), which only touches volumes whose owner is gone (see
//! [`lock`](crate::lock)), so opening it while the daemon imports is safe.
//! [`Store::open_read_only`] writes nothing at all, for `status` run by anyone.
//!
//! State directory layout:
//!
//! ```text
//! <state>/catalog.json                                  the catalog (see `catalog`)
//! <state>/catalog.lock                                  its lock
//! <state>/.locks/<namespace>/<backend>/<volume>.lock    volume locks
//! <state>/<namespace>/<source>/current -> <raw disk>    stable path of the current version
//! ```

use std::path::{Path, PathBuf};

use crate::backend;
use crate::catalog::{CatalogFile, VolumeKey};
use crate::config::{Backend, StoreConfig};
use crate::durable;
use crate::error::{Error, Result};
use crate::lock::{FileLock, Mode};
use crate::names;
use crate::status::{SourceStatus, Version};

/// The boot-source store on this node.
#[derive(Debug)]
pub struct Store {
    pub(crate) config: StoreConfig,
    pub(crate) backends: Vec<Backend>,
    pub(crate) catalog: CatalogFile,
    read_only: bool,
}

impl Store {
    /// Opens the store for changes: validates the config, creates the state directory
    /// and backend roots, checks each backend can do what its kind promises (reflinks,
    /// btrfs), removes leftovers of dead imports and removals, and repairs the
    /// `current` links from the catalog.
    pub fn open(config: StoreConfig) -> Result<Self> {
        let backends = config.validate()?;
        durable::create_dirs(&config.state_dir)?;
        for b in &backends {
            backend::probe(b)?;
        }
        let store = Self {
            catalog: CatalogFile::new(&config.state_dir),
            config,
            backends,
            read_only: false,
        };
        store.recover()?;
        Ok(store)
    }

    /// Opens the store to read the catalog only (`bootsource status`): nothing is
    /// created, probed or cleaned, and every changing call fails with
    /// [`Error::ReadOnly`].
    pub fn open_read_only(config: StoreConfig) -> Result<Self> {
        let backends = config.validate()?;
        Ok(Self {
            catalog: CatalogFile::new(&config.state_dir),
            config,
            backends,
            read_only: true,
        })
    }

    /// The golden-image namespace new versions go to.
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.config.state_dir
    }

    /// The stable path VM tools can use for a source's current version:
    /// `<state>/<namespace>/<source>/current`, a symlink to its raw file or device,
    /// switched atomically on publish (absent while the source has none).
    pub fn current_link(&self, source: &str) -> PathBuf {
        self.config
            .state_dir
            .join(&self.config.namespace)
            .join(source)
            .join("current")
    }

    /// The current version of a source, if it has one.
    pub fn current(&self, source: &str) -> Result<Option<Version>> {
        Ok(self.source_status(source)?.current)
    }

    /// Every sealed version of a source in this namespace, oldest first.
    pub fn versions(&self, source: &str) -> Result<Vec<Version>> {
        Ok(self.source_status(source)?.versions)
    }

    /// What the store holds for one source in this namespace.
    pub fn source_status(&self, source: &str) -> Result<SourceStatus> {
        names::check_source_name(source)?;
        let catalog = self.catalog.read()?;
        let ns = self.namespace();
        Ok(SourceStatus::from_records(
            source,
            catalog
                .volumes
                .iter()
                .filter(|r| r.namespace == ns && r.source == source),
        ))
    }

    /// Every source with anything in this namespace, by name.
    pub fn sources(&self) -> Result<Vec<SourceStatus>> {
        let catalog = self.catalog.read()?;
        let ns = self.namespace();
        Ok(catalog
            .sources(ns)
            .iter()
            .map(|name| {
                SourceStatus::from_records(
                    name,
                    catalog
                        .volumes
                        .iter()
                        .filter(|r| r.namespace == ns && &r.source == name),
                )
            })
            .collect())
    }

    /// Sealed versions in other namespaces: left where they were when the namespace
    /// changed, still holding their space (and block devices), reported rather than
    /// moved or deleted. [`remove_orphans`](Store::remove_orphans) removes them.
    pub fn orphans(&self) -> Result<Vec<Version>> {
        let catalog = self.catalog.read()?;
        let mut orphans: Vec<Version> = catalog
            .volumes
            .iter()
            .filter(|r| {
                r.namespace != self.config.namespace && r.state == crate::catalog::State::Ready
            })
            .map(Version::from)
            .collect();
        orphans.sort_by(|a, b| {
            (&a.namespace, &a.source, a.created).cmp(&(&b.namespace, &b.source, b.created))
        });
        Ok(orphans)
    }

    pub(crate) fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly(self.config.state_dir.clone()));
        }
        Ok(())
    }

    pub(crate) fn backend(&self, name: &str) -> Result<&Backend> {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| Error::UnknownBackend(name.to_owned()))
    }

    pub(crate) fn volume_lock(&self, key: &VolumeKey, mode: Mode) -> Result<Option<FileLock>> {
        let path = self
            .config
            .state_dir
            .join(".locks")
            .join(&key.namespace)
            .join(&key.backend)
            .join(format!("{}.lock", key.volume));
        FileLock::acquire(&path, mode)
    }

    /// Everything a clone must not write into: the state directory (which holds the
    /// namespaces' `current` links), every backend root (which holds the namespaces'
    /// volumes) and every pool device; canonical where they exist.
    pub(crate) fn managed_paths(&self) -> Vec<PathBuf> {
        let mut managed = vec![self.config.state_dir.clone()];
        for b in &self.backends {
            match &b.site {
                crate::config::Site::Root(root) => managed.push(root.clone()),
                crate::config::Site::Pool(devices) => managed.extend(devices.iter().cloned()),
            }
        }
        managed
            .into_iter()
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
            .collect()
    }
}
