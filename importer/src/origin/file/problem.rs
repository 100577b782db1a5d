//! What can be wrong with a single-file source, as values.

/// Why a single-file source cannot be imported as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// More or fewer bytes arrived than the server announced.
    #[error("{actual} bytes arrived where the server announced {expected}")]
    LengthChanged {
        /// `Content-Length`, or the file's size.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// The file was replaced on the server during the download.
    #[error(
        "the file changed on the server during the download (its ETag or Last-Modified differs); \
         the two versions are not stitched together"
    )]
    Changed,
    /// The connection broke and the server cannot resume it.
    #[error(
        "the connection broke at byte {offset} and the server offers no ranged requests with a \
         validator (Accept-Ranges, ETag or Last-Modified): the download cannot resume"
    )]
    NoResume {
        /// Bytes received before the break.
        offset: u64,
    },
    /// A qcow2 image that needs a second pass arrived on standard input.
    #[error(
        "the qcow2 image stores clusters before their tables beyond the spool limit and \
         needs a second pass, but standard input cannot be read twice: import it from a \
         file or URL, re-convert it with qemu-img convert, or raise --spool-limit"
    )]
    StdinSecondPass,
    /// The length of a disk file on standard input cannot be known before its end.
    #[error(
        "a raw, VMDK, VHD, VHDX, VDI or OVA disk needs its file's length up front (a raw \
         disk's size is its length; the others keep footers and tables checked against it), \
         which standard input does not tell before its end (nor does gzip or bzip2): upload \
         qcow2, a tar holding the disk, or import from a file or URL"
    )]
    StdinLengthUnknown,
    /// The file's name says a compression its bytes are not in: a mislabelled, cut or
    /// corrupt file, refused rather than written as a raw disk of its bytes.
    #[error(
        "{name} is not in the {format} format its name says: its first bytes are not the {format} magic number"
    )]
    NotAsNamed {
        /// The file's name.
        name: String,
        /// What its name says it is (`xz`, `gzip`, …).
        format: &'static str,
    },
    /// Standard input was asked for twice.
    #[error("standard input can be read only once")]
    StdinReadTwice,
}
