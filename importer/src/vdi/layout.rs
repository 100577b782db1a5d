//! The VDI layout: header, block map, blocks.
//!
//! The block map (after the header in files VirtualBox and qemu write) holds one
//! little-endian `u32` per 1 MiB block of the guest disk: the index of the block in
//! the data area, or `0xffffffff` / `0xfffffffe` (not allocated, discarded: zeros).
//! Memory: the header; the block map becomes ranges in the mapper (one per run of
//! blocks stored in order: a static VDI is one range).

use bytes::Bytes;

use super::header::{self, HEADER, Header};
use crate::Result;
use crate::blockmap::{Layout, Range, RangeRun, TableKind, le32};
use crate::extent::Extent;
use crate::format::{DiskFormat, Subformat};

/// Block map entries at or above this are not allocated.
const FIRST_UNALLOCATED: u32 = 0xffff_fffe;

/// The structures of a VDI.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Table {
    Header,
    BlockMap,
}

impl TableKind for Table {
    fn name(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::BlockMap => "block map",
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct VdiLayout {
    header: Option<Header>,
}

impl Layout for VdiLayout {
    type Table = Table;
    const FORMAT: DiskFormat = DiskFormat::Vdi;
    /// Header, block map, blocks.
    const MAX_PASSES: u32 = 3;

    fn start(&mut self, _stream_len: u64) -> Result<Vec<Range<Table>>> {
        Ok(vec![Range::table(Table::Header, 0, HEADER)])
    }

    fn table(
        &mut self,
        kind: Table,
        _host: u64,
        bytes: Bytes,
        ranges: &mut Vec<Range<Table>>,
        _out: &mut Vec<Extent>,
    ) -> Result<()> {
        match (kind, &self.header) {
            (Table::Header, None) => {
                let header = header::parse(&bytes)?;
                ranges.push(Range::table(
                    Table::BlockMap,
                    header.bmap_offset,
                    header.blocks * 4,
                ));
                self.header = Some(header);
            }
            (Table::BlockMap, Some(header)) => ranges.extend(block_ranges(header, &bytes)),
            _ => return Err(crate::Error::Internal(format!("VDI {kind:?} out of turn"))),
        }
        Ok(())
    }

    fn virtual_size(&self) -> Option<u64> {
        self.header.map(|h| h.virtual_size)
    }

    fn subformat(&self) -> Option<Subformat> {
        self.header.map(|h| {
            if h.is_static {
                Subformat::Static
            } else {
                Subformat::Dynamic
            }
        })
    }
}

fn block_ranges(header: &Header, map: &[u8]) -> Vec<Range<Table>> {
    let mut run = RangeRun::default();
    for (block, entry) in (0u64..).zip(map.chunks_exact(4)) {
        let index = le32(entry, 0);
        if index >= FIRST_UNALLOCATED {
            continue;
        }
        let guest = block * header.block_size;
        let len = header.block_size.min(header.virtual_size - guest);
        let host = header.data_offset + u64::from(index) * header.block_size;
        run.data(host, len, guest);
    }
    run.into_vec()
}
