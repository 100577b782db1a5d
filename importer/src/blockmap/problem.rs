//! What can be wrong with a VMDK, VHD, VHDX or VDI image, as values: errors name the
//! problem and its offset, and whoever reports them can tell one from another without
//! reading their text.

use std::fmt;

/// A structural problem in an image (what [`Error::InvalidImage`] carries).
///
/// [`Error::InvalidImage`]: crate::Error::InvalidImage
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageProblem {
    /// A structure without its signature (`KDMV`, `cxsparse`, `head`, `regi`, …).
    #[error("no {0} signature")]
    Signature(&'static str),
    /// A structure whose checksum does not match its bytes.
    #[error("{0} checksum mismatch")]
    Checksum(&'static str),
    /// A size or offset field that is not a multiple of its unit.
    #[error("{what} {value:#x} is not a multiple of {unit}")]
    Misaligned {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The unit it must be a multiple of.
        unit: u64,
    },
    /// A field outside the range the format allows.
    #[error("{what} {value} is out of range")]
    OutOfRange {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// Two ranges of the file claimed by different entries (a write bomb or a loop).
    #[error("it overlaps the {other} at {other_host:#x}")]
    Overlap {
        /// What the other range is.
        other: &'static str,
        /// Where it starts.
        other_host: u64,
    },
    /// A table too short for the virtual size.
    #[error("{what} has {entries} entries but the virtual size needs {needed}")]
    TableTooShort {
        /// The table.
        what: &'static str,
        /// Entries it has.
        entries: u64,
        /// Entries the virtual size needs.
        needed: u64,
    },
    /// A table or block inside the image's own header.
    #[error("{0} lies inside the header")]
    InsideHeader(&'static str),
    /// A metadata item the format requires is missing.
    #[error("metadata item {0} missing")]
    MissingMetadata(&'static str),
    /// A metadata item this reader does not know, marked required.
    #[error("unknown required metadata item or region")]
    UnknownRequired,
    /// A VHD footer whose size disagrees with the data before it (fixed VHD).
    #[error("the footer says {footer} bytes but {data} bytes of data precede it")]
    FixedSize {
        /// The size the footer gives (as qemu-img reads it).
        footer: u64,
        /// The bytes before the footer.
        data: u64,
    },
    /// A VMDK marker of an unknown type.
    #[error("unknown stream marker type {0}")]
    MarkerType(u32),
    /// A compressed grain whose zlib header is not deflate without a dictionary.
    #[error("compressed grain does not start with a zlib header")]
    GrainHeader,
    /// A guest block written twice (by two VMDK grain markers).
    #[error("guest offset {0:#x} is written twice")]
    GuestTwice(u64),
    /// A descriptor that is not text or names no extent.
    #[error("the embedded descriptor is unreadable")]
    Descriptor,
}

/// A kind of image a standalone streaming import cannot convert (what
/// [`Error::UnsupportedImage`] carries).
///
/// [`Error::UnsupportedImage`]: crate::Error::UnsupportedImage
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageFeature {
    /// A VMDK descriptor file: its data lives in other files.
    VmdkDescriptorFile,
    /// A sparse extent without a descriptor: one file of a split VMDK.
    VmdkExtentFile,
    /// A VMDK `createType` other than monolithicSparse and streamOptimized (text
    /// from the image, escaped).
    VmdkCreateType(Box<str>),
    /// A VMDK descriptor naming several extents.
    VmdkExtents(usize),
    /// A VMDK with a parent (a delta disk).
    VmdkParent,
    /// A VMDK sparse header version other than 1, 2 and 3.
    VmdkVersion(u32),
    /// Compressed grains without markers.
    VmdkCompressedWithoutMarkers,
    /// A VMDK compression algorithm other than deflate.
    VmdkCompression(u16),
    /// A differencing VHD.
    VhdDifferencing,
    /// A VHD type other than fixed, dynamic and differencing.
    VhdType(u32),
    /// A VHDX with a parent.
    VhdxDifferencing,
    /// A VHDX whose log holds entries still to be replayed.
    VhdxLog,
    /// A VHDX block only partly present (differencing images only).
    VhdxPartialBlock,
    /// A VDI of another type than static and dynamic (undo, differential).
    VdiType(u32),
    /// A VDI version other than 1.1.
    VdiVersion(u32),
    /// An OVA holding no VMDK, or several.
    OvaDisks(usize),
    /// An OVA whose disk is not a sparse or stream-optimized VMDK.
    OvaDiskFormat,
}

impl fmt::Display for ImageFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VmdkDescriptorFile => f.write_str(
                "a VMDK descriptor whose data lives in other files (flat or split VMDKs need \
                 every file; publish one monolithicSparse or streamOptimized file)",
            ),
            Self::VmdkExtentFile => f.write_str(
                "one extent of a split VMDK (it has no descriptor; publish one \
                 monolithicSparse or streamOptimized file)",
            ),
            Self::VmdkCreateType(t) => write!(
                f,
                "a VMDK of createType \"{t}\" (only monolithicSparse and streamOptimized are one file)"
            ),
            Self::VmdkExtents(n) => write!(f, "a VMDK of {n} extents (it needs other files)"),
            Self::VmdkParent => f.write_str("a VMDK delta disk with a parent"),
            Self::VmdkVersion(v) => write!(f, "VMDK sparse version {v}"),
            Self::VmdkCompressedWithoutMarkers => {
                f.write_str("a VMDK with compressed grains but no markers")
            }
            Self::VmdkCompression(a) => write!(f, "VMDK compression algorithm {a}"),
            Self::VhdDifferencing => f.write_str("a differencing VHD (it needs its parent)"),
            Self::VhdType(t) => write!(f, "VHD disk type {t}"),
            Self::VhdxDifferencing => f.write_str("a differencing VHDX (it needs its parent)"),
            Self::VhdxLog => f.write_str(
                "a VHDX whose log was not replayed (open it once with Hyper-V or qemu-img \
                 check -r all)",
            ),
            Self::VhdxPartialBlock => f.write_str("a VHDX block that is only partly present"),
            Self::VdiType(t) => write!(f, "VDI image type {t} (only static and dynamic)"),
            Self::VdiVersion(v) => write!(f, "VDI version {:#x}", v),
            Self::OvaDisks(n) => {
                write!(f, "an OVA holding {n} VMDK disks (exactly one is imported)")
            }
            Self::OvaDiskFormat => {
                f.write_str("an OVA whose disk is not a sparse or stream-optimized VMDK")
            }
        }
    }
}
