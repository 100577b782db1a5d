//! Registry credentials from a containers `auth.json` / docker `config.json`.
//!
//! The file is `--auth-file`, else `$REGISTRY_AUTH_FILE`, else the first that exists
//! of `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json` and
//! `~/.docker/config.json` — podman's order. A registry with no entry is accessed
//! anonymously (oci-client still performs the registry's token handshake). The file
//! must be a regular file of at most [`AUTH_FILE_LIMIT`] bytes: a FIFO would block the
//! import and `/dev/zero` would never end.

use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

use crate::{Error, Result, read_regular_file};

/// The largest auth file read: thousands of registries' entries.
const AUTH_FILE_LIMIT: u64 = 1 << 20;

/// The auth file to use when none is given.
fn default_auth_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let candidates = [
        std::env::var_os("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("containers/auth.json")),
        home.as_ref()
            .map(|h| h.join(".config/containers/auth.json")),
        home.as_ref().map(|h| h.join(".docker/config.json")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// Credentials for `registry` (`host[:port]`).
pub(super) fn credentials(auth_file: Option<&Path>, registry: &str) -> Result<RegistryAuth> {
    let Some(path) = auth_file.map(Path::to_owned).or_else(default_auth_file) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let document = read_regular_file(&path, AUTH_FILE_LIMIT)?;
    parse_credentials(&document, registry).map_err(|reason| Error::Credentials {
        registry: registry.to_owned(),
        path,
        reason,
    })
}

/// The credentials an auth file's `document` holds for `registry`, or why it cannot
/// be used. Pure: the fuzzer feeds it arbitrary bytes.
pub(crate) fn parse_credentials(
    document: &[u8],
    registry: &str,
) -> std::result::Result<RegistryAuth, String> {
    // Docker Hub entries are keyed by its legacy URL.
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    match docker_credential::get_credential_from_reader(document, server) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(RegistryAuth::Basic(user, password))
        }
        Ok(DockerCredential::IdentityToken(_)) => Err(
            "identity tokens are not supported; log in with a password or token as password".into(),
        ),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(RegistryAuth::Anonymous),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_basic_credentials_and_falls_back_to_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        // "user:secret" in base64.
        std::fs::write(
            &path,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpzZWNyZXQ="}}}"#,
        )
        .unwrap();
        match credentials(Some(&path), "127.0.0.1:5000").unwrap() {
            RegistryAuth::Basic(u, p) => assert_eq!((u.as_str(), p.as_str()), ("user", "secret")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            credentials(Some(&path), "other:1").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn unreadable_or_garbled_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        assert!(
            credentials(Some(&missing), "h")
                .unwrap_err()
                .to_string()
                .contains("missing.json")
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        assert!(credentials(Some(&bad), "h").is_err());
    }
}
