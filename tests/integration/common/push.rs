//! Pushing Rust-built images and indexes to a registry, every byte and digest preserved.
//!
//! Blobs go up as they are (`POST` an upload, `PUT …?digest=`), manifests are `PUT` with
//! their own bytes and media type, children by digest before the index, and the top
//! manifest under the tag. The registry's `Docker-Content-Digest` answer is checked
//! against ours, so a push that changed a byte fails here and not in the test.
//!
//! This is the path for zstd and uncompressed layers. Measured with skopeo 1.9 copying
//! an OCI layout: gzip and zstd layers and their manifest pass byte for byte, but an
//! uncompressed layer is re-gzipped (new blob, rewritten manifest, new digest), and
//! `--dest-compress-format zstd` reused the gzip blob of an earlier copy instead.
//!
//! A tampered blob (see `oci::Blob::tampered`) cannot pass the upload API's digest
//! check; it is planted straight into the registry's storage instead
//! (`Registry::plant_blob`), so the registry serves it under the digest the manifest names.

use super::client::RegistryClient;
use super::oci::{Artifact, Blob, media_type};
use super::registry::Registry;

/// Pushes `artifact` to `repo` and tags it `tag`, with the registry's credentials if it
/// has any. Returns the digest the tag now resolves to.
pub fn push(registry: &Registry, repo: &str, tag: &str, artifact: &dyn Artifact) -> String {
    let client = registry.client();
    for blob in artifact.parts() {
        if media_type::is_manifest(blob.media_type()) {
            put_manifest(&client, repo, blob.digest(), blob);
        } else if blob.is_tampered() {
            registry.plant_blob(repo, blob.digest(), blob.bytes());
        } else {
            client.upload_blob(repo, blob.digest(), blob.bytes());
        }
    }
    put_manifest(&client, repo, tag, artifact.manifest());
    artifact.digest().to_owned()
}

/// `PUT` a manifest's exact bytes under `reference` (a tag or its digest).
pub fn put_manifest(client: &RegistryClient, repo: &str, reference: &str, manifest: &Blob) {
    let reply = client
        .put_manifest(repo, reference, manifest.media_type(), manifest.bytes())
        .expect(
            201,
            &format!(
                "pushing manifest {} as {repo}:{reference}",
                manifest.digest()
            ),
        );
    assert_eq!(
        reply.digest(),
        Some(manifest.digest()),
        "the registry stored manifest {repo}:{reference} under another digest"
    );
}
