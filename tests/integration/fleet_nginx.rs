//! A fleet behind nginx as its site cache, configured by the shipped
//! `deploy/nginx/registry-cache.conf`: six daemons on this machine (each with its own
//! state and storage) start together, then the tag moves and all six poll together.
//! The origin's own log shows it served each layer blob exactly once per version, and
//! every node ends byte-equal to the image.
//!
//! "Together" is made certain, not hoped for: the cache reaches the origin through a
//! [`Throttle`] (the site's uplink) slowed down until all six nodes' blob requests are
//! at the cache — the six manifest GETs answered, six requests in flight — and only
//! then opened. The cache's access log then shows one `MISS` per layer and five
//! requests that arrived before that miss ended and were answered from the cache.

use crate::common::daemon::{Daemon, TestDisk};
use crate::common::fleet::{self, IMAGE, NODES};
use crate::common::registry::Registry;
use crate::common::registry_cache::{RegistryCache, redirecting_front};
use crate::common::throttle::Throttle;

const MIB: u64 = 1 << 20;
/// The uplink while nodes gather: a 4 MiB layer would take 16 s, manifests a moment.
const GATHERING: u64 = 256 << 10;

/// Waits until all six nodes have asked the cache for `disk`'s layer (the `round`-th
/// rollout: that many manifest GETs per node answered), opens the uplink, waits until
/// every node runs `disk`, and checks the requests overlapped the single miss.
fn rollout(
    cache: &RegistryCache,
    uplink: &Throttle,
    daemons: &[Daemon],
    disk: &TestDisk,
    round: usize,
) {
    daemons[0].wait_for("every node's blob request at the cache", || {
        let manifests = cache
            .served()
            .iter()
            .filter(|s| s.method == "GET" && s.uri.contains("/manifests/"))
            .count();
        (manifests >= NODES * round && cache.in_flight() >= NODES).then_some(())
    });
    uplink.unlimited();
    fleet::wait_current(daemons, &disk.digest);
    let layer = disk.image.layers[0].digest();
    let asked: Vec<_> = cache
        .served()
        .into_iter()
        .filter(|s| s.uri.ends_with(layer))
        .collect();
    println!("cache answers for {layer}: {asked:#?}");
    let misses: Vec<_> = asked.iter().filter(|s| s.cache == "MISS").collect();
    assert_eq!(misses.len(), 1, "{asked:#?}");
    assert_eq!(asked.len(), NODES, "{asked:#?}");
    assert!(
        asked
            .iter()
            .all(|s| s.start <= misses[0].end && s.status == 200),
        "not all six asked during the one fetch: {asked:#?}"
    );
}

/// Six nodes start together on one version, the tag moves, all six poll together;
/// `registry` holds the bytes (its log counts what it served), `uplink` is the only way
/// from the cache to those bytes. Returns the registry's GETs per layer, both versions.
fn two_rollouts(
    registry: &Registry,
    cache: &RegistryCache,
    uplink: &Throttle,
    seed: u64,
) -> Vec<(String, usize)> {
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::incompressible(dir.path(), "v1", 4 * MIB, seed);
    let v2 = TestDisk::incompressible(dir.path(), "v2", 4 * MIB, seed + 1);
    assert_eq!(v1.image.layers.len(), 1, "one layer per image");
    v1.push(registry, IMAGE);
    let mut nodes = fleet::nodes(registry, &cache.host_port());

    uplink.set_rate(GATHERING);
    let daemons = fleet::start_together(&mut nodes);
    rollout(cache, uplink, &daemons, &v1, 1);
    for node in &nodes {
        assert!(v1.same_as(&node.current_link("fedora")));
    }

    v2.push(registry, IMAGE);
    uplink.set_rate(GATHERING);
    fleet::poll_together(&nodes);
    rollout(cache, uplink, &daemons, &v2, 2);
    for node in &nodes {
        assert!(v2.same_as(&node.current_link("fedora")));
    }
    println!("origin requests: {:#?}", fleet::origin_tally(registry));
    println!("cache requests: {:#?}", cache.tally());
    let mut gets = fleet::origin_layer_gets(registry, &v1);
    gets.extend(fleet::origin_layer_gets(registry, &v2));
    gets
}

#[test]
fn six_nodes_polling_together_behind_nginx_cost_the_origin_one_get_per_layer() {
    let origin = Registry::start();
    let uplink = Throttle::start(&origin);
    let cache = RegistryCache::start(&format!("http://{}", uplink.host_port()));
    let gets = two_rollouts(&origin, &cache, &uplink, 71);
    println!("origin blob GETs per layer, v1 then v2: {gets:?}");
    for (digest, n) in gets {
        assert_eq!(n, 1, "{digest} served {n} times by the origin");
    }
}

/// Docker Hub, GHCR, Quay… answer a blob GET with a redirect to a CDN: the cache
/// follows it, so the CDN (here the registry behind a front that redirects every
/// blob) serves each layer once too, and the front answers one redirect per layer: the
/// waiting nodes wait through the redirect as well.
#[test]
fn a_registry_redirecting_blobs_to_a_cdn_still_serves_each_layer_once() {
    let cdn = Registry::start();
    let uplink = Throttle::start(&cdn);
    let front = redirecting_front(&cdn.url(), &format!("http://{}", uplink.host_port()));
    let cache = RegistryCache::start(&format!("http://{}", front.addr()));
    let gets = two_rollouts(&cdn, &cache, &uplink, 73);
    let redirects = front
        .access_log()
        .lines()
        .filter(|l| l.contains("\" 307 "))
        .count();
    println!("CDN blob GETs per layer, v1 then v2: {gets:?}; redirects {redirects}");
    for (digest, n) in gets {
        assert_eq!(n, 1, "{digest} served {n} times by the CDN");
    }
    assert!(
        (2..=2 * NODES).contains(&redirects),
        "{redirects} redirects"
    );
}
