//! VMDK (VMware) → raw in one pass: monolithicSparse and streamOptimized files.
//!
//! `header` parses and vets the sparse header, `descriptor` refuses every kind that
//! needs more than one file, `stream` reads the marker chain of compressed grains, and
//! [`VmdkLayout`] names the ranges of the file for the
//! [`Mapper`](crate::blockmap::Mapper). Layout reference: VMware's Virtual Disk Format
//! 5.0 and qemu's `block/vmdk.c`.

mod descriptor;
mod header;
mod layout;
mod stream;

pub(crate) use layout::VmdkLayout;
