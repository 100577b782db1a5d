//! Registry credentials from a containers `auth.json` / docker `config.json`.
//!
//! The file is `--auth-file`, else `$REGISTRY_AUTH_FILE`, else the first that exists
//! of `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json` and
//! `~/.docker/config.json` — podman's order. A registry with no entry is accessed
//! anonymously (the registry's token handshake still runs, without credentials).
//! Credentials are looked up by the host actually contacted: a mirror's own entry. The
//! file must be a regular file of at most [`AUTH_FILE_LIMIT`] bytes: a FIFO would block
//! the import and `/dev/zero` would never end.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use reqwest::header::HeaderValue;

use crate::{Error, Result, read_regular_file};

/// The largest auth file read: thousands of registries' entries.
const AUTH_FILE_LIMIT: u64 = 1 << 20;

/// A user name and password for one server. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

/// Why `--creds` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credentials must be USER:PASSWORD")]
pub struct ParseCredentialsError;

/// `USER:PASSWORD`, as curl's and skopeo's `--creds` take them.
impl std::str::FromStr for Credentials {
    type Err = ParseCredentialsError;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Self {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(ParseCredentialsError),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `Authorization: Basic …`, marked sensitive so it is never logged.
    pub fn basic_header(&self) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .expect("base64 is a valid header value");
        value.set_sensitive(true);
        value
    }
}

/// Why an auth file's entry cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsProblem {
    /// A docker `identitytoken` entry (an OAuth refresh token), which needs a flow we do
    /// not run.
    #[error("identity tokens are not supported; log in with a password or token as password")]
    IdentityToken,
    /// The document or its entry could not be read.
    #[error("the auth file cannot be read")]
    Unreadable(#[source] CredentialRetrievalError),
}

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
pub(crate) fn credentials(auth_file: Option<&Path>, registry: &str) -> Result<Option<Credentials>> {
    let Some(path) = auth_file.map(Path::to_owned).or_else(default_auth_file) else {
        return Ok(None);
    };
    let document = read_regular_file(&path, AUTH_FILE_LIMIT)?;
    parse_credentials(&document, registry).map_err(|problem| Error::Credentials {
        registry: registry.to_owned(),
        path,
        problem,
    })
}

/// The credentials an auth file's `document` holds for `registry`, or why it cannot
/// be used. Pure: the fuzzer feeds it arbitrary bytes.
pub(crate) fn parse_credentials(
    document: &[u8],
    registry: &str,
) -> std::result::Result<Option<Credentials>, CredentialsProblem> {
    // Docker Hub entries are keyed by its legacy URL.
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    match docker_credential::get_credential_from_reader(document, server) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(Some(Credentials { user, password }))
        }
        Ok(DockerCredential::IdentityToken(_)) => Err(CredentialsProblem::IdentityToken),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(None),
        Err(e) => Err(CredentialsProblem::Unreadable(e)),
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
        let found = credentials(Some(&path), "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (found.user.as_str(), found.password.as_str()),
            ("user", "secret")
        );
        assert_eq!(
            found.basic_header().to_str().unwrap(),
            "Basic dXNlcjpzZWNyZXQ="
        );
        assert!(!format!("{found:?}").contains("secret"));
        assert_eq!(credentials(Some(&path), "other:1").unwrap(), None);
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
