//! Boot-source versions on local storage: staging, sealing, publishing, cloning and
//! garbage collection, over four kinds of backend (`dir`, `reflink`, `btrfs`, `block`).
//!
//! The importer writes raw bytes into a place this crate opens and hands out
//! ([`Staging::place`]); this crate knows nothing about images, registries or formats,
//! and reads no config file (the binary builds a [`StoreConfig`]). Everything durable
//! is in the catalog (`<state>/catalog.json`), so `bootsource status` and `bootsource
//! clone` can open the same store while the daemon imports.
//!
//! ```no_run
//! use bootsource_storage::{BackendConfig, BackendKind, Digest, Stage, Store, StoreConfig};
//! # fn import(_: &dyn bootsource_place::Place) -> std::io::Result<()> { Ok(()) }
//! let config = StoreConfig::new("/var/lib/bootsource")
//!     .with_backend("local", BackendConfig::files(BackendKind::Dir, "/var/lib/bootsource"));
//! let store = Store::open(config)?; // recovers from crashes, repairs `current` links
//! let digest: Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".parse()?;
//! // Keeping 3 versions: a full block pool drops the oldest to make room.
//! match store.stage("fedora", "local", &digest, bootsource_place::DiskSize::Known(5 << 30), 3)? {
//!     Stage::AlreadyPresent(version) => {
//!         store.publish(&version)?;
//!     }
//!     Stage::Staging(staging) => match import(&*staging.place()) {
//!         Ok(()) => {
//!             store.commit(staging)?; // finished, sealed and published atomically
//!         }
//!         Err(_) => store.abort(staging)?,
//!     },
//! }
//! store.gc("fedora", 3)?;
//! store.clone_current("fedora", "/var/lib/vms/vm1.img".as_ref())?;
//! # Ok::<(), bootsource_storage::Error>(())
//! ```
//!
//! Modules, one idea each: `config` (backends and formats), `names` (digests and
//! volume ids), `catalog` (the on-disk record), `lock` (who may touch what),
//! `durable` (atomic replacement), `landing` (where a path resolves to), `lifecycle`
//! (staging → sealed → published), `gc`, `recovery`, `clone`, `overlap` (what a target
//! must not touch), `sparse` (sparse copy into a place), `backend::{files, reflink,
//! btrfs, block}`, `ioctl` (every `unsafe`), `status` (what `bootsource status` shows).

mod backend;
mod catalog;
mod clone;
mod config;
mod durable;
mod error;
mod gc;
mod ioctl;
mod landing;
mod lifecycle;
mod lock;
mod names;
mod overlap;
mod problem;
mod recovery;
mod sparse;
mod status;
mod step;
mod store;
mod time;

pub use clone::{CloneMethod, CloneReport};
pub use config::{
    BackendConfig, BackendKind, DEFAULT_NAMESPACE, DEFAULT_STATE_DIR, Format, StoreConfig,
};
pub use error::{Error, Result};
pub use gc::GcReport;
pub use lifecycle::{Committed, Hold, Stage, Staging};
pub use names::{Digest, VolumeId, check_backend_name, check_namespace, check_source_name};
pub use problem::{CatalogProblem, ConfigProblem, DeviceUnusable, SkippedDevices};
pub use status::{Importing, SourceStatus, Version};
#[doc(hidden)]
pub use step::set_step_hook;
pub use store::Store;
pub use time::Timestamp;
