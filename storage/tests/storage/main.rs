//! The store on real file systems and real block devices: needs root and the Debian
//! packages mount, xfsprogs, btrfs-progs and e2fsprogs. One test binary, so the crate
//! is linked once; each test makes and removes its own loop devices and mounts.

mod block;
mod clone;
mod common;
mod crash;
mod gc;
mod identity;
mod layout;
mod overlap;
mod publish;
