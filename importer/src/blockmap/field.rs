//! Fixed-width integers at byte offsets of a header whose length was checked first.

/// The `N` bytes at `at`.
fn bytes<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    buf[at..at + N].try_into().expect("N bytes")
}

pub(crate) fn le16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes(buf, at))
}

pub(crate) fn le32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes(buf, at))
}

pub(crate) fn le64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes(buf, at))
}

pub(crate) fn be16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(bytes(buf, at))
}

pub(crate) fn be32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes(buf, at))
}

pub(crate) fn be64(buf: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes(buf, at))
}
