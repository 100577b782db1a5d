//! containers' `registries.conf` and its `registries.conf.d/` drop-ins, as podman reads
//! them: mirrors with `pull-from-mirror = "digest-only"` are never asked for a tag (a
//! stale mirror cannot pin a tag to an old digest), `blocked` registries and short
//! names without a search registry are refused with the source named.

use std::fs;

use crate::common::bootsource::{self as bs};
use crate::common::daemon::{Node, TestDisk};
use crate::common::registry::Registry;
use crate::common::tools;

const MIB: u64 = 1 << 20;

/// A node whose source's origin has moved to v2 while its mirror, configured in a
/// `registries.conf.d/` drop-in with `pull_from_mirror`, still serves v1 under the
/// tag. Returns the digest the node ends with.
fn stale_mirror_ends_at(pull_from_mirror: &str) -> (String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 31);
    let v2 = TestDisk::new(dir.path(), "v2", 4 * MIB, 32);
    let origin = Registry::start();
    let mirror = Registry::start();
    v1.push(&mirror, "os/fedora:latest");
    v2.push(&origin, "os/fedora:latest");

    let conf = dir.path().join("registries.conf");
    fs::write(&conf, "# the mirror comes from a drop-in\n").unwrap();
    let drop_ins = dir.path().join("registries.conf.d");
    fs::create_dir(&drop_ins).unwrap();
    fs::write(
        drop_ins.join("50-mirror.conf"),
        format!(
            "[[registry]]\nprefix = \"{}\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\npull-from-mirror = \"{pull_from_mirror}\"\n",
            origin.host_port(),
            mirror.host_port()
        ),
    )
    .unwrap();

    let mut node = Node::new();
    node.config
        .set("registries_conf", &format!("{:?}", conf.to_str().unwrap()));
    node.config
        .source("fedora", &origin.reference("os/fedora:latest"));
    let daemon = node.start();
    let status = daemon.wait_for("a current version", || {
        let s = daemon.source_status("fedora");
        s["current"]["digest"].as_str().map(str::to_owned)
    });
    (status, v1.digest.clone(), v2.digest.clone())
}

#[test]
fn a_stale_digest_only_mirror_never_pins_a_tag() {
    let (current, _v1, v2) = stale_mirror_ends_at("digest-only");
    assert_eq!(current, v2, "the stale mirror pinned the tag");
}

/// The same mirror for all references (the default) is asked for the tag first: the
/// check above can fail.
#[test]
fn a_mirror_for_all_references_is_asked_for_the_tag_first() {
    let (current, v1, _v2) = stale_mirror_ends_at("all");
    assert_eq!(current, v1);
}

#[test]
fn blocked_registries_and_unresolvable_short_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("registries.conf");
    fs::write(
        &conf,
        "[[registry]]\nprefix = \"quay.io/blocked\"\nblocked = true\n",
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    let write = |image: &str| {
        fs::write(
            &config,
            format!(
                "registries_conf = {:?}\nstate_dir = {:?}\n[[source]]\nname = \"x\"\nimage = {image:?}\n",
                conf.to_str().unwrap(),
                dir.path().to_str().unwrap()
            ),
        )
        .unwrap();
    };
    let check = || {
        let mut command = bs::command(["check-config"]);
        command.arg(&config);
        tools::run_any_status(&mut command)
    };

    write("docker://quay.io/blocked/fedora:41");
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("source \"x\"") && stderr.contains("blocked"),
        "{stderr}"
    );

    write("docker://fedora:41");
    let out = check();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("short name"), "{stderr}");

    // With one search registry the short name resolves there, and the effective
    // configuration says where.
    fs::write(
        &conf,
        "unqualified-search-registries = [\"registry.lab:5000\"]\n",
    )
    .unwrap();
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("docker://registry.lab:5000/fedora:41"),
        "{stdout}"
    );
}
