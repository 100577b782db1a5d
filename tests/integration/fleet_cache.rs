//! A fleet behind a site pull-through cache: Debian's `docker-registry` in proxy mode is
//! every node's `[[registry.mirror]]`, six daemons run on this machine (each with its
//! own state and storage), and the tag moves. The origin's own log counts how often it
//! served each blob.
//!
//! What distribution 2.8's proxy does with a blob it lacks (registry/proxy/
//! proxyblobstore.go): it fetches it from the origin twice — once into its store, once
//! to stream to the client that asked — and a request arriving while that first fetch
//! runs is streamed from the origin again. So the fleet rolls out as operators roll
//! out anyway: one canary node polls first, then the other five at once. The canary
//! costs the origin at most two fetches per blob; the other five cost it nothing, and
//! every node ends byte-equal to the image.

use std::collections::BTreeMap;

use crate::common::daemon::{Daemon, Node, TestDisk};
use crate::common::registry::Registry;

const MIB: u64 = 1 << 20;
const NODES: usize = 6;

/// How many times the registry answered a blob GET, by digest, from its log
/// (distribution logs every request as `response completed` with method, URI, status).
fn blob_gets(registry: &Registry) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in registry.log().lines() {
        if !line.contains("response completed") || !line.contains("http.request.method=GET") {
            continue;
        }
        let ok =
            line.contains("http.response.status=200") || line.contains("http.response.status=206");
        let digest = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http.request.uri=\""))
            .and_then(|uri| uri.split("/blobs/").nth(1))
            .map(|d| d.trim_end_matches('"').to_owned());
        if let (true, Some(digest)) = (ok, digest) {
            *counts.entry(digest).or_default() += 1;
        }
    }
    counts
}

/// Layers of `disk` with the origin's GET count for each (bootsource never needs an
/// image's config blob).
fn counts_for(origin: &Registry, disk: &TestDisk) -> Vec<(String, usize)> {
    let gets = blob_gets(origin);
    disk.image
        .layers
        .iter()
        .map(|b| {
            (
                b.digest().to_owned(),
                gets.get(b.digest()).copied().unwrap_or(0),
            )
        })
        .collect()
}

/// Waits until the cache holds every layer of `disk` in its own store: the canary's
/// fetch is complete there, so later requests are served locally.
fn wait_cached(cache: &Registry, disk: &TestDisk, canary: &Daemon) {
    canary.wait_for("the cache to store every layer", || {
        disk.image
            .layers
            .iter()
            .all(|b| cache.blob_data_path(b.digest()).is_file())
            .then_some(())
    });
}

#[test]
fn six_nodes_behind_a_pull_through_cache_cost_the_origin_one_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 8 * MIB, 61);
    let v2 = TestDisk::new(dir.path(), "v2", 8 * MIB, 62);
    let origin = Registry::start();
    v1.push(&origin, "os/fedora:latest");
    let cache = Registry::builder().proxy_of(&origin).start();

    let mut nodes: Vec<Node> = (0..NODES)
        .map(|_| {
            let mut node = Node::new();
            node.config.insecure(&origin.host_port());
            node.config.set("registries_conf", "\"\"");
            node.config
                .source("fedora", &origin.reference("os/fedora:latest"));
            node.config.extra = format!(
                "\n[[registry]]\nprefix = \"{}\"\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
                origin.host_port(),
                cache.host_port()
            );
            node
        })
        .collect();

    // The canary first, then the rest of the fleet at once.
    let canary = nodes[0].start();
    canary.wait_for_current("fedora", &v1.digest);
    wait_cached(&cache, &v1, &canary);
    let after_canary = counts_for(&origin, &v1);
    let daemons: Vec<Daemon> = nodes[1..].iter_mut().map(Node::start).collect();
    for d in &daemons {
        d.wait_for_current("fedora", &v1.digest);
    }
    assert_eq!(
        counts_for(&origin, &v1),
        after_canary,
        "the fleet went past the cache"
    );

    // The tag moves; the canary polls, then the five others together.
    v2.push(&origin, "os/fedora:latest");
    nodes[0].poll();
    canary.wait_for_current("fedora", &v2.digest);
    wait_cached(&cache, &v2, &canary);
    let after_canary = counts_for(&origin, &v2);
    for node in &nodes[1..] {
        node.poll();
    }
    for d in &daemons {
        d.wait_for_current("fedora", &v2.digest);
    }
    let counts = counts_for(&origin, &v2);
    println!(
        "origin blob GETs for v1 {:?}, v2 {counts:?}",
        counts_for(&origin, &v1)
    );
    assert_eq!(counts, after_canary, "the fleet went past the cache");
    for (digest, n) in counts_for(&origin, &v1).into_iter().chain(counts) {
        assert!(
            (1..=2).contains(&n),
            "{digest} served {n} times by the origin"
        );
    }
    for node in &nodes {
        assert!(v2.same_as(&node.current_link("fedora")));
    }
}
