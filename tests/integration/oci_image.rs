//! bootsource as an OCI image: `scripts/oci-image` builds it with umoci from the built
//! binary (no base image is downloaded), skopeo pushes it to a registry, and what comes
//! back runs: the image, unpacked, holds everything the binary needs to start
//! (`chroot ROOTFS /usr/bin/bootsource --version`).

use std::path::Path;
use std::process::Command;

use crate::common::bootsource::BIN;
use crate::common::registry::Registry;
use crate::common::tools;
use crate::common::vendor;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/oci-image");

#[test]
fn the_image_is_built_without_a_base_pushed_and_runs() {
    tools::require("umoci", "umoci");
    tools::require("skopeo", "skopeo");
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let out = tools::run_command(
        Command::new(SCRIPT)
            .args(["--binary", BIN, "--tag", "test", "--layout"])
            .arg(&layout),
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("oci:{}:test", layout.display())),
        "{printed}"
    );

    let registry = Registry::start();
    vendor::skopeo_copy(
        &format!("oci:{}:test", layout.display()),
        &registry,
        "infra/bootsource:test",
    );
    let inspect = tools::run(
        "skopeo",
        [
            "inspect",
            "--config",
            "--tls-verify=false",
            &format!("docker://{}/infra/bootsource:test", registry.host_port()),
        ],
    );
    let config: serde_json::Value = serde_json::from_slice(&inspect).unwrap();
    assert_eq!(
        config["config"]["Entrypoint"][0], "/usr/bin/bootsource",
        "{config}"
    );
    assert_eq!(config["config"]["Cmd"][0], "daemon", "{config}");
    assert_eq!(config["os"], "linux");
    // One layer: the binary, its libraries and the CA bundle; no base image.
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        1,
        "{config}"
    );

    // Pull it back and run it from its own root.
    let pulled = dir.path().join("pulled");
    tools::run(
        "skopeo",
        [
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/infra/bootsource:test", registry.host_port()),
            &format!("oci:{}:test", pulled.display()),
        ],
    );
    let bundle = dir.path().join("bundle");
    tools::run(
        "umoci",
        [
            "raw",
            "unpack",
            "--image",
            &format!("{}:test", pulled.display()),
            bundle.to_str().unwrap(),
        ],
    );
    assert!(
        Path::new(&bundle)
            .join("etc/ssl/certs/ca-certificates.crt")
            .is_file()
    );
    let version = tools::run(
        "chroot",
        [bundle.to_str().unwrap(), "/usr/bin/bootsource", "--version"],
    );
    assert_eq!(
        String::from_utf8_lossy(&version).trim(),
        format!("bootsource {}", env!("CARGO_PKG_VERSION"))
    );
}
