//! qcow2 → raw in one pass over a non-seekable stream.
//!
//! The format knowledge lives here and knows nothing about where bytes come from:
//! [`Header`] parses and vets the header, `mapping` turns L1/L2 tables into host→guest
//! ranges, `host_use` sees that no two of them are given the same host bytes, the `spool` keeps bytes that arrive before their tables, `clusters` serves
//! each byte range as its tables say once the header is known, [`Decoder`] drives it
//! all as a pure state machine through its phases, and [`Inflater`] decompresses
//! compressed clusters (deflate or zstd) wherever the caller chooses to run it.
//!
//! ```
//! use bootsource_importer::qcow2::{Decoder, Limits, PassEnd};
//! # fn feed(image: bytes::Bytes) -> bootsource_importer::Result<()> {
//! let mut decoder = Decoder::new(image.len() as u64, Limits::default());
//! let mut extents = Vec::new();
//! loop {
//!     for chunk in image.chunks(1 << 20) {
//!         decoder.feed(&image.slice_ref(chunk), &mut extents)?;
//!         // write `extents` out here (Extent::Compressed needs an Inflater first)
//!         extents.clear();
//!     }
//!     if decoder.finish_pass()? == PassEnd::Complete {
//!         return Ok(());
//!     }
//! }
//! # }
//! ```

mod clusters;
mod decoder;
mod header;
mod host_use;
mod inflate;
mod mapping;
mod problem;
mod refcount;
mod spool;

pub use decoder::{Decoder, Limits, MAX_PASSES, PassEnd};
pub use header::{Codec, Header, MAGIC};
pub(crate) use host_use::ClusterSet;
pub use inflate::{InflateError, Inflater};
pub use problem::{Limit, Qcow2Feature, Qcow2Problem};
pub(crate) use spool::Spool;
