//! A bound on what the tar reader buffers before it hands out an entry.
//!
//! `tar::Archive` reads an entry's extension headers whole into memory before the
//! entry reaches us: a GNU long name or long link, PAX records, and the extension
//! blocks of an old GNU sparse map, which it turns into a list of runs. Their sizes
//! are the archive's word, and a few KiB of zstd can declare a 4 GiB long name.
//! [`Budgeted`] is the stream the archive reads. While armed ([`Budget::armed`],
//! around each step to the next entry), plain reads, which there are headers and
//! extension data, count against [`MAX_HEADER_BYTES`]; skipping the previous
//! entry's data is a forward seek, which does not count. Disarmed, reads (an entry's
//! data) are not counted.
//!
//! GNU tar writes long names of a few hundred bytes and PAX records of a few KiB; the
//! bound is set by sparse maps, 21 runs to a 512-byte block: 16 MiB holds 680,000
//! runs, far more than a disk image's extents.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

/// The most the tar reader may read while stepping to one entry.
pub(super) const MAX_HEADER_BYTES: u64 = 16 << 20;

/// The budget left, shared between the walker and the stream; `None` while disarmed.
#[derive(Debug, Clone, Default)]
pub(super) struct Budget(Rc<Cell<Option<u64>>>);

impl Budget {
    /// `inner`, as a stream whose reads count against this budget while armed.
    pub fn wrap<R>(&self, inner: R) -> Budgeted<R> {
        Budgeted {
            inner,
            position: 0,
            left: Rc::clone(&self.0),
        }
    }

    /// Runs `step` with a full budget, then disarms it.
    pub fn armed<T>(&self, step: impl FnOnce() -> T) -> T {
        self.0.set(Some(MAX_HEADER_BYTES));
        let result = step();
        self.0.set(None);
        result
    }
}

/// A forward-only stream whose reads count against a [`Budget`].
#[derive(Debug)]
pub(super) struct Budgeted<R> {
    inner: R,
    /// Bytes read or skipped, which the archive takes as the stream position.
    position: u64,
    left: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        let allowed = match left {
            None => buf.len(),
            Some(0) if !buf.is_empty() => return Err(exceeded()),
            Some(left) => buf.len().min(usize::try_from(left).unwrap_or(usize::MAX)),
        };
        let n = self.inner.read(&mut buf[..allowed])?;
        if let Some(left) = left {
            self.left.set(Some(left - n as u64));
        }
        self.position += n as u64;
        Ok(n)
    }
}

impl<R: Read> Seek for Budgeted<R> {
    /// Only forward from the current position, which is how the archive skips an
    /// entry's data: read and dropped, uncounted.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let SeekFrom::Current(delta) = pos else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a layer stream only skips forward",
            ));
        };
        let skip = u64::try_from(delta).map_err(|_| {
            io::Error::new(io::ErrorKind::Unsupported, "a layer stream cannot go back")
        })?;
        let skipped = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())?;
        self.position += skipped;
        if skipped < skip {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "tar archive ends inside an entry",
            ));
        }
        Ok(self.position)
    }
}

fn exceeded() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "tar entry headers (long name, PAX records, sparse map) longer than {} MiB",
            MAX_HEADER_BYTES >> 20
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_reads_are_counted_and_skips_are_not() {
        let max = usize::try_from(MAX_HEADER_BYTES).unwrap();
        let budget = Budget::default();
        let data = vec![1u8; 4 * max];
        let mut stream = budget.wrap(&data[..]);
        let mut buf = vec![0; max];
        budget.armed(|| stream.read_exact(&mut buf)).unwrap();
        assert_eq!(
            budget.armed(|| stream.seek(SeekFrom::Current(5))).unwrap(),
            MAX_HEADER_BYTES + 5
        );
        stream.read_exact(&mut buf).unwrap();
        let err = budget
            .armed(|| {
                stream.read_exact(&mut buf)?;
                stream.read_exact(&mut [0])
            })
            .unwrap_err();
        assert!(err.to_string().contains("16 MiB"), "{err}");
        assert!(stream.seek(SeekFrom::Start(0)).is_err());
        assert!(stream.seek(SeekFrom::Current(-1)).is_err());
    }
}
