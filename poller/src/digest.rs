//! The manifest digest a tag resolves to, as the poller compares it.
//!
//! This is a small validated string, `algorithm:encoded` per the OCI image
//! spec, with the encoded part checked for the registered algorithms
//! (`sha256`, `sha512`). It exists so that a digest cannot be mixed up with a
//! tag or an image name; the importer has its own richer digest type and the
//! daemon converts through [`Digest::as_str`] and [`str::parse`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A content digest such as `sha256:5891b5b5…`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// Checks `text` against the OCI digest grammar.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDigest`] when `text` is not `algorithm:encoded`, or when
    /// a `sha256`/`sha512` digest is not 64/128 lowercase hex digits.
    pub fn new(text: impl Into<String>) -> Result<Self, Error> {
        let text = text.into();
        if is_valid(&text) {
            Ok(Self(text))
        } else {
            Err(Error::InvalidDigest { text })
        }
    }

    /// The digest as text, e.g. for the importer's own parser or for logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm part, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        self.0
            .split_once(':')
            .map_or("", |(algorithm, _)| algorithm)
    }
}

/// `algorithm ":" encoded` where
/// `algorithm = component (separator component)*`, `component = [a-z0-9]+`,
/// `separator = [+._-]` and `encoded = [a-zA-Z0-9=_-]+`.
fn is_valid(text: &str) -> bool {
    let Some((algorithm, encoded)) = text.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['+', '.', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    let registered_ok = match algorithm {
        "sha256" => is_lower_hex(encoded, 64),
        "sha512" => is_lower_hex(encoded, 128),
        _ => true,
    };
    algorithm_ok && encoded_ok && registered_ok
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::new(text)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHA256: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    #[test]
    fn accepts_a_sha256_digest() {
        let digest = Digest::new(SHA256).unwrap();
        assert_eq!(digest.as_str(), SHA256);
        assert_eq!(digest.algorithm(), "sha256");
        assert_eq!(digest.to_string(), SHA256);
    }

    #[test]
    fn accepts_an_unregistered_algorithm_with_any_encoding() {
        let digest =
            Digest::new("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8").unwrap();
        assert_eq!(digest.algorithm(), "multihash+base58");
    }

    #[test]
    fn refuses_malformed_digests_and_names_them() {
        for bad in [
            "",
            "sha256",
            ":abc",
            "sha256:",
            "SHA256:abc",
            "sha256:abc",
            // Upper-case hex is not allowed for sha256.
            "sha256:6C3C624B58DBBCD3C0DD82B4C53F04194D1247C6EEBDAAB7C610CF7D66709B3B",
            "sha512:00",
            "sha+:abc",
            "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b/x",
            "fedora:latest/x",
        ] {
            let err = Digest::new(bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidDigest { text } if text == bad),
                "{bad:?} gave {err:?}"
            );
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
    }

    #[test]
    fn serde_round_trips_as_a_plain_string_and_validates() {
        let digest = Digest::new(SHA256).unwrap();
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{SHA256}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
        assert!(serde_json::from_str::<Digest>("\"sha256:nothex\"").is_err());
    }

    proptest! {
        #[test]
        fn any_64_lower_hex_digits_make_a_sha256_digest(hex in "[0-9a-f]{64}") {
            let text = format!("sha256:{hex}");
            let digest = Digest::new(text.clone()).unwrap();
            prop_assert_eq!(digest.as_str(), text.as_str());
        }

        #[test]
        fn a_sha256_digest_with_a_non_hex_character_is_refused(
            hex in "[0-9a-f]{64}",
            position in 0usize..64,
            bad in "[g-zA-Z_=-]",
        ) {
            let mut encoded = hex.into_bytes();
            encoded[position] = bad.as_bytes()[0];
            let text = format!("sha256:{}", String::from_utf8(encoded).unwrap());
            prop_assert!(Digest::new(text).is_err());
        }
    }
}
