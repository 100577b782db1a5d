//! Credentials for the basic-auth registry: its htpasswd file and the clients' files.
//!
//! The registry reads a bcrypt htpasswd file (`htpasswd -Bbn`, the only hash
//! `docker-registry` accepts); clients read a containers `auth.json` (the format of
//! `--auth-file`, `$REGISTRY_AUTH_FILE` and docker's `config.json`).

use std::fs;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::tools;

/// A user name and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    pub fn new(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// `base64(user:password)`, as in `auth.json` and the `Authorization` header.
    pub fn token(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.user, self.password))
    }

    /// The value of an `Authorization` header.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.token())
    }

    /// Writes an htpasswd file holding this user with a bcrypt hash.
    pub fn write_htpasswd(&self, path: &Path) {
        tools::require("htpasswd", "apache2-utils");
        let line = tools::run("htpasswd", ["-Bbn", &self.user, &self.password]);
        fs::write(path, line).unwrap();
    }
}

/// Writes a containers `auth.json` giving `credentials` for `host_port`
/// (e.g. `127.0.0.1:5000`).
pub fn write_auth_json(path: &Path, host_port: &str, credentials: &Credentials) {
    let json = serde_json::json!({ "auths": { host_port: { "auth": credentials.token() } } });
    fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
}
