//! Container disks made the way vendors make them: `umoci` builds the image, `skopeo
//! copy` pushes it.
//!
//! The result is what real registries hold: an OCI manifest with one gzip layer holding
//! `disk/` and `disk/<name>` owned by 107:107 (KubeVirt's documented
//! `ADD --chown=107:107 <image> /disk/`), plus a config with history and timestamps (so
//! digests change from run to run).
//!
//! Debian's umoci 0.4.7 writes `umoci insert` layers without the last entry's padding
//! and the end-of-archive blocks (fixed upstream in umoci PR #534): GNU tar and Python
//! call such a layer truncated, Go's archive/tar accepts it. The `tar` crate yields the
//! last file's data whole, then its `entries()` fails with "unexpected EOF during skip"
//! when that file's size is not a multiple of 512 (qcow2 files often are not). An
//! importer has to stop at the disk entry, not at the end of the archive.

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, chown};
use std::path::Path;
use std::process::Command;

use super::registry::Registry;
use super::tools;

/// Owner of the disk file, as KubeVirt documents.
const QEMU_ID: u32 = 107;

/// Builds image `layout:tag` with `umoci` holding `disk/{name}` copied from `disk`
/// (owner 107:107, mode 0644). Creates the layout if needed. Needs root (chown).
pub fn umoci_container_disk(layout: &Path, tag: &str, disk: &Path, name: &str) {
    tools::require("umoci", "umoci");
    if !layout.join("index.json").exists() {
        tools::run_command(
            Command::new("umoci")
                .arg("init")
                .arg("--layout")
                .arg(layout),
        );
    }
    let image = format!("{}:{tag}", layout.display());
    tools::run("umoci", ["new", "--image", &image]);

    let staging = tempfile::tempdir().unwrap();
    let disk_dir = staging.path().join("disk");
    fs::create_dir(&disk_dir).unwrap();
    let file = disk_dir.join(name);
    fs::copy(disk, &file).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    for path in [&disk_dir, &file] {
        chown(path, Some(QEMU_ID), Some(QEMU_ID)).unwrap_or_else(|e| {
            panic!(
                "chown 107:107 {} (the umoci path needs root): {e}",
                path.display()
            )
        });
    }
    tools::run_command(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(&disk_dir)
            .arg("/disk"),
    );
}

/// `skopeo copy {source} docker://127.0.0.1:PORT/{repo_and_tag}`, with the registry's CA
/// (`--dest-cert-dir`) or `--dest-tls-verify=false`, and its credentials if any.
pub fn skopeo_copy(source: &str, registry: &Registry, repo_and_tag: &str) {
    skopeo_copy_with(source, registry, repo_and_tag, &[]);
}

/// [`skopeo_copy`] with extra options (e.g. `["--dest-compress-format", "zstd"]`).
pub fn skopeo_copy_with(source: &str, registry: &Registry, repo_and_tag: &str, options: &[&str]) {
    tools::require("skopeo", "skopeo");
    let mut command = Command::new("skopeo");
    // The machine's policy.json is not ours to rely on.
    command.args(["--insecure-policy", "copy", "--quiet"]);
    if registry.is_tls() {
        command.arg("--dest-cert-dir").arg(registry.cert_dir());
    } else {
        command.arg("--dest-tls-verify=false");
    }
    if let Some(credentials) = registry.credentials() {
        command
            .arg("--dest-creds")
            .arg(format!("{}:{}", credentials.user, credentials.password));
    }
    command
        .args(options)
        .arg(source)
        .arg(registry.reference(repo_and_tag));
    tools::run_command(&mut command);
}
