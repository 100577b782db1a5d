//! A version's life: staging → sealed → published, and holding a version.
//!
//! ```text
//! stage   catalog lock: digest already on this backend? → AlreadyPresent
//!         volume lock (exclusive, kept by the Staging) · choose location / device
//!         (a size known only at the end: a file that grows; a block pool refuses)
//!         (a full block pool: the version GC would drop next is removed first)
//!         record {state: staging} saved · staging file dir / subvolume created
//!         the place opened: a new file (O_EXCL | O_NOFOLLOW) or the device (O_EXCL)
//! (importer writes into staging.place())
//! commit  the place finished (device gaps zeroed, fsync) and closed; its length is
//!         the record's size from here on
//!         seal: size check, fsync, chmod 0444, snapshot or rename into place
//!         catalog lock: record ready + current, old current demoted — ONE catalog
//!         write, the atomic publish · `current` symlink replaced (tmp + rename)
//!         volume lock released
//! abort   record marked removing · data removed · record dropped
//! ```
//!
//! The catalog write in `commit` is the commit point: before it, the previous version is
//! current and everything new is named by a `staging` record whose lock dies with the
//! process; after it, the new version is current. The symlink follows the catalog and
//! is repaired from it at start-up, so a crash between the two is harmless.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bootsource_place::{Disk, DiskSize, Place};

use crate::backend;
use crate::catalog::{State, VolumeKey, VolumeRecord};
use crate::config::BackendKind;
use crate::error::{Error, Result};
use crate::gc::Current;
use crate::lock::{FileLock, Mode};
use crate::names::{Digest, VolumeId};
use crate::status::Version;
use crate::step;
use crate::store::Store;
use crate::time::Timestamp;

/// What [`Store::stage`] found.
#[derive(Debug)]
pub enum Stage {
    /// This digest is already a sealed version on this backend: nothing to import.
    /// [`Store::publish`] makes it current again if it is not.
    AlreadyPresent(Version),
    /// A staging volume to import into.
    Staging(Staging),
}

/// A volume being imported. Give it to [`Store::commit`] or [`Store::abort`]; dropped
/// without either (a cancelled task, a panic), it is left for
/// [`recover`](Store::recover), which the next `begin` or start-up runs.
#[derive(Debug)]
pub struct Staging {
    key: VolumeKey,
    source: String,
    digest: Digest,
    path: PathBuf,
    virtual_size: DiskSize,
    /// The opened place; taken by `commit` and `abort`, which close it first.
    disk: Option<Arc<Disk>>,
    lock: Option<FileLock>,
}

impl Staging {
    /// Where the importer writes the raw disk: the staging file, created and sized
    /// (all holes), or the pool device, opened exclusively. Writes to it are the
    /// import; [`Store::commit`] finishes and seals it.
    pub fn place(&self) -> Arc<dyn Place> {
        let disk = self
            .disk
            .as_ref()
            .expect("a staging volume has a place until consumed");
        Arc::clone(disk) as Arc<dyn Place>
    }

    /// The staging file or device, for messages (it is already open: see
    /// [`place`](Self::place)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The volume id.
    pub fn volume(&self) -> &VolumeId {
        &self.key.volume
    }

    /// The manifest digest being imported.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The boot source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The virtual size announced to `begin`: known (`commit` checks the file has
    /// it), or known when the importer ends the place.
    pub fn virtual_size(&self) -> DiskSize {
        self.virtual_size
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.lock.is_some() {
            tracing::warn!(volume = %self.key.volume, "staging volume dropped without commit or abort; \
                removed by the next recovery");
        }
    }
}

/// What [`Store::commit_as`] did.
#[derive(Debug)]
pub enum Committed {
    /// The staged volume is the new current version.
    New(Version),
    /// A version with the digest was already there: it is current again, and the
    /// staged volume is gone.
    AlreadyPresent(Version),
}

/// A version a clone (or anything reading it) is using: garbage collection skips it
/// until this is dropped.
#[derive(Debug)]
pub struct Hold {
    version: Version,
    _lock: FileLock,
}

impl Hold {
    /// The version held.
    pub fn version(&self) -> &Version {
        &self.version
    }
}

impl Store {
    /// Starts importing `digest` for `source` onto `backend`, once the image's virtual
    /// size is known (a block pool needs it to choose a device) or known to be known
    /// only at the end (a file-based backend's staging file then grows as written, up to
    /// the size's limit), and opens the place the importer writes into.
    ///
    /// A block pool has room for a fixed number of versions. When it is full and the
    /// source keeps more than one (`keep`), the version garbage collection would remove
    /// after this import is removed first (never the current one), so a pool sized for
    /// `imports_to_keep` devices keeps working.
    pub fn stage(
        &self,
        source: &str,
        backend: &str,
        digest: &Digest,
        virtual_size: DiskSize,
        keep: usize,
    ) -> Result<Stage> {
        match self.begin(source, backend, digest, virtual_size) {
            Err(Error::PoolExhausted { .. }) if keep > 1 => {
                let freed = self.gc(source, keep - 1)?;
                tracing::info!(
                    source,
                    removed = freed.removed.len(),
                    "block pool full: removed the oldest kept version to make room"
                );
                self.begin(source, backend, digest, virtual_size)
            }
            other => other,
        }
    }

    fn begin(
        &self,
        source: &str,
        backend: &str,
        digest: &Digest,
        virtual_size: DiskSize,
    ) -> Result<Stage> {
        self.writable()?;
        crate::names::check_source_name(source)?;
        let backend = self.backend(backend)?;
        if backend.kind == BackendKind::Block && virtual_size.known().is_none() {
            return Err(Error::SizeNeeded {
                backend: backend.name.clone(),
            });
        }
        self.sweep_dead()?;
        let mut locked = self.catalog.lock()?;
        let namespace = self.namespace().to_owned();
        let volume = locked
            .catalog
            .volume_for(&namespace, &backend.name, source, digest)?;
        let key = VolumeKey {
            namespace,
            backend: backend.name.clone(),
            volume,
        };
        if let Some(r) = locked.catalog.find(&key) {
            return match r.state {
                State::Ready => Ok(Stage::AlreadyPresent(r.into())),
                State::Staging => Err(busy(&key, "another import is staging it")),
                State::Removing => Err(busy(&key, "it is being removed")),
            };
        }
        let lock = self
            .volume_lock(&key, Mode::ExclusiveNow)?
            .ok_or_else(|| busy(&key, "another process holds its lock"))?;
        let location = backend::locate(
            backend,
            &locked.catalog,
            &key.namespace,
            source,
            key.volume.as_str(),
            virtual_size.capacity(),
        )?;
        // Until commit, a size known only at the end is recorded as its limit.
        let record = VolumeRecord::staging(
            &key,
            source,
            digest,
            backend,
            location,
            virtual_size.capacity(),
        );
        locked.catalog.volumes.push(record.clone());
        locked.save()?;
        step::reached("begin.recorded");
        let opened = backend::prepare_staging(&record)
            .and_then(|()| backend::open_staging(&record, virtual_size, self.config.min_free));
        drop(locked);
        let disk = match opened {
            Ok(disk) => disk,
            Err(e) => {
                self.discard_staging(key, lock);
                return Err(e);
            }
        };
        step::reached("begin.prepared");
        tracing::info!(source, digest = %digest, volume = %record.volume, backend = %backend.name,
            size = ?virtual_size, "staging");
        Ok(Stage::Staging(Staging {
            key,
            source: source.to_owned(),
            digest: *digest,
            path: record.staging_path.unwrap_or(record.path),
            virtual_size,
            disk: Some(Arc::new(disk)),
            lock: Some(lock),
        }))
    }

    /// Removes a staging volume after a failure, leaving it to recovery if even that
    /// fails (the original error is the one worth reporting).
    fn discard_staging(&self, key: VolumeKey, lock: FileLock) {
        let volume = key.volume.clone();
        if let Err(e) = self.retire(vec![(key, lock)], Current::Keep) {
            tracing::warn!(volume = %volume, error = %e,
                "could not remove the staging volume; left for recovery");
        }
    }

    /// Seals the imported volume and publishes it as its source's current version, in
    /// one atomic catalog write. On failure the staging volume is removed and the
    /// previous current version stays current.
    pub fn commit(&self, staging: Staging) -> Result<Version> {
        self.seal_and_publish(staging, None)
    }

    /// [`commit`](Self::commit) for a version whose digest is known only now. A file
    /// downloaded without a checksum is named by the sha256 of its bytes, which exists
    /// only once they all arrived, while its volume had to be staged before: under a
    /// provisional digest. The record takes `digest` in the same atomic catalog write
    /// that publishes it (its volume keeps the id it was staged under), so a crash
    /// leaves either the staging record, removed at the next start, or the published
    /// version. If a version with `digest` is already on this backend (the file was
    /// re-uploaded unchanged), the staging volume is removed and that version is made
    /// current again instead.
    pub fn commit_as(&self, staging: Staging, digest: &Digest) -> Result<Committed> {
        if staging.digest == *digest {
            return self.commit(staging).map(Committed::New);
        }
        let existing = self
            .catalog
            .load()?
            .ready(self.namespace(), &staging.source)
            .find(|r| r.backend == staging.key.backend && r.digest == *digest)
            .map(Version::from);
        if let Some(version) = existing {
            self.abort(staging)?;
            return self.publish(&version).map(Committed::AlreadyPresent);
        }
        self.seal_and_publish(staging, Some(*digest))
            .map(Committed::New)
    }

    fn seal_and_publish(&self, mut staging: Staging, digest: Option<Digest>) -> Result<Version> {
        self.writable()?;
        let lock = staging.lock.take();
        let length = match finish(staging.disk.take()) {
            Ok(length) => length,
            Err(e) => {
                if let Some(lock) = lock {
                    self.discard_staging(staging.key.clone(), lock);
                }
                return Err(e);
            }
        };
        let mut record = self
            .catalog
            .load()?
            .find(&staging.key)
            .filter(|r| r.state == State::Staging)
            .cloned()
            .ok_or_else(|| lost(&staging.key))?;
        // A disk of unknown size now has its length: the version's size.
        record.size = length.unwrap_or(record.size);
        if let Err(e) = backend::seal(&record) {
            if let Some(lock) = lock {
                self.discard_staging(staging.key.clone(), lock);
            }
            return Err(e);
        }
        step::reached("commit.sealed");
        let mut locked = self.catalog.lock()?;
        let now = Timestamp::now();
        let r = locked
            .catalog
            .find_mut(&staging.key)
            .ok_or_else(|| lost(&staging.key))?;
        r.state = State::Ready;
        r.staging_path = None;
        r.size = record.size;
        r.created = now;
        if let Some(digest) = digest {
            r.digest = digest;
        }
        locked.catalog.set_current(&staging.key, now);
        locked.save()?;
        step::reached("commit.published");
        if let Err(e) = self.link_current(&locked.catalog, &staging.key.namespace, &staging.source)
        {
            tracing::warn!(source = %staging.source, error = %e,
                "could not switch the current link; repaired at the next start");
        }
        step::reached("commit.linked");
        let version = locked
            .catalog
            .find(&staging.key)
            .map(Version::from)
            .ok_or_else(|| lost(&staging.key))?;
        drop(locked);
        drop(lock);
        tracing::info!(source = %version.source, digest = %version.digest, volume = %version.volume,
            path = %version.path.display(), "published");
        Ok(version)
    }

    /// Gives up an import: the staging volume (file, subvolume, or device, which is
    /// discarded) is removed; the current version is untouched.
    pub fn abort(&self, mut staging: Staging) -> Result<()> {
        self.writable()?;
        // Closed first: a pool device is opened exclusively again to be discarded.
        drop(staging.disk.take());
        let Some(lock) = staging.lock.take() else {
            return Ok(());
        };
        tracing::info!(source = %staging.source, volume = %staging.key.volume, "import aborted");
        self.retire(vec![(staging.key.clone(), lock)], Current::Keep)?;
        Ok(())
    }

    /// Makes an existing version current again (the tag moved back to a digest still
    /// kept, found by [`begin`](Store::begin) as `AlreadyPresent`).
    pub fn publish(&self, version: &Version) -> Result<Version> {
        self.writable()?;
        let key = key_of(version);
        let mut locked = self.catalog.lock()?;
        match locked.catalog.find(&key) {
            Some(r) if r.state == State::Ready && r.current => return Ok(r.into()),
            Some(r) if r.state == State::Ready => {}
            _ => return Err(gone(version)),
        }
        locked.catalog.set_current(&key, Timestamp::now());
        locked.save()?;
        self.link_current(&locked.catalog, &key.namespace, &version.source)?;
        let published = locked
            .catalog
            .find(&key)
            .map(Version::from)
            .ok_or_else(|| gone(version))?;
        tracing::info!(source = %published.source, volume = %published.volume, "published again");
        Ok(published)
    }

    /// Holds a version against garbage collection (a shared volume lock), after
    /// checking it still exists. Waits while the version is being removed, then fails
    /// with [`Error::VersionGone`].
    pub fn hold(&self, version: &Version) -> Result<Hold> {
        self.writable()?;
        let key = key_of(version);
        let lock = self
            .volume_lock(&key, Mode::Shared)?
            .ok_or_else(|| busy(&key, "lock refused"))?;
        let still_there = self
            .catalog
            .load()?
            .find(&key)
            .is_some_and(|r| r.state == State::Ready);
        if !still_there {
            return Err(gone(version));
        }
        Ok(Hold {
            version: version.clone(),
            _lock: lock,
        })
    }

    /// Records that a version was just used.
    pub(crate) fn touch(&self, version: &Version) -> Result<()> {
        let mut locked = self.catalog.lock()?;
        if let Some(r) = locked.catalog.find_mut(&key_of(version)) {
            r.last_used = Timestamp::now();
            locked.save()?;
        }
        Ok(())
    }
}

/// Zeroes what the importer skipped on a device, fsyncs and closes the place; returns
/// the disk's length.
fn finish(disk: Option<Arc<Disk>>) -> Result<Option<u64>> {
    let Some(disk) = disk else {
        return Ok(None);
    };
    let path = disk.path().to_owned();
    disk.finish()
        .map(|_| disk.length())
        .map_err(|source| Error::Place { path, source })
}

pub(crate) fn key_of(v: &Version) -> VolumeKey {
    VolumeKey {
        namespace: v.namespace.clone(),
        backend: v.backend.clone(),
        volume: v.volume.clone(),
    }
}

fn busy(key: &VolumeKey, why: &'static str) -> Error {
    Error::VolumeBusy {
        volume: key.volume.clone(),
        backend: key.backend.clone(),
        why,
    }
}

fn lost(key: &VolumeKey) -> Error {
    Error::StagingLost {
        volume: key.volume.clone(),
        backend: key.backend.clone(),
    }
}

fn gone(v: &Version) -> Error {
    Error::VersionGone {
        name: v.source.clone(),
        volume: v.volume.clone(),
    }
}
