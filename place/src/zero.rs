//! Zero detection: the writer skips all-zero blocks so that they stay holes.

/// Granularity of hole detection: the page and filesystem block size.
pub const BLOCK: usize = 4096;

/// Whether `bytes` are all zero. Written as an OR-fold over fixed-size chunks so the
/// compiler vectorises it; bails out at the first non-zero chunk.
pub fn is_zero(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(256);
    let whole = chunks
        .by_ref()
        .all(|c| c.iter().fold(0u8, |acc, &b| acc | b) == 0);
    whole && chunks.remainder().iter().all(|&b| b == 0)
}

/// Splits `data`, which starts at guest offset `offset`, into its non-zero runs at
/// [`BLOCK`] granularity (aligned to the guest offset), as `(offset, bytes)` pairs.
pub(crate) fn nonzero_runs(offset: u64, data: &[u8]) -> Vec<(u64, &[u8])> {
    let mut runs = Vec::new();
    let mut run_start: Option<usize> = None;
    let mut pos = 0;
    while pos < data.len() {
        let to_boundary =
            BLOCK - usize::try_from((offset + pos as u64) % BLOCK as u64).expect("below BLOCK");
        let end = (pos + to_boundary).min(data.len());
        let zero = is_zero(&data[pos..end]);
        match (zero, run_start) {
            (false, None) => run_start = Some(pos),
            (true, Some(start)) => {
                runs.push((offset + start as u64, &data[start..pos]));
                run_start = None;
            }
            _ => {}
        }
        pos = end;
    }
    if let Some(start) = run_start {
        runs.push((offset + start as u64, &data[start..]));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_zeros_anywhere() {
        assert!(is_zero(&[0; 10_000]));
        assert!(is_zero(&[]));
        for at in [0, 255, 256, 9_999] {
            let mut v = vec![0; 10_000];
            v[at] = 1;
            assert!(!is_zero(&v), "non-zero at {at}");
        }
    }

    #[test]
    fn runs_follow_guest_block_boundaries() {
        let mut data = vec![0u8; 5 * BLOCK];
        data[10] = 1; // block 0 (guest 1000..) starts mid-block
        data[2 * BLOCK] = 2;
        data[3 * BLOCK + 5] = 3;
        let runs = nonzero_runs(1000, &data);
        let spans: Vec<(u64, usize)> = runs.iter().map(|(o, b)| (*o, b.len())).collect();
        // Guest blocks: [1000,4096) [4096,8192) … ; data[10] is in the first,
        // data[2*BLOCK] at guest 9192 in [8192,12288), data[3*BLOCK+5] at 13293 in
        // [12288,16384): adjacent non-zero blocks merge into one run.
        assert_eq!(spans, vec![(1000, 4096 - 1000), (8192, 16384 - 8192)]);
        assert!(nonzero_runs(0, &[0; 3 * BLOCK]).is_empty());
    }
}
