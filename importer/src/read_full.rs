//! Reading until a buffer is full or the stream ends: what `read_exact` does, without
//! treating a short end as an error.

use std::io::{self, Read};

/// Fills `buf` unless the stream ends first; returns how much it filled.
pub(crate) fn read_full(reader: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
