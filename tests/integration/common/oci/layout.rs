//! OCI image layout directories (`oci:DIR:TAG` sources): `oci-layout`, `index.json` with
//! `org.opencontainers.image.ref.name` tags, and `blobs/sha256/<hex>`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::blob::{Blob, sha256_digest};
use super::image::Artifact;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Creates (or opens) a layout at `dir`, with an empty index if it has none.
    pub fn create(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layout = Layout {
            dir: dir.to_owned(),
        };
        if !layout.index_path().exists() {
            layout.write_index(&json!({ "schemaVersion": 2, "manifests": [] }));
        }
        layout
    }

    /// `oci:DIR:TAG`.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    /// Writes every blob of `artifact` and tags its manifest `tag` (replacing an older
    /// entry with that tag). Tampered blobs are written under the digest they claim.
    pub fn add(&self, artifact: &dyn Artifact, tag: &str) -> &Self {
        for blob in artifact.parts().into_iter().chain([artifact.manifest()]) {
            self.write_blob(blob);
        }
        let mut entry = artifact.manifest().descriptor();
        entry["annotations"] = json!({ REF_NAME: tag });
        let mut index = self.index();
        let manifests = index["manifests"]
            .as_array_mut()
            .expect("index.json without manifests");
        manifests.retain(|m| m["annotations"][REF_NAME] != tag);
        manifests.push(entry);
        self.write_index(&index);
        self
    }

    /// Writes one blob under its digest.
    pub fn write_blob(&self, blob: &Blob) {
        fs::write(self.blob_path(blob.digest()), blob.bytes()).unwrap();
    }

    /// `blobs/sha256/<hex>`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir.join("blobs/sha256").join(hex)
    }

    /// Changes the stored bytes of blob `digest` in place, leaving its name: a digest
    /// mismatch for whoever reads it.
    pub fn tamper_blob(&self, digest: &str, change: impl FnOnce(&mut Vec<u8>)) {
        let path = self.blob_path(digest);
        let mut bytes = fs::read(&path).unwrap();
        change(&mut bytes);
        assert_ne!(
            sha256_digest(&bytes),
            digest,
            "the change left the bytes as they were"
        );
        fs::write(path, bytes).unwrap();
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.index_path()).unwrap()).unwrap()
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn write_index(&self, index: &Value) {
        fs::write(self.index_path(), serde_json::to_vec(index).unwrap()).unwrap();
    }
}
