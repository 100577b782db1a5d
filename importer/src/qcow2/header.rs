//! The qcow2 header: what the rest of the image means, and what we refuse.
//!
//! Parses versions 2 and 3 (`docs/interop/qcow2.rst` in QEMU). Every field that sizes
//! something later (cluster size, L1 size, virtual size) is checked here against
//! QEMU's own limits and the stream length, so that nothing downstream allocates or
//! seeks on the word of a hostile image.

use super::problem::{Qcow2Feature, Qcow2Problem, invalid};
use crate::{Error, Result};

/// `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// Bytes needed to parse any header we accept (v3 with the compression type byte).
pub const MAX_HEADER_BYTES: usize = 112;
/// QEMU refuses L1 tables larger than 32 MiB.
const MAX_L1_BYTES: u64 = 32 << 20;
const MIN_CLUSTER_BITS: u32 = 9;
/// QEMU opens clusters of at most 2 MiB.
const MAX_CLUSTER_BITS: u32 = 21;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

/// How compressed clusters are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Raw deflate (no zlib header), QEMU's default.
    Deflate,
    /// One zstd frame per cluster.
    Zstd,
}

/// The facts of a qcow2 header that decoding needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// The guest disk size in bytes.
    pub virtual_size: u64,
    /// Where the L1 table starts in the file.
    pub l1_offset: u64,
    /// Number of L1 entries that matter: those covering `virtual_size`.
    pub l1_entries: u64,
    /// Compressed cluster encoding.
    pub codec: Codec,
    /// Extended L2 entries (32 subclusters per cluster).
    pub extended_l2: bool,
    /// The dirty bit: refcounts may be stale (we only use them to know what to skip).
    pub dirty: bool,
    /// Where the refcount table starts.
    pub refcount_table_offset: u64,
    /// Its length in clusters.
    pub refcount_table_clusters: u32,
}

impl Header {
    /// Parses the header from the first bytes of the image. `stream_len` is the image's
    /// length in bytes: every table must lie inside it.
    ///
    /// Returns `Ok(None)` while `bytes` is too short to decide.
    pub fn parse(bytes: &[u8], stream_len: u64) -> Result<Option<Self>> {
        let be32 = |at: usize| {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        };
        let be64 = |at: usize| {
            bytes
                .get(at..at + 8)
                .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
        };
        let Some(version) = be32(4) else {
            return Ok(None);
        };
        if bytes[..4] != MAGIC {
            return Err(invalid(0, Qcow2Problem::BadMagic));
        }
        let fixed_len = match version {
            2 => 72,
            3 => 104,
            v => return Err(Error::Qcow2Unsupported(Qcow2Feature::Version(v))),
        };
        if bytes.len() < fixed_len {
            return Ok(None);
        }
        let (incompatible, header_len) = if version == 3 {
            (be64(72).unwrap(), be32(100).unwrap())
        } else {
            (0, 72)
        };
        if version == 3 && (header_len < 104 || header_len % 8 != 0) {
            return Err(invalid(
                100,
                Qcow2Problem::HeaderLength(u64::from(header_len)),
            ));
        }
        let wants_compression_byte = incompatible & INCOMPAT_COMPRESSION != 0;
        if wants_compression_byte && bytes.len() < 105 {
            return Ok(None);
        }
        check_features(incompatible, be64(8).unwrap(), be32(32).unwrap())?;
        let cluster_bits = be32(20).unwrap();
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
            return Err(invalid(20, Qcow2Problem::ClusterBits(cluster_bits)));
        }
        let codec = if wants_compression_byte {
            if header_len < 105 {
                return Err(invalid(100, Qcow2Problem::NoCompressionType));
            }
            match bytes[104] {
                0 => Codec::Deflate,
                1 => Codec::Zstd,
                t => return Err(Error::Qcow2Unsupported(Qcow2Feature::CompressionType(t))),
            }
        } else {
            Codec::Deflate
        };
        let extended_l2 = incompatible & INCOMPAT_EXTL2 != 0;
        if extended_l2 && cluster_bits < 14 {
            return Err(invalid(20, Qcow2Problem::ExtendedL2SmallClusters));
        }
        let header = Self {
            version,
            cluster_bits,
            virtual_size: be64(24).unwrap(),
            l1_offset: be64(40).unwrap(),
            l1_entries: 0,
            codec,
            extended_l2,
            dirty: incompatible & INCOMPAT_DIRTY != 0,
            refcount_table_offset: be64(48).unwrap(),
            refcount_table_clusters: be32(56).unwrap(),
        };
        header
            .with_l1(be32(36).unwrap(), u64::from(header_len), stream_len)
            .map(Some)
    }

    /// Checks the L1 table's place and size and records how many entries matter.
    fn with_l1(mut self, l1_size: u32, header_len: u64, stream_len: u64) -> Result<Self> {
        let cs = self.cluster_size();
        if header_len > cs {
            return Err(invalid(100, Qcow2Problem::HeaderPastCluster(header_len)));
        }
        let guest_clusters = self.virtual_size.div_ceil(cs);
        let needed = guest_clusters.div_ceil(self.l2_entries());
        if u64::from(l1_size) < needed {
            return Err(invalid(
                36,
                Qcow2Problem::L1TooShort {
                    entries: l1_size,
                    needed,
                },
            ));
        }
        let l1_bytes = needed * 8;
        if l1_bytes > MAX_L1_BYTES {
            return Err(invalid(36, Qcow2Problem::L1TooLarge(l1_bytes)));
        }
        if needed > 0 {
            if self.l1_offset < cs || !self.l1_offset.is_multiple_of(cs) {
                return Err(invalid(40, Qcow2Problem::L1Misplaced(self.l1_offset)));
            }
            if self.l1_offset.saturating_add(l1_bytes) > stream_len {
                return Err(Error::Qcow2PastEnd {
                    what: "L1 table",
                    offset: self.l1_offset,
                    len: l1_bytes,
                    stream_len,
                });
            }
        }
        self.l1_entries = needed;
        Ok(self)
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Entries per L2 table (each L2 table is one cluster).
    pub fn l2_entries(&self) -> u64 {
        self.cluster_size() / self.l2_entry_bytes()
    }

    /// 8, or 16 with extended L2.
    pub fn l2_entry_bytes(&self) -> u64 {
        if self.extended_l2 { 16 } else { 8 }
    }

    /// Guest bytes one L2 table maps.
    pub fn l2_span(&self) -> u64 {
        self.l2_entries() * self.cluster_size()
    }
}

fn check_features(incompatible: u64, backing_offset: u64, crypt_method: u32) -> Result<()> {
    if backing_offset != 0 {
        return Err(Error::Qcow2Unsupported(Qcow2Feature::BackingFile));
    }
    match crypt_method {
        0 => {}
        1 => return Err(Error::Qcow2Unsupported(Qcow2Feature::AesEncryption)),
        2 => return Err(Error::Qcow2Unsupported(Qcow2Feature::LuksEncryption)),
        m => return Err(Error::Qcow2Unsupported(Qcow2Feature::Encryption(m))),
    }
    if incompatible & INCOMPAT_CORRUPT != 0 {
        return Err(Error::Qcow2Unsupported(Qcow2Feature::MarkedCorrupt));
    }
    if incompatible & INCOMPAT_DATA_FILE != 0 {
        return Err(Error::Qcow2Unsupported(Qcow2Feature::ExternalDataFile));
    }
    let unknown = incompatible & !INCOMPAT_KNOWN;
    if unknown != 0 {
        return Err(Error::Qcow2Unsupported(Qcow2Feature::UnknownIncompatible(
            unknown,
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid v3 header as `qemu-img create -f qcow2 -o compression_type=zstd x 1G`
    /// writes it, with 64 KiB clusters; each test below changes one field.
    fn valid_v3() -> Vec<u8> {
        let mut h = vec![0u8; 112];
        h[0..4].copy_from_slice(&MAGIC);
        h[4..8].copy_from_slice(&3u32.to_be_bytes()); // version
        h[20..24].copy_from_slice(&16u32.to_be_bytes()); // cluster_bits: 64 KiB
        h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes()); // size: 1 GiB
        h[36..40].copy_from_slice(&2u32.to_be_bytes()); // l1_size: 2 x 512 MiB
        h[40..48].copy_from_slice(&0x30000u64.to_be_bytes()); // l1_table_offset
        h[48..56].copy_from_slice(&0x10000u64.to_be_bytes()); // refcount_table_offset
        h[56..60].copy_from_slice(&1u32.to_be_bytes()); // refcount_table_clusters
        h[72..80].copy_from_slice(&INCOMPAT_COMPRESSION.to_be_bytes()); // incompatible
        h[96..100].copy_from_slice(&4u32.to_be_bytes()); // refcount_order
        h[100..104].copy_from_slice(&112u32.to_be_bytes()); // header_length
        h[104] = 1; // compression_type: zstd
        h
    }

    const LEN: u64 = 0x50000;

    fn parse(h: &[u8]) -> Result<Option<Header>> {
        Header::parse(h, LEN)
    }

    fn set32(mut h: Vec<u8>, at: usize, v: u32) -> Vec<u8> {
        h[at..at + 4].copy_from_slice(&v.to_be_bytes());
        h
    }

    fn set64(mut h: Vec<u8>, at: usize, v: u64) -> Vec<u8> {
        h[at..at + 8].copy_from_slice(&v.to_be_bytes());
        h
    }

    fn err_text(h: Vec<u8>) -> String {
        parse(&h).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_valid_header() {
        let h = parse(&valid_v3()).unwrap().unwrap();
        assert_eq!(h.cluster_size(), 65536);
        assert_eq!(h.virtual_size, 1 << 30);
        assert_eq!(h.l1_entries, 2);
        assert_eq!(h.codec, Codec::Zstd);
        assert_eq!(h.l2_span(), 512 << 20);
    }

    #[test]
    fn waits_for_more_bytes() {
        let h = valid_v3();
        for len in [0, 7, 8, 103, 104] {
            assert_eq!(parse(&h[..len]).unwrap(), None, "len {len}");
        }
    }

    #[test]
    fn version_2_has_no_feature_fields() {
        let h = set32(valid_v3(), 4, 2);
        let h = parse(&h[..72]).unwrap().unwrap();
        assert_eq!((h.version, h.codec), (2, Codec::Deflate));
    }

    #[test]
    fn refuses_what_cannot_stream() {
        assert!(err_text(set64(valid_v3(), 8, 0x200)).contains("backing file"));
        assert!(err_text(set32(valid_v3(), 32, 1)).contains("AES"));
        assert!(err_text(set32(valid_v3(), 32, 2)).contains("LUKS"));
        assert!(err_text(set64(valid_v3(), 72, INCOMPAT_CORRUPT)).contains("corrupt"));
        assert!(err_text(set64(valid_v3(), 72, INCOMPAT_DATA_FILE)).contains("external data"));
        assert!(err_text(set64(valid_v3(), 72, 1 << 9)).contains("0x200"));
        assert!(err_text(set32(valid_v3(), 4, 4)).contains("version 4"));
        let mut h = valid_v3();
        h[104] = 7;
        assert!(err_text(h).contains("compression type 7"));
    }

    #[test]
    fn dirty_images_are_accepted() {
        let h = parse(&set64(valid_v3(), 72, INCOMPAT_DIRTY))
            .unwrap()
            .unwrap();
        assert!(h.dirty);
    }

    #[test]
    fn refuses_hostile_sizes() {
        assert!(err_text(set32(valid_v3(), 20, 8)).contains("cluster_bits"));
        assert!(err_text(set32(valid_v3(), 20, 22)).contains("cluster_bits"));
        // 2^61 bytes at 64 KiB clusters needs far more than 2 L1 entries.
        assert!(err_text(set64(valid_v3(), 24, 1 << 61)).contains("needs"));
        // Enough entries for 2^52 bytes, but a 64 MiB L1 table is beyond QEMU's limit.
        let h = set32(set64(valid_v3(), 24, 1 << 52), 36, u32::MAX);
        assert!(err_text(h).contains("32 MiB"));
        assert!(err_text(set64(valid_v3(), 40, LEN)).contains("past its end"));
        assert!(err_text(set64(valid_v3(), 40, 0x30001)).contains("cluster boundary"));
        assert!(err_text(set64(valid_v3(), 40, 0)).contains("cluster boundary"));
        assert!(err_text(set32(valid_v3(), 100, 105)).contains("multiple of 8"));
    }

    #[test]
    fn extended_l2_needs_large_clusters() {
        let h = set64(set32(valid_v3(), 20, 13), 72, INCOMPAT_EXTL2);
        assert!(err_text(h).contains("16 KiB"));
        // 16-byte entries halve what one L2 table maps: 1 GiB now needs 4 L1 entries.
        let h = set64(valid_v3(), 72, INCOMPAT_EXTL2);
        assert!(err_text(h.clone()).contains("needs 4"));
        let h = parse(&set32(h, 36, 4)).unwrap().unwrap();
        assert_eq!(h.l2_entries(), 4096);
    }

    #[test]
    fn bad_magic_is_not_qcow2() {
        let mut h = valid_v3();
        h[3] = 0;
        assert!(err_text(h).contains("magic"));
    }
}
