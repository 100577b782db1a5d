//! Names that become path components: manifest digests, volume ids, and the checks on
//! namespace, source and backend names.
//!
//! A volume id is `<source>-<first 12 hex digits of the manifest digest>`, so the same
//! digest lands on the same name: re-importing it is a no-op, and a leftover from a
//! crashed import is recognisable by name alone. 48 bits can be made to collide (a
//! hostile registry can grind a manifest for a prefix), so the id is only ever looked
//! up together with the full digest (see [`Catalog::volume_for`](crate::catalog)); a
//! digest whose short id another digest holds gets the long id, 32 hex digits (128
//! bits), which still fits `NAME_MAX` with the longest source name and `.lock`. Every name is checked before it
//! touches the file system: no `/`, no leading dot, nothing that could climb out of the
//! store's directories. Namespaces follow Kubernetes namespace rules (a DNS label), which
//! also keeps them from colliding with the store's own files (`catalog.json`, `.locks`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use bootsource_digest::Digest;

/// Number of digest hex digits in a volume id: the usual short id, and the long id a
/// digest gets when another digest already holds its short one.
const ID_HEX_DIGITS: [usize; 2] = [12, 32];

/// The name of one imported version: `<source>-<first 12 (or 32) hex digits of its
/// digest>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VolumeId(String);

impl VolumeId {
    /// The short id of `digest` imported for `source`.
    pub fn new(source: &str, digest: &Digest) -> Result<Self> {
        Ok(Self::candidates(source, digest)?.0)
    }

    /// The ids `digest` may have for `source`: the short one, and the long one it gets
    /// when another digest holds the short one.
    pub(crate) fn candidates(source: &str, digest: &Digest) -> Result<(Self, Self)> {
        check_source_name(source)?;
        let id = |digits: usize| Self(format!("{source}-{}", &digest.hex()[..digits]));
        Ok((id(ID_HEX_DIGITS[0]), id(ID_HEX_DIGITS[1])))
    }

    /// Whether `name` is a volume id of `source`: how leftovers are recognised when a
    /// directory is swept, so that nothing else is ever removed.
    pub fn is_volume_of(name: &str, source: &str) -> bool {
        name.strip_prefix(source)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hex| {
                ID_HEX_DIGITS.contains(&hex.len())
                    && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
    }

    /// The id as a string (also its file or directory name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a golden-image namespace: a DNS label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at
/// most 63 characters), as Kubernetes namespaces are.
pub fn check_namespace(name: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidName {
        what: "namespace",
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 63 {
        return Err(invalid("must be 1 to 63 characters"));
    }
    if !name
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    {
        return Err(invalid("only a-z, 0-9 and '-' are allowed"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(invalid("must start and end with a letter or digit"));
    }
    Ok(())
}

/// Checks a boot-source name.
pub fn check_source_name(name: &str) -> Result<()> {
    check_component("source", name)
}

/// Checks a storage backend name.
pub fn check_backend_name(name: &str) -> Result<()> {
    check_component("backend", name)
}

/// A name usable as one path component: `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 200 bytes.
fn check_component(what: &'static str, name: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidName {
        what,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 200 {
        return Err(invalid("must be 1 to 200 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid("must start with a letter or digit"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            "only letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn volume_id_is_source_and_twelve_hex_digits() {
        let d = DIGEST.parse::<Digest>().unwrap();
        let id = VolumeId::new("fedora", &d).unwrap();
        assert!(VolumeId::new("../etc", &d).is_err());
        assert_eq!(id.as_str(), "fedora-0123456789ab");
        assert!(VolumeId::is_volume_of(id.as_str(), "fedora"));
        assert!(!VolumeId::is_volume_of(id.as_str(), "fedor"));
        assert!(!VolumeId::is_volume_of("fedora-0123456789a", "fedora"));
        assert!(!VolumeId::is_volume_of("fedora-0123456789AB", "fedora"));
        assert!(!VolumeId::is_volume_of("current", "fedora"));
        let (short, long) = VolumeId::candidates("fedora", &d).unwrap();
        assert_eq!(short, id);
        assert_eq!(long.as_str(), "fedora-0123456789abcdef0123456789abcdef");
        assert!(VolumeId::is_volume_of(long.as_str(), "fedora"));
        let longest = "s".repeat(200);
        let (_, long) = VolumeId::candidates(&longest, &d).unwrap();
        assert!(
            format!("{long}.lock").len() <= 255,
            "a lock name exceeds NAME_MAX"
        );
    }

    #[test]
    fn digests_must_be_sha256_lowercase_hex() {
        assert!(DIGEST.parse::<Digest>().is_ok());
        for bad in [
            "",
            "sha256:",
            &DIGEST[..70],
            &DIGEST.to_uppercase(),
            &DIGEST.replace("sha256", "sha512"),
            &format!("{DIGEST}0"),
            "sha256:../../../../etc/passwd0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_cannot_escape_their_directory() {
        for bad in ["", ".", "..", ".hidden", "a/b", "-x", "a b", "ä"] {
            assert!(check_source_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["fedora", "centos-stream9", "ubuntu22.04", "Win_11"] {
            check_source_name(good).unwrap();
        }
        for bad in [
            "",
            "OS-images",
            "os_images",
            "-os",
            "os-",
            "catalog.json",
            ".locks",
        ] {
            assert!(check_namespace(bad).is_err(), "{bad:?} accepted");
        }
        check_namespace("os-images").unwrap();
    }
}
