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
use crate::common::registry_cache::RegistryCache;
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

#[test]
fn six_nodes_polling_together_behind_nginx_cost_the_origin_one_get_per_layer() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::incompressible(dir.path(), "v1", 4 * MIB, 71);
    let v2 = TestDisk::incompressible(dir.path(), "v2", 4 * MIB, 72);
    assert_eq!(v1.image.layers.len(), 1, "one layer per image");
    let origin = Registry::start();
    v1.push(&origin, IMAGE);
    let uplink = Throttle::start(&origin);
    let cache = RegistryCache::start(&format!("http://{}", uplink.host_port()));
    let mut nodes = fleet::nodes(&origin, &cache.host_port());

    uplink.set_rate(GATHERING);
    let daemons = fleet::start_together(&mut nodes);
    rollout(&cache, &uplink, &daemons, &v1, 1);
    for node in &nodes {
        assert!(v1.same_as(&node.current_link("fedora")));
    }

    v2.push(&origin, IMAGE);
    uplink.set_rate(GATHERING);
    fleet::poll_together(&nodes);
    rollout(&cache, &uplink, &daemons, &v2, 2);

    let (v1_gets, v2_gets) = (
        fleet::origin_layer_gets(&origin, &v1),
        fleet::origin_layer_gets(&origin, &v2),
    );
    println!("origin blob GETs for v1 {v1_gets:?}, v2 {v2_gets:?}");
    println!("origin requests: {:#?}", fleet::origin_tally(&origin));
    println!("cache requests: {:#?}", cache.tally());
    for (digest, n) in v1_gets.into_iter().chain(v2_gets) {
        assert_eq!(n, 1, "{digest} served {n} times by the origin");
    }
    for node in &nodes {
        assert!(v2.same_as(&node.current_link("fedora")));
    }
}
