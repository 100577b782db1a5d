//! Registry mirrors, as containers' `registries.conf` describes them: a `[[registry]]`
//! with `prefix` and `[[registry.mirror]]` entries. The daemon tries the mirrors in
//! order and the origin last, for polls and imports alike — an air-gapped node keeps
//! working while the origin is unreachable, and falls back to the origin when the
//! mirror is.

use crate::common::daemon::{Node, TestDisk};
use crate::common::registry::Registry;

const MIB: u64 = 1 << 20;

#[test]
fn mirrors_are_tried_before_the_origin_which_is_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 4 * MIB, 11);
    let v2 = TestDisk::new(dir.path(), "v2", 4 * MIB, 12);

    // The origin is down; only the mirror serves the image.
    let mut origin = Registry::start();
    origin.stop();
    let mut mirror = Registry::start();
    v1.push(&mirror, "os/fedora:latest");

    let mut node = Node::new();
    node.config.insecure(&origin.host_port());
    node.config
        .source("fedora", &origin.reference("os/fedora:latest"));
    node.config.extra = format!(
        "\n[[registry]]\nprefix = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
        origin.host_port(),
        mirror.host_port()
    );
    let daemon = node.start();
    daemon.wait_for_current("fedora", &v1.digest);
    assert!(v1.same_as(&node.current_link("fedora")));

    // The origin comes back with v2 while the mirror still has v1: the mirror is asked
    // first, so the node stays at v1 …
    origin.restart();
    v2.push(&origin, "os/fedora:latest");
    node.poll();
    daemon.wait_for("a poll answered by the mirror", || {
        let polls = daemon.metrics().get(
            "bootsource_polls_total",
            &[("source", "fedora"), ("result", "up_to_date")],
        );
        polls.filter(|n| *n >= 1.0)
    });
    assert!(
        v1.same_as(&node.current_link("fedora")),
        "the origin was preferred to the mirror"
    );

    // … until the mirror is unreachable: then the origin answers, and v2 is imported.
    mirror.stop();
    node.poll();
    daemon.wait_for_current("fedora", &v2.digest);
    assert!(v2.same_as(&node.current_link("fedora")));
}
