//! A compressed stream's decompressed length, from its own headers, before decoding it.
//!
//! A raw disk's virtual size is its length, and the place it is written into is opened
//! at that size before the first write. Uncompressed, the length is the file's; in a
//! tar, the entry's. Compressed, two formats record it: a zstd frame header carries
//! the content size (the `zstd` tool writes it when it compresses a file), and an xz
//! file ends with an index of its blocks' sizes, read from the file's tail where the
//! origin can seek (a local file, an HTTP server with `Range`). gzip (`ISIZE` is
//! modulo 4 GiB) and bzip2 record nothing usable. What is announced is checked against
//! what arrives (`Error::DiskLengthMismatch`). Pure: bytes in, length out.

/// The content size a zstd frame header declares, if it declares one.
pub(crate) fn zstd_content_size(head: &[u8]) -> Option<u64> {
    let descriptor = *head
        .get(4)
        .filter(|_| head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]))?;
    let fcs_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let dict_id_bytes = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let fcs_bytes = match (fcs_flag, single_segment) {
        (0, false) => return None,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let at = 5 + usize::from(!single_segment) + dict_id_bytes;
    let field = head.get(at..at + fcs_bytes)?;
    let mut le = [0u8; 8];
    le[..fcs_bytes].copy_from_slice(field);
    let value = u64::from_le_bytes(le);
    Some(if fcs_bytes == 2 { value + 256 } else { value })
}

/// Bytes of an xz file's end [`xz_uncompressed_size`] asks for.
pub(crate) const XZ_TAIL_BYTES: u64 = 256 << 10;

/// The decompressed length of a single-stream xz file of `file_len` bytes ending in
/// `tail`; `None` if the tail is not a stream footer and index, or the file holds more
/// than one stream.
pub(crate) fn xz_uncompressed_size(tail: &[u8], file_len: u64) -> Option<u64> {
    // Stream padding: zero bytes in groups of four after the footer.
    let mut end = tail.len();
    while end >= 4 && tail[end - 4..end] == [0; 4] {
        end -= 4;
    }
    let padding = (tail.len() - end) as u64;
    let footer = tail.get(end.checked_sub(12)?..end)?;
    if &footer[10..12] != b"YZ" {
        return None;
    }
    let backward = u64::from(u32::from_le_bytes(footer[4..8].try_into().ok()?));
    let index_len = usize::try_from((backward + 1) * 4).ok()?;
    let index_start = (end - 12).checked_sub(index_len)?;
    let (blocks, uncompressed) = parse_index(&tail[index_start..end - 12])?;
    let stream_len = 12 + blocks + index_len as u64 + 12;
    (stream_len + padding == file_len).then_some(uncompressed)
}

/// The padded size of the blocks and their uncompressed size, from an xz index.
fn parse_index(index: &[u8]) -> Option<(u64, u64)> {
    let mut at = 1;
    if index.first() != Some(&0) {
        return None;
    }
    let records = varint(index, &mut at)?;
    let (mut blocks, mut uncompressed) = (0u64, 0u64);
    for _ in 0..records {
        let unpadded = varint(index, &mut at)?;
        blocks = blocks.checked_add(unpadded.checked_next_multiple_of(4)?)?;
        uncompressed = uncompressed.checked_add(varint(index, &mut at)?)?;
    }
    // Padding to four bytes, then the CRC32: the index must end exactly there.
    (at.next_multiple_of(4) + 4 == index.len()).then_some((blocks, uncompressed))
}

/// xz's multibyte integer: 7 bits a byte, at most 9 bytes.
fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9 {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_frame_headers() {
        // zstd -c of 1000 bytes: single segment, 2-byte FCS (value - 256).
        assert_eq!(
            zstd_content_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x64, 0xe8, 0x02, 0]),
            Some(1000)
        );
        // A window descriptor, then an 8-byte FCS.
        let mut h = vec![0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x58];
        h.extend_from_slice(&(16u64 << 30).to_le_bytes());
        assert_eq!(zstd_content_size(&h), Some(16 << 30));
        // No FCS (streamed from a pipe), or not zstd at all.
        assert_eq!(
            zstd_content_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]),
            None
        );
        assert_eq!(zstd_content_size(b"QFI\xfb\0\0\0\x03"), None);
    }

    /// An index of one block (unpadded 30, uncompressed 5) and its footer.
    fn single_block_tail() -> Vec<u8> {
        // Indicator, one record (30, 5): already four bytes, so no padding.
        let mut index = vec![0x00, 0x01, 30, 5];
        index.extend_from_slice(&[0xaa; 4]); // CRC32, not checked here
        let mut tail = index.clone();
        tail.extend_from_slice(&[0; 4]); // footer CRC32
        tail.extend_from_slice(&u32::try_from(index.len() / 4 - 1).unwrap().to_le_bytes());
        tail.extend_from_slice(&[0, 1, b'Y', b'Z']);
        tail
    }

    #[test]
    fn xz_index_gives_the_length_of_a_single_stream() {
        let tail = single_block_tail();
        // header 12 + block 32 + index 8 + footer 12
        assert_eq!(xz_uncompressed_size(&tail, 64), Some(5));
        let mut padded = tail.clone();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(xz_uncompressed_size(&padded, 72), Some(5));
        // More bytes before this stream: another stream, not counted.
        assert_eq!(xz_uncompressed_size(&tail, 200), None);
        assert_eq!(xz_uncompressed_size(b"not xz at all", 13), None);
        assert_eq!(xz_uncompressed_size(&tail[10..], 64), None);
    }
}
