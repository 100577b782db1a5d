//! What the store reports: versions, per-source status, orphans, as plain values.
//!
//! How they are shown (`bootsource status --json` and its text) is the binary's
//! business: this module knows no output format.

use std::path::PathBuf;

use crate::catalog::{State, VolumeRecord};
use crate::config::BackendKind;
use crate::names::{Digest, VolumeId};
use crate::time::Timestamp;

/// One sealed version of a boot source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The manifest digest it was imported from.
    pub digest: Digest,
    /// Its volume id.
    pub volume: VolumeId,
    /// The file or device holding the raw disk.
    pub path: PathBuf,
    /// When it was sealed.
    pub created: Timestamp,
    /// When it was last current or cloned.
    pub last_used: Timestamp,
    /// Its golden-image namespace.
    pub namespace: String,
    /// Its boot source.
    pub source: String,
    /// The backend it lives on.
    pub backend: String,
    /// The backend's kind.
    pub kind: BackendKind,
    /// The virtual size in bytes.
    pub size: u64,
    /// Whether it is its source's current version.
    pub current: bool,
}

impl From<&VolumeRecord> for Version {
    fn from(r: &VolumeRecord) -> Self {
        Self {
            digest: r.digest,
            volume: r.volume.clone(),
            path: r.path.clone(),
            created: r.created,
            last_used: r.last_used,
            namespace: r.namespace.clone(),
            source: r.source.clone(),
            backend: r.backend.clone(),
            kind: r.kind,
            size: r.size,
            current: r.current,
        }
    }
}

/// An import in progress, as the catalog knows it (byte counts are the importer's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Importing {
    /// The digest being imported.
    pub digest: Digest,
    /// Its volume id.
    pub volume: VolumeId,
    /// The backend it goes to.
    pub backend: String,
    /// The virtual size being written.
    pub virtual_size: u64,
    /// When staging began.
    pub started: Timestamp,
}

impl From<&VolumeRecord> for Importing {
    fn from(r: &VolumeRecord) -> Self {
        Self {
            digest: r.digest,
            volume: r.volume.clone(),
            backend: r.backend.clone(),
            virtual_size: r.size,
            started: r.created,
        }
    }
}

/// What the store holds for one boot source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// The source.
    pub name: String,
    /// Its current version.
    pub current: Option<Version>,
    /// Every sealed version, current included, oldest first.
    pub versions: Vec<Version>,
    /// An import being staged, if any.
    pub importing: Option<Importing>,
}

impl SourceStatus {
    pub(crate) fn from_records<'a>(
        name: &str,
        records: impl Iterator<Item = &'a VolumeRecord>,
    ) -> Self {
        let mut status = Self {
            name: name.to_owned(),
            current: None,
            versions: Vec::new(),
            importing: None,
        };
        for r in records {
            match r.state {
                State::Ready => {
                    if r.current {
                        status.current = Some(r.into());
                    }
                    status.versions.push(r.into());
                }
                State::Staging => status.importing = Some(r.into()),
                State::Removing => {}
            }
        }
        status
            .versions
            .sort_by_key(|v| (v.created, v.volume.clone()));
        status
    }
}
