//! The engine shared by the block-table formats: VMDK, VHD, VHDX and VDI.
//!
//! Each of those formats is a header, tables that map blocks of the guest disk to
//! places in the file, and the blocks. Their modules (`vmdk`, `vhd`, `vhdx`, `vdi`)
//! hold the format knowledge as a [`Layout`]: parse a header or a table, name the
//! ranges of the file it maps. The [`Mapper`] here owns the streaming: serving ranges
//! as the stream passes them, the spool for bytes that arrive before their table, the
//! passes when that spool is not enough, and the refusal of ranges that share bytes.
//! Neither side does I/O.

mod field;
mod mapper;
mod problem;
mod range;
mod structures;

pub(crate) use field::{be16, be32, be64, le16, le32, le64};
pub(crate) use mapper::{Layout, Mapper};
pub use problem::{ImageFeature, ImageProblem};
pub(crate) use range::{Range, RangeRun, TableKind};

use crate::Error;
use crate::format::DiskFormat;

/// The error for `problem` found at byte `offset` of a `format` image.
pub(crate) fn invalid(format: DiskFormat, offset: u64, problem: ImageProblem) -> Error {
    Error::InvalidImage {
        format,
        offset,
        problem,
    }
}

/// The error for an image of a kind we do not convert.
pub(crate) fn unsupported(format: DiskFormat, feature: ImageFeature) -> Error {
    Error::UnsupportedImage { format, feature }
}
