//! What can be wrong with the disk entry of a container disk, with a tar archive given
//! as a single file, and with a sparse map.

/// Why a layer's `disk/` breaks the container-disk rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiskEntryProblem {
    /// An entry whose path climbs out with `..`.
    #[error("entry {0} has a '..' path")]
    ParentPath(String),
    /// `disk` itself is not a directory.
    #[error("disk is a {0}, not a directory")]
    DiskNotADirectory(&'static str),
    /// A link, device or FIFO under `disk/`.
    #[error("disk/{name} is a {kind}; only a regular file is allowed")]
    NotRegular {
        /// Its path below `disk/`.
        name: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// More than one regular file under `disk/`.
    #[error(
        "more than one file under disk/ ({first} and {second}); a container disk holds exactly one"
    )]
    SeveralDisks {
        /// The first one found.
        first: String,
        /// The next.
        second: String,
    },
    /// A PAX sparse entry (`tar --format=posix --sparse`), whose map is inside its data.
    #[error(
        "{0} is a PAX sparse tar entry (GNU tar --format=posix --sparse), which is not supported; \
         build the layer without --sparse"
    )]
    PaxSparse(String),
    /// An old GNU sparse entry whose map breaks the rules.
    #[error("disk/{name} is a sparse tar entry, but {problem}")]
    SparseMap {
        /// Its path below `disk/`.
        name: String,
        /// What is wrong with the map.
        problem: SparseMapProblem,
    },
    /// The layer ends inside the disk file.
    #[error("disk/{name} ends {missing} bytes early (the layer is cut short)")]
    CutShort {
        /// Its path below `disk/`.
        name: String,
        /// Bytes the entry announced and the layer did not hold.
        missing: u64,
    },
}

/// Why a tar archive given as a single file (`disk.tar.xz`) is not a disk archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveProblem {
    /// A link, device or FIFO: the archive must hold one regular file.
    #[error("{name} is a {kind}; the archive must hold exactly one regular file")]
    NotRegular {
        /// Its path in the archive.
        name: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// An entry whose path climbs out with `..`.
    #[error("entry {0} has a '..' path")]
    ParentPath(String),
    /// More than one regular file.
    #[error("more than one file ({first} and {second}); a disk archive holds exactly one")]
    SeveralFiles {
        /// The first one found.
        first: String,
        /// The next.
        second: String,
    },
    /// No regular file at all.
    #[error("the archive holds no regular file")]
    NoFile,
    /// A PAX sparse entry (`tar --format=posix --sparse`), whose map is inside its data.
    #[error(
        "{0} is a PAX sparse tar entry (GNU tar --format=posix --sparse), which is not supported; \
         archive it without --sparse or in the GNU format"
    )]
    PaxSparse(String),
    /// An old GNU sparse entry whose map breaks the rules.
    #[error("{name} is a sparse tar entry, but {problem}")]
    SparseMap {
        /// Its path in the archive.
        name: String,
        /// What is wrong with the map.
        problem: SparseMapProblem,
    },
}

/// What is wrong with an old GNU sparse map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SparseMapProblem {
    /// A number field that does not parse.
    #[error("its sparse map has a malformed number")]
    BadNumber,
    /// Runs out of order or overlapping.
    #[error("its sparse map has runs out of order or overlapping")]
    OutOfOrder,
    /// A run ending past 2^64.
    #[error("its sparse map runs past 2^64 bytes")]
    PastU64,
    /// Runs claiming more bytes than the entry stores.
    #[error("its sparse map claims more bytes than the entry stores")]
    ClaimsTooMuch,
    /// A run past the file's real size.
    #[error("its sparse map runs to byte {end} of a {real_size}-byte file")]
    PastTheEnd {
        /// Where the last run ends.
        end: u64,
        /// The file's size.
        real_size: u64,
    },
    /// Stored bytes no run accounts for.
    #[error("its sparse map leaves {0} stored bytes unaccounted for")]
    Unaccounted(u64),
}
