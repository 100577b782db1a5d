//! A set of byte ranges, merged as they are added: what has been written so far.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent `start..end` ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// Adds `start..end`, merging with any range it touches.
    pub fn insert(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
        }
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(start..=end)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
    }

    /// The parts of `0..len` not covered.
    pub fn gaps(&self, len: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut next = 0;
        for (&s, &e) in &self.ranges {
            if s >= len {
                break;
            }
            if s > next {
                gaps.push((next, s));
            }
            next = next.max(e);
        }
        if next < len {
            gaps.push((next, len));
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_overlapping_and_adjacent_ranges() {
        let mut r = RangeSet::default();
        r.insert(10, 20);
        r.insert(30, 40);
        r.insert(20, 25); // adjacent to the first
        r.insert(35, 50); // overlaps the second
        r.insert(5, 5); // empty
        assert_eq!(r.gaps(60), vec![(0, 10), (25, 30), (50, 60)]);
        r.insert(0, 100);
        assert_eq!(r.gaps(60), vec![]);
        assert_eq!(r.ranges.len(), 1);
    }

    #[test]
    fn out_of_order_inserts() {
        let mut r = RangeSet::default();
        for i in (0..10).rev() {
            r.insert(i * 10, i * 10 + 5);
        }
        assert_eq!(r.gaps(20), vec![(5, 10), (15, 20)]);
        assert_eq!(RangeSet::default().gaps(7), vec![(0, 7)]);
    }
}
