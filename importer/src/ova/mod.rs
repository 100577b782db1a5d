//! OVA → raw: the one VMDK of an OVF appliance archive, streamed out of its tar.
//!
//! [`is_ova`] recognises the archive (a ustar tar whose first entry is the `.ovf`
//! descriptor, as the OVF specification requires); [`OvaDecoder`] walks it.

mod decoder;
mod tar_header;

pub(crate) use decoder::OvaDecoder;

/// Whether `head` starts a tar whose first entry is an OVF descriptor.
pub(crate) fn is_ova(head: &[u8]) -> bool {
    if head.len() < 512 || &head[257..262] != b"ustar" {
        return false;
    }
    let end = head[..100].iter().position(|&b| b == 0).unwrap_or(100);
    std::path::Path::new(&*String::from_utf8_lossy(&head[..end]))
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ovf"))
}
