//! Vendors' checksum files: which line is the file's, and its checksum.
//!
//! Three line styles, as vendors publish them:
//!
//! - GNU (`sha256sum`, Debian's `SHA512SUMS`, Ubuntu's `SHA256SUMS`):
//!   `HEX  NAME`, or `HEX *NAME` for binary mode;
//! - BSD (`sha256sum --tag`, CoreOS): `SHA256 (NAME) = HEX`;
//! - Fedora's `CHECKSUM`: BSD lines inside an OpenPGP clear-signed message, with `#`
//!   comments. The armour is taken apart (dash-escaped lines restored, the signature
//!   block ignored); the signature is **not** verified — the file is trusted as far as
//!   the connection it came over, as with `sha256sum -c`.
//!
//! The algorithm is told by the line (BSD) or the digits' count (GNU: 64 SHA-256, 128
//! SHA-512). A line names the file by its name or by a path ending in it
//! (`./NAME`, `images/NAME`). When the file is listed with both SHA-256 and SHA-512,
//! SHA-256 is taken: it is the version's digest, known before the download. Pure:
//! text in, checksum out.

use crate::Checksum;

/// What is wrong with a checksum file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumFileProblem {
    /// No line names the file.
    #[error("no checksum listed for {0:?}")]
    NotListed(String),
    /// Two lines give the file different checksums of one algorithm.
    #[error("conflicting checksums listed for {0:?}")]
    Conflicting(String),
    /// The file is not text.
    #[error("it is not UTF-8 text")]
    NotText,
    /// Larger than a checksum file can reasonably be.
    #[error("it is larger than {0} bytes")]
    TooLarge(usize),
}

/// Checksum files larger than this are refused.
pub const MAX_CHECKSUM_FILE_BYTES: usize = 4 << 20;

/// The checksum `text` lists for `name`.
pub fn find(text: &str, name: &str) -> Result<Checksum, ChecksumFileProblem> {
    let mut found: Option<Checksum> = None;
    for line in signed_body(text) {
        let Some((listed, checksum)) = parse_line(line) else {
            continue;
        };
        if !names_file(listed, name) {
            continue;
        }
        found = match (found, checksum) {
            (None, c) => Some(c),
            (Some(a), b) if a == b => Some(a),
            (Some(a @ Checksum::Sha256(_)), Checksum::Sha512(_))
            | (Some(Checksum::Sha512(_)), a @ Checksum::Sha256(_)) => Some(a),
            (Some(_), _) => return Err(ChecksumFileProblem::Conflicting(name.to_owned())),
        };
    }
    found.ok_or_else(|| ChecksumFileProblem::NotListed(name.to_owned()))
}

/// The message lines of a clear-signed text (or every line of a plain one).
fn signed_body(text: &str) -> impl Iterator<Item = &str> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).peekable();
    if lines.peek() == Some(&"-----BEGIN PGP SIGNED MESSAGE-----") {
        // Armour headers ("Hash: SHA256") end at the first empty line.
        lines.by_ref().take_while(|l| !l.is_empty()).for_each(drop);
    }
    lines
        .take_while(|l| *l != "-----BEGIN PGP SIGNATURE-----")
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
}

/// `(name, checksum)` of a GNU or BSD line; `None` for comments and anything else.
fn parse_line(line: &str) -> Option<(&str, Checksum)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    if let Some((head, digits)) = line.rsplit_once(") = ") {
        let (algorithm, name) = head.split_once(" (")?;
        let checksum = Checksum::from_hex(digits.trim())?;
        let expected = match checksum {
            Checksum::Sha256(_) => "SHA256",
            Checksum::Sha512(_) => "SHA512",
        };
        return (algorithm.eq_ignore_ascii_case(expected)).then_some((name, checksum));
    }
    let (digits, rest) = line.split_once(char::is_whitespace)?;
    let name = rest.trim_start();
    let name = name.strip_prefix('*').unwrap_or(name);
    Some((name, Checksum::from_hex(digits)?))
}

/// Whether a listed name is the file: the name, or a relative path ending in it.
fn names_file(listed: &str, name: &str) -> bool {
    listed == name
        || listed
            .rsplit_once('/')
            .is_some_and(|(_, last)| last == name && !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const B: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn sha256(hex_digits: &str) -> Checksum {
        Checksum::from_hex(hex_digits).unwrap()
    }

    #[test]
    fn gnu_lines_text_and_binary_mode() {
        let text =
            format!("{A}  debian-12-generic-amd64.qcow2\n{B} *debian-12-generic-amd64.raw\n");
        assert_eq!(find(&text, "debian-12-generic-amd64.qcow2"), Ok(sha256(A)));
        assert_eq!(find(&text, "debian-12-generic-amd64.raw"), Ok(sha256(B)));
        assert_eq!(
            find(&text, "other.img"),
            Err(ChecksumFileProblem::NotListed("other.img".into()))
        );
        // A name is never matched as a suffix of another name.
        assert!(find(&text, "amd64.raw").is_err());
    }

    #[test]
    fn bsd_lines_and_paths() {
        let text = format!("SHA256 (./images/disk.raw.xz) = {A}\nSHA256 (disk.qcow2) = {B}\n");
        assert_eq!(find(&text, "disk.raw.xz"), Ok(sha256(A)));
        assert_eq!(find(&text, "disk.qcow2"), Ok(sha256(B)));
        // The algorithm named must match the digits.
        assert!(find(&format!("SHA512 (x) = {A}\n"), "x").is_err());
    }

    #[test]
    fn fedora_clear_signed_checksum_file() {
        let text = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n\
             # Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2: 491716608 bytes\n\
             SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = {A}\n\
             - SHA256 (escaped.raw) = {B}\n\
             -----BEGIN PGP SIGNATURE-----\n\nwsFzBAEBCAAdFiEE\n\
             SHA256 (after-signature.raw) = {B}\n-----END PGP SIGNATURE-----\n"
        );
        assert_eq!(
            find(&text, "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2"),
            Ok(sha256(A))
        );
        assert_eq!(find(&text, "escaped.raw"), Ok(sha256(B)));
        assert!(find(&text, "after-signature.raw").is_err());
    }

    #[test]
    fn sha256_wins_over_sha512_and_conflicts_are_refused() {
        let long = "ab".repeat(64);
        let text = format!("{long}  x.img\n{A}  x.img\n");
        assert_eq!(find(&text, "x.img"), Ok(sha256(A)));
        let only512 = format!("SHA512 (x.img) = {long}\n");
        assert!(matches!(find(&only512, "x.img"), Ok(Checksum::Sha512(_))));
        let text = format!("{A}  x.img\n{B}  x.img\n");
        assert_eq!(
            find(&text, "x.img"),
            Err(ChecksumFileProblem::Conflicting("x.img".into()))
        );
    }
}
