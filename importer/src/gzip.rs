//! gzip members (RFC 1952) decoded without computing their CRC-32.
//!
//! Every byte of a layer blob is authenticated by its sha256 while it streams, so the
//! gzip CRC-32 can only repeat that check, and computing it took an eighth of the
//! decoding thread on raw disks — the thread that bounds the whole import. This reader
//! parses each member's header, inflates its body with flate2 (zlib-rs), checks the
//! trailer's length field (cheap, and catches a member cut short), and goes on to the
//! next member; anything after the last member that is not another member is an error.
//! Header fields are skipped, never buffered, and the file name and comment are bounded
//! as Go's reader bounds them: a layer's header cannot make us read without end.

use std::io::{self, BufRead, Read};

use flate2::bufread::DeflateDecoder;

const MAGIC: [u8; 2] = [0x1f, 0x8b];
const DEFLATE: u8 = 8;
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const RESERVED_FLAGS: u8 = 0xe0;
/// Longest file name or comment field, its NUL included. RFC 1952 sets no bound; Go's
/// compress/gzip, which reads every layer docker, containerd and podman pull, refuses
/// longer fields, so no layer in use has them — and a field is skipped, never buffered.
const MAX_HEADER_STRING: usize = 512;

/// A multi-member gzip stream over a buffered reader.
pub(crate) struct GzipReader<R: BufRead> {
    body: DeflateDecoder<R>,
    state: State,
    /// Bytes out of the current member, for its ISIZE field.
    member_out: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of the stream or after a member: a header (or the end) comes next.
    Header {
        first: bool,
    },
    Body,
    Done,
}

impl<R: BufRead> GzipReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            body: DeflateDecoder::new(inner),
            state: State::Header { first: true },
            member_out: 0,
        }
    }

    /// The underlying reader, e.g. to drain what follows.
    pub fn get_mut(&mut self) -> &mut R {
        self.body.get_mut()
    }

    /// Reads a member header; `false` at a clean end of stream after a member.
    fn header(&mut self, first: bool) -> io::Result<bool> {
        let r = self.body.get_mut();
        if !first && r.fill_buf()?.is_empty() {
            return Ok(false);
        }
        let not_gzip = || {
            invalid(if first {
                "not a gzip stream"
            } else {
                "bytes after the last gzip member"
            })
        };
        let mut fixed = [0u8; 10];
        r.read_exact(&mut fixed[..2]).map_err(|_| not_gzip())?;
        if fixed[..2] != MAGIC {
            return Err(not_gzip());
        }
        r.read_exact(&mut fixed[2..])
            .map_err(|e| truncated(e, "gzip header"))?;
        if fixed[2] != DEFLATE {
            return Err(invalid(
                "gzip member with a compression method other than deflate",
            ));
        }
        let flags = fixed[3];
        if flags & RESERVED_FLAGS != 0 {
            return Err(invalid("gzip header with reserved flags set"));
        }
        if flags & FEXTRA != 0 {
            let mut len = [0u8; 2];
            r.read_exact(&mut len)
                .map_err(|e| truncated(e, "gzip header"))?;
            skip(r, u64::from(u16::from_le_bytes(len)))?;
        }
        for (flag, what) in [(FNAME, "file name"), (FCOMMENT, "comment")] {
            if flags & flag != 0 {
                skip_zero_terminated(r, what)?;
            }
        }
        if flags & FHCRC != 0 {
            skip(r, 2)?;
        }
        Ok(true)
    }

    /// Checks the trailer: CRC-32 (not recomputed, see the module docs) and ISIZE.
    fn trailer(&mut self) -> io::Result<()> {
        let mut t = [0u8; 8];
        self.body
            .get_mut()
            .read_exact(&mut t)
            .map_err(|e| truncated(e, "gzip trailer"))?;
        let isize = u32::from_le_bytes(t[4..].try_into().expect("4 bytes"));
        if u64::from(isize) != self.member_out & 0xffff_ffff {
            return Err(invalid("gzip member length does not match its trailer"));
        }
        Ok(())
    }
}

impl<R: BufRead> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Header { first } => {
                    if self.header(first)? {
                        self.body.reset_data();
                        self.member_out = 0;
                        self.state = State::Body;
                    } else {
                        self.state = State::Done;
                    }
                }
                State::Body => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let n = self.body.read(buf)?;
                    if n > 0 {
                        self.member_out += n as u64;
                        return Ok(n);
                    }
                    // The deflate stream ended (or its input did: flate2 reports that
                    // as an error, not as 0).
                    self.trailer()?;
                    self.state = State::Header { first: false };
                }
            }
        }
    }
}

fn skip(r: &mut impl BufRead, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        return Err(truncated(
            io::ErrorKind::UnexpectedEof.into(),
            "gzip header",
        ));
    }
    Ok(())
}

/// Skips a NUL-terminated header field (`what`) of at most [`MAX_HEADER_STRING`] bytes.
fn skip_zero_terminated(r: &mut impl BufRead, what: &str) -> io::Result<()> {
    let mut skipped = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(truncated(
                io::ErrorKind::UnexpectedEof.into(),
                "gzip header",
            ));
        }
        let (n, ended) = match buf.iter().position(|&b| b == 0) {
            Some(nul) => (nul + 1, true),
            None => (buf.len(), false),
        };
        r.consume(n);
        skipped += n;
        if skipped > MAX_HEADER_STRING {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "gzip header {what} longer than {} bytes",
                    MAX_HEADER_STRING - 1
                ),
            ));
        }
        if ended {
            return Ok(());
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn truncated(e: io::Error, what: &str) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        io::Error::new(io::ErrorKind::UnexpectedEof, format!("{what} cut short"))
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{Compression, GzBuilder};

    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| u8::try_from((i * 7 + i / 1000) % 253).unwrap())
            .collect()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn decode(stream: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        GzipReader::new(stream).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn decodes_what_flate2_decodes() {
        for n in [0, 1, 1000, 300_000] {
            assert_eq!(decode(&gzip(&data(n))).unwrap(), data(n), "{n} bytes");
        }
    }

    #[test]
    fn several_members_and_optional_header_fields() {
        let mut e = GzBuilder::new()
            .filename("disk.tar")
            .comment("made by a test")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), Compression::default());
        e.write_all(&data(5000)).unwrap();
        let mut stream = e.finish().unwrap();
        stream.extend(gzip(&data(7000)));
        let mut expected = data(5000);
        expected.extend(data(7000));
        assert_eq!(decode(&stream).unwrap(), expected);
    }

    #[test]
    fn header_crc_is_skipped() {
        let mut stream = gzip(&data(100));
        stream[3] |= FHCRC;
        stream.splice(10..10, [0xaa, 0xbb]);
        assert_eq!(decode(&stream).unwrap(), data(100));
    }

    /// Counts the bytes read through it.
    struct Counting<'a> {
        inner: &'a [u8],
        read: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n;
            Ok(n)
        }
    }

    /// A member whose header has `flag` (FNAME or FCOMMENT) with a field of `len`
    /// bytes before its NUL.
    fn with_header_string(flag: u8, len: usize) -> Vec<u8> {
        let mut stream = gzip(&data(100));
        stream[3] |= flag;
        let mut field = vec![b'a'; len];
        field.push(0);
        stream.splice(10..10, field);
        stream
    }

    /// The file name and comment fields end at a NUL and nothing else bounds them:
    /// reading one into memory let a layer claim gigabytes of header. Refused past
    /// the bound, having read little more than it.
    #[test]
    fn endless_file_name_or_comment_is_refused_without_reading_it() {
        for (flag, what) in [(FNAME, "file name"), (FCOMMENT, "comment")] {
            let stream = with_header_string(flag, 4 << 20);
            let mut counting = Counting {
                inner: &stream,
                read: 0,
            };
            let mut out = Vec::new();
            let err = GzipReader::new(io::BufReader::with_capacity(4096, &mut counting))
                .read_to_end(&mut out)
                .unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
            assert!(
                counting.read <= 8192,
                "{what}: read {} bytes",
                counting.read
            );
        }
    }

    /// Go's compress/gzip (docker, containerd, podman) reads fields up to 511 bytes.
    #[test]
    fn longest_header_strings_go_reads_are_read() {
        for flag in [FNAME, FCOMMENT] {
            assert_eq!(decode(&with_header_string(flag, 511)).unwrap(), data(100));
            assert!(decode(&with_header_string(flag, 512)).is_err());
        }
    }

    #[test]
    fn refuses_garbage_truncation_and_wrong_lengths() {
        let good = gzip(&data(10_000));
        let mut appended = good.clone();
        appended.extend_from_slice(b"appended");
        assert!(
            decode(&appended)
                .unwrap_err()
                .to_string()
                .contains("after the last gzip member")
        );
        for cut in [5, 12, good.len() / 2, good.len() - 3] {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong_size = good.clone();
        let n = wrong_size.len();
        wrong_size[n - 1] ^= 1;
        assert!(
            decode(&wrong_size)
                .unwrap_err()
                .to_string()
                .contains("length")
        );
        assert!(decode(b"plain text, not gzip").is_err());
        let mut bad_method = good;
        bad_method[2] = 7;
        assert!(decode(&bad_method).is_err());
    }
}
