//! The spool: image bytes that arrived before any table said what they are.
//!
//! A sparse set of byte ranges keyed by their offset in the image file, filled in
//! stream order and bounded by a byte cap. Images written by `qemu-img convert` spool a
//! few KiB (compressed clusters placed before their L2 table); edited images can need
//! far more, and then the decoder gives up spooling and reads the blob again instead.

use std::collections::BTreeMap;

/// Ranges are cut into pieces of at most this size, so that taking a cluster out of a
/// long run copies little.
const PIECE: usize = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct Spool {
    pieces: BTreeMap<u64, Vec<u8>>,
    bytes: u64,
    peak: u64,
}

impl Spool {
    /// Keeps `data`, which starts at `at`; `at` must not be below anything kept.
    pub fn push(&mut self, at: u64, data: &[u8]) {
        let total = data.len() as u64;
        let mut at = at;
        let mut data = data;
        if let Some(mut last) = self.pieces.last_entry() {
            let last_end = *last.key() + last.get().len() as u64;
            debug_assert!(at >= last_end, "spool fed out of order");
            if last_end == at && last.get().len() < PIECE {
                let room = (PIECE - last.get().len()).min(data.len());
                last.get_mut().extend_from_slice(&data[..room]);
                (at, data) = (at + room as u64, &data[room..]);
            }
        }
        for piece in data.chunks(PIECE) {
            self.pieces.insert(at, piece.to_vec());
            at += piece.len() as u64;
        }
        self.bytes += total;
        self.peak = self.peak.max(self.bytes);
    }

    /// The bytes kept from `start` on, up to `end` or the first gap.
    pub fn copy_prefix(&self, start: u64, end: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut next = start;
        let first = self
            .pieces
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        for (&at, piece) in self.pieces.range(first..end) {
            if at > next {
                break; // a gap
            }
            let piece_end = at + piece.len() as u64;
            if piece_end <= next {
                continue; // the piece before `start` ends before it
            }
            let from = usize::try_from(next - at).expect("within a piece");
            let to = usize::try_from(piece_end.min(end) - at).expect("within a piece");
            out.extend_from_slice(&piece[from..to]);
            next = at + to as u64;
            if next >= end {
                break;
            }
        }
        out
    }

    /// Forgets the bytes in `start..end`.
    pub fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let first = self
            .pieces
            .range(..start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        let keys: Vec<u64> = self.pieces.range(first..end).map(|(k, _)| *k).collect();
        for at in keys {
            let mut piece = self.pieces.remove(&at).expect("key just listed");
            let piece_end = at + piece.len() as u64;
            if piece_end <= start {
                self.pieces.insert(at, piece);
                continue;
            }
            let cut_from = start.max(at);
            let cut_to = end.min(piece_end);
            let tail = piece.split_off(usize::try_from(cut_to - at).expect("within a piece"));
            piece.truncate(usize::try_from(cut_from - at).expect("within a piece"));
            self.bytes -= cut_to - cut_from;
            if !piece.is_empty() {
                self.pieces.insert(at, piece);
            }
            if !tail.is_empty() {
                self.pieces.insert(cut_to, tail);
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.pieces.clear();
        self.bytes = 0;
    }

    /// Bytes kept now.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// The most bytes ever kept at once.
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(ranges: &[(u64, u64)]) -> Spool {
        let mut s = Spool::default();
        for &(start, end) in ranges {
            let data: Vec<u8> = (start..end).map(|i| (i % 251) as u8).collect();
            s.push(start, &data);
        }
        s
    }

    fn expected(start: u64, end: u64) -> Vec<u8> {
        (start..end).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn copies_up_to_the_first_gap() {
        let s = filled(&[(100, 200), (200, 300), (400, 500)]);
        assert_eq!(s.copy_prefix(150, 250), expected(150, 250));
        assert_eq!(s.copy_prefix(150, 450), expected(150, 300));
        assert_eq!(s.copy_prefix(300, 450), Vec::<u8>::new());
        assert_eq!(s.copy_prefix(450, 9999), expected(450, 500));
        assert_eq!(s.len(), 300);
    }

    #[test]
    fn removes_from_the_middle_of_a_piece() {
        let mut s = filled(&[(0, 1000)]);
        s.remove(100, 200);
        assert_eq!(s.len(), 900);
        assert_eq!(s.copy_prefix(0, 1000), expected(0, 100));
        assert_eq!(s.copy_prefix(200, 1000), expected(200, 1000));
        s.remove(0, 1000);
        assert_eq!(s.len(), 0);
        assert_eq!(s.peak(), 1000);
    }

    #[test]
    fn long_runs_are_cut_into_pieces() {
        let n = 3 * PIECE as u64 + 5;
        let mut s = filled(&[(7, 7 + n)]);
        assert_eq!(s.pieces.len(), 4);
        assert_eq!(s.copy_prefix(7, 7 + n), expected(7, 7 + n));
        s.remove(PIECE as u64, 2 * PIECE as u64 + 9);
        assert_eq!(s.copy_prefix(7, 7 + n), expected(7, PIECE as u64));
        assert_eq!(s.len(), n - (PIECE as u64 + 9));
    }
}
