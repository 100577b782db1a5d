//! Docker references as signatures and policies write them (`host/repo:tag`,
//! `host/repo@sha256:…`), normalised as docker normalises them, without the default
//! tag: a signature naming a bare repository names no image and never matches.
//!
//! Pure. The grammar checks are the importer's own ([`crate::RegistryRef`]); this adds
//! what identity matching needs: whether a tag was written, and the normalised name.

use std::fmt;

use crate::{Digest, RegistryRef};

/// A normalised docker reference: `name` is `host/path`, with a tag, a digest, both
/// or neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRef {
    name: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl DockerRef {
    /// Parses and normalises `text` (`fedora` is `docker.io/library/fedora`), or `None`
    /// when it is not a valid reference.
    pub fn parse(text: &str) -> Option<Self> {
        let parsed: RegistryRef = text.parse().ok()?;
        let before_digest = text.split_once('@').map_or(text, |(name, _)| name);
        let tag_written = before_digest
            .rsplit_once(':')
            .is_some_and(|(_, tag)| !tag.contains('/'));
        Some(Self {
            name: format!("{}/{}", parsed.registry(), parsed.repository()),
            tag: tag_written
                .then(|| parsed.tag().map(str::to_owned))
                .flatten(),
            digest: parsed.digest(),
        })
    }

    /// The reference an import judges: the tag if the user named one (a digest pinned
    /// next to it only says what to fetch), else the digest.
    pub fn of_image(image: &RegistryRef) -> Self {
        let name = format!("{}/{}", image.registry(), image.repository());
        match (image.tag(), image.digest()) {
            (Some(tag), _) => Self {
                name,
                tag: Some(tag.to_owned()),
                digest: None,
            },
            (None, digest) => Self {
                name,
                tag: None,
                digest,
            },
        }
    }

    /// `host/path`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// A digest and no tag.
    pub fn is_digest_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_some()
    }

    /// The repository path without the host, as lookaside URLs use it.
    pub fn path(&self) -> &str {
        self.name.split_once('/').map_or("", |(_, path)| path)
    }

    /// This reference with `prefix` of its name replaced by `replacement`, if the name
    /// is `prefix` or starts with `prefix/`; `None` if the result is not a valid,
    /// already normalised reference (containers' `remapIdentity`).
    pub fn remapped(&self, prefix: &str, replacement: &str) -> Option<Self> {
        let under_prefix = self
            .name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if !under_prefix {
            return Some(self.clone());
        }
        let text = format!("{replacement}{}", &self.to_string()[prefix.len()..]);
        let remapped = Self::parse(&text)?;
        (remapped.to_string() == text).then_some(remapped)
    }
}

impl fmt::Display for DockerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Whether `prefix` may be a `remapIdentity` prefix, by containers' rule: a domain
/// (`quay.io`, `127.0.0.1:5000`), or a domain and a path of repository components
/// (`quay.io/vendor`, `docker.io/library`), without tag or digest. As in containers the
/// text is not normalised: `docker.io/library` is a valid prefix (and remaps to
/// `docker.io/library/…`), which parsing it as a reference would turn into
/// `docker.io/library/library`; and a prefix that names no host (`vendor/img`) is
/// accepted and never matches a normalised name.
pub fn check_remap_prefix(prefix: &str) -> bool {
    match prefix.split_once('/') {
        None => is_domain(prefix),
        Some((domain, path)) => is_domain(domain) && path.split('/').all(is_path_component),
    }
}

/// `host[:port]`: dot-separated labels of ASCII letters, digits and inner hyphens.
fn is_domain(text: &str) -> bool {
    let host = match text.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return false,
        None => text,
    };
    host.split('.').all(|label| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-')
    })
}

/// A repository path component: runs of `[a-z0-9]` joined by `.`, `_`, `__` or `-`s.
fn is_path_component(text: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let starts_and_ends = text.starts_with(alnum) && text.ends_with(alnum);
    starts_and_ends
        && text
            .split(alnum)
            .filter(|sep| !sep.is_empty())
            .all(|sep| matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_without_inventing_a_tag() {
        let r = DockerRef::parse("fedora").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/fedora");
        assert!(r.is_name_only());
        let r = DockerRef::parse("127.0.0.1:5000/os/img:1").unwrap();
        assert_eq!((r.name(), r.path()), ("127.0.0.1:5000/os/img", "os/img"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/os/img:1");
        let d = Digest::of(b"m");
        let r = DockerRef::parse(&format!("r.io/a@{d}")).unwrap();
        assert!(r.is_digest_only());
        assert!(DockerRef::parse("R.io/A").is_none());
    }

    #[test]
    fn the_image_is_judged_by_its_tag_when_it_has_one() {
        let d = Digest::of(b"m");
        let image: RegistryRef = format!("r.io/a:1@{d}").parse().unwrap();
        assert_eq!(DockerRef::of_image(&image).to_string(), "r.io/a:1");
        let image: RegistryRef = format!("r.io/a@{d}").parse().unwrap();
        assert_eq!(
            DockerRef::of_image(&image).to_string(),
            format!("r.io/a@{d}")
        );
    }

    #[test]
    fn remapping_replaces_a_whole_prefix_only() {
        let r = DockerRef::parse("mirror.local:5000/vendor/img:1").unwrap();
        let remapped = r
            .remapped("mirror.local:5000/vendor", "quay.io/vendor")
            .unwrap();
        assert_eq!(remapped.to_string(), "quay.io/vendor/img:1");
        let same = r.remapped("mirror.local:5000/vend", "quay.io/x").unwrap();
        assert_eq!(same, r);
        assert_eq!(r.remapped("other.io", "quay.io").unwrap(), r);
    }

    #[test]
    fn remap_prefixes_are_hosts_or_host_and_path() {
        for good in [
            "quay.io",
            "quay.io/vendor",
            "127.0.0.1:5000/a/b",
            "localhost",
            "docker.io/library",
            "docker.io",
            "Quay.io/vendor",
            "vendor/img",
            "r.io/a__b/c-d/e---f/g.h",
        ] {
            assert!(check_remap_prefix(good), "{good}");
        }
        for bad in [
            "quay.io/",
            "quay.io/Vendor",
            "r.io/a:1",
            "r.io/a@sha256:00",
            "",
            "a b",
            "r.io:/a",
            "-r.io/a",
            "r..io/a",
            "r.io/a//b",
            "r.io/a___b",
            "r.io/a.-b",
            "r.io/-a",
        ] {
            assert!(!check_remap_prefix(bad), "{bad}");
        }
    }
}
