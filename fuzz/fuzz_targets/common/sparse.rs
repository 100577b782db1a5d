//! A large image from a small fuzz input: pieces of bytes placed over zeros.
//!
//! Some formats cannot be small: a VHDX aligns every region to 1 MiB, so its smallest
//! image is several MiB, mostly zeros. Mutating such an image byte by byte spends the
//! fuzzer's time on zeros (35 executions a second). Instead the input says where its
//! few non-zero bytes go:
//!
//! ```text
//! u32 LE  file length (capped at MAX_LEN)
//! then pieces, to the end: u32 LE offset, u16 LE length, that many bytes
//! ```
//!
//! A piece past the file length is cut there; a truncated piece ends the list.
//! `make-seeds.sh` writes seeds in this form from images qemu-img made.

/// The longest image an input may describe.
pub const MAX_LEN: usize = 16 << 20;

/// The image `input` describes, or `None` when it is too short to say its length.
pub fn expand(input: &[u8]) -> Option<Vec<u8>> {
    let (len, mut rest) = input.split_first_chunk::<4>()?;
    let len = (u32::from_le_bytes(*len) as usize).min(MAX_LEN);
    let mut image = vec![0u8; len];
    while let Some((head, tail)) = rest.split_first_chunk::<6>() {
        let offset = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let n = usize::from(u16::from_le_bytes([head[4], head[5]])).min(tail.len());
        let (bytes, after) = tail.split_at(n);
        if offset < len {
            let end = (offset + n).min(len);
            image[offset..end].copy_from_slice(&bytes[..end - offset]);
        }
        rest = after;
    }
    Some(image)
}
