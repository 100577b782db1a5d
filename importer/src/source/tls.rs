//! TLS trust for registries: the containers `certs.d` convention.
//!
//! A registry `HOST:PORT` is trusted through the system roots plus every `*.crt` file
//! (PEM CA certificates) in `--cert-dir`, or, without it, in
//! `/etc/containers/certs.d/HOST:PORT/` and `/etc/docker/certs.d/HOST:PORT/`, as
//! podman and docker do. Client certificates (`*.cert` + `*.key`) are not supported by
//! the registry client; their presence is logged, not silently ignored. A `*.crt` must
//! be a regular file of at most [`CERT_FILE_LIMIT`] bytes.

use std::path::{Path, PathBuf};
use std::sync::Once;

use oci_client::client::{Certificate, CertificateEncoding};

use crate::{Error, Result, read_regular_file};

const SYSTEM_CERT_DIRS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];
/// The largest `*.crt` read: a whole system CA bundle is a few hundred KiB.
const CERT_FILE_LIMIT: u64 = 1 << 20;

/// Installs the ring crypto provider for rustls once per process (lighter to build
/// than aws-lc, and all a registry client needs).
pub(super) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The extra CA certificates for `registry` (`host[:port]`).
pub(super) fn extra_roots(cert_dir: Option<&Path>, registry: &str) -> Result<Vec<Certificate>> {
    let dirs: Vec<PathBuf> = match cert_dir {
        Some(dir) => vec![dir.to_owned()],
        None => SYSTEM_CERT_DIRS
            .iter()
            .map(|d| Path::new(d).join(registry))
            .collect(),
    };
    let mut certs = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && cert_dir.is_none() => continue,
            Err(e) => {
                return Err(Error::Tls(format!(
                    "cannot read certificate directory {}: {e}",
                    dir.display()
                )));
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => certs.push(read_pem(&path)?),
                Some("cert" | "key") => tracing::warn!(
                    path = %path.display(),
                    "client certificates are not supported; ignoring"
                ),
                _ => {}
            }
        }
    }
    Ok(certs)
}

fn read_pem(path: &Path) -> Result<Certificate> {
    let data = read_regular_file(path, CERT_FILE_LIMIT)?;
    if !data
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(Error::Tls(format!(
            "{} is not a PEM certificate",
            path.display()
        )));
    }
    Ok(Certificate {
        encoding: CertificateEncoding::Pem,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_crt_files_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ca.crt"),
            "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        assert_eq!(extra_roots(Some(dir.path()), "h:1").unwrap().len(), 1);
        std::fs::write(dir.path().join("bad.crt"), "nope").unwrap();
        let err = extra_roots(Some(dir.path()), "h:1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.crt"), "{err}");
    }

    /// A `*.crt` that is a FIFO blocked the import; one that is a sparse 1 TiB file
    /// was read whole. Both are refused, naming the file.
    #[test]
    fn crt_files_that_are_fifos_or_huge_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("ca.crt");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = extra_roots(Some(dir.path()), "h:1").unwrap_err();
        assert!(
            matches!(&err, Error::NotRegularFile { path, kind: "FIFO" } if *path == fifo),
            "{err:?}"
        );
        std::fs::remove_file(&fifo).unwrap();
        let huge = std::fs::File::create(&fifo).unwrap();
        huge.set_len(1 << 40).unwrap();
        let err = extra_roots(Some(dir.path()), "h:1").unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    }

    #[test]
    fn a_missing_explicit_cert_dir_is_an_error() {
        assert!(extra_roots(Some(Path::new("/nonexistent/certs")), "h:1").is_err());
        assert!(
            extra_roots(None, "no-such-registry.invalid:1")
                .unwrap()
                .is_empty()
        );
    }
}
