//! `bootsource import` stopped by SIGTERM or SIGINT in the middle of the layer: the
//! import is cancelled, nothing is left beside the target, and the command says so and
//! exits with the shell's status for the signal (128 + its number).
//!
//! The download is slowed by a [`Throttle`] so the signal arrives mid-layer.

use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::bootsource::{PLAIN_HTTP, dir_entries, import_command};
use crate::common::daemon::{TestDisk, WAIT};
use crate::common::registry::Registry;
use crate::common::throttle::Throttle;

const MIB: u64 = 1 << 20;

#[test]
fn sigterm_and_sigint_cancel_an_import_and_leave_nothing_behind() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    // 16 MiB at 2 MiB/s: 8 s, far longer than the test needs to catch it mid-layer.
    let disk = TestDisk::incompressible(dir.path(), "big", 16 * MIB, 9);
    disk.push(&registry, "os/big:1");
    let throttle = Throttle::start(&registry);
    throttle.set_rate(2 * MIB);

    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let targets = tempfile::tempdir().unwrap();
        let target = targets.path().join("big.img");
        let child = import_command(&throttle.reference("os/big:1"), &target, &[PLAIN_HTTP])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Mid-layer: more than the manifest and config have come through.
        let start = throttle.forwarded();
        let deadline = Instant::now() + WAIT;
        while throttle.forwarded() < start + MIB {
            assert!(Instant::now() < deadline, "the download never got going");
            sleep(Duration::from_millis(20));
        }
        kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("after {signal}: {}\n{stderr}", output.status);
        assert_eq!(
            output.status.code(),
            Some(128 + signal as i32),
            "{signal} did not end the import with the shell's status:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("interrupted by {signal}")) && stderr.contains("cancelled"),
            "{stderr}"
        );
        assert_eq!(
            dir_entries(targets.path()),
            Vec::<String>::new(),
            "left behind after {signal}"
        );
    }
}
