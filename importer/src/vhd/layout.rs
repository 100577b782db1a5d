//! The VHD layout: which ranges of the file are what, fixed or dynamic.
//!
//! A **fixed** VHD is raw data followed by its footer. Its start looks like any raw
//! disk, so it is recognised by name (see [`crate::format`]), sized at once as the file
//! less the footer, streamed through as data, and the footer is checked when the stream
//! reaches it: a footer that is missing, corrupt, of another type or sized otherwise
//! fails the import. A **dynamic** VHD starts with a copy of its footer; it names the
//! dynamic header, which names the BAT, which maps the blocks. Differencing disks are
//! refused.
//!
//! Memory: the layout keeps its headers; the BAT becomes ranges in the mapper (one per
//! run of blocks stored in order).

use bytes::Bytes;

use super::dynamic::{self, DynamicHeader};
use super::footer::{self, DiskType, FOOTER, Footer};
use crate::Result;
use crate::blockmap::{ImageFeature, ImageProblem, Layout, Range, TableKind, invalid, unsupported};
use crate::extent::Extent;
use crate::format::{DiskFormat, Subformat};

/// The structures of a VHD.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    /// The footer copy at the start of a dynamic VHD.
    HeadFooter,
    /// The footer at the end of a fixed VHD.
    TailFooter,
    DynamicHeader,
    Bat,
}

impl TableKind for Table {
    fn name(self) -> &'static str {
        match self {
            Self::HeadFooter | Self::TailFooter => "footer",
            Self::DynamicHeader => "dynamic header",
            Self::Bat => "BAT",
        }
    }
}

/// What is known of the image.
#[derive(Debug)]
enum Known {
    /// A fixed VHD of this many data bytes (none if the file is shorter than a
    /// footer), its footer not read yet.
    Fixed { data: Option<u64> },
    /// A dynamic VHD, before its footer copy is read.
    Dynamic,
    /// The footer copy is read.
    Footer(Footer),
    /// The dynamic header is read too.
    Header(Footer, DynamicHeader),
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct VhdLayout {
    known: Known,
}

impl VhdLayout {
    /// A layout for a VHD of `file_size` bytes whose first bytes are `head`: dynamic
    /// if they are a footer copy, else fixed, and then sized at once.
    pub fn new(head: &[u8], file_size: u64) -> Self {
        let known = if head.starts_with(footer::COOKIE) {
            Known::Dynamic
        } else {
            Known::Fixed {
                data: file_size.checked_sub(FOOTER),
            }
        };
        Self { known }
    }
}

impl Layout for VhdLayout {
    type Table = Table;
    const FORMAT: DiskFormat = DiskFormat::Vhd;
    /// Footer, dynamic header, BAT, blocks.
    const MAX_PASSES: u32 = 4;

    fn start(&mut self, stream_len: u64) -> Result<Vec<Range<Table>>> {
        match self.known {
            Known::Fixed { data } => {
                let Some(data) = data.filter(|&d| d + FOOTER == stream_len) else {
                    return Err(invalid(
                        DiskFormat::Vhd,
                        0,
                        ImageProblem::Signature("VHD footer (conectix)"),
                    ));
                };
                Ok(vec![
                    Range::data(0, data, 0),
                    Range::table(Table::TailFooter, data, FOOTER),
                ])
            }
            _ => Ok(vec![Range::table(Table::HeadFooter, 0, FOOTER)]),
        }
    }

    fn table(
        &mut self,
        kind: Table,
        host: u64,
        bytes: Bytes,
        ranges: &mut Vec<Range<Table>>,
        _out: &mut Vec<Extent>,
    ) -> Result<()> {
        match (kind, &self.known) {
            (Table::TailFooter, &Known::Fixed { data: Some(data) }) => {
                check_fixed(&bytes, host, data)
            }
            (Table::HeadFooter, Known::Dynamic) => {
                let footer = footer::parse(&bytes, host)?;
                match footer.disk_type {
                    DiskType::Dynamic => {}
                    DiskType::Differencing => {
                        return Err(unsupported(DiskFormat::Vhd, ImageFeature::VhdDifferencing));
                    }
                    DiskType::Fixed => {
                        return Err(unsupported(DiskFormat::Vhd, ImageFeature::VhdType(2)));
                    }
                    DiskType::Other(t) => {
                        return Err(unsupported(DiskFormat::Vhd, ImageFeature::VhdType(t)));
                    }
                }
                ranges.push(Range::table(
                    Table::DynamicHeader,
                    footer.data_offset,
                    dynamic::HEADER,
                ));
                self.known = Known::Footer(footer);
                Ok(())
            }
            (Table::DynamicHeader, &Known::Footer(footer)) => {
                let header = dynamic::parse_header(&bytes, host, footer.virtual_size)?;
                ranges.push(Range::table(
                    Table::Bat,
                    header.bat_offset,
                    header.bat_entries * 4,
                ));
                self.known = Known::Header(footer, header);
                Ok(())
            }
            (Table::Bat, Known::Header(footer, header)) => {
                ranges.extend(dynamic::bat_ranges(header, &bytes, footer.virtual_size));
                Ok(())
            }
            _ => Err(crate::Error::Internal(format!("VHD {kind:?} out of turn"))),
        }
    }

    fn virtual_size(&self) -> Option<u64> {
        match self.known {
            Known::Fixed { data } => data,
            Known::Dynamic => None,
            Known::Footer(f) | Known::Header(f, _) => Some(f.virtual_size),
        }
    }

    fn subformat(&self) -> Option<Subformat> {
        match self.known {
            Known::Fixed { .. } => Some(Subformat::Fixed),
            _ => Some(Subformat::Dynamic),
        }
    }
}

/// The footer at the end of a fixed VHD must say so, and size the disk as the data
/// before it.
fn check_fixed(bytes: &[u8], host: u64, data: u64) -> Result<()> {
    let footer = footer::parse(bytes, host)?;
    match footer.disk_type {
        DiskType::Fixed if footer.virtual_size == data => Ok(()),
        DiskType::Fixed => Err(invalid(
            DiskFormat::Vhd,
            host,
            ImageProblem::FixedSize {
                footer: footer.virtual_size,
                data,
            },
        )),
        DiskType::Differencing => Err(unsupported(DiskFormat::Vhd, ImageFeature::VhdDifferencing)),
        DiskType::Dynamic => Err(unsupported(DiskFormat::Vhd, ImageFeature::VhdType(3))),
        DiskType::Other(t) => Err(unsupported(DiskFormat::Vhd, ImageFeature::VhdType(t))),
    }
}
