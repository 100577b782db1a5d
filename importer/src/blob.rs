//! Blob byte streams, verified while they flow.
//!
//! A producer (a tokio task for a registry, a thread for an OCI layout) reads the blob,
//! feeds every byte to sha256 and a counter, and passes chunks through a bounded
//! channel to a [`BlobReader`] on the decoding thread. The reader reports the end of the
//! blob only after the producer has checked size and digest; a mismatch arrives as an
//! error instead of the end. So a consumer that reads to EOF has read verified bytes,
//! and one that stops early must call [`BlobReader::drain`] before trusting anything.

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use crate::manifest::Layer;
use crate::progress::Progress;
use crate::{Digest, Error, Result};

/// Chunks in flight between producer and consumer (each up to ~1 MiB).
pub(crate) const CHANNEL_CHUNKS: usize = 8;

/// What the producer sends.
#[derive(Debug)]
pub(crate) enum Message {
    Data(Bytes),
    /// The blob ended and matched its size and digest.
    Verified,
    Failed(Error),
}

/// The producer's half: hashes, counts and forwards chunks.
#[derive(Debug)]
pub(crate) struct Verifier {
    layer: Layer,
    hasher: Sha256,
    received: u64,
    sender: mpsc::Sender<Message>,
    progress: Arc<Progress>,
}

/// The consumer's half: a `Read` over the verified blob.
#[derive(Debug)]
pub struct BlobReader {
    digest: Digest,
    receiver: mpsc::Receiver<Message>,
    current: Bytes,
    done: bool,
}

/// A connected producer/consumer pair for `layer`, counting bytes into `progress`.
pub(crate) fn channel(layer: &Layer, progress: Arc<Progress>) -> (Verifier, BlobReader) {
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    let verifier = Verifier {
        layer: layer.clone(),
        hasher: Sha256::new(),
        received: 0,
        sender,
        progress,
    };
    let reader = BlobReader {
        digest: layer.digest,
        receiver,
        current: Bytes::new(),
        done: false,
    };
    (verifier, reader)
}

impl Verifier {
    /// The blob's digest.
    pub fn layer(&self) -> &Digest {
        &self.layer.digest
    }

    /// The blob's declared size.
    pub fn size(&self) -> u64 {
        self.layer.size
    }

    /// Bytes received so far: where a resumed download continues.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Hashes and forwards a chunk. Fails if the consumer is gone (the import ended)
    /// or the blob grew past its declared size.
    pub async fn push(&mut self, chunk: Bytes) -> Result<()> {
        self.account(&chunk)?;
        self.sender
            .send(Message::Data(chunk))
            .await
            .map_err(|_| Error::Cancelled)
    }

    /// [`push`](Self::push) for producers on plain threads.
    pub fn push_blocking(&mut self, chunk: Bytes) -> Result<()> {
        self.account(&chunk)?;
        self.sender
            .blocking_send(Message::Data(chunk))
            .map_err(|_| Error::Cancelled)
    }

    fn account(&mut self, chunk: &[u8]) -> Result<()> {
        self.hasher.update(chunk);
        self.received += chunk.len() as u64;
        self.progress
            .downloaded
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if self.received > self.layer.size {
            return Err(self.size_mismatch());
        }
        Ok(())
    }

    /// Checks what arrived against the descriptor: `Ok` only for the exact blob.
    pub fn verify(&self) -> Result<()> {
        if self.received != self.layer.size {
            return Err(self.size_mismatch());
        }
        let actual = Digest::from_hasher(self.hasher.clone());
        if actual != self.layer.digest {
            return Err(Error::DigestMismatch {
                what: "layer",
                expected: self.layer.digest,
                actual,
            });
        }
        Ok(())
    }

    fn size_mismatch(&self) -> Error {
        Error::SizeMismatch {
            digest: self.layer.digest,
            expected: self.layer.size,
            actual: self.received,
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
            .map_or_else(Message::Failed, |()| Message::Verified)
    }
}

impl BlobReader {
    /// Reads and discards the rest of the blob, so that its digest is checked.
    pub fn drain(&mut self) -> Result<()> {
        io::copy(self, &mut io::sink())
            .map(|_| ())
            .map_err(|e| self.error_from(e))
    }

    /// Turns an I/O error from this reader back into the importer error it carries.
    pub fn error_from(&self, e: io::Error) -> Error {
        into_error(self.digest, e)
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
    /// Waits for the next chunk; `false` at the verified end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        match self.receiver.blocking_recv() {
            Some(Message::Data(chunk)) => {
                self.current = chunk;
                Ok(true)
            }
            Some(Message::Verified) => {
                self.done = true;
                Ok(false)
            }
            Some(Message::Failed(e)) => Err(io::Error::other(e)),
            None => Err(io::Error::other(Error::Internal(format!(
                "blob {} stream stopped without a verdict",
                self.digest
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
