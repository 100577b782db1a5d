//! One tar header block, as an OVA's writers (ovftool, qemu's tooling, GNU tar) make
//! them: ustar fields, sizes in octal or base-256, PAX and GNU long-name extensions.

use crate::Result;
use crate::blockmap::{ImageProblem, invalid};
use crate::format::DiskFormat;

/// Bytes of a tar block.
pub(crate) const BLOCK: u64 = 512;

/// What a header block announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Header {
    /// Two zero blocks end the archive; one is enough to stop.
    End,
    /// An entry of `size` bytes.
    Entry { kind: Kind, name: String, size: u64 },
}

/// The entry types that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    /// PAX attributes for the next entry.
    Pax,
    /// A GNU long name for the next entry.
    LongName,
    /// Anything else (directories, links, global PAX headers): skipped.
    Other,
}

/// Parses the header block at byte `at`.
pub(crate) fn parse(block: &[u8], at: u64) -> Result<Header> {
    if block.iter().all(|&b| b == 0) {
        return Ok(Header::End);
    }
    let bad = |problem| invalid(DiskFormat::Ova, at, problem);
    let stored = octal(&block[148..156]).ok_or(bad(ImageProblem::Signature("tar header")))?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(bad(ImageProblem::Checksum("tar header")));
    }
    let size = if block[124] & 0x80 != 0 {
        block[125..136]
            .iter()
            .try_fold(0u64, |n, &b| n.checked_mul(256).map(|n| n | u64::from(b)))
    } else {
        octal(&block[124..136])
    }
    .ok_or(bad(ImageProblem::OutOfRange {
        what: "tar entry size",
        value: 0,
    }))?;
    let kind = match block[156] {
        b'0' | 0 | b'7' => Kind::File,
        b'x' => Kind::Pax,
        b'L' => Kind::LongName,
        _ => Kind::Other,
    };
    let mut name = field(&block[..100]);
    if &block[257..262] == b"ustar" && block[345] != 0 {
        name = format!("{}/{name}", field(&block[345..500]));
    }
    Ok(Header::Entry { kind, name, size })
}

fn field(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn octal(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The `path` and `size` records of a PAX extended header.
pub(crate) fn pax(records: &[u8]) -> (Option<String>, Option<u64>) {
    let (mut path, mut size) = (None, None);
    let text = String::from_utf8_lossy(records);
    for record in text.split('\n') {
        // "LEN key=value": the length prefix is redundant once split on newlines.
        let Some((_, kv)) = record.split_once(' ') else {
            continue;
        };
        match kv.split_once('=') {
            Some(("path", v)) => path = Some(v.to_owned()),
            Some(("size", v)) => size = v.parse().ok(),
            _ => {}
        }
    }
    (path, size)
}

/// The long name in a GNU `L` entry's data.
pub(crate) fn long_name(data: &[u8]) -> String {
    field(data)
}
