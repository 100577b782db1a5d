//! VDI (VirtualBox) → raw in one pass: static and dynamic images.
//!
//! `header` parses and vets the header, [`VdiLayout`] names the ranges of the file for
//! the [`Mapper`](crate::blockmap::Mapper). Layout reference: qemu's `block/vdi.c`.

mod header;
mod layout;

pub(crate) use layout::VdiLayout;
