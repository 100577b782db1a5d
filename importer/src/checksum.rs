//! Checksums a user gives for a single-file source: `sha256:HEX` or `sha512:HEX`.
//!
//! A container disk's blobs are named by their sha256; a disk file on a web server is
//! not named by anything, so its checksum comes from the user (`--checksum`, the
//! config's `checksum`) or from the vendor's checksum file (`--checksum-url`, see
//! [`crate::checksum_file`]). Either way it is checked over the bytes received while
//! they stream ([`Hashes`]), and the sha256 of those bytes is always computed: it is
//! the version's digest.
//!
//! ```
//! use bootsource_importer::Checksum;
//! let c: Checksum = "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
//!     .parse()
//!     .unwrap();
//! assert_eq!(c.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
//! ```

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

use crate::Digest;

/// An expected (or computed) checksum of a file.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// SHA-256: also the file's [`Digest`].
    Sha256([u8; 32]),
    /// SHA-512.
    Sha512([u8; 64]),
}

/// Why a checksum does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid checksum {text:?}: expected sha256:<64 hex digits> or sha512:<128 hex digits>")]
pub struct ParseChecksumError {
    text: String,
}

impl Checksum {
    /// The checksum of `hex` digits, by their count (64: SHA-256, 128: SHA-512), as
    /// checksum files give them; `None` for anything else.
    pub fn from_hex(hex_digits: &str) -> Option<Self> {
        let lower = hex_digits.to_ascii_lowercase();
        match lower.len() {
            64 => {
                let mut b = [0; 32];
                hex::decode_to_slice(&lower, &mut b).ok()?;
                Some(Self::Sha256(b))
            }
            128 => {
                let mut b = [0; 64];
                hex::decode_to_slice(&lower, &mut b).ok()?;
                Some(Self::Sha512(b))
            }
            _ => None,
        }
    }

    /// The sha256 digest this checksum is, if it is one.
    pub fn as_digest(&self) -> Option<Digest> {
        match self {
            Self::Sha256(_) => self.to_string().parse().ok(),
            Self::Sha512(_) => None,
        }
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Self::Sha256(_) => "sha256",
            Self::Sha512(_) => "sha512",
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Sha256(b) => b,
            Self::Sha512(b) => b,
        }
    }
}

impl From<Digest> for Checksum {
    fn from(d: Digest) -> Self {
        Self::from_hex(&d.hex()).expect("a digest is 64 hex digits")
    }
}

impl FromStr for Checksum {
    type Err = ParseChecksumError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ParseChecksumError {
            text: crate::printable(text, 160),
        };
        let (algorithm, digits) = text.split_once(':').ok_or_else(err)?;
        let checksum = Self::from_hex(digits).ok_or_else(err)?;
        if checksum.algorithm() != algorithm.to_ascii_lowercase() {
            return Err(err());
        }
        Ok(checksum)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm(), hex::encode(self.bytes()))
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Checksum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The hashes of a stream: sha256 always (the digest), sha512 when one is expected.
#[derive(Debug, Clone)]
pub(crate) struct Hashes {
    sha256: Sha256,
    sha512: Option<Sha512>,
}

impl Hashes {
    /// Hashes for checking `expected` (and naming the bytes by their sha256).
    pub fn for_expected(expected: Option<&Checksum>) -> Self {
        Self {
            sha256: Sha256::new(),
            sha512: matches!(expected, Some(Checksum::Sha512(_))).then(Sha512::new),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        if let Some(h) = &mut self.sha512 {
            h.update(bytes);
        }
    }

    /// The sha256 of what was hashed.
    pub fn digest(&self) -> Digest {
        Digest::from_hasher(self.sha256.clone())
    }

    /// The checksum of what was hashed, in `expected`'s algorithm.
    pub fn actual(&self, expected: &Checksum) -> Checksum {
        match (expected, &self.sha512) {
            (Checksum::Sha512(_), Some(h)) => Checksum::Sha512(h.clone().finalize().into()),
            _ => self.digest().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_algorithms_in_either_case() {
        let empty256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let c: Checksum = empty256.parse().unwrap();
        assert_eq!(c.as_digest(), Some(Digest::of(b"")));
        let c: Checksum = format!("sha512:{}", "AB".repeat(64)).parse().unwrap();
        assert_eq!(c.to_string(), format!("sha512:{}", "ab".repeat(64)));
        assert_eq!(c.as_digest(), None);
        for bad in [
            "sha256:12",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            &format!("sha512:{}", "a".repeat(64)),
            &format!("sha256:{}", "g".repeat(64)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(bad.parse::<Checksum>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hashes_give_the_expected_algorithm() {
        let sha512: Checksum = format!("sha512:{}", "0".repeat(128)).parse().unwrap();
        let mut h = Hashes::for_expected(Some(&sha512));
        h.update(b"abc");
        let actual = h.actual(&sha512);
        assert!(actual.to_string().starts_with("sha512:ddaf35a193617aba"));
        assert_eq!(h.digest(), Digest::of(b"abc"));
        let h = Hashes::for_expected(None);
        assert_eq!(h.actual(&Digest::of(b"").into()), Digest::of(b"").into());
    }
}
