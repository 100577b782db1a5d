//! VHD (Virtual PC, Azure) → raw in one pass: fixed and dynamic disks.
//!
//! `footer` parses the footer and sizes the disk as qemu-img does, `dynamic` reads the
//! dynamic header and the BAT, and [`VhdLayout`] names the ranges of the file for the
//! [`Mapper`](crate::blockmap::Mapper), which streams them. Layout reference: the VHD
//! specification and qemu's `block/vpc.c`.

mod dynamic;
mod footer;
mod layout;

pub(crate) use layout::VhdLayout;
