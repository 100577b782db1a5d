//! What can be wrong with a qcow2 image, as values: the decoder's errors name the
//! problem and its offsets, and whoever reports them can tell one from another without
//! reading their text.

use std::fmt;

/// A structural problem in a qcow2 image (what [`Error::Qcow2Invalid`] carries).
///
/// [`Error::Qcow2Invalid`]: crate::Error::Qcow2Invalid
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Qcow2Problem {
    /// The file does not start with `QFI\xfb`.
    #[error("not a qcow2 image (bad magic)")]
    BadMagic,
    /// A v3 header length that is not a multiple of 8 of at least 104.
    #[error("header length {0} is not a multiple of 8 of at least 104")]
    HeaderLength(u64),
    /// A header longer than one cluster.
    #[error("header length {0} exceeds the cluster size")]
    HeaderPastCluster(u64),
    /// `cluster_bits` outside what QEMU accepts.
    #[error("cluster_bits {0} outside 9..=21")]
    ClusterBits(u32),
    /// The compression-type feature bit without the header field it announces.
    #[error("compression type bit set but header has no compression type")]
    NoCompressionType,
    /// Extended L2 entries with clusters too small for 32 subclusters.
    #[error("extended L2 entries need clusters of at least 16 KiB")]
    ExtendedL2SmallClusters,
    /// An L1 table too short for the virtual size.
    #[error("L1 has {entries} entries but the virtual size needs {needed}")]
    L1TooShort {
        /// Entries the header declares.
        entries: u32,
        /// Entries the virtual size needs.
        needed: u64,
    },
    /// An L1 table larger than QEMU allows.
    #[error("L1 table of {0} bytes exceeds QEMU's 32 MiB limit")]
    L1TooLarge(u64),
    /// An L1 table not on a cluster boundary after the header.
    #[error("L1 offset {0:#x} is not a cluster boundary after the header")]
    L1Misplaced(u64),
    /// An L1 entry pointing between clusters.
    #[error("L2 table offset {0:#x} is not cluster aligned")]
    L2Misaligned(u64),
    /// Two L1 entries naming one L2 table.
    #[error("two L1 entries point to the same L2 table")]
    L2Shared,
    /// An L2 entry with reserved bits set.
    #[error("L2 entry {0:#x} sets reserved bits")]
    ReservedBits(u64),
    /// A data cluster pointer between clusters.
    #[error("data cluster offset {0:#x} is not cluster aligned")]
    DataMisaligned(u64),
    /// Extended L2: a subcluster both allocated and zero.
    #[error("subclusters marked both allocated and zero")]
    SubclustersAllocatedAndZero,
    /// Extended L2: allocated subclusters in an entry with no host cluster.
    #[error("allocated subclusters without a host cluster")]
    SubclustersWithoutCluster,
    /// A data cluster already mapped by another L2 entry (a write bomb).
    #[error("data cluster {0:#x} is already mapped by another L2 entry")]
    DataClusterShared(u64),
    /// A data cluster holding another entry's compressed clusters.
    #[error("data cluster {0:#x} holds compressed clusters of another L2 entry")]
    DataClusterPacked(u64),
    /// A compressed cluster already mapped by another L2 entry.
    #[error("compressed cluster at {0:#x} is already mapped by another L2 entry")]
    CompressedShared(u64),
    /// Compressed clusters overlapping by more than their shared boundary sector.
    #[error(
        "compressed cluster at {host:#x} overlaps the one at {other:#x} of another L2 entry by more than a sector"
    )]
    CompressedOverlap {
        /// Where this one starts.
        host: u64,
        /// Where the other starts.
        other: u64,
    },
    /// A compressed cluster inside another entry's data cluster.
    #[error(
        "compressed cluster at {host:#x} lies in data cluster {cluster:#x} of another L2 entry"
    )]
    CompressedInData {
        /// Where the compressed cluster starts.
        host: u64,
        /// The data cluster it lies in.
        cluster: u64,
    },
}

/// A feature a standalone streaming import cannot honour (what
/// [`Error::Qcow2Unsupported`] carries).
///
/// [`Error::Qcow2Unsupported`]: crate::Error::Qcow2Unsupported
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Qcow2Feature {
    /// A qcow2 version other than 2 and 3.
    Version(u32),
    /// A compression type other than deflate (0) and zstd (1).
    CompressionType(u8),
    /// A backing file.
    BackingFile,
    /// AES encryption.
    AesEncryption,
    /// LUKS encryption.
    LuksEncryption,
    /// Another encryption method.
    Encryption(u32),
    /// The corrupt bit.
    MarkedCorrupt,
    /// An external data file.
    ExternalDataFile,
    /// Incompatible feature bits this decoder does not know.
    UnknownIncompatible(u64),
}

impl fmt::Display for Qcow2Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version(v) => write!(f, "qcow2 version {v}"),
            Self::CompressionType(t) => write!(f, "compression type {t}"),
            Self::BackingFile => f.write_str(
                "a backing file (container disks must be standalone; run qemu-img convert first)",
            ),
            Self::AesEncryption => f.write_str("AES encryption"),
            Self::LuksEncryption => f.write_str("LUKS encryption"),
            Self::Encryption(m) => write!(f, "encryption method {m}"),
            Self::MarkedCorrupt => {
                f.write_str("an image marked corrupt (run qemu-img check -r all)")
            }
            Self::ExternalDataFile => f.write_str("an external data file"),
            Self::UnknownIncompatible(bits) => {
                write!(f, "unknown incompatible feature bits {bits:#x}")
            }
        }
    }
}

/// A streaming limit of the decoder (what [`Error::LimitExceeded`] carries).
///
/// [`Error::LimitExceeded`]: crate::Error::LimitExceeded
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Limit {
    /// Tables and compressed clusters gathered across chunks.
    #[error("more than {limit} bytes of overlapping tables or compressed clusters at byte {at:#x}")]
    Assembly {
        /// The limit in bytes.
        limit: u64,
        /// Where in the image.
        at: u64,
    },
    /// Mappings read ahead of their data.
    #[error("more than {0} clusters mapped ahead of their data")]
    Pending(usize),
    /// The record of host clusters mapped (write-bomb detection).
    #[error("more than {limit} bytes to record the host clusters mapped, at L2 entry {at:#x}")]
    HostUseRecord {
        /// The limit in bytes.
        limit: u64,
        /// The L2 entry.
        at: u64,
    },
}

/// The error for `problem` found at byte `offset` of the image.
pub(super) fn invalid(offset: u64, problem: Qcow2Problem) -> crate::Error {
    crate::Error::Qcow2Invalid { offset, problem }
}
