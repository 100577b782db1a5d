//! OCI and Docker manifests: what an image is made of.
//!
//! Pure parsing of the JSON a registry or layout returns. An index (OCI image index,
//! Docker manifest list) names one manifest per platform; an image manifest (OCI, Docker
//! schema 2) names the layers, bottom first. Docker schema 1 is refused: no container
//! disk publisher uses it and it carries no digests.

use serde::Deserialize;

use crate::{Digest, Error, Platform, Result};

/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Every manifest type we read, for the registry's `Accept` header.
pub const ACCEPTED: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Manifests larger than this are refused (containerd uses the same bound).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A parsed manifest document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// A list of per-platform manifests.
    Index(Vec<IndexEntry>),
    /// One image.
    Image(ImageManifest),
}

/// One entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The platform it is built for, if stated.
    pub platform: Option<Platform>,
    /// `org.opencontainers.image.ref.name`, used by OCI layouts as the tag.
    pub ref_name: Option<String>,
}

/// An image manifest: its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    /// The layers, in application order (the last one is on top).
    pub layers: Vec<Layer>,
}

/// A layer blob.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Layer {
    /// The blob's digest (of the compressed bytes).
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The media type the manifest gives.
    pub media_type: String,
}

/// How a layer blob is compressed, as its media type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Layer {
    /// The compression the media type declares; an unknown type is an error.
    pub fn compression(&self) -> Result<LayerCompression> {
        let t = self.media_type.as_str();
        let oci = [
            "application/vnd.oci.image.layer.v1.",
            "application/vnd.oci.image.layer.nondistributable.v1.",
        ];
        if let Some(kind) = oci.iter().find_map(|p| t.strip_prefix(p)) {
            return match kind {
                "tar" => Ok(LayerCompression::None),
                "tar+gzip" => Ok(LayerCompression::Gzip),
                "tar+zstd" => Ok(LayerCompression::Zstd),
                _ => Err(self.unsupported()),
            };
        }
        match t {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Ok(LayerCompression::Gzip)
            }
            // Some builders mark plain tar layers this way.
            "application/vnd.docker.image.rootfs.diff.tar" => Ok(LayerCompression::None),
            _ => Err(self.unsupported()),
        }
    }

    fn unsupported(&self) -> Error {
        Error::UnsupportedLayerType {
            layer: self.digest,
            media_type: self.media_type.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: Option<std::collections::HashMap<String, String>>,
}

impl RawDescriptor {
    fn digest(&self) -> Result<Digest> {
        self.digest.parse().map_err(|_| {
            invalid(ManifestProblem::BadDigest(crate::printable(
                &self.digest,
                80,
            )))
        })
    }
}

/// What is wrong with a manifest or index document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// Not the JSON of a manifest.
    #[error("not a manifest document")]
    NotJson(#[source] serde_json::Error),
    /// Not schema version 2.
    #[error("schemaVersion {0:?} is not 2 (Docker schema 1 is not supported)")]
    SchemaVersion(Option<u32>),
    /// An index without its `manifests` list.
    #[error("index without manifests")]
    IndexWithoutManifests,
    /// An image manifest without its `layers` list.
    #[error("manifest without layers")]
    ManifestWithoutLayers,
    /// A descriptor digest that is not a sha256 digest (printable, cut).
    #[error("descriptor digest {0:?} is not a sha256 digest")]
    BadDigest(String),
    /// A layer with a negative size.
    #[error("layer {layer} has negative size {size}")]
    NegativeSize {
        /// The layer's digest as written (printable, cut).
        layer: String,
        /// The size given.
        size: i64,
    },
    /// An index entry that is itself an index.
    #[error("index entry {0} is itself an index")]
    NestedIndex(Digest),
    /// A document larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest of {0} bytes exceeds the 4 MiB limit")]
    TooLarge(usize),
}

/// The error for a manifest with `problem`.
pub(crate) fn invalid(problem: ManifestProblem) -> Error {
    Error::InvalidManifest(problem)
}

/// Parses a manifest. `content_type` is the type the registry sent, if any; the
/// document's own `mediaType` wins, and without either its shape decides.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| invalid(ManifestProblem::NotJson(e)))?;
    if raw.schema_version != Some(2) {
        return Err(invalid(ManifestProblem::SchemaVersion(raw.schema_version)));
    }
    let media_type = raw.media_type.as_deref().or(content_type);
    let is_index = match media_type {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        _ => raw.manifests.is_some(),
    };
    if is_index {
        let entries = raw
            .manifests
            .ok_or_else(|| invalid(ManifestProblem::IndexWithoutManifests))?;
        return entries
            .iter()
            .map(index_entry)
            .collect::<Result<_>>()
            .map(Manifest::Index);
    }
    let layers = raw
        .layers
        .ok_or_else(|| invalid(ManifestProblem::ManifestWithoutLayers))?;
    let layers = layers.iter().map(layer).collect::<Result<_>>()?;
    Ok(Manifest::Image(ImageManifest { layers }))
}

fn index_entry(d: &RawDescriptor) -> Result<IndexEntry> {
    Ok(IndexEntry {
        digest: d.digest()?,
        media_type: d.media_type.clone(),
        platform: d.platform.clone(),
        ref_name: d
            .annotations
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name").cloned()),
    })
}

fn layer(d: &RawDescriptor) -> Result<Layer> {
    let size = u64::try_from(d.size).map_err(|_| {
        invalid(ManifestProblem::NegativeSize {
            layer: crate::printable(&d.digest, 80),
            size: d.size,
        })
    })?;
    Ok(Layer {
        digest: d.digest()?,
        size,
        media_type: d.media_type.clone(),
    })
}

/// Picks the entry of an index built for `wanted`; the first match wins, as in
/// containerd. Entries without a platform (attestations, signatures) never match.
pub fn select_platform<'a>(entries: &'a [IndexEntry], wanted: &Platform) -> Result<&'a IndexEntry> {
    entries
        .iter()
        .find(|e| e.platform.as_ref().is_some_and(|p| wanted.matches(p)))
        .ok_or_else(|| Error::NoMatchingPlatform {
            wanted: wanted.to_string(),
            available: entries
                .iter()
                .filter_map(|e| e.platform.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn index_json() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,
                "platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,
                "platform":{{"os":"linux","architecture":"amd64"}},
                "annotations":{{"org.opencontainers.image.ref.name":"41"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10}}]}}"#,
            digest(1),
            digest(2),
            digest(3)
        )
    }

    #[test]
    fn picks_the_wanted_platform_from_an_index() {
        let Manifest::Index(entries) = parse(index_json().as_bytes(), None).unwrap() else {
            panic!("not an index")
        };
        let amd = select_platform(&entries, &"linux/amd64".parse().unwrap()).unwrap();
        assert_eq!(amd.digest, digest(2));
        assert_eq!(amd.ref_name.as_deref(), Some("41"));
        let arm = select_platform(&entries, &"linux/arm64/v8".parse().unwrap()).unwrap();
        assert_eq!(arm.digest, digest(1));
        let err = select_platform(&entries, &"linux/s390x".parse().unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("linux/arm64/v8, linux/amd64"),
            "{err}"
        );
    }

    #[test]
    fn docker_manifest_layers_come_bottom_first() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
               "config":{{"mediaType":"x","digest":"{}","size":1}},
               "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":5}},
                         {{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{}","size":7}}]}}"#,
            digest(0),
            digest(1),
            digest(2)
        );
        let Manifest::Image(m) = parse(json.as_bytes(), None).unwrap() else {
            panic!("not an image")
        };
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[0].compression().unwrap(), LayerCompression::Gzip);
        assert_eq!(m.layers[1].compression().unwrap(), LayerCompression::Zstd);
        assert_eq!(m.layers[1].size, 7);
    }

    #[test]
    fn shape_decides_without_media_type() {
        let json = r#"{"schemaVersion":2,"layers":[]}"#;
        assert!(matches!(
            parse(json.as_bytes(), None).unwrap(),
            Manifest::Image(_)
        ));
    }

    #[test]
    fn refuses_schema1_bad_digests_and_unknown_layer_types() {
        assert!(parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).is_err());
        let bad = r#"{"schemaVersion":2,"layers":[{"mediaType":"t","digest":"md5:00","size":1}]}"#;
        assert!(parse(bad.as_bytes(), None).is_err());
        let l = Layer {
            digest: digest(1),
            size: 1,
            media_type: "application/vnd.oci.image.layer.v1.tar+bzip2".into(),
        };
        let err = l.compression().unwrap_err().to_string();
        assert!(err.contains("tar+bzip2"), "{err}");
    }
}
