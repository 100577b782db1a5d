//! Many sources on one schedule: polls share a bounded number of slots, so a round of
//! polls never opens a connection per source to the registry at once. The registry
//! sits behind a [`Throttle`] that holds its answers, so every poll that has started
//! keeps its connection open and the throttle counts them.

use std::thread::sleep;
use std::time::Duration;

use crate::common::daemon::{Node, TestDisk};
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;

const MIB: u64 = 1 << 20;
/// The daemon's `POLLS_IN_FLIGHT`.
const SLOTS: u64 = 16;
const SOURCES: usize = 24;

#[test]
fn a_round_of_polls_holds_a_bounded_number_of_connections() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let disk = TestDisk::new(dir.path(), "small", MIB, 31);
    for i in 0..SOURCES {
        disk.push(&registry, &format!("os/img{i}:1"));
    }
    let throttle = Throttle::start(&registry);
    throttle.hold();
    let mut node = Node::new();
    node.config.insecure(&throttle.host_port());
    for i in 0..SOURCES {
        let image = throttle.reference(&format!("os/img{i}:1"));
        node.config.source(&format!("s{i}"), &image);
    }
    let daemon = node.start();

    // Every source is due at start; with the answers held, no poll ends.
    daemon.wait_for("the polls to take every slot", || {
        (throttle.open() >= SLOTS).then_some(())
    });
    sleep(Duration::from_millis(500));
    let most = throttle.most_open();
    assert_eq!(
        most, SLOTS,
        "{most} connections at once for {SOURCES} polls"
    );

    // Released, the round completes and every source imports.
    throttle.unlimited();
    for i in 0..SOURCES {
        daemon.wait_for_current(&format!("s{i}"), &disk.digest);
    }
}
