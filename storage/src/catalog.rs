//! The catalog: the one on-disk record of every volume the store owns, in every
//! namespace and on every backend, and of which version of each source is current.
//!
//! It is `<state>/catalog.json`, replaced atomically (tmp + fsync + rename + directory
//! fsync, see [`durable`](crate::durable)) under the catalog lock, and it is the source of
//! truth: the `current` symlinks are derived from it and repaired from it at start-up.
//!
//! ```json
//! {
//!   "format": 1,
//!   "volumes": [
//!     {
//!       "namespace": "os-images", "source": "fedora", "volume": "fedora-0123456789ab",
//!       "digest": "sha256:0123…", "backend": "local", "kind": "dir", "format": "volume",
//!       "state": "ready",
//!       "path": "/var/lib/bootsource/os-images/fedora/fedora-0123456789ab",
//!       "size": 5368709120,
//!       "created": "2025-11-25T03:55:00.123456789Z",
//!       "last_used": "2025-11-25T03:55:00.123456789Z",
//!       "current": true
//!     }
//!   ]
//! }
//! ```
//!
//! A record is written *before* anything it names is created on disk, and removed only
//! *after* its data is gone. `state` is `staging` (an import writing to
//! `staging_path`), `ready` (sealed; at most one ready record per source and namespace
//! is `current`) or `removing` (being deleted). So every file, subvolume or device the
//! store ever touches is named by a record, a crash at any point leaves records that say
//! what to clean, and a block device is reserved from the moment it is chosen until it
//! has been discarded. Records are keyed by namespace, backend and volume id: the same
//! digest may exist on two backends while a source moves between them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::Location;
use crate::config::{Backend, BackendKind, Format};
use crate::durable;
use crate::error::{Error, Result, io_err};
use crate::lock::{FileLock, Mode};
use crate::names::{Digest, VolumeId};
use crate::problem::CatalogProblem;
use crate::time::Timestamp;

/// The catalog format this code reads and writes.
pub(crate) const FORMAT: u32 = 1;

/// Where a volume is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    Staging,
    Ready,
    Removing,
}

/// Identifies a volume across the whole store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct VolumeKey {
    pub namespace: String,
    pub backend: String,
    pub volume: VolumeId,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VolumeRecord {
    pub namespace: String,
    pub source: String,
    pub volume: VolumeId,
    pub digest: Digest,
    pub backend: String,
    pub kind: BackendKind,
    pub format: Format,
    pub state: State,
    /// The raw disk once sealed: a file, or a device for `block`.
    pub path: PathBuf,
    /// Where the importer writes while staging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_path: Option<PathBuf>,
    /// Virtual size in bytes. While staging a disk whose size is known only at its
    /// end: the most it may grow to (`max_virtual_size`), replaced by its length in
    /// the catalog write that publishes it.
    pub size: u64,
    pub created: Timestamp,
    pub last_used: Timestamp,
    #[serde(default)]
    pub current: bool,
}

impl VolumeRecord {
    /// A new record in state `staging`.
    pub fn staging(
        key: &VolumeKey,
        source: &str,
        digest: &Digest,
        backend: &Backend,
        location: Location,
        size: u64,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            namespace: key.namespace.clone(),
            source: source.to_owned(),
            volume: key.volume.clone(),
            digest: *digest,
            backend: backend.name.clone(),
            kind: backend.kind,
            format: backend.format,
            state: State::Staging,
            path: location.path,
            staging_path: Some(location.staging_path),
            size,
            created: now,
            last_used: now,
            current: false,
        }
    }

    pub fn key(&self) -> VolumeKey {
        VolumeKey {
            namespace: self.namespace.clone(),
            backend: self.backend.clone(),
            volume: self.volume.clone(),
        }
    }

    pub fn is(&self, key: &VolumeKey) -> bool {
        self.namespace == key.namespace && self.backend == key.backend && self.volume == key.volume
    }
}

/// The whole catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Catalog {
    pub format: u32,
    pub volumes: Vec<VolumeRecord>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            format: FORMAT,
            volumes: Vec::new(),
        }
    }
}

impl Catalog {
    pub fn find(&self, key: &VolumeKey) -> Option<&VolumeRecord> {
        self.volumes.iter().find(|r| r.is(key))
    }

    pub fn find_mut(&mut self, key: &VolumeKey) -> Option<&mut VolumeRecord> {
        self.volumes.iter_mut().find(|r| r.is(key))
    }

    pub fn remove(&mut self, key: &VolumeKey) {
        self.volumes.retain(|r| !r.is(key));
    }

    /// The sealed versions of a source.
    pub fn ready<'a>(
        &'a self,
        namespace: &'a str,
        source: &'a str,
    ) -> impl Iterator<Item = &'a VolumeRecord> + 'a {
        self.volumes.iter().filter(move |r| {
            r.state == State::Ready && r.namespace == namespace && r.source == source
        })
    }

    pub fn current(&self, namespace: &str, source: &str) -> Option<&VolumeRecord> {
        self.volumes.iter().find(|r| {
            r.current && r.state == State::Ready && r.namespace == namespace && r.source == source
        })
    }

    /// Makes `key` the current version of its source; the one it replaces was in use
    /// until now, which is what its `last_used` becomes.
    pub fn set_current(&mut self, key: &VolumeKey, now: Timestamp) {
        let Some(source) = self.find(key).map(|r| r.source.clone()) else {
            return;
        };
        for r in &mut self.volumes {
            if r.namespace == key.namespace && r.source == source {
                let becomes = r.is(key);
                if r.current || becomes {
                    r.last_used = now;
                }
                r.current = becomes;
            }
        }
    }

    /// The volume id of `digest` for `source` on `backend` in `namespace`: the id of its
    /// record if it has one (in any state), else the first of its
    /// [candidates](VolumeId::candidates) no record of another digest holds. Never the
    /// id of another digest, so a crafted digest sharing the short id cannot pass for
    /// this one.
    pub fn volume_for(
        &self,
        namespace: &str,
        backend: &str,
        source: &str,
        digest: &Digest,
    ) -> Result<VolumeId> {
        let (short, long) = VolumeId::candidates(source, digest)?;
        let here: Vec<&VolumeRecord> = self
            .volumes
            .iter()
            .filter(|r| r.namespace == namespace && r.backend == backend && r.source == source)
            .collect();
        if let Some(r) = here.iter().find(|r| r.digest == *digest) {
            return Ok(r.volume.clone());
        }
        let free = |id: &VolumeId| here.iter().all(|r| r.volume != *id);
        if free(&short) {
            return Ok(short);
        }
        tracing::warn!(source, digest = %digest, volume = %short,
            "another digest holds this digest's short volume id; using the long one");
        if free(&long) {
            return Ok(long);
        }
        Err(Error::VolumeIdTaken {
            digest: *digest,
            name: source.to_owned(),
        })
    }

    /// The record holding a block device, in any state and namespace.
    pub fn device_holder(&self, device: &Path) -> Option<&VolumeRecord> {
        let canonical = std::fs::canonicalize(device).ok();
        self.volumes.iter().find(|r| {
            r.kind == BackendKind::Block
                && (r.path == device
                    || canonical.is_some() && std::fs::canonicalize(&r.path).ok() == canonical)
        })
    }

    /// Source names with any record in `namespace`, sorted.
    pub fn sources(&self, namespace: &str) -> Vec<String> {
        let mut names: Vec<_> = self
            .volumes
            .iter()
            .filter(|r| r.namespace == namespace)
            .map(|r| r.source.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn check(&self) -> std::result::Result<(), CatalogProblem> {
        let mut keys: Vec<_> = self.volumes.iter().map(VolumeRecord::key).collect();
        keys.sort();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(CatalogProblem::DuplicateVolume(w[0].volume.clone()));
        }
        if let Some(r) = self
            .volumes
            .iter()
            .find(|r| r.current && r.state != State::Ready)
        {
            return Err(CatalogProblem::CurrentNotSealed(r.source.clone()));
        }
        let mut currents: Vec<_> = self
            .volumes
            .iter()
            .filter(|r| r.current)
            .map(|r| (&r.namespace, &r.source))
            .collect();
        currents.sort();
        if let Some(w) = currents.windows(2).find(|w| w[0] == w[1]) {
            return Err(CatalogProblem::TwoCurrent(w[0].1.clone()));
        }
        Ok(())
    }
}

/// The catalog file and its lock.
#[derive(Debug, Clone)]
pub(crate) struct CatalogFile {
    path: PathBuf,
    lock_path: PathBuf,
}

impl CatalogFile {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("catalog.json"),
            lock_path: state_dir.join("catalog.lock"),
        }
    }

    /// Reads the catalog under its lock held shared: between two changes, and after
    /// whatever a change does beside the catalog while holding the lock.
    pub fn read(&self) -> Result<Catalog> {
        let _shared = FileLock::shared_if_present(&self.lock_path)?;
        self.load()
    }

    /// Reads the catalog without locking (a missing file is an empty catalog).
    pub fn load(&self) -> Result<Catalog> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::default()),
            Err(e) => return Err(io_err("read", &self.path)(e)),
        };
        let catalog: Catalog =
            serde_json::from_slice(&bytes).map_err(|source| Error::CatalogCorrupt {
                path: self.path.clone(),
                source,
            })?;
        if catalog.format != FORMAT {
            return Err(Error::CatalogFormat {
                path: self.path.clone(),
                found: catalog.format,
                supported: FORMAT,
            });
        }
        catalog
            .check()
            .map_err(|problem| Error::CatalogInconsistent {
                path: self.path.clone(),
                problem,
            })?;
        Ok(catalog)
    }

    /// Takes the catalog lock and reads the catalog under it.
    pub fn lock(&self) -> Result<LockedCatalog<'_>> {
        let lock = FileLock::acquire(&self.lock_path, Mode::Exclusive)?.ok_or_else(|| {
            io_err("flock", &self.lock_path)(std::io::ErrorKind::WouldBlock.into())
        })?;
        let catalog = self.load()?;
        Ok(LockedCatalog {
            file: self,
            _lock: lock,
            catalog,
        })
    }
}

/// The catalog, read under its lock, to be changed and saved.
#[derive(Debug)]
pub(crate) struct LockedCatalog<'a> {
    file: &'a CatalogFile,
    _lock: FileLock,
    pub catalog: Catalog,
}

impl LockedCatalog<'_> {
    /// Removes a temporary catalog a crash left behind (only written under the lock).
    pub fn remove_stale_temp(&self) -> Result<()> {
        durable::remove_stale_temp(&self.file.path)
    }

    /// Writes the catalog durably.
    pub fn save(&self) -> Result<()> {
        let mut bytes =
            serde_json::to_vec_pretty(&self.catalog).map_err(|source| Error::CatalogCorrupt {
                path: self.file.path.clone(),
                source,
            })?;
        bytes.push(b'\n');
        durable::replace_file(&self.file.path, &bytes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(source: &str, seed: u8, backend: &str) -> VolumeRecord {
        let digest = format!("sha256:{}", format!("{seed:02x}").repeat(32))
            .parse::<Digest>()
            .unwrap();
        let volume = VolumeId::new(source, &digest).unwrap();
        VolumeRecord {
            namespace: "os-images".into(),
            source: source.into(),
            path: PathBuf::from(format!("/srv/{volume}")),
            volume,
            digest,
            backend: backend.into(),
            kind: BackendKind::Dir,
            format: Format::Volume,
            state: State::Ready,
            staging_path: None,
            size: 1 << 20,
            created: Timestamp::from_system_time(std::time::UNIX_EPOCH),
            last_used: Timestamp::from_system_time(std::time::UNIX_EPOCH),
            current: false,
        }
    }

    #[test]
    fn set_current_demotes_the_old_one_and_stamps_both() {
        let mut c = Catalog::default();
        c.volumes.push(record("fedora", 1, "local"));
        c.volumes.push(record("fedora", 2, "local"));
        c.volumes.push(record("centos", 3, "local"));
        let now = Timestamp::now();
        c.set_current(&c.volumes[0].key(), now);
        c.set_current(&c.volumes[2].key(), now);
        let later = Timestamp::now();
        c.set_current(&c.volumes[1].key(), later);
        assert!(!c.volumes[0].current && c.volumes[1].current && c.volumes[2].current);
        assert_eq!(c.volumes[0].last_used, later);
        assert_eq!(c.volumes[1].last_used, later);
        assert_eq!(c.volumes[2].last_used, now);
        assert!(c.check().is_ok());
    }

    #[test]
    fn a_volume_id_is_never_another_digests() {
        let digest = |tail: char| -> Digest {
            format!(
                "sha256:0123456789abcdef0123456789abcdef{}",
                tail.to_string().repeat(32)
            )
            .parse()
            .unwrap()
        };
        let with = |d: Digest, volume: &str| VolumeRecord {
            digest: d,
            volume: serde_json::from_value(serde_json::json!(volume)).unwrap(),
            ..record("fedora", 1, "local")
        };
        let (short, long) = VolumeId::candidates("fedora", &digest('a')).unwrap();
        let mut c = Catalog::default();
        assert_eq!(
            c.volume_for("os-images", "local", "fedora", &digest('a'))
                .unwrap(),
            short
        );
        c.volumes.push(with(digest('b'), short.as_str()));
        assert_eq!(
            c.volume_for("os-images", "local", "fedora", &digest('a'))
                .unwrap(),
            long
        );
        assert_eq!(
            c.volume_for("os-images", "other", "fedora", &digest('a'))
                .unwrap(),
            short
        );
        let (centos, _) = VolumeId::candidates("centos", &digest('b')).unwrap();
        assert_eq!(
            c.volume_for("os-images", "local", "centos", &digest('b'))
                .unwrap(),
            centos,
            "another source's record of the same digest is not this source's"
        );
        c.volumes.push(with(digest('c'), long.as_str()));
        assert!(matches!(
            c.volume_for("os-images", "local", "fedora", &digest('a')),
            Err(Error::VolumeIdTaken { .. })
        ));
        c.volumes
            .push(with(digest('a'), "fedora-0123456789abcdef0123456789abcdea"));
        assert_eq!(
            c.volume_for("os-images", "local", "fedora", &digest('a'))
                .unwrap()
                .as_str(),
            "fedora-0123456789abcdef0123456789abcdea",
            "a digest's own record wins"
        );
    }

    #[test]
    fn saves_and_loads_and_refuses_inconsistency() {
        let dir = tempfile::tempdir().unwrap();
        let file = CatalogFile::new(dir.path());
        assert_eq!(file.load().unwrap(), Catalog::default());
        let mut locked = file.lock().unwrap();
        locked.catalog.volumes.push(record("fedora", 1, "local"));
        locked.catalog.volumes[0].current = true;
        locked.save().unwrap();
        drop(locked);
        let loaded = file.load().unwrap();
        assert_eq!(loaded.volumes.len(), 1);

        let mut twice = loaded.clone();
        twice.volumes.push(loaded.volumes[0].clone());
        assert!(matches!(
            twice.check().unwrap_err(),
            CatalogProblem::DuplicateVolume(_)
        ));
        let mut two_current = loaded.clone();
        let mut other = record("fedora", 2, "local");
        other.current = true;
        two_current.volumes.push(other);
        assert!(matches!(
            two_current.check().unwrap_err(),
            CatalogProblem::TwoCurrent(_)
        ));

        std::fs::write(
            dir.path().join("catalog.json"),
            b"{\"format\": 2, \"volumes\": []}",
        )
        .unwrap();
        assert!(matches!(
            file.load(),
            Err(Error::CatalogFormat { found: 2, .. })
        ));
        std::fs::write(dir.path().join("catalog.json"), b"{").unwrap();
        assert!(matches!(file.load(), Err(Error::CatalogCorrupt { .. })));
    }
}
