//! bootsource's importer: a container disk in, a raw disk image out, in one pass.
//!
//! The pipeline, stage by stage (each its own module):
//!
//! ```text
//! source (registry | OCI layout) → blob bytes, sha256 checked while streaming
//!   → layer decompression (gzip | zstd | none) → tar walk to disk/<file>
//!   → format sniff → qcow2 stream decoder | raw passthrough → extents
//!   → writer (inflate compressed clusters in parallel, skip zeros, pwrite) → target
//! ```
//!
//! Nothing goes through a scratch copy: a qcow2 whose clusters arrive before their
//! tables is read a second time from the immutable blob instead (see [`qcow2`]).

#![forbid(unsafe_code)]

mod digest;
mod error;
mod extent;
pub mod manifest;
mod platform;
pub mod qcow2;
mod reference;

pub use digest::{Digest, ParseDigestError};
pub use error::{Error, Result};
pub use extent::{Extent, GuestOffset};
pub use platform::{ParsePlatformError, Platform};
pub use reference::{ParseSourceError, RegistryRef, SourceRef};
