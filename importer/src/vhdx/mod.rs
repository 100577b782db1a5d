//! VHDX (Hyper-V) → raw in one pass: fixed and dynamic disks.
//!
//! `header` reads the header region (identifier, headers, region table), `metadata`
//! the metadata items, `bat` the block allocation table, and [`VhdxLayout`] names the
//! ranges of the file for the [`Mapper`](crate::blockmap::Mapper). Differencing disks
//! and logs still to replay are refused. Layout reference: Microsoft's VHDX format
//! specification 1.0 and qemu's `block/vhdx.c`.

mod bat;
mod crc32c;
mod header;
mod layout;
mod metadata;

pub(crate) use layout::VhdxLayout;
