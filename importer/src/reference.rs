//! Where a container disk comes from, written as skopeo users write it.
//!
//! - `docker://HOST[:PORT]/REPO[:TAG][@sha256:…]`: an image in a registry. Docker Hub
//!   names are normalised as docker does (`docker://fedora` is
//!   `docker.io/library/fedora:latest`).
//! - `oci:DIR[:REF]`: an OCI image layout directory; `REF` names an entry of its
//!   `index.json` by its `org.opencontainers.image.ref.name` annotation. Without `REF`
//!   the index must hold exactly one image, as skopeo requires.
//! - `https://…` and `http://…`: a disk file on a web server (optionally compressed,
//!   or a tar holding one disk). Credentials never go in the URL (`--creds`).
//! - `file:PATH`: a disk file on this machine. `-`: standard input (an upload).
//!
//! The last three are *single-file* sources: no manifest, no layers (see
//! `origin::file`).
//!
//! ```
//! use bootsource_importer::ImageRef;
//! let src: ImageRef = "docker://127.0.0.1:5000/os/fedora:41".parse().unwrap();
//! assert_eq!(src.to_string(), "docker://127.0.0.1:5000/os/fedora:41");
//! let layout: ImageRef = "oci:./layout:41".parse().unwrap();
//! assert!(matches!(layout, ImageRef::Layout { .. }));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Digest;

/// A parsed image source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageRef {
    /// An image in a registry.
    Registry(RegistryRef),
    /// An image in an OCI layout directory.
    Layout {
        /// The layout directory (holds `oci-layout`, `index.json`, `blobs/`).
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` to pick, if any.
        tag: Option<String>,
    },
    /// A disk file served over HTTP(S).
    Http(reqwest::Url),
    /// A disk file on this machine (`file:PATH`).
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl ImageRef {
    /// Whether this is a single disk file rather than a container image.
    pub fn is_single_file(&self) -> bool {
        matches!(self, Self::Http(_) | Self::File(_) | Self::Stdin)
    }

    /// The file's name, as checksum files list it: the URL's last path segment
    /// (percent-decoded) or the path's last component.
    pub fn file_name(&self) -> Option<String> {
        match self {
            Self::Http(url) => url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8(percent_decode(s)).unwrap_or_else(|_| s.to_owned())),
            Self::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
            _ => None,
        }
    }
}

/// `%XX` escapes decoded (the URL parser keeps them in paths).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// An image in a registry: a repository and a tag, a digest, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
    /// The repository as written, when no registry host was: a short name, which
    /// containers' `unqualified-search-registries` may resolve elsewhere.
    short: Option<String>,
}

/// Why a source string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseImageRefError {
    /// No `docker://`, `oci:`, `http(s)://` or `file:` prefix, and not `-`.
    #[error(
        "unsupported transport in {0:?}: use docker://HOST/REPO:TAG, oci:DIR[:TAG], https://…, file:PATH or -"
    )]
    UnknownTransport(String),
    /// An `http(s)://` URL that does not parse, or carries credentials.
    #[error("invalid URL {text:?}: {problem}")]
    InvalidUrl {
        /// What the user wrote.
        text: String,
        /// What is wrong with it.
        problem: UrlProblem,
    },
    /// `file:` with no path.
    #[error("file: needs a path, as in file:/srv/images/disk.qcow2")]
    EmptyFilePath,
    /// The registry reference does not parse.
    #[error("invalid registry reference {text:?}: {problem}")]
    InvalidReference {
        /// What the user wrote after `docker://`.
        text: String,
        /// What is wrong with it.
        problem: ReferenceProblem,
    },
    /// `oci:` with no directory.
    #[error("oci: needs a directory, as in oci:./layout:tag")]
    EmptyLayoutPath,
}

/// What is wrong with a registry reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    /// Nothing after the transport.
    #[error("it is empty")]
    Empty,
    /// A repository path component that is not lowercase letters and digits joined by
    /// `.`, `_`, `__` or `-`.
    #[error("the repository must be lowercase path components of [a-z0-9._-]")]
    BadRepository,
    /// A tag of other characters, or longer than 128.
    #[error("a tag is 1 to 128 characters of [A-Za-z0-9_.-], not starting with . or -")]
    BadTag,
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error("only sha256 digests of 64 lowercase hex digits are supported")]
    BadDigest,
    /// A host that is not a DNS name or IP literal with an optional port.
    #[error("the registry host is not a valid host[:port]")]
    BadHost,
    /// Longer than the 255 characters a repository name may have.
    #[error("the repository name is longer than 255 characters")]
    TooLong,
}

/// What is wrong with an `http(s)://` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    /// Not a URL (the parser refused it).
    #[error("it is not a valid URL")]
    Unparsable,
    /// No host.
    #[error("it names no host")]
    NoHost,
    /// `user:password@` in the URL, where logs and `status` would show it.
    #[error(
        "credentials do not belong in the URL (they would be logged); use --creds or the auth file"
    )]
    Credentials,
    /// No file name at the end of the path.
    #[error("it does not end in a file name")]
    NoFileName,
}

/// Docker Hub, where references without a registry host go.
const DOCKER_HUB: &str = "docker.io";

impl RegistryRef {
    /// `host[:port]`, e.g. `127.0.0.1:5000` or `docker.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `os/fedora`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned digest, if the reference names one.
    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// The same repository, on the same registry, pinned to `digest` (the tag is kept
    /// for display only: the digest is what is fetched).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same reference served by another registry host (a mirror).
    pub fn on_registry(&self, registry: &str) -> Self {
        Self {
            registry: registry.to_owned(),
            short: None,
            ..self.clone()
        }
    }

    /// The name as written when it named no registry host (`fedora`, `org/app`): a
    /// short name, which docker sends to Docker Hub and containers' configuration may
    /// refuse or resolve elsewhere.
    pub fn short_name(&self) -> Option<&str> {
        self.short.as_deref()
    }

    /// A short name resolved on `registry` (an `unqualified-search-registries` entry):
    /// `fedora:41` on `registry.lab` is `registry.lab/fedora:41`. `None` for a
    /// reference that named its registry.
    pub fn resolved_on(&self, registry: &str) -> Option<Result<Self, ParseImageRefError>> {
        let short = self.short.as_deref()?;
        Some(format!("{registry}/{short}").parse::<Self>().map(|r| Self {
            tag: self.tag.clone(),
            digest: self.digest,
            ..r
        }))
    }

    /// `registry/repository`, the name a `registries.conf` prefix is matched against.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same tag or digest under another name: `location` followed by what comes
    /// after `prefix` in [`name`](Self::name) (a `registries.conf` mirror or
    /// `location`). `None` when `prefix` is not a prefix of the name.
    pub fn rebased(
        &self,
        prefix: &str,
        location: &str,
    ) -> Option<Result<Self, ParseImageRefError>> {
        let name = self.name();
        let rest = name.strip_prefix(prefix)?;
        let text = format!("{location}{rest}");
        Some(text.parse::<Self>().map(|r| Self {
            tag: self.tag.clone(),
            digest: self.digest,
            short: None,
            ..r
        }))
    }

    /// What the manifest endpoint is asked for: the digest if pinned, else the tag.
    pub(crate) fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl FromStr for RegistryRef {
    type Err = ParseImageRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_registry_ref(text).map_err(|problem| ParseImageRefError::InvalidReference {
            text: text.to_owned(),
            problem,
        })
    }
}

/// The distribution reference grammar, as docker and containers/image read it.
fn parse_registry_ref(text: &str) -> Result<RegistryRef, ReferenceProblem> {
    if text.is_empty() {
        return Err(ReferenceProblem::Empty);
    }
    let (name, digest) = match text.split_once('@') {
        Some((name, digest)) => (
            name,
            Some(
                digest
                    .parse::<Digest>()
                    .map_err(|_| ReferenceProblem::BadDigest)?,
            ),
        ),
        None => (text, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a port.
    let (name, tag) = match name.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t.to_owned())),
        _ => (name, None),
    };
    if let Some(t) = &tag {
        check_tag(t)?;
    }
    let (registry, repository) = split_registry(name);
    let named_a_host = name.len() > repository.len();
    let short = (!named_a_host).then(|| repository.to_owned());
    check_host(registry)?;
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_owned()
    };
    check_repository(&repository)?;
    let tag = tag.or_else(|| digest.is_none().then(|| "latest".to_owned()));
    Ok(RegistryRef {
        registry: registry.to_owned(),
        repository,
        tag,
        digest,
        short,
    })
}

/// The first component is a registry host when it looks like one (a dot, a port, or
/// `localhost`), as docker decides.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn check_host(host: &str) -> Result<(), ReferenceProblem> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || host.starts_with('[') => (n, Some(p)),
        _ => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    if port_ok && name_ok {
        Ok(())
    } else {
        Err(ReferenceProblem::BadHost)
    }
}

fn check_repository(repository: &str) -> Result<(), ReferenceProblem> {
    if repository.len() > 255 {
        return Err(ReferenceProblem::TooLong);
    }
    let component_ok = |c: &str| {
        let bytes = c.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes.iter().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
    };
    if repository.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(ReferenceProblem::BadRepository)
    }
}

fn check_tag(tag: &str) -> Result<(), ReferenceProblem> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && !matches!(bytes[0], b'.' | b'-')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceProblem::BadTag)
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ParseImageRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = text.strip_prefix("docker://") {
            return Ok(Self::Registry(rest.parse()?));
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            // As in containers/image: the directory ends at the first ':'.
            let (dir, tag) = match rest.split_once(':') {
                Some((dir, tag)) => (dir, Some(tag.to_owned()).filter(|t| !t.is_empty())),
                None => (rest, None),
            };
            if dir.is_empty() {
                return Err(ParseImageRefError::EmptyLayoutPath);
            }
            return Ok(Self::Layout {
                dir: PathBuf::from(dir),
                tag,
            });
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return parse_url(text).map(Self::Http);
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err(ParseImageRefError::EmptyFilePath);
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if text == "-" {
            return Ok(Self::Stdin);
        }
        Err(ParseImageRefError::UnknownTransport(text.to_owned()))
    }
}

fn parse_url(text: &str) -> Result<reqwest::Url, ParseImageRefError> {
    let invalid = |problem| ParseImageRefError::InvalidUrl {
        text: crate::printable(text, 300),
        problem,
    };
    let url = reqwest::Url::parse(text).map_err(|_| invalid(UrlProblem::Unparsable))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(UrlProblem::NoHost));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(UrlProblem::Credentials));
    }
    if url.path().ends_with('/') {
        return Err(invalid(UrlProblem::NoFileName));
    }
    Ok(url)
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registry(r) => write!(f, "docker://{r}"),
            Self::Layout { dir, tag: None } => write!(f, "oci:{}", dir.display()),
            Self::Layout { dir, tag: Some(t) } => write!(f, "oci:{}:{t}", dir.display()),
            Self::Http(url) => f.write_str(url.as_str()),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Stdin => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_are_normalised() {
        let src: ImageRef = "docker://fedora".parse().unwrap();
        assert_eq!(src.to_string(), "docker://docker.io/library/fedora:latest");
    }

    #[test]
    fn digest_pinned_reference_keeps_its_digest() {
        let d = Digest::of(b"m");
        let ImageRef::Registry(r) = format!("docker://127.0.0.1:5000/os/f@{d}").parse().unwrap()
        else {
            panic!("not a registry ref")
        };
        assert_eq!(r.digest(), Some(d));
        assert_eq!(r.tag(), None);
        assert_eq!(r.registry(), "127.0.0.1:5000");
    }

    #[test]
    fn single_file_sources() {
        let src: ImageRef = "https://127.0.0.1:8443/images/Fedora%2041.qcow2?x=1"
            .parse()
            .unwrap();
        assert!(src.is_single_file());
        assert_eq!(src.file_name().as_deref(), Some("Fedora 41.qcow2"));
        assert_eq!(
            src.to_string(),
            "https://127.0.0.1:8443/images/Fedora%2041.qcow2?x=1"
        );
        let file: ImageRef = "file:/srv/disk.raw.xz".parse().unwrap();
        assert_eq!(file, ImageRef::File("/srv/disk.raw.xz".into()));
        assert_eq!(file.file_name().as_deref(), Some("disk.raw.xz"));
        assert_eq!(file.to_string(), "file:/srv/disk.raw.xz");
        assert_eq!("-".parse::<ImageRef>().unwrap(), ImageRef::Stdin);
        assert!(!"oci:x".parse::<ImageRef>().unwrap().is_single_file());
    }

    #[test]
    fn layout_tag_is_optional() {
        assert_eq!(
            "oci:/srv/layout".parse::<ImageRef>().unwrap(),
            ImageRef::Layout {
                dir: "/srv/layout".into(),
                tag: None
            }
        );
        assert_eq!(
            "oci:layout:v1".parse::<ImageRef>().unwrap(),
            ImageRef::Layout {
                dir: "layout".into(),
                tag: Some("v1".into())
            }
        );
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let d = Digest::of(b"m");
        let r: RegistryRef = format!("localhost:5000/a/b.c_d-e:v1.2@{d}")
            .parse()
            .unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag(), r.digest()),
            ("localhost:5000", "a/b.c_d-e", Some("v1.2"), Some(d))
        );
        assert_eq!(r.to_string(), format!("localhost:5000/a/b.c_d-e:v1.2@{d}"));
        assert_eq!(r.manifest_reference(), d.to_string());
        let hub: RegistryRef = "org/app".parse().unwrap();
        assert_eq!(hub.to_string(), "docker.io/org/app:latest");
        let pinned = hub.with_digest(d).on_registry("mirror.local:5001");
        assert_eq!(
            pinned.to_string(),
            format!("mirror.local:5001/org/app:latest@{d}")
        );
        assert_eq!(pinned.manifest_reference(), d.to_string());
    }

    #[test]
    fn short_names_are_known_and_rebased() {
        let short: RegistryRef = "fedora:41".parse().unwrap();
        assert_eq!(short.short_name(), Some("fedora"));
        assert_eq!(short.registry(), "docker.io");
        for qualified in ["docker.io/fedora:41", "quay.io/org/app", "localhost/app"] {
            let r: RegistryRef = qualified.parse().unwrap();
            assert_eq!(r.short_name(), None, "{qualified}");
        }
        let r: RegistryRef = "quay.io/containerdisks/fedora:41".parse().unwrap();
        let moved = r
            .rebased("quay.io/containerdisks", "mirror.lab:5000/cd")
            .unwrap()
            .unwrap();
        assert_eq!(moved.to_string(), "mirror.lab:5000/cd/fedora:41");
        assert!(r.rebased("docker.io", "x").is_none());
        let resolved = short.resolved_on("registry.lab").unwrap().unwrap();
        assert_eq!(resolved.to_string(), "registry.lab/fedora:41");
        assert_eq!(resolved.short_name(), None);
        assert!(r.resolved_on("registry.lab").is_none());
    }

    #[test]
    fn bad_sources_are_refused() {
        for bad in [
            "fedora",
            "ftp://x/y",
            "http://user:pw@x/y.img",
            "https:///y.img",
            "https://x/dir/",
            "file:",
            "oci:",
            "docker://",
            "docker://a/b c",
            "docker://h/r@sha256:12",
            "docker://Fedora",
            "docker://h.io/r:-tag",
            "docker://h.io/r/",
            "docker://h.io:port/r",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad} accepted");
        }
    }
}
