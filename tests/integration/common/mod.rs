//! The integration-test harness: real registries, real disks, real container disks.
//!
//! Integration tests run the real `bootsource` binary against Debian's `docker-registry`
//! on a free 127.0.0.1 port, with container disks built either from Rust (exact bytes for
//! every odd case) or the way vendors build them (`umoci` + `skopeo`). The oracle for an
//! imported disk is `qemu-img compare` against the source. Nothing is mocked and nothing
//! leaves 127.0.0.1; every test gets its own registry and temporary directories, so tests
//! run in parallel.
//!
//! ```ignore
//! use crate::common;
//! use crate::common::{disk, oci, push, registry::Registry};
//!
//! let registry = Registry::start();
//! let dir = tempfile::tempdir().unwrap();
//! let raw = dir.path().join("disk.raw");
//! disk::write_raw_disk(&raw, 8 << 20, 1);
//! let tar = oci::Tar::new().dir("disk/").file("disk/disk.img", &std::fs::read(&raw).unwrap()).finish();
//! let image = oci::Image::new(oci::Schema::Oci, oci::Platform::linux_amd64(),
//!     vec![oci::Blob::layer(&tar, oci::LayerType::OciTarZstd)]);
//! let digest = push::push(&registry, "os/fedora", "41", &image);
//! // bootsource import docker://{registry.host_port()}/os/fedora:41 --tls-verify=false …
//! ```
//!
//! The programs come from Debian packages; CI installs them with
//!
//! ```text
//! apt-get install -y docker-registry qemu-utils umoci skopeo apache2-utils openssl tar \
//!     tinyproxy time util-linux mount e2fsprogs fdisk gnupg nginx xz-utils bzip2 zstd
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`tools`] | running those programs, with errors that name the package to install |
//! | [`registry`] | a `docker-registry` process: plain, basic auth, TLS; stop and restart |
//! | [`tls`] | a throw-away CA and server certificate made with `openssl` |
//! | [`auth`] | htpasswd files and containers `auth.json` |
//! | [`client`] | a small blocking client for the registry HTTP API |
//! | [`disk`] | deterministic raw disks, qcow2 conversions, `qemu-img compare` |
//! | [`formats`] | VMDK, VHD, VHDX, VDI and OVA images of a real file system, made by `qemu-img`, and their oracle |
//! | [`oci`] | layers, manifests, indexes and OCI layout directories, byte for byte |
//! | [`push`] | pushing those to a registry with every byte and digest preserved |
//! | [`vendor`] | container disks made by `umoci` and copied by `skopeo` |
//! | [`bootsource`] | running the real binary, parsing `--json`, the import oracle checks |
//! | [`canned`] | a hostile registry: one canned answer of any size to every request |
//! | [`loopdev`] | loop block devices over temporary files, detached on drop |
//! | [`proxy`] | a `tinyproxy` HTTP proxy on 127.0.0.1 that logs what it forwards |
//! | [`daemon`] | a test node running `bootsource daemon`: config, signals, `/metrics`, status |
//! | [`acceptor`] | the accept loop of those relays, which can close every open connection |
//! | [`throttle`] | a slow (or stalled) network in front of a registry, for imports caught mid-way |
//! | [`faults`] | an HTTP relay in front of a registry that cuts, refuses, stalls, alters and lies |
//! | [`signing`] | GPG keys, `skopeo` signing and the `skopeo copy` policy oracle, cosign signatures |
//! | [`nginx`] | Debian's `nginx` serving disk files (Range, ETag, If-Range), and a server without HEAD or Range |
//! | [`fleet`] | six test nodes behind one mirror, started and polled together; the origin's blob GETs counted |
//! | [`registry_cache`] | Debian's `nginx` caching a registry's blobs with the shipped `deploy/nginx/registry-cache.conf` |
//! | [`xfs`] | XFS with reflink on a loop device, mounted; unmounted and detached on drop |

pub mod acceptor;
pub mod auth;
pub mod bootsource;
pub mod canned;
pub mod client;
pub mod daemon;
pub mod disk;
pub mod faults;
pub mod fleet;
pub mod formats;
pub mod fuse;
pub mod hung;
pub mod loopdev;
pub mod nginx;
pub mod oci;
pub mod proxy;
pub mod push;
pub mod registry;
pub mod registry_cache;
pub mod signing;
pub mod throttle;
pub mod tls;
pub mod token;
pub mod tools;
pub mod vendor;
pub mod xfs;
