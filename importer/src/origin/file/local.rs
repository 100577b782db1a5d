//! `file:PATH` and `-`: a disk file on this machine, and standard input.
//!
//! Both are read by a thread of their own into the verifier, as OCI layout blobs are.
//! A local file has a length and a tail and can be read again; standard input has
//! neither and is read once (a second open is an error, not an empty stream).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::FileProblem;
use crate::blob::{self, Verifier};
use crate::local_file;
use crate::progress::Cancel;
use crate::{Error, Result};

/// A regular file, opened once (links followed, as for any path the user names; a
/// FIFO or a device refused, [`crate::local_file`]); its length taken then. Every
/// pass reads that opened file, never the path again.
#[derive(Debug)]
pub(super) struct LocalFile {
    file: Arc<File>,
    length: u64,
}

impl LocalFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = local_file::open_regular(path)?;
        let length = file
            .metadata()
            .map_err(|source| Error::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            })?
            .len();
        Ok(Self {
            file: Arc::new(file),
            length,
        })
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn stream(&self, image: &str, verifier: Verifier, cancel: Cancel) -> Result<()> {
        let from_start = FromStart {
            file: Arc::clone(&self.file),
            at: 0,
        };
        let opened = move || Ok(from_start);
        blob::pump_on_thread("file-source", opened, verifier, cancel, read_error(image));
        Ok(())
    }

    /// The last `n` bytes (all of a shorter file).
    pub fn tail(&self, image: &str, n: u64) -> Result<Bytes> {
        let take = n.min(self.length);
        let mut buf = vec![0; usize::try_from(take).unwrap_or(usize::MAX)];
        self.file
            .read_exact_at(&mut buf, self.length - take)
            .map_err(|e| read_error(image)(self.length - take, e))?;
        Ok(buf.into())
    }
}

/// Reads the shared file from its start with positioned reads: each pass has its own
/// position, whatever another pass did.
struct FromStart {
    file: Arc<File>,
    at: u64,
}

impl Read for FromStart {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Standard input, handed out once.
#[derive(Debug, Default)]
pub(super) struct StdinOnce {
    taken: AtomicBool,
}

impl StdinOnce {
    pub fn stream(&self, image: &str, verifier: Verifier, cancel: Cancel) -> Result<()> {
        if self.taken.swap(true, Ordering::SeqCst) {
            return Err(Error::FileSource {
                image: image.to_owned(),
                problem: FileProblem::StdinReadTwice,
            });
        }
        let stdin = || Ok(std::io::stdin());
        blob::pump_on_thread("stdin-source", stdin, verifier, cancel, read_error(image));
        Ok(())
    }
}

/// Names a failed read of `image` at an offset.
fn read_error(image: &str) -> impl Fn(u64, std::io::Error) -> Error + Send + 'static {
    let image = image.to_owned();
    move |offset, source| Error::SourceRead {
        image: image.clone(),
        offset,
        source,
    }
}
