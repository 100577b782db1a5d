//! What a byte range of an image file is, as its tables say.
//!
//! A format's [`Layout`](super::Layout) names ranges of the file (host offsets) and
//! says what each one holds: a table to read whole, guest data to write where it
//! belongs, or bytes to pass over. The [`Mapper`](super::Mapper) serves each range as
//! the stream reaches it; it knows nothing else of the format.

use crate::extent::GuestOffset;

/// The tables of one format, by kind: what the mapper gathers whole and hands back.
pub(crate) trait TableKind: Copy + std::fmt::Debug + Send + 'static {
    /// A name for errors (`BAT`, `grain table`, …).
    fn name(self) -> &'static str;

    /// Whether its bytes stay guarded once read (see `structures`): true for the
    /// header and the tables that map blocks, false for what a format has one of per
    /// block, as a stream-optimized VMDK's markers, which the chain only moves past.
    fn guarded(self) -> bool {
        true
    }
}

/// What a range of the image file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim<T> {
    /// A table (or any structure): gathered whole, then given to the layout.
    Table(T),
    /// Guest data: written at `guest` as the bytes pass.
    Data(GuestOffset),
    /// Bytes the conversion does not need (bitmaps, redundant copies, padding).
    Skip,
}

/// A range of the image file and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range<T> {
    /// Where it starts in the image file.
    pub host: u64,
    /// Its length in bytes (never 0).
    pub len: u64,
    /// What it is.
    pub claim: Claim<T>,
}

impl<T: TableKind> Range<T> {
    /// A table of `len` bytes at `host`.
    pub fn table(kind: T, host: u64, len: u64) -> Self {
        Self {
            host,
            len,
            claim: Claim::Table(kind),
        }
    }

    /// `len` bytes of guest data at `guest`, stored at `host`.
    pub fn data(host: u64, len: u64, guest: u64) -> Self {
        Self {
            host,
            len,
            claim: Claim::Data(GuestOffset(guest)),
        }
    }

    /// `len` bytes at `host` to pass over.
    pub fn skip(host: u64, len: u64) -> Self {
        Self {
            host,
            len,
            claim: Claim::Skip,
        }
    }

    /// Where it ends in the image file.
    pub fn end(&self) -> u64 {
        self.host + self.len
    }

    /// What it is, for errors.
    pub fn what(&self) -> &'static str {
        match self.claim {
            Claim::Table(kind) => kind.name(),
            Claim::Data(_) => "data block",
            Claim::Skip => "metadata",
        }
    }

    /// The part from `from` (inside it) on.
    pub fn from(&self, from: u64) -> Self {
        debug_assert!(from >= self.host && from < self.end());
        let done = from - self.host;
        let claim = match self.claim {
            Claim::Data(GuestOffset(guest)) => Claim::Data(GuestOffset(guest + done)),
            other => other,
        };
        Self {
            host: from,
            len: self.len - done,
            claim,
        }
    }
}

/// Collects data ranges for consecutive table entries, merging each with the previous
/// one when both host and guest run on: a table written in order (what converters
/// write) becomes a handful of ranges instead of one per block.
#[derive(Debug)]
pub(crate) struct RangeRun<T> {
    ranges: Vec<Range<T>>,
}

impl<T: TableKind> Default for RangeRun<T> {
    fn default() -> Self {
        Self { ranges: Vec::new() }
    }
}

impl<T: TableKind> RangeRun<T> {
    /// Adds `len` bytes of guest data at `guest`, stored at `host`.
    pub fn data(&mut self, host: u64, len: u64, guest: u64) {
        if let Some(last) = self.ranges.last_mut()
            && let Claim::Data(GuestOffset(last_guest)) = last.claim
            && last.end() == host
            && last_guest + last.len == guest
        {
            last.len += len;
            return;
        }
        self.ranges.push(Range::data(host, len, guest));
    }

    /// The ranges collected.
    pub fn into_vec(self) -> Vec<Range<T>> {
        self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct T;
    impl TableKind for T {
        fn name(self) -> &'static str {
            "t"
        }
    }

    #[test]
    fn runs_merge_only_when_host_and_guest_both_run_on() {
        let mut run = RangeRun::<T>::default();
        run.data(100, 10, 0);
        run.data(110, 10, 10);
        run.data(120, 10, 30); // guest jumps
        run.data(140, 10, 40); // host jumps
        run.data(155, 5, 50);
        let v = run.into_vec();
        assert_eq!(
            v,
            vec![
                Range::data(100, 20, 0),
                Range::data(120, 10, 30),
                Range::data(140, 10, 40),
                Range::data(155, 5, 50),
            ]
        );
        assert_eq!(v[0].from(105), Range::data(105, 15, 5));
    }
}
