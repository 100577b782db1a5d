//! The VMDK descriptor: text naming the disk's kind and the files holding its data.
//!
//! A monolithicSparse or streamOptimized file embeds it after the header; every other
//! kind (flat, split, delta, descriptor-only) needs files besides this one, so they are
//! refused here, naming the kind. Only the lines that decide that are read.

use crate::blockmap::{ImageFeature, ImageProblem, invalid, unsupported};
use crate::format::DiskFormat;
use crate::{Result, printable};

/// Descriptors longer than this are cut here, as qemu does.
pub(crate) const MAX_BYTES: u64 = 1 << 20;
/// The magic of a descriptor file.
pub(crate) const MAGIC: &[u8] = b"# Disk DescriptorFile";
const ONE_FILE_TYPES: [&str; 2] = ["monolithicSparse", "streamOptimized"];

/// The facts that decide whether the disk is one file.
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts<'a> {
    create_type: Option<&'a str>,
    extents: usize,
    parent: bool,
}

fn read(text: &str) -> Facts<'_> {
    let mut facts = Facts::default();
    for line in text.lines().map(str::trim) {
        if let Some(value) = line.strip_prefix("createType") {
            let value = value.trim_start().trim_start_matches('=').trim();
            facts.create_type = Some(value.trim_matches('"'));
        } else if let Some(value) = line.strip_prefix("parentCID") {
            let value = value.trim_start().trim_start_matches('=').trim();
            facts.parent |= !value.eq_ignore_ascii_case("ffffffff");
        } else if ["RW ", "RDONLY ", "NOACCESS "]
            .iter()
            .any(|p| line.starts_with(p))
        {
            facts.extents += 1;
        }
    }
    facts
}

fn text(bytes: &[u8], at: u64) -> Result<&str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end])
        .map_err(|_| invalid(DiskFormat::Vmdk, at, ImageProblem::Descriptor))
}

fn refuse_type(create_type: &str) -> crate::Error {
    unsupported(
        DiskFormat::Vmdk,
        ImageFeature::VmdkCreateType(printable(create_type, 64).into()),
    )
}

/// Checks the descriptor embedded in a sparse extent, found at byte `at`.
pub(crate) fn check_embedded(bytes: &[u8], at: u64) -> Result<()> {
    let facts = read(text(bytes, at)?);
    match facts.create_type {
        None => return Err(invalid(DiskFormat::Vmdk, at, ImageProblem::Descriptor)),
        Some(t) if !ONE_FILE_TYPES.contains(&t) => return Err(refuse_type(t)),
        Some(_) => {}
    }
    if facts.parent {
        return Err(unsupported(DiskFormat::Vmdk, ImageFeature::VmdkParent));
    }
    if facts.extents != 1 {
        return Err(unsupported(
            DiskFormat::Vmdk,
            ImageFeature::VmdkExtents(facts.extents),
        ));
    }
    Ok(())
}

/// The error for a file that is a descriptor only, naming its kind.
pub(crate) fn refuse_file(bytes: &[u8]) -> crate::Error {
    let facts = text(bytes, 0).map(read).unwrap_or_default();
    match facts.create_type {
        Some(t) if !ONE_FILE_TYPES.contains(&t) => refuse_type(t),
        _ => unsupported(DiskFormat::Vmdk, ImageFeature::VmdkDescriptorFile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU: &str = "# Disk DescriptorFile\nversion=1\nCID=671c3a67\nparentCID=ffffffff\n\
        createType=\"monolithicSparse\"\n\n# Extent description\nRW 19532 SPARSE \"d.vmdk\"\n\n\
        ddb.virtualHWVersion = \"4\"\n";

    #[test]
    fn qemu_img_descriptor_is_one_file() {
        check_embedded(QEMU.as_bytes(), 512).unwrap();
        let mut padded = QEMU.as_bytes().to_vec();
        padded.resize(10240, 0);
        check_embedded(&padded, 512).unwrap();
    }

    #[test]
    fn other_kinds_are_refused_by_name() {
        let flat = QEMU.replace("monolithicSparse", "monolithicFlat");
        let err = refuse_file(flat.as_bytes()).to_string();
        assert!(err.contains("\"monolithicFlat\""), "{err}");
        let split = QEMU.replace("RW 19532", "RW 100 SPARSE \"a.vmdk\"\nRW 19432");
        let err = check_embedded(split.as_bytes(), 0).unwrap_err();
        assert!(matches!(
            err,
            crate::Error::UnsupportedImage {
                feature: ImageFeature::VmdkExtents(2),
                ..
            }
        ));
        let delta = QEMU.replace("parentCID=ffffffff", "parentCID=12345678");
        assert!(check_embedded(delta.as_bytes(), 0).is_err());
        let hostile = QEMU.replace("monolithicSparse", "evil\u{1b}[2J");
        let err = refuse_file(hostile.as_bytes()).to_string();
        assert!(
            !err.contains('\u{1b}'),
            "control characters printed: {err:?}"
        );
        assert!(check_embedded(b"\xff\xfe not text", 0).is_err());
    }
}
