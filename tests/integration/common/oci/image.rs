//! Image manifests (OCI or Docker schema 2) with their config, and multi-arch indexes
//! (OCI index or Docker manifest list).

use serde_json::{Value, json};

use super::blob::Blob;
use super::media_type;

/// Which family of media types a manifest and its config use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Oci,
    /// Docker image manifest schema 2 / manifest list.
    Docker,
}

/// An image's platform: in its config and in an index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str) -> Platform {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: None,
        }
    }

    pub fn with_variant(mut self, variant: &str) -> Platform {
        self.variant = Some(variant.to_owned());
        self
    }

    pub fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64")
    }

    pub fn linux_arm64() -> Platform {
        Platform::new("linux", "arm64").with_variant("v8")
    }

    /// `{"architecture", "os", "variant"?}`.
    pub fn to_json(&self) -> Value {
        let mut value = json!({ "architecture": self.architecture, "os": self.os });
        if let Some(variant) = &self.variant {
            value["variant"] = json!(variant);
        }
        value
    }
}

/// What a registry or a layout stores for one tag: a top manifest and the blobs below it.
pub trait Artifact {
    /// The manifest a tag points at (an image manifest or an index).
    fn manifest(&self) -> &Blob;

    /// The blobs below the top manifest, in an order a registry accepts: every image's
    /// config and layers before its manifest, child manifests before the index.
    fn parts(&self) -> Vec<&Blob>;

    /// The digest a tag resolves to.
    fn digest(&self) -> &str {
        self.manifest().digest()
    }
}

/// An image: manifest, config and layers.
#[derive(Debug, Clone)]
pub struct Image {
    pub platform: Platform,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Blob,
}

impl Image {
    /// An image of `layers` (bottom first) with a generated config for `platform`.
    pub fn new(schema: Schema, platform: Platform, layers: Vec<Blob>) -> Image {
        let config = config_blob(schema, &platform, &layers);
        let manifest = manifest_blob(schema, &config, &layers, |_| {});
        Image {
            platform,
            config,
            layers,
            manifest,
        }
    }

    /// Replaces layer `index`'s bytes keeping the digest the manifest names.
    pub fn tamper_layer(mut self, index: usize, change: impl FnOnce(&mut Vec<u8>)) -> Image {
        self.layers[index] = self.layers[index].tampered(change);
        self
    }
}

impl Artifact for Image {
    fn manifest(&self) -> &Blob {
        &self.manifest
    }

    fn parts(&self) -> Vec<&Blob> {
        std::iter::once(&self.config).chain(&self.layers).collect()
    }
}

/// A multi-arch index of images, each entry carrying its image's platform.
#[derive(Debug, Clone)]
pub struct Index {
    pub images: Vec<Image>,
    pub manifest: Blob,
}

impl Index {
    pub fn new(schema: Schema, images: Vec<Image>) -> Index {
        let entries: Vec<Value> = images
            .iter()
            .map(|image| {
                let mut entry = image.manifest.descriptor();
                entry["platform"] = image.platform.to_json();
                entry
            })
            .collect();
        let media_type = match schema {
            Schema::Oci => media_type::OCI_INDEX,
            Schema::Docker => media_type::DOCKER_MANIFEST_LIST,
        };
        let json = json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": entries });
        let manifest = Blob::new(media_type, serde_json::to_vec(&json).unwrap());
        Index { images, manifest }
    }

    /// The image for `platform`.
    pub fn image(&self, platform: &Platform) -> &Image {
        self.images
            .iter()
            .find(|i| &i.platform == platform)
            .expect("no image for that platform")
    }
}

impl Artifact for Index {
    fn manifest(&self) -> &Blob {
        &self.manifest
    }

    fn parts(&self) -> Vec<&Blob> {
        self.images
            .iter()
            .flat_map(|image| image.parts().into_iter().chain([&image.manifest]))
            .collect()
    }
}

fn config_blob(schema: Schema, platform: &Platform, layers: &[Blob]) -> Blob {
    let diff_ids: Vec<&str> = layers.iter().map(Blob::diff_id).collect();
    let mut config = platform.to_json();
    config["config"] = json!({});
    config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
    let media_type = match schema {
        Schema::Oci => media_type::OCI_CONFIG,
        Schema::Docker => media_type::DOCKER_CONFIG,
    };
    Blob::new(media_type, serde_json::to_vec(&config).unwrap())
}

fn manifest_blob(
    schema: Schema,
    config: &Blob,
    layers: &[Blob],
    edit: impl FnOnce(&mut Value),
) -> Blob {
    let media_type = match schema {
        Schema::Oci => media_type::OCI_MANIFEST,
        Schema::Docker => media_type::DOCKER_MANIFEST,
    };
    let mut json = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    edit(&mut json);
    Blob::new(media_type, serde_json::to_vec(&json).unwrap())
}
