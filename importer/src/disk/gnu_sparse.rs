//! Old GNU sparse tar entries (`tar --sparse`, type `S`), with their holes kept as holes.
//!
//! `tar::Archive` expands a sparse entry's holes into zeros as the entry is read: a
//! 98-byte entry can declare a 4 TiB file, and reading it would cost time in
//! proportion to those 4 TiB. [`Unsparse`] sits under the tar reader instead. It
//! follows the archive's framing (each header, and the data it announces, a PAX
//! `size` record included, as the tar reader does) and rewrites each sparse header
//! into a regular file of the bytes stored — dropping its extension blocks from the
//! stream — after taking its map of data runs ([`SparseMap`]). The walker looks the
//! map up by the header's position ([`Maps::take`]) and the pipeline feeds the runs at
//! their offsets, passing the holes to the decoder as lengths, never as bytes.
//!
//! Numbers are read with the tar crate's own field parsers, so both readers agree on
//! every header; a block whose checksum is wrong is passed on untouched for the tar
//! reader to refuse. A map is checked as the tar reader checks it (runs in order,
//! within the file, their lengths adding up to the bytes stored), and its extension
//! blocks count against the same 16 MiB bound as every other header
//! ([`super::header_budget`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::rc::Rc;

use tar::{EntryType, GnuExtSparseHeader, GnuSparseHeader, Header, PaxExtensions};

use super::header_budget::{self, MAX_HEADER_BYTES};
use super::problem::SparseMapProblem;
use crate::read_full::read_full;

const BLOCK: usize = 512;

/// Where a sparse file's bytes are: data runs, holes between and after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SparseMap {
    /// The file's size, holes included.
    pub real_size: u64,
    /// The data runs, in file order, without overlap.
    pub runs: Vec<Run>,
}

/// One run of stored bytes, at `offset` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// Where in the file the run starts.
    pub offset: u64,
    /// How many bytes it holds.
    pub len: u64,
}

/// The maps [`Unsparse`] took, by the position of the header it rewrote; a map that
/// breaks the rules is kept as the reason why, for the walker to report if that entry
/// turns out to be the disk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Maps(Rc<RefCell<HashMap<u64, Result<SparseMap, SparseMapProblem>>>>);

impl Maps {
    /// The map of the entry whose header is at `header_position`, if it was sparse.
    pub fn take(&self, header_position: u64) -> Option<Result<SparseMap, SparseMapProblem>> {
        self.0.borrow_mut().remove(&header_position)
    }
}

/// What the stream is in the middle of.
#[derive(Debug)]
enum State {
    /// At a header block.
    Header,
    /// Inside an entry's data (padding included); a PAX entry's records are kept.
    Data { left: u64, pax: Option<Vec<u8>> },
}

/// A tar stream with its old GNU sparse entries turned into regular ones.
pub(crate) struct Unsparse<R> {
    inner: R,
    maps: Maps,
    state: State,
    /// Output position.
    position: u64,
    /// A header block being handed out, and how much of it is.
    block: Box<[u8; BLOCK]>,
    block_out: usize,
    /// The `size` a PAX entry gave the next real entry.
    pax_size: Option<u64>,
}

impl<R: Read> Unsparse<R> {
    pub fn new(inner: R, maps: Maps) -> Self {
        Self {
            inner,
            maps,
            state: State::Header,
            position: 0,
            block: Box::new([0; BLOCK]),
            block_out: BLOCK,
            pax_size: None,
        }
    }

    /// Reads the next header block into `self.block` (rewriting a sparse one).
    /// `false` at the end of the stream.
    fn next_header(&mut self) -> io::Result<bool> {
        let filled = read_full(&mut self.inner, &mut self.block[..])?;
        if filled == 0 {
            return Ok(false);
        }
        if filled < BLOCK {
            // Handed on as it is: the tar reader reports the short archive.
            self.block.copy_within(..filled, BLOCK - filled);
            self.block_out = BLOCK - filled;
            return Ok(true);
        }
        self.block_out = 0;
        let header = Header::from_byte_slice(&self.block[..]);
        if self.block.iter().all(|b| *b == 0) || !checksum_ok(header) {
            return Ok(true);
        }
        let kind = header.entry_type();
        let recognised = header.as_gnu().is_some() || header.as_ustar().is_some();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let mut size = header.entry_size()?;
        if !extension && let Some(pax) = self.pax_size.take() {
            size = pax;
        }
        if kind.is_gnu_sparse() && header.as_gnu().is_some() {
            let map = self.take_map(size)?;
            self.maps.0.borrow_mut().insert(self.position, map);
            make_regular(&mut self.block);
        }
        let pax = (recognised && kind.is_pax_local_extensions()).then(Vec::new);
        self.state = State::Data {
            left: size.next_multiple_of(BLOCK as u64),
            pax,
        };
        Ok(true)
    }

    /// Reads the sparse map of the header in `self.block`, consuming its extension
    /// blocks from the stream.
    fn take_map(&mut self, stored: u64) -> io::Result<Result<SparseMap, SparseMapProblem>> {
        let gnu = Header::from_byte_slice(&self.block[..])
            .as_gnu()
            .expect("checked by the caller");
        let mut map = MapBuilder::new(stored);
        for run in &gnu.sparse {
            map.add(run);
        }
        let real_size = gnu.real_size();
        let mut extended = gnu.is_extended();
        let mut read = 0;
        while extended {
            read += BLOCK as u64;
            if read > MAX_HEADER_BYTES {
                return Err(header_budget::exceeded());
            }
            let mut ext = GnuExtSparseHeader::new();
            if read_full(&mut self.inner, ext.as_mut_bytes())? < BLOCK {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tar archive ends inside a sparse map",
                ));
            }
            for run in &ext.sparse {
                map.add(run);
            }
            extended = ext.is_extended();
        }
        Ok(real_size
            .map_err(|_| SparseMapProblem::BadNumber)
            .and_then(|size| map.finish(size)))
    }

    /// At the end of a PAX entry: the `size` record it gives the next entry.
    fn end_of_data(&mut self, pax: Option<Vec<u8>>) {
        self.state = State::Header;
        if let Some(records) = pax {
            self.pax_size = PaxExtensions::new(&records)
                .filter_map(Result::ok)
                .filter(|r| r.key_bytes() == b"size")
                .filter_map(|r| r.value().ok()?.parse().ok())
                .last();
        }
    }
}

impl<R: Read> Read for Unsparse<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.block_out < BLOCK {
            let n = buf.len().min(BLOCK - self.block_out);
            buf[..n].copy_from_slice(&self.block[self.block_out..self.block_out + n]);
            self.block_out += n;
            self.position += n as u64;
            return Ok(n);
        }
        match &mut self.state {
            State::Header => {
                if !self.next_header()? {
                    return Ok(0);
                }
                self.read(buf)
            }
            State::Data { left: 0, pax } => {
                let pax = pax.take();
                self.end_of_data(pax);
                self.read(buf)
            }
            State::Data { left, pax } => {
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Ok(0);
                }
                *left -= n as u64;
                if let Some(records) = pax {
                    // Bounded: the tar reader refuses PAX records over the budget.
                    if records.len() as u64 + (n as u64) <= MAX_HEADER_BYTES {
                        records.extend_from_slice(&buf[..n]);
                    }
                }
                self.position += n as u64;
                Ok(n)
            }
        }
    }
}

/// A sparse map, checked as it is read.
struct MapBuilder {
    runs: Vec<Run>,
    /// Where the last run ended.
    end: u64,
    /// Stored bytes not yet claimed by a run.
    unclaimed: u64,
    problem: Option<SparseMapProblem>,
}

impl MapBuilder {
    fn new(stored: u64) -> Self {
        Self {
            runs: Vec::new(),
            end: 0,
            unclaimed: stored,
            problem: None,
        }
    }

    fn add(&mut self, run: &GnuSparseHeader) {
        if self.problem.is_some() || run.is_empty() {
            return;
        }
        if let Err(problem) = self.try_add(run) {
            self.problem = Some(problem);
        }
    }

    fn try_add(&mut self, run: &GnuSparseHeader) -> Result<(), SparseMapProblem> {
        let offset = run.offset().map_err(|_| SparseMapProblem::BadNumber)?;
        let len = run.length().map_err(|_| SparseMapProblem::BadNumber)?;
        if offset < self.end {
            return Err(SparseMapProblem::OutOfOrder);
        }
        self.end = offset.checked_add(len).ok_or(SparseMapProblem::PastU64)?;
        self.unclaimed = self
            .unclaimed
            .checked_sub(len)
            .ok_or(SparseMapProblem::ClaimsTooMuch)?;
        if len > 0 {
            self.runs.push(Run { offset, len });
        }
        Ok(())
    }

    fn finish(self, real_size: u64) -> Result<SparseMap, SparseMapProblem> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        if self.end > real_size {
            return Err(SparseMapProblem::PastTheEnd {
                end: self.end,
                real_size,
            });
        }
        if self.unclaimed != 0 {
            return Err(SparseMapProblem::Unaccounted(self.unclaimed));
        }
        Ok(SparseMap {
            real_size,
            runs: self.runs,
        })
    }
}

/// The header in `block`, as a regular file of the bytes the sparse entry stores.
fn make_regular(block: &mut [u8; BLOCK]) {
    let mut header = Header::new_old();
    header.as_mut_bytes().copy_from_slice(block);
    header.set_entry_type(EntryType::Regular);
    let gnu = header.as_gnu_mut().expect("a GNU header");
    for run in &mut gnu.sparse {
        run.offset = [0; 12];
        run.numbytes = [0; 12];
    }
    gnu.isextended = [0];
    gnu.realsize = [0; 12];
    header.set_cksum();
    block.copy_from_slice(header.as_bytes());
}

/// Whether the header's checksum is right, as the tar reader computes it.
fn checksum_ok(header: &Header) -> bool {
    let bytes = header.as_bytes();
    let sum: u32 = bytes[..148]
        .iter()
        .chain(&bytes[156..])
        .map(|b| u32::from(*b))
        .sum::<u32>()
        + 8 * 32;
    header.cksum().is_ok_and(|c| c == sum)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A GNU sparse header for `name` storing `runs` of a `real_size`-byte file; runs
    /// past the header's four go to one extension block. Run `k` holds `b'a' + k`.
    pub(crate) fn sparse_entry(name: &str, runs: &[(u64, u64)], real_size: u64) -> Vec<u8> {
        let stored: u64 = runs.iter().map(|r| r.1).sum();
        let mut head = Header::new_gnu();
        head.set_path(name).unwrap();
        head.set_entry_type(EntryType::GNUSparse);
        head.set_size(stored);
        let gnu = head.as_gnu_mut().unwrap();
        gnu.set_real_size(real_size);
        for (slot, (offset, len)) in gnu.sparse.iter_mut().zip(runs) {
            slot.set_offset(*offset);
            slot.set_length(*len);
        }
        gnu.set_is_extended(runs.len() > 4);
        head.set_cksum();
        let mut tar = head.as_bytes().to_vec();
        if runs.len() > 4 {
            let mut ext = GnuExtSparseHeader::new();
            for (slot, (offset, len)) in ext.sparse.iter_mut().zip(&runs[4..]) {
                slot.set_offset(*offset);
                slot.set_length(*len);
            }
            tar.extend(ext.as_bytes());
        }
        for ((_, len), byte) in runs.iter().zip(b'a'..) {
            tar.extend(std::iter::repeat_n(byte, usize::try_from(*len).unwrap()));
        }
        tar.resize(tar.len().next_multiple_of(BLOCK), 0);
        tar
    }

    fn regular_entry(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
        let mut tar = b.into_inner().unwrap();
        tar.truncate(tar.len() - 2 * BLOCK);
        tar
    }

    /// Every entry of the rewritten stream: (path, type, data).
    fn entries(tar: &[u8], maps: &Maps) -> Vec<(String, EntryType, Vec<u8>)> {
        let mut archive = tar::Archive::new(Unsparse::new(tar, maps.clone()));
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let path = e.path().unwrap().display().to_string();
                (path, e.header().entry_type(), data)
            })
            .collect()
    }

    #[test]
    fn a_sparse_entry_becomes_its_stored_bytes_and_a_map_and_the_next_entry_is_intact() {
        let runs = [
            (0, 512),
            (8192, 512),
            (1 << 30, 1024),
            (1 << 40, 512),
            (3 << 40, 512),
        ];
        let mut tar = sparse_entry("disk/a.img", &runs, 4 << 40);
        tar.extend(regular_entry("etc/after", b"still here"));
        tar.extend([0; 2 * BLOCK]);
        let maps = Maps::default();
        let found = entries(&tar, &maps);
        assert_eq!(found.len(), 2);
        let (name, kind, data) = &found[0];
        assert_eq!((name.as_str(), *kind), ("disk/a.img", EntryType::Regular));
        assert_eq!(data.len(), 3072, "the stored bytes, no hole expanded");
        assert_eq!(&data[..512], &[b'a'; 512][..]);
        assert_eq!(&data[2560..], &[b'e'; 512][..]);
        assert_eq!(found[1].0, "etc/after");
        assert_eq!(found[1].2, b"still here");
        let map = maps.take(0).expect("a map for the header at 0").unwrap();
        assert_eq!(map.real_size, 4 << 40);
        let got: Vec<(u64, u64)> = map.runs.iter().map(|r| (r.offset, r.len)).collect();
        assert_eq!(got, runs);
        assert!(maps.take(0).is_none(), "taken once");
    }

    #[test]
    fn a_pax_size_record_is_followed_past_the_entry_it_sizes() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("size", b"700".as_slice())])
            .unwrap();
        let mut tar = b.into_inner().unwrap();
        tar.truncate(tar.len() - 2 * BLOCK);
        // The header says 1 byte; the PAX record's 700 is what the readers go by.
        let mut head = Header::new_gnu();
        head.set_path("etc/big").unwrap();
        head.set_size(1);
        head.set_cksum();
        tar.extend(head.as_bytes());
        tar.extend([b'x'; 1024]);
        let sparse_at = tar.len() as u64;
        tar.extend(sparse_entry("disk/b.img", &[(512, 512)], 4096));
        tar.extend([0; 2 * BLOCK]);
        let maps = Maps::default();
        let found = entries(&tar, &maps);
        assert_eq!(
            found.iter().map(|e| e.2.len()).collect::<Vec<_>>(),
            [700, 512]
        );
        assert!(maps.take(sparse_at).unwrap().is_ok());
    }

    #[test]
    fn maps_that_break_the_rules_are_kept_as_the_reason() {
        for (runs, real, why) in [
            (
                vec![(4096, 512), (0, 512)],
                8192,
                SparseMapProblem::OutOfOrder,
            ),
            (
                vec![(0, 512)],
                256,
                SparseMapProblem::PastTheEnd {
                    end: 512,
                    real_size: 256,
                },
            ),
        ] {
            let mut tar = sparse_entry("disk/c.img", &runs, real);
            tar.extend([0; 2 * BLOCK]);
            let maps = Maps::default();
            entries(&tar, &maps);
            assert_eq!(maps.take(0).unwrap().unwrap_err(), why);
        }
    }
}
