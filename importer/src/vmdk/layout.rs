//! The VMDK layout: which ranges of a monolithicSparse or streamOptimized file are what.
//!
//! The header names the embedded descriptor (checked: one file, no parent), and then:
//! - **sparse** grains: the grain directory (or, when it is "at the end", the footer
//!   naming it) names the grain tables, which map each grain of the guest disk to its
//!   sector in the file (0: unallocated, 1: a zero grain). The redundant directory and
//!   its tables are passed over.
//! - **stream** grains: the marker chain from the grain offset (see `stream`); the
//!   tables qemu-img writes before the grains are passed over.
//!
//! Memory: the header, the grain record of a stream (`stream::GrainSet`); the grain
//! tables become ranges in the mapper (one per run of grains stored in order).

use bytes::Bytes;

use super::descriptor;
use super::header::{self, GD_AT_END, Grains, HEADER, Header};
use super::stream::{self, GrainSet, MARKER, Next};
use crate::Result;
use crate::blockmap::{ImageProblem, Layout, Range, RangeRun, TableKind, invalid, le32};
use crate::extent::Extent;
use crate::format::{DiskFormat, Subformat};

/// The structures of a VMDK.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    Header,
    Descriptor,
    /// A copy of the header near the end, naming the grain directory.
    Footer,
    GrainDirectory,
    RedundantDirectory,
    /// Grain table number `n`.
    Gt(u64),
    Marker,
    MarkerType {
        sectors: u64,
    },
    Grain {
        guest: u64,
    },
}

impl TableKind for Table {
    fn name(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Descriptor => "descriptor",
            Self::Footer => "footer",
            Self::GrainDirectory => "grain directory",
            Self::RedundantDirectory => "redundant grain directory",
            Self::Gt(_) => "grain table",
            Self::Marker | Self::MarkerType { .. } => "stream marker",
            Self::Grain { .. } => "compressed grain",
        }
    }

    /// One marker per grain: remembering them all would grow with the disk; the chain
    /// only moves forward, so none can be named over another.
    fn guarded(self) -> bool {
        !matches!(
            self,
            Self::Marker | Self::MarkerType { .. } | Self::Grain { .. }
        )
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct VmdkLayout {
    stream_len: u64,
    header: Option<Header>,
    grains_seen: GrainSet,
}

impl Layout for VmdkLayout {
    type Table = Table;
    const FORMAT: DiskFormat = DiskFormat::Vmdk;
    /// Header, footer, grain directory, grain tables, grains.
    const MAX_PASSES: u32 = 5;

    fn start(&mut self, stream_len: u64) -> Result<Vec<Range<Table>>> {
        self.stream_len = stream_len;
        Ok(vec![Range::table(Table::Header, 0, stream_len.min(HEADER))])
    }

    fn table(
        &mut self,
        kind: Table,
        host: u64,
        bytes: Bytes,
        ranges: &mut Vec<Range<Table>>,
        out: &mut Vec<Extent>,
    ) -> Result<()> {
        if let Table::Header = kind {
            return self.on_header(&bytes, ranges);
        }
        let Some(h) = self.header else {
            return Err(crate::Error::Internal(format!(
                "VMDK {kind:?} before the header"
            )));
        };
        match kind {
            Table::Header => unreachable!("handled above"),
            Table::Descriptor => descriptor::check_embedded(&bytes, host)?,
            Table::Footer => {
                let footer = header::parse(&bytes, host)?;
                if footer.gd_offset == GD_AT_END {
                    return Err(invalid(
                        DiskFormat::Vmdk,
                        host,
                        ImageProblem::OutOfRange {
                            what: "footer grain directory offset",
                            value: GD_AT_END,
                        },
                    ));
                }
                ranges.push(Range::table(
                    Table::GrainDirectory,
                    footer.gd_offset,
                    h.gd_entries * 4,
                ));
            }
            Table::GrainDirectory => ranges.extend(directory(&bytes, &h, Some)),
            Table::RedundantDirectory => ranges.extend(directory(&bytes, &h, |_| None)),
            Table::Gt(index) => ranges.extend(grain_table(&bytes, index, &h)),
            Table::Marker => match stream::marker(&bytes, host, h.grain_bytes, h.virtual_size)? {
                Next::Grain { host, len, guest } => {
                    self.grains_seen
                        .insert(guest / h.grain_bytes, host - MARKER)?;
                    ranges.push(Range::table(Table::Grain { guest }, host, len));
                    let next = stream::after_grain(host, len);
                    ranges.extend(stream::pad(host + len, next));
                    self.marker_at(next, ranges);
                }
                Next::Metadata { host, sectors } => {
                    ranges.push(Range::table(Table::MarkerType { sectors }, host, 4));
                }
            },
            Table::MarkerType { sectors } => {
                let ty = le32(&bytes, 0);
                if let Some((from, next)) = stream::after_metadata(ty, host, sectors)? {
                    ranges.extend(stream::pad(from, next));
                    self.marker_at(next, ranges);
                }
            }
            Table::Grain { guest } => {
                out.push(stream::grain(
                    bytes,
                    host,
                    guest,
                    h.grain_bytes,
                    h.virtual_size,
                )?);
            }
        }
        Ok(())
    }

    fn virtual_size(&self) -> Option<u64> {
        self.header.map(|h| h.virtual_size)
    }

    fn subformat(&self) -> Option<Subformat> {
        self.header.map(|h| match h.grains {
            Grains::Sparse => Subformat::MonolithicSparse,
            Grains::Stream => Subformat::StreamOptimized,
        })
    }
}

impl VmdkLayout {
    fn on_header(&mut self, bytes: &[u8], ranges: &mut Vec<Range<Table>>) -> Result<()> {
        if bytes.starts_with(descriptor::MAGIC) {
            return Err(descriptor::refuse_file(bytes));
        }
        let h = header::parse(bytes, 0)?;
        let Some((desc_at, desc_len)) = h.descriptor else {
            return Err(crate::blockmap::unsupported(
                DiskFormat::Vmdk,
                crate::blockmap::ImageFeature::VmdkExtentFile,
            ));
        };
        let desc_len = desc_len.min(descriptor::MAX_BYTES);
        if desc_at < HEADER {
            return Err(invalid(
                DiskFormat::Vmdk,
                28,
                ImageProblem::InsideHeader("descriptor"),
            ));
        }
        ranges.push(Range::table(Table::Descriptor, desc_at, desc_len));
        match h.grains {
            Grains::Sparse if h.gd_offset == GD_AT_END => {
                let at = self.stream_len.checked_sub(2 * HEADER).ok_or(invalid(
                    DiskFormat::Vmdk,
                    56,
                    ImageProblem::OutOfRange {
                        what: "grain directory offset",
                        value: GD_AT_END,
                    },
                ))?;
                ranges.push(Range::table(Table::Footer, at, HEADER));
            }
            Grains::Sparse => {
                ranges.push(Range::table(
                    Table::GrainDirectory,
                    h.gd_offset,
                    h.gd_entries * 4,
                ));
                if let Some(rgd) = h.rgd_offset {
                    ranges.push(Range::table(
                        Table::RedundantDirectory,
                        rgd,
                        h.gd_entries * 4,
                    ));
                }
            }
            Grains::Stream => {
                if h.grain_offset < HEADER {
                    return Err(invalid(
                        DiskFormat::Vmdk,
                        64,
                        ImageProblem::InsideHeader("grain offset"),
                    ));
                }
                // What lies between the header and the first marker (qemu-img puts its
                // grain tables there) is passed over, around the descriptor.
                let desc_end = desc_at + desc_len;
                let (from, to) = (HEADER, h.grain_offset.min(self.stream_len));
                if desc_at < to && desc_end > from {
                    ranges.extend(stream::pad(from, desc_at));
                    ranges.extend(stream::pad(desc_end.min(to), to));
                } else {
                    ranges.extend(stream::pad(from, to));
                }
                self.marker_at(h.grain_offset, ranges);
            }
        }
        self.header = Some(h);
        Ok(())
    }

    /// The next marker of the chain, unless the file ends there.
    fn marker_at(&self, at: u64, ranges: &mut Vec<Range<Table>>) {
        if at < self.stream_len {
            ranges.push(Range::table(Table::Marker, at, MARKER));
        }
    }
}

/// The grain tables a directory names; `keep` maps a table's index to what it is
/// (`None` for the redundant copies, which are passed over).
fn directory(bytes: &[u8], h: &Header, keep: impl Fn(u64) -> Option<u64>) -> Vec<Range<Table>> {
    let gt_len = h.gtes_per_gt * 4;
    (0u64..)
        .zip(bytes.chunks_exact(4))
        .filter_map(|(index, entry)| {
            let sector = u64::from(le32(entry, 0));
            (sector != 0).then(|| match keep(index) {
                Some(index) => Range::table(Table::Gt(index), sector * 512, gt_len),
                None => Range::skip(sector * 512, gt_len),
            })
        })
        .collect()
}

/// The grains grain table `index` maps.
fn grain_table(bytes: &[u8], index: u64, h: &Header) -> Vec<Range<Table>> {
    let mut run = RangeRun::default();
    let first = index * h.gtes_per_gt;
    for (grain, entry) in (first..).zip(bytes.chunks_exact(4)) {
        let guest = grain * h.grain_bytes;
        if guest >= h.virtual_size {
            break;
        }
        match le32(entry, 0) {
            0 => {}
            1 if h.zero_grains => {}
            sector => run.data(
                u64::from(sector) * 512,
                h.grain_bytes.min(h.virtual_size - guest),
                guest,
            ),
        }
    }
    run.into_vec()
}
