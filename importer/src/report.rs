//! What `inspect` and `import` tell their callers, serialisable as the CLI's JSON.

use bootsource_place::DiskSize;
use serde::{Serialize, Serializer};

use crate::format::{DiskFormat, Subformat};
use crate::manifest::Layer;
use crate::qcow2::{Codec, Header};
use crate::{Digest, Platform};

/// The facts of an image and its disk, as `bootsource inspect` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// The image reference as given (`docker://…`, `oci:…`); `source` in JSON.
    #[serde(rename = "source")]
    pub image: String,
    /// The digest the reference resolves to (the index digest for multi-arch images).
    pub digest: Digest,
    /// The chosen platform's manifest digest.
    pub manifest_digest: Digest,
    /// The platform chosen from an index.
    pub platform: Option<Platform>,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
    /// The disk file.
    pub disk: DiskInfo,
    /// The signature policy's verdict and the signatures found; `None` for a single
    /// file (checksums vouch for those).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<crate::Verdict>,
}

/// The disk file found in the layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskInfo {
    /// The layer holding it (none for a single-file source).
    pub layer: Option<Digest>,
    /// Its name below `disk/`, or the single file's name.
    pub name: String,
    /// Its size in the layer (unknown for a compressed qcow2 file until its end).
    pub file_size: Option<u64>,
    /// Its format, from its first bytes.
    pub format: DiskFormat,
    /// The size of the raw disk it makes: known, or (a raw disk in a stream that does
    /// not tell its length) known only at its end. JSON: the number, or `null`.
    #[serde(serialize_with = "known_size")]
    pub virtual_size: DiskSize,
    /// qcow2 details.
    pub qcow2: Option<Qcow2Info>,
    /// The variant of a VMDK, VHD, VHDX or VDI (`streamOptimized`, `fixed`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subformat: Option<Subformat>,
}

fn known_size<S: Serializer>(size: &DiskSize, s: S) -> Result<S::Ok, S::Error> {
    size.known().serialize(s)
}

/// qcow2 header facts worth showing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Qcow2Info {
    /// 2 or 3.
    pub version: u32,
    /// Bytes per cluster.
    pub cluster_size: u64,
    /// How compressed clusters are encoded.
    pub compression: Codec,
    /// Subclusters.
    pub extended_l2: bool,
}

impl From<Header> for Qcow2Info {
    fn from(h: Header) -> Self {
        Self {
            version: h.version,
            cluster_size: h.cluster_size(),
            compression: h.codec,
            extended_l2: h.extended_l2,
        }
    }
}

/// What an import did, as its one-line summary and `--json` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    /// The image reference as given (`docker://…`, `oci:…`); `source` in JSON.
    #[serde(rename = "source")]
    pub image: String,
    /// The digest the reference resolved to (the index digest for multi-arch images);
    /// for a single file, the sha256 of its bytes (as are `manifest_digest` and `layer`).
    pub digest: Digest,
    /// The chosen platform's manifest digest.
    pub manifest_digest: Digest,
    /// The platform chosen from an index.
    pub platform: Option<Platform>,
    /// The layer the disk came from.
    pub layer: Digest,
    /// The disk file's name below `disk/`.
    pub disk: String,
    /// Its format.
    pub format: DiskFormat,
    /// Size of the raw disk written.
    pub virtual_size: u64,
    /// Compressed bytes received, over all passes.
    pub downloaded: u64,
    /// Bytes written to the target (zero blocks are left as holes or zeroed cheaply).
    pub written: u64,
    /// Passes over the layer (more than 1 only for qcow2 images edited after creation).
    pub passes: u32,
    /// The most bytes held for clusters that arrived before their tables.
    pub spool_peak: u64,
    /// Wall-clock seconds, the commit included once [`ImportReport::committed`] counted it.
    pub seconds: f64,
    /// Where those seconds went, and which stage set the pace.
    pub stages: crate::StageTimes,
    /// The signature policy's verdict and the signatures found; `None` for a single
    /// file (checksums vouch for those).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<crate::Verdict>,
    /// A single file: the checksum its bytes were checked against, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<crate::Checksum>,
    /// A file over HTTP(S): its `ETag` and `Last-Modified`, for a later conditional poll.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validators: Option<crate::Validators>,
}

impl ImportReport {
    /// Counts the commit its place's owner timed with [`Progress::time_commit`]
    /// (`progress` is the import's own) into `stages` and `seconds`: the report then
    /// covers the import up to the disk being durable.
    ///
    /// [`Progress::time_commit`]: crate::Progress::time_commit
    pub fn committed(&mut self, progress: &crate::Progress) {
        let before = self.stages.commit;
        self.stages = progress.stage_times();
        self.seconds += (self.stages.commit - before).max(0.0);
    }
}
