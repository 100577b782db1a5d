//! A fleet on one machine: [`NODES`] test nodes, each with its own state and storage,
//! whose source is an image on an origin registry and whose `[[registry.mirror]]` for
//! that registry is a site cache; started and polled together (one thread per node),
//! and what the origin served them counted from the origin's own log.
//!
//! ```ignore
//! let mut nodes = fleet::nodes(&origin, &cache.host_port());
//! let daemons = fleet::start_together(&mut nodes);
//! fleet::wait_current(&daemons, &v1.digest);
//! assert!(fleet::origin_layer_gets(&origin, &v1).iter().all(|(_, n)| *n == 1));
//! ```

use std::collections::BTreeMap;
use std::thread;

use super::daemon::{Daemon, Node, TestDisk};
use super::registry::Registry;

/// How many nodes a fleet test runs.
pub const NODES: usize = 6;
/// The image every node follows, on the origin.
pub const IMAGE: &str = "os/fedora:latest";

/// [`NODES`] nodes following [`IMAGE`] on `origin` through the mirror at `mirror`
/// (`HOST:PORT`, plain HTTP); containers' own `registries.conf` is not read.
pub fn nodes(origin: &Registry, mirror: &str) -> Vec<Node> {
    (0..NODES)
        .map(|_| {
            let mut node = Node::new();
            node.config.insecure(&origin.host_port());
            node.config.set("registries_conf", "\"\"");
            node.config.source("fedora", &origin.reference(IMAGE));
            node.config.extra = format!(
                "\n[[registry]]\nprefix = \"{}\"\n[[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n",
                origin.host_port(),
            );
            node
        })
        .collect()
}

/// Starts a daemon on every node at once; each polls as it starts.
pub fn start_together(nodes: &mut [Node]) -> Vec<Daemon> {
    thread::scope(|s| {
        let started: Vec<_> = nodes
            .iter_mut()
            .map(|node| s.spawn(move || node.start()))
            .collect();
        started.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// `bootsource poll` on every node at once.
pub fn poll_together(nodes: &[Node]) {
    thread::scope(|s| {
        for node in nodes {
            s.spawn(move || node.poll());
        }
    });
}

/// Waits until every daemon's current version of the source is `digest`.
pub fn wait_current(daemons: &[Daemon], digest: &str) {
    for daemon in daemons {
        daemon.wait_for_current("fedora", digest);
    }
}

/// Each layer of `disk` with how many times the origin answered a GET for it (200 or
/// 206). bootsource never asks for an image's config blob.
pub fn origin_layer_gets(origin: &Registry, disk: &TestDisk) -> Vec<(String, usize)> {
    let mut gets: BTreeMap<String, usize> = BTreeMap::new();
    for r in origin.requests() {
        let digest = r.uri.split("/blobs/").nth(1);
        if let (Some(digest), "GET", 200 | 206) = (digest, r.method.as_str(), r.status) {
            *gets.entry(digest.to_owned()).or_default() += 1;
        }
    }
    disk.image
        .layers
        .iter()
        .map(|b| {
            let digest = b.digest().to_owned();
            let n = gets.get(&digest).copied().unwrap_or(0);
            (digest, n)
        })
        .collect()
}

/// The origin's requests by kind (`"GET blob 200"`, `"HEAD manifest 200"`, `"GET /v2/ 200"`):
/// what the fleet cost it, printed by the tests.
pub fn origin_tally(origin: &Registry) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in origin.requests() {
        let kind = super::registry_cache::kind_of(&r.uri);
        *counts
            .entry(format!("{} {kind} {}", r.method, r.status))
            .or_default() += 1;
    }
    counts
}
