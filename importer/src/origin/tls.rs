//! TLS trust for registries: the containers `certs.d` convention.
//!
//! A registry `HOST:PORT` is trusted through the system roots plus every `*.crt` file
//! (PEM CA certificates) in `--cert-dir`, or, without it, in `CERTS_D/HOST:PORT/` for
//! each `certs.d` directory (by default `/etc/containers/certs.d` and
//! `/etc/docker/certs.d`, as podman and docker do; the daemon's `certs_d` key). A `NAME.cert` with its `NAME.key` there is the client
//! certificate presented to that registry. Certificate files are small: each is read
//! with a cap, and a directory entry that is not a regular file is refused.

use std::path::{Path, PathBuf};
use std::sync::Once;

use reqwest::{Certificate, Identity};

use crate::{Error, Result, read_regular_file};

/// Where podman and docker look for per-registry certificates.
pub(crate) const SYSTEM_CERTS_D: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];
/// A certificate or key file larger than this is not one.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// What is wrong with a registry's TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsProblem {
    /// A certificate directory or file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A certificate file is not a regular file, too large or unreadable.
    #[error("certificate file refused")]
    File(#[source] Box<Error>),
    /// A `.crt` file holds no PEM certificate, or a `.cert`/`.key` pair no identity.
    #[error("{0} is not a PEM certificate (or key)")]
    NotPem(PathBuf),
    /// A `.cert` without its `.key`, or the other way round.
    #[error("{0} has no matching .cert/.key partner")]
    Unpaired(PathBuf),
    /// The HTTP client refused the settings.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Installs the ring crypto provider for rustls once per process (lighter to build
/// than aws-lc, and all a registry client needs).
pub(super) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The extra roots and the client identity for one registry.
#[derive(Debug, Default)]
pub(super) struct Trust {
    pub roots: Vec<Certificate>,
    pub identity: Option<Identity>,
}

/// What `registry` (`host[:port]`) is trusted with.
pub(super) fn trust(cert_dir: Option<&Path>, certs_d: &[PathBuf], registry: &str) -> Result<Trust> {
    let error = |problem| Error::Tls {
        host: registry.to_owned(),
        problem,
    };
    let dirs: Vec<PathBuf> = match cert_dir {
        Some(dir) => vec![dir.to_owned()],
        None => certs_d.iter().map(|d| d.join(registry)).collect(),
    };
    let mut trust = Trust::default();
    for dir in dirs {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && cert_dir.is_none() => continue,
            Err(source) => return Err(error(TlsProblem::Read { path: dir, source })),
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in &paths {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => trust.roots.push(certificate(path).map_err(error)?),
                Some("cert") => trust.identity = Some(identity(path).map_err(error)?),
                Some("key") if !path.with_extension("cert").exists() => {
                    return Err(error(TlsProblem::Unpaired(path.clone())));
                }
                _ => {}
            }
        }
    }
    Ok(trust)
}

fn certificate(path: &Path) -> std::result::Result<Certificate, TlsProblem> {
    let pem = read_pem(path)?;
    Certificate::from_pem(&pem).map_err(|_| TlsProblem::NotPem(path.to_owned()))
}

/// `NAME.cert` and `NAME.key`, as one PEM identity.
fn identity(cert: &Path) -> std::result::Result<Identity, TlsProblem> {
    let key = cert.with_extension("key");
    if !key.exists() {
        return Err(TlsProblem::Unpaired(cert.to_owned()));
    }
    let mut pem = read_pem(cert)?;
    pem.extend(read_pem(&key)?);
    Identity::from_pem(&pem).map_err(|_| TlsProblem::NotPem(cert.to_owned()))
}

/// A PEM file's bytes: a regular file (a FIFO would block, `/dev/zero` never end),
/// read up to [`MAX_PEM_BYTES`].
fn read_pem(path: &Path) -> std::result::Result<Vec<u8>, TlsProblem> {
    let data = read_regular_file(path, MAX_PEM_BYTES).map_err(|e| TlsProblem::File(Box::new(e)))?;
    if !data.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsProblem::NotPem(path.to_owned()));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_garbage_and_unpaired_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        assert!(
            trust(Some(dir.path()), &[], "h:1")
                .unwrap()
                .roots
                .is_empty()
        );
        std::fs::write(dir.path().join("bad.crt"), "nope").unwrap();
        let err = trust(Some(dir.path()), &[], "h:1").unwrap_err();
        assert!(
            matches!(&err, Error::Tls { problem: TlsProblem::NotPem(p), .. } if p.ends_with("bad.crt")),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("bad.crt")).unwrap();
        std::fs::write(dir.path().join("client.key"), "-----BEGIN KEY-----").unwrap();
        let err = trust(Some(dir.path()), &[], "h:1").unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Tls {
                    problem: TlsProblem::Unpaired(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    /// A `*.crt` that is a FIFO blocked the import; one that is a sparse 1 TiB file was
    /// read whole. Both are refused, naming the file.
    #[test]
    fn crt_files_that_are_fifos_or_huge_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("ca.crt");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = trust(Some(dir.path()), &[], "h:1").unwrap_err();
        let Error::Tls {
            problem: TlsProblem::File(inner),
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert!(
            matches!(&**inner, Error::NotRegularFile { path, kind: "FIFO" } if *path == fifo),
            "{inner:?}"
        );
        std::fs::remove_file(&fifo).unwrap();
        let huge = std::fs::File::create(&fifo).unwrap();
        huge.set_len(1 << 40).unwrap();
        let err = trust(Some(dir.path()), &[], "h:1").unwrap_err();
        assert!(
            matches!(&err, Error::Tls { problem: TlsProblem::File(e), .. } if matches!(**e, Error::TooLarge { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_explicit_cert_dir_is_an_error() {
        assert!(trust(Some(Path::new("/nonexistent/certs")), &[], "h:1").is_err());
        let system: Vec<PathBuf> = SYSTEM_CERTS_D.iter().map(PathBuf::from).collect();
        assert!(
            trust(None, &system, "no-such-registry.invalid:1")
                .unwrap()
                .roots
                .is_empty()
        );
    }
}
