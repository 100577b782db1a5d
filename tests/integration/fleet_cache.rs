//! A fleet behind a site pull-through cache: Debian's `docker-registry` in proxy mode is
//! every node's `[[registry.mirror]]`, six daemons run on this machine (each with its
//! own state and storage), and the tag moves. The origin's own log counts how often it
//! served each blob.
//!
//! What distribution 2.8's proxy does with a blob it lacks (`ServeBlob` in
//! registry/proxy/proxyblobstore.go, v2.8.2 as Debian ships it): it starts a fetch from
//! the origin into its own store and, beside it, a second fetch from the origin to
//! stream to the client that asked; a request arriving while the first runs is
//! streamed from the origin once more. So with this engine the fleet rolls out as
//! operators roll out anyway: one canary node polls first, then the other five at
//! once. The canary costs the origin exactly two fetches per blob; the other five cost
//! it nothing, and every node ends byte-equal to the image. (`fleet_nginx` shows an
//! engine that costs one fetch with all six at once.)

use crate::common::daemon::{Daemon, Node, TestDisk};
use crate::common::fleet::{self, IMAGE};
use crate::common::registry::Registry;

const MIB: u64 = 1 << 20;

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

/// The canary polls (it has already, if it just started), the cache fills, then the
/// rest of the fleet polls at once; returns the origin's GETs per layer.
fn canary_then_fleet(
    origin: &Registry,
    cache: &Registry,
    nodes: &[Node],
    daemons: &[Daemon],
    disk: &TestDisk,
) -> Vec<(String, usize)> {
    daemons[0].wait_for_current("fedora", &disk.digest);
    wait_cached(cache, disk, &daemons[0]);
    let after_canary = fleet::origin_layer_gets(origin, disk);
    fleet::poll_together(&nodes[1..]);
    fleet::wait_current(&daemons[1..], &disk.digest);
    let after_fleet = fleet::origin_layer_gets(origin, disk);
    assert_eq!(after_fleet, after_canary, "the fleet went past the cache");
    after_fleet
}

#[test]
fn six_nodes_behind_a_pull_through_cache_cost_the_origin_one_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = TestDisk::new(dir.path(), "v1", 8 * MIB, 61);
    let v2 = TestDisk::new(dir.path(), "v2", 8 * MIB, 62);
    let origin = Registry::start();
    v1.push(&origin, IMAGE);
    let cache = Registry::builder().proxy_of(&origin).start();
    let mut nodes = fleet::nodes(&origin, &cache.host_port());

    // The canary starts first; the five others start once the cache has v1.
    let mut daemons = vec![nodes[0].start()];
    daemons[0].wait_for_current("fedora", &v1.digest);
    wait_cached(&cache, &v1, &daemons[0]);
    daemons.extend(fleet::start_together(&mut nodes[1..]));
    let v1_gets = canary_then_fleet(&origin, &cache, &nodes, &daemons, &v1);

    v2.push(&origin, IMAGE);
    nodes[0].poll();
    let v2_gets = canary_then_fleet(&origin, &cache, &nodes, &daemons, &v2);
    println!("origin blob GETs for v1 {v1_gets:?}, v2 {v2_gets:?}");
    println!("origin requests: {:#?}", fleet::origin_tally(&origin));
    for (digest, n) in v1_gets.into_iter().chain(v2_gets) {
        assert_eq!(n, 2, "{digest} served {n} times by the origin");
    }
    for node in &nodes {
        assert!(v2.same_as(&node.current_link("fedora")));
    }
}
