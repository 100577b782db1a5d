//! xz files decoded on every core, one stream after another, in bounded memory.
//!
//! `xz -T0` (the default since xz 5.4, and what vendors' release tooling runs) cuts a
//! file into blocks that record their sizes; liblzma's multi-threaded decoder decodes
//! such blocks in parallel. A file of one block (older `xz`, `xz -T1`) decodes as
//! before, on one thread. That decoder reads one stream, so concatenated streams
//! (`cat a.xz b.xz`, pixz) are chained here: at a stream's end its zero padding is
//! skipped and, if bytes remain, the next stream starts — and fails on its magic if
//! they are not one.
//!
//! Memory is bounded whatever the headers ask: a block names its dictionary size,
//! which liblzma allocates up front (a hostile header can ask for 4 GiB), and parallel
//! decoding holds whole blocks. Past [`MEMORY_LIMIT`] the decoder falls back to one
//! thread, and a stream that needs more even then is refused.

use std::io::{self, BufRead, Read};

use liblzma::bufread::XzDecoder;
use liblzma::stream::{MtStreamBuilder, Stream};

use crate::blob::BlobReader;

/// The most memory the decoder may use: `xz -9` needs 65 MiB on one thread.
const MEMORY_LIMIT: u64 = 256 << 20;

/// The decompressed bytes of one or more concatenated xz streams read from `R` (a
/// blob; a file in the benches).
pub(crate) struct XzReader<R: BufRead = BlobReader> {
    /// `None` only while one stream hands the blob to the next.
    decoder: Option<XzDecoder<R>>,
}

impl<R: BufRead> XzReader<R> {
    pub fn new(blob: R) -> io::Result<Self> {
        Ok(Self {
            decoder: Some(XzDecoder::new_stream(blob, stream()?)),
        })
    }

    /// The blob under the decoder.
    pub fn get_mut(&mut self) -> &mut R {
        self.decoder
            .as_mut()
            .expect("a decoder between reads")
            .get_mut()
    }

    /// After a stream's end: skips its padding; whether another stream follows.
    fn next_stream(&mut self) -> io::Result<bool> {
        let blob = self.get_mut();
        let mut padding = 0usize;
        loop {
            let available = blob.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let zeros = available.iter().take_while(|&&b| b == 0).count();
            let more = zeros < available.len();
            blob.consume(zeros);
            padding += zeros;
            if more {
                break;
            }
        }
        if !padding.is_multiple_of(4) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "xz stream padding is not a multiple of four bytes",
            ));
        }
        if blob.fill_buf()?.is_empty() {
            return Ok(false);
        }
        let blob = self
            .decoder
            .take()
            .expect("a decoder between reads")
            .into_inner();
        self.decoder = Some(XzDecoder::new_stream(blob, stream()?));
        Ok(true)
    }
}

impl<R: BufRead> Read for XzReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let decoder = self.decoder.as_mut().expect("a decoder between reads");
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() || !self.next_stream()? {
                return Ok(n);
            }
        }
    }
}

/// A decoder for one xz stream, on as many threads as there are cores (and memory).
fn stream() -> io::Result<Stream> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    MtStreamBuilder::new()
        .threads(u32::try_from(threads).unwrap_or(1))
        .memlimit_threading(MEMORY_LIMIT)
        .memlimit_stop(MEMORY_LIMIT)
        .decoder()
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xz(data: &[u8], threads: u32) -> Vec<u8> {
        let stream = MtStreamBuilder::new()
            .threads(threads)
            .block_size(64 << 10)
            .preset(0)
            .encoder()
            .unwrap();
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new_stream(data, stream)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn decode(file: Vec<u8>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        XzReader::new(BlobReader::from_bytes(file))?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from(i * 7 % 251).unwrap() ^ seed)
            .collect()
    }

    #[test]
    fn multi_block_and_concatenated_streams_decode_whole() {
        let (a, b) = (data(1 << 20, 1), data(300_000, 2));
        let mut file = xz(&a, 2);
        file.extend_from_slice(&[0; 8]); // stream padding
        file.extend(xz(&b, 1));
        assert_eq!(decode(file).unwrap(), [a, b].concat());
    }

    #[test]
    fn padding_that_is_not_whole_words_or_garbage_after_a_stream_fails() {
        let a = data(4096, 3);
        let mut odd = xz(&a, 1);
        odd.extend_from_slice(&[0; 3]);
        assert!(decode(odd).is_err());
        let mut garbage = xz(&a, 1);
        garbage.extend_from_slice(b"not another stream");
        assert!(decode(garbage).is_err());
    }

    /// `data` in xz, its first block header claiming a dictionary of `dict_byte` (the
    /// LZMA2 property: 38 is 2 GiB), with the header's CRC32 made right again.
    fn xz_claiming_dictionary(data: &[u8], dict_byte: u8) -> Vec<u8> {
        let mut xz = xz(data, 1);
        let header = 12; // after the stream header
        let len = (usize::from(xz[header]) + 1) * 4;
        let filter = (header + 2..header + len)
            .find(|&i| xz[i] == 0x21 && xz[i + 1] == 1)
            .expect("an LZMA2 filter with one property byte");
        xz[filter + 2] = dict_byte;
        let crc = crc32fast::hash(&xz[header..header + len - 4]);
        xz[header + len - 4..header + len].copy_from_slice(&crc.to_le_bytes());
        xz
    }

    #[test]
    fn a_block_asking_for_a_huge_dictionary_is_refused_not_allocated() {
        let data = vec![7u8; 64 << 10];
        // The patched header itself is sound: a plausible dictionary decodes.
        assert_eq!(decode(xz_claiming_dictionary(&data, 20)).unwrap(), data);
        let err = decode(xz_claiming_dictionary(&data, 38)).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
    }
}
