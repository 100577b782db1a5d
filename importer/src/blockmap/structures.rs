//! Where the image's own structures lie: every table a layout named, for the whole
//! decode.
//!
//! `pending` in the mapper only sees ranges still ahead of the stream. A table read
//! and gone from it can still be named again by a hostile entry: a data block placed
//! over the BAT (the table's bytes served as the disk), or a table over another. Each
//! range a layout names is checked here first; tables are kept, but for those
//! a format has one of per block ([`TableKind::guarded`]). Memory: about 64 bytes per
//! table kept; a layout names those few at a time (a VMDK's grain directory names
//! all its grain tables at once, within `max_pending`).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::range::{Claim, Range, TableKind};

/// The tables named so far: start → (end, what).
#[derive(Debug, Default)]
pub(super) struct Structures {
    tables: BTreeMap<u64, (u64, &'static str)>,
}

impl Structures {
    /// Records `range` if it is a table; `Err((what, host))` names the table it
    /// shares bytes with, if any (skips may: they claim nothing).
    pub fn claim<T: TableKind>(&mut self, range: &Range<T>) -> Result<(), (&'static str, u64)> {
        if matches!(range.claim, Claim::Skip) || range.len == 0 {
            return Ok(());
        }
        if let Some((&host, &(_, what))) = overlapping(&self.tables, range, |(end, _)| *end) {
            return Err((what, host));
        }
        if matches!(range.claim, Claim::Table(kind) if kind.guarded()) {
            self.tables.insert(range.host, (range.end(), range.what()));
        }
        Ok(())
    }
}

/// The entry of `map` (keyed by where each starts; `end` says where it ends) sharing
/// a byte with `range`, if any. Entries of `map` share none among themselves.
pub(super) fn overlapping<'m, V, T: TableKind>(
    map: &'m BTreeMap<u64, V>,
    range: &Range<T>,
    end: impl Fn(&V) -> u64,
) -> Option<(&'m u64, &'m V)> {
    let before = map.range(..=range.host).next_back();
    let after = map
        .range((Bound::Excluded(range.host), Bound::Unbounded))
        .next();
    before
        .filter(|(_, v)| end(v) > range.host)
        .or(after.filter(|(host, _)| **host < range.end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    struct Bat;
    impl TableKind for Bat {
        fn name(self) -> &'static str {
            "BAT"
        }
    }

    #[test]
    fn data_or_tables_over_a_table_are_refused_wherever_the_stream_is() {
        let mut s = Structures::default();
        s.claim(&Range::table(Bat, 4096, 512)).unwrap();
        assert_eq!(
            s.claim(&Range::<Bat>::data(4096 + 511, 1, 0)),
            Err(("BAT", 4096))
        );
        assert_eq!(s.claim(&Range::<Bat>::data(0, 4097, 0)), Err(("BAT", 4096)));
        assert_eq!(s.claim(&Range::table(Bat, 4000, 100)), Err(("BAT", 4096)));
        s.claim(&Range::<Bat>::data(0, 4096, 0)).unwrap();
        s.claim(&Range::<Bat>::data(4608, 512, 0)).unwrap();
        s.claim(&Range::<Bat>::skip(4096, 512)).unwrap();
    }
}
