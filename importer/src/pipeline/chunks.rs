//! Chunk buffers for the disk file, recycled instead of allocated and zeroed.
//!
//! The decoder hands out zero-copy slices of each chunk, so a chunk lives until the
//! last extent slicing it has been written. When it dies its buffer goes back to the
//! pool, already initialised: reading the next chunk into it costs no allocation and no
//! `memset` (which was a tenth of the decoding thread's time on raw disks). The writer
//! queue bounds the bytes in flight ([`IN_FLIGHT_BYTES`]); the pool keeps enough
//! buffers for that many, plus the few the decoder holds, so that in a steady stream
//! every chunk is a recycled one.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::writer::IN_FLIGHT_BYTES;
use crate::read_full::read_full;

/// Bytes read from the disk file at a time.
pub(crate) const CHUNK: usize = 1 << 20;
/// Buffers kept for reuse: those the writer queue can hold, and some for the decoder.
const POOLED: usize = IN_FLIGHT_BYTES / CHUNK + 8;

/// A shared pool of chunk buffers.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChunkPool(Arc<Mutex<Vec<Vec<u8>>>>);

/// A chunk's owner: returns its buffer to the pool when the last slice is dropped.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: ChunkPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut free = self.pool.0.lock().expect("not poisoned");
        if free.len() < POOLED {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

impl ChunkPool {
    /// Reads up to [`CHUNK`] bytes, fewer only at the end of the file.
    pub fn read_chunk(&self, reader: &mut dyn Read) -> io::Result<Bytes> {
        let mut buf = self
            .0
            .lock()
            .expect("not poisoned")
            .pop()
            .unwrap_or_else(|| vec![0; CHUNK]);
        let filled = read_full(reader, &mut buf[..CHUNK])?;
        Ok(Bytes::from_owner(Pooled {
            buf,
            len: filled,
            pool: self.clone(),
        }))
    }

    #[cfg(test)]
    fn free(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_last_slice_is_dropped() {
        let pool = ChunkPool::default();
        let data: Vec<u8> = (0..CHUNK + 10)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let mut reader = &data[..];
        let first = pool.read_chunk(&mut reader).unwrap();
        let second = pool.read_chunk(&mut reader).unwrap();
        assert_eq!((first.len(), second.len()), (CHUNK, 10));
        assert_eq!(&second[..], &data[CHUNK..]);
        let slice = first.slice(100..200);
        drop(first);
        assert_eq!(pool.free(), 0, "a slice still holds the first buffer");
        assert_eq!(slice[0], data[100]);
        drop(slice);
        assert_eq!(pool.free(), 1);
        // The recycled buffer holds old bytes; only what is read is visible.
        let third = pool.read_chunk(&mut &b"abc"[..]).unwrap();
        assert_eq!(&third[..], b"abc");
        assert_eq!(pool.free(), 0);
        assert!(pool.read_chunk(&mut &b""[..]).unwrap().is_empty());
    }
}
