//! `file:PATH` and `-`: a disk file on this machine, and standard input.
//!
//! Both are read by a thread of their own into the verifier, as OCI layout blobs are.
//! A local file has a length and a tail and can be read again; standard input has
//! neither and is read once (a second open is an error, not an empty stream).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::FileProblem;
use crate::blob::{self, Verifier};
use crate::progress::Cancel;
use crate::{Error, Result};

/// A regular file, its length taken when opened.
#[derive(Debug)]
pub(super) struct LocalFile {
    path: PathBuf,
    length: u64,
}

impl LocalFile {
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            action: "opening",
            path: path.to_owned(),
            source,
        };
        let meta = File::open(path).and_then(|f| f.metadata()).map_err(io)?;
        if !meta.is_file() {
            return Err(Error::FileSource {
                image: format!("file:{}", path.display()),
                problem: FileProblem::NotAFile,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            length: meta.len(),
        })
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn stream(&self, image: &str, verifier: Verifier, cancel: Cancel) -> Result<()> {
        let path = self.path.clone();
        let opened = move || File::open(path);
        blob::pump_on_thread("file-source", opened, verifier, cancel, read_error(image));
        Ok(())
    }

    /// The last `n` bytes (all of a shorter file).
    pub fn tail(&self, n: u64) -> Result<Bytes> {
        let io = |source| Error::Io {
            action: "reading",
            path: self.path.clone(),
            source,
        };
        let take = n.min(self.length);
        let mut buf = vec![0; usize::try_from(take).unwrap_or(usize::MAX)];
        File::open(&self.path)
            .and_then(|f| f.read_exact_at(&mut buf, self.length - take))
            .map_err(io)?;
        Ok(buf.into())
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
