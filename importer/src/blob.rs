//! Blob byte streams, verified while they flow.
//!
//! A producer (a tokio task for a registry, a thread for an OCI layout) reads the blob,
//! feeds every byte to sha256 and a counter, and passes chunks through a bounded
//! channel to a [`BlobReader`] on the decoding thread. The reader reports the end of the
//! blob only after the producer has checked size and digest; a mismatch arrives as an
//! error instead of the end. So a consumer that reads to EOF has read verified bytes,
//! and one that stops early must call [`BlobReader::drain`] before trusting anything.
//!
//! What "verified" means is the blob's [`Expected`]: a layer's size and digest, or a
//! single file's length (when the server said it) and the checksum the user gave (none
//! is fine). The sha256 of the bytes is always computed and handed over with the end
//! ([`BlobReader::sha256`]): for a single file it is the version's digest.

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::checksum::Hashes;
use crate::manifest::Layer;
use crate::progress::{Cancel, Progress};
use crate::{Checksum, Digest, Error, FileProblem, Result};

/// Chunks in flight between producer and consumer (each up to ~1 MiB).
pub(crate) const CHANNEL_CHUNKS: usize = 8;

/// What the producer sends.
#[derive(Debug)]
pub(crate) enum Message {
    Data(Bytes),
    /// The blob ended and matched what was expected; its sha256.
    Verified(Digest),
    Failed(Error),
}

/// Which blob this is, for errors: a layer (named by its digest) or a single file
/// (named as the user wrote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlobName {
    Layer(Digest),
    File(Arc<str>),
}

/// What a blob must turn out to be. A layer: its size and digest. A single file: its
/// length if the server said it, and the checksum the user gave, if any.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub name: BlobName,
    pub size: Option<u64>,
    pub checksum: Option<Checksum>,
}

impl Expected {
    pub fn layer(layer: &Layer) -> Self {
        Self {
            name: BlobName::Layer(layer.digest),
            size: Some(layer.size),
            checksum: Some(layer.digest.into()),
        }
    }
}

/// The producer's half: hashes, counts and forwards chunks.
#[derive(Debug)]
pub(crate) struct Verifier {
    expected: Expected,
    hashes: Hashes,
    received: u64,
    sender: mpsc::Sender<Message>,
    progress: Arc<Progress>,
    /// When the last chunk was handed on: from then until the next arrives, the
    /// producer waits for the origin.
    handed_on: Instant,
}

/// The consumer's half: a `Read` over the verified blob.
#[derive(Debug)]
pub struct BlobReader {
    name: BlobName,
    receiver: mpsc::Receiver<Message>,
    progress: Arc<Progress>,
    current: Bytes,
    /// The sha256 of the whole blob, once it has verified.
    verified: Option<Digest>,
}

/// A connected producer/consumer pair for `layer`, counting bytes into `progress`.
pub(crate) fn channel(layer: &Layer, progress: Arc<Progress>) -> (Verifier, BlobReader) {
    channel_for(Expected::layer(layer), progress)
}

/// A connected producer/consumer pair for a blob expected to be `expected`.
pub(crate) fn channel_for(expected: Expected, progress: Arc<Progress>) -> (Verifier, BlobReader) {
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    let reader = BlobReader {
        name: expected.name.clone(),
        receiver,
        progress: Arc::clone(&progress),
        current: Bytes::new(),
        verified: None,
    };
    let verifier = Verifier {
        hashes: Hashes::for_expected(expected.checksum.as_ref()),
        expected,
        received: 0,
        sender,
        progress,
        handed_on: Instant::now(),
    };
    (verifier, reader)
}

impl Verifier {
    /// Bytes received so far: where a resumed download continues.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Hashes and forwards a chunk. Fails if the consumer is gone (the import ended)
    /// or the blob grew past its expected size.
    pub async fn push(&mut self, chunk: Bytes) -> Result<()> {
        self.account(&chunk)?;
        let sent = self.sender.send(Message::Data(chunk)).await;
        self.handed_on = Instant::now();
        sent.map_err(|_| Error::Cancelled)
    }

    /// [`push`](Self::push) for producers on plain threads.
    pub fn push_blocking(&mut self, chunk: Bytes) -> Result<()> {
        self.account(&chunk)?;
        let sent = self.sender.blocking_send(Message::Data(chunk));
        self.handed_on = Instant::now();
        sent.map_err(|_| Error::Cancelled)
    }

    fn account(&mut self, chunk: &[u8]) -> Result<()> {
        let stages = &self.progress.stages;
        stages.download.add_since(self.handed_on);
        stages.verify.time(|| self.hashes.update(chunk));
        self.received += chunk.len() as u64;
        self.progress
            .downloaded
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if self.expected.size.is_some_and(|size| self.received > size) {
            return Err(self.size_mismatch());
        }
        Ok(())
    }

    /// Checks what arrived against what was expected; the sha256 of the exact blob.
    pub fn verify(&self) -> Result<Digest> {
        if self.expected.size.is_some_and(|size| self.received != size) {
            return Err(self.size_mismatch());
        }
        let digest = self.hashes.digest();
        let Some(expected) = &self.expected.checksum else {
            return Ok(digest);
        };
        let actual = self.hashes.actual(expected);
        if actual == *expected {
            return Ok(digest);
        }
        Err(match &self.expected.name {
            BlobName::Layer(layer) => Error::DigestMismatch {
                what: "layer",
                expected: *layer,
                actual: digest,
            },
            BlobName::File(image) => Error::ChecksumMismatch {
                image: image.to_string(),
                expected: Box::new(expected.clone()),
                actual: Box::new(actual),
            },
        })
    }

    fn size_mismatch(&self) -> Error {
        let expected = self.expected.size.unwrap_or_default();
        match &self.expected.name {
            BlobName::Layer(digest) => Error::SizeMismatch {
                digest: *digest,
                expected,
                actual: self.received,
            },
            BlobName::File(image) => Error::FileSource {
                image: image.to_string(),
                problem: FileProblem::LengthChanged {
                    expected,
                    actual: self.received,
                },
            },
        }
    }

    /// Ends the stream: verified, or with `error`.
    pub async fn finish(self, outcome: Result<()>) {
        let verdict = self.verdict(outcome);
        // The consumer may be gone already; then nobody needs the verdict.
        let _ = self.sender.send(verdict).await;
    }

    /// [`finish`](Self::finish) for producers on plain threads.
    pub fn finish_blocking(self, outcome: Result<()>) {
        let verdict = self.verdict(outcome);
        let _ = self.sender.blocking_send(verdict);
    }

    /// The last message: the producer's outcome, then the size and digest check.
    fn verdict(&self, outcome: Result<()>) -> Message {
        outcome
            .and_then(|()| self.verify())
            .map_or_else(Message::Failed, Message::Verified)
    }
}

/// Bytes read at once by [`pump_on_thread`].
const READ_CHUNK: usize = 1 << 20;

/// Reads what `open` yields (a file, a pipe) to its end into `verifier`, on a thread of
/// its own; `read_error` names a failure at the offset reached.
pub(crate) fn pump_on_thread<R: Read>(
    thread: &str,
    open: impl FnOnce() -> Result<R> + Send + 'static,
    mut verifier: Verifier,
    cancel: Cancel,
    read_error: impl Fn(u64, io::Error) -> Error + Send + 'static,
) {
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            let outcome = (|| {
                let mut source = open()?;
                loop {
                    if cancel.is_cancelled() {
                        return Err(Error::Cancelled);
                    }
                    let mut buf = bytes::BytesMut::zeroed(READ_CHUNK);
                    let n = source
                        .read(&mut buf)
                        .map_err(|e| read_error(verifier.received(), e))?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.truncate(n);
                    verifier.push_blocking(buf.freeze())?;
                }
            })();
            verifier.finish_blocking(outcome);
        })
        .expect("spawning a thread");
}

impl BlobReader {
    /// A blob of `bytes`, already verified: for tests of what reads blobs.
    #[cfg(test)]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let (sender, receiver) = mpsc::channel(1);
        drop(sender);
        Self {
            name: BlobName::File("test".into()),
            receiver,
            progress: Arc::default(),
            current: Bytes::from(bytes),
            verified: Some(Digest::of(b"")),
        }
    }

    /// Reads and discards the rest of the blob, so that its digest is checked.
    pub fn drain(&mut self) -> Result<()> {
        io::copy(self, &mut io::sink())
            .map(|_| ())
            .map_err(|e| self.error_from(e))
    }

    /// Turns an I/O error from this reader back into the importer error it carries.
    pub fn error_from(&self, e: io::Error) -> Error {
        match &self.name {
            BlobName::Layer(digest) => into_error(*digest, e),
            BlobName::File(image) => match e.downcast::<Error>() {
                Ok(inner) => inner,
                Err(e) => Error::SourceRead {
                    image: image.to_string(),
                    offset: 0,
                    source: e,
                },
            },
        }
    }

    /// The sha256 of the whole blob, once read to its verified end.
    pub fn sha256(&self) -> Option<Digest> {
        self.verified
    }
}

/// Recovers an importer [`Error`] carried through `io::Error` by a reader stack.
pub(crate) fn into_error(digest: Digest, e: io::Error) -> Error {
    match e.downcast::<Error>() {
        Ok(inner) => inner,
        Err(e) => Error::BlobRead {
            digest,
            offset: 0,
            source: e,
        },
    }
}

impl BlobReader {
    /// The import's progress, which this blob's bytes and waits are counted into.
    pub(crate) fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// Waits for the next chunk; `false` at the verified end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.verified.is_some() {
            return Ok(false);
        }
        let message = {
            let clock = &self.progress.stages.waiting_for_input;
            clock.time(|| self.receiver.blocking_recv())
        };
        match message {
            Some(Message::Data(chunk)) => {
                self.current = chunk;
                Ok(true)
            }
            Some(Message::Verified(digest)) => {
                self.verified = Some(digest);
                Ok(false)
            }
            Some(Message::Failed(e)) => Err(io::Error::other(e)),
            None => Err(io::Error::other(Error::Internal(format!(
                "blob {:?} stream stopped without a verdict",
                self.name
            )))),
        }
    }

    /// The next `n` bytes (fewer at the end of the blob), without consuming them.
    pub fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.current.len() < n {
            let head = std::mem::take(&mut self.current);
            if !self.next_chunk()? {
                self.current = head;
                break;
            }
            if !head.is_empty() {
                let mut joined = bytes::BytesMut::from(&head[..]);
                joined.extend_from_slice(&self.current);
                self.current = joined.freeze();
            }
        }
        Ok(&self.current[..n.min(self.current.len())])
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Chunks are handed to decompressors without another copy.
impl BufRead for BlobReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.is_empty() && self.next_chunk()? {}
        Ok(&self.current)
    }

    fn consume(&mut self, amt: usize) {
        let _ = self.current.split_to(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_of(data: &[u8]) -> Layer {
        Layer {
            digest: Digest::of(data),
            size: data.len() as u64,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        }
    }

    fn produce(layer: &Layer, chunks: Vec<&'static [u8]>) -> BlobReader {
        let (mut v, reader) = channel(layer, Arc::default());
        std::thread::spawn(move || {
            let mut outcome = Ok(());
            for c in chunks {
                if let Err(e) = v.push_blocking(Bytes::from_static(c)) {
                    outcome = Err(e);
                    break;
                }
            }
            v.finish_blocking(outcome);
        });
        reader
    }

    #[test]
    fn verified_blob_reads_to_the_end() {
        let layer = layer_of(b"hello world");
        let mut r = produce(&layer, vec![b"hello ", b"world"]);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");
    }

    #[test]
    fn tampered_blob_fails_at_the_end() {
        let layer = layer_of(b"hello world");
        let mut r = produce(&layer, vec![b"hello ", b"wOrld"]);
        let mut s = String::new();
        let err = r.read_to_string(&mut s).unwrap_err();
        assert!(matches!(r.error_from(err), Error::DigestMismatch { .. }));
    }

    #[test]
    fn appended_bytes_fail_even_when_the_consumer_stops_early() {
        let layer = layer_of(b"hello");
        let mut r = produce(&layer, vec![b"hello", b" + appended"]);
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        assert!(matches!(
            r.drain().unwrap_err(),
            Error::SizeMismatch { actual: 16, .. }
        ));
    }

    #[test]
    fn peek_joins_small_chunks_without_consuming() {
        let layer = layer_of(b"abcdef");
        let mut r = produce(&layer, vec![b"a", b"bc", b"def"]);
        assert_eq!(r.peek(4).unwrap(), b"abcd");
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"abcdef");
        assert_eq!(r.peek(4).unwrap(), b"");
    }

    #[test]
    fn short_blob_is_a_size_mismatch() {
        let layer = layer_of(b"hello world");
        let mut r = produce(&layer, vec![b"hello"]);
        assert!(matches!(
            r.drain().unwrap_err(),
            Error::SizeMismatch { actual: 5, .. }
        ));
    }
}
