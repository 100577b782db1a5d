//! The VHDX layout: header region, log, metadata, BAT, blocks.
//!
//! The header region (first MiB) names the log, the BAT and the metadata regions. A
//! log whose GUID is set is read, and refused if it holds an entry of that GUID (a
//! replay we do not do); an empty log is passed over. The BAT is gathered whole and
//! read once the metadata (block size, virtual size) is known, whichever comes first
//! in the file (qemu-img writes the BAT first).
//!
//! Memory: the raw BAT until the metadata arrives (at most `assembly_bytes`); then its
//! ranges in the mapper (one per run of blocks stored in order).

use bytes::Bytes;

use super::bat;
use super::header::{self, REGION, Regions};
use super::metadata::{self, Metadata};
use crate::Result;
use crate::blockmap::{ImageFeature, ImageProblem, Layout, Range, TableKind, invalid, unsupported};
use crate::extent::Extent;
use crate::format::{DiskFormat, Subformat};

/// Bytes of a log sector; entries start on one.
const LOG_SECTOR: usize = 4096;

/// The structures of a VHDX.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    HeaderRegion,
    Log,
    Metadata,
    Bat,
}

impl TableKind for Table {
    fn name(self) -> &'static str {
        match self {
            Self::HeaderRegion => "header region",
            Self::Log => "log",
            Self::Metadata => "metadata region",
            Self::Bat => "BAT",
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct VhdxLayout {
    regions: Option<Regions>,
    metadata: Option<Metadata>,
    /// The BAT, while the metadata is still to come.
    bat: Option<(u64, Bytes)>,
}

impl Layout for VhdxLayout {
    type Table = Table;
    const FORMAT: DiskFormat = DiskFormat::Vhdx;
    /// Header region, metadata and BAT, blocks.
    const MAX_PASSES: u32 = 4;

    fn start(&mut self, _stream_len: u64) -> Result<Vec<Range<Table>>> {
        Ok(vec![Range::table(Table::HeaderRegion, 0, REGION)])
    }

    fn table(
        &mut self,
        kind: Table,
        host: u64,
        bytes: Bytes,
        ranges: &mut Vec<Range<Table>>,
        _out: &mut Vec<Extent>,
    ) -> Result<()> {
        match kind {
            Table::HeaderRegion => {
                let r = header::parse(&bytes)?;
                let (log_at, log_len) = r.log;
                ranges.push(if r.log_guid == [0; 16] {
                    Range::skip(log_at, log_len)
                } else {
                    Range::table(Table::Log, log_at, log_len)
                });
                ranges.push(Range::table(Table::Metadata, r.metadata.0, r.metadata.1));
                ranges.push(Range::table(Table::Bat, r.bat.0, r.bat.1));
                self.regions = Some(r);
            }
            Table::Log => {
                let guid = self.regions.map(|r| r.log_guid).unwrap_or_default();
                if log_has_entries(&bytes, &guid) {
                    return Err(unsupported(DiskFormat::Vhdx, ImageFeature::VhdxLog));
                }
            }
            Table::Metadata => {
                let meta = metadata::parse(&bytes, host)?;
                self.metadata = Some(meta);
                if let Some((at, bat)) = self.bat.take() {
                    ranges.extend(read_bat(&meta, &bat, at)?);
                }
            }
            Table::Bat => match self.metadata {
                Some(meta) => ranges.extend(read_bat(&meta, &bytes, host)?),
                None => self.bat = Some((host, bytes)),
            },
        }
        Ok(())
    }

    fn virtual_size(&self) -> Option<u64> {
        self.metadata.map(|m| m.virtual_size)
    }

    fn subformat(&self) -> Option<Subformat> {
        self.metadata.map(|m| {
            if m.fixed {
                Subformat::Fixed
            } else {
                Subformat::Dynamic
            }
        })
    }
}

fn read_bat<T: TableKind>(meta: &Metadata, bat: &[u8], at: u64) -> Result<Vec<Range<T>>> {
    let needed = bat::needed_bytes(meta);
    if (bat.len() as u64) < needed {
        return Err(invalid(
            DiskFormat::Vhdx,
            at,
            ImageProblem::TableTooShort {
                what: "BAT",
                entries: bat.len() as u64 / 8,
                needed: needed / 8,
            },
        ));
    }
    bat::ranges(meta, bat, at)
}

/// Whether a log sector starts an entry (`loge`) of this log's GUID.
fn log_has_entries(log: &[u8], guid: &[u8; 16]) -> bool {
    log.chunks_exact(LOG_SECTOR)
        .any(|s| s.starts_with(b"loge") && &s[32..48] == guid)
}
