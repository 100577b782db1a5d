//! A Docker registry token server, so the registry can require Bearer tokens.
//!
//! `docker-registry` does token auth by delegating to a separate server (its `auth:
//! token:` config): a client is sent to the realm with `service` and `scope`, presents
//! its credentials there (Basic), and gets back a JWT the registry verifies with the
//! token server's certificate. This is that server, for 127.0.0.1 only: it checks the
//! user and password, and signs RS256 JWTs with a key made by `openssl`, carrying the
//! certificate in the `x5c` header (the registry trusts it through `rootcertbundle`).
//! Signing shells out to `openssl dgst`, so no crypto crate is needed.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::auth::Credentials;
use super::tools;

/// The `service` the registry and its tokens name.
pub const SERVICE: &str = "bootsource-test-registry";
/// The `iss` of the tokens.
pub const ISSUER: &str = "bootsource-test-token-server";

/// A running token server; stops on drop.
#[derive(Debug)]
pub struct TokenServer {
    port: u16,
    /// PEM certificate the registry verifies tokens with.
    pub cert: PathBuf,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl TokenServer {
    /// Starts a server that gives pull tokens to `credentials` only, keeping its key and
    /// certificate in `dir`.
    pub fn start(dir: &Path, credentials: Credentials) -> TokenServer {
        tools::require("openssl", "openssl");
        fs::create_dir_all(dir).unwrap();
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let der = dir.join("token.der");
        tools::run(
            "openssl",
            [
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=bootsource test token issuer",
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ],
        );
        tools::run(
            "openssl",
            [
                "x509",
                "-in",
                cert.to_str().unwrap(),
                "-outform",
                "der",
                "-out",
                der.to_str().unwrap(),
            ],
        );
        let x5c = STANDARD.encode(fs::read(&der).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop: Arc<AtomicBool> = Arc::default();
        let (issued, refused): (Arc<AtomicUsize>, Arc<AtomicUsize>) =
            (Arc::default(), Arc::default());
        let server = Server {
            key,
            x5c,
            credentials,
            issued: Arc::clone(&issued),
            refused: Arc::clone(&refused),
        };
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(stream) = stream {
                    server.answer(stream);
                }
            }
        });
        TokenServer {
            port,
            cert,
            stop,
            issued,
            refused,
        }
    }

    /// The realm URL the registry sends clients to.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// Tokens given out so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::Relaxed)
    }

    /// Requests refused (no or wrong credentials).
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Server {
    key: PathBuf,
    x5c: String,
    credentials: Credentials,
    issued: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
}

impl Server {
    fn answer(&self, mut stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("");
        let query: Vec<(String, String)> = target
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.into(), decode(v)))
                    .collect()
            })
            .unwrap_or_default();
        let authorized = headers.get("authorization") == Some(&self.credentials.basic_header());
        let response = if authorized {
            self.issued.fetch_add(1, Ordering::Relaxed);
            let scopes: Vec<&str> = query
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.as_str())
                .collect();
            let token = self.token(&scopes);
            let body =
                serde_json::json!({ "token": token, "access_token": token, "expires_in": 300 })
                    .to_string();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"credentials required"}]}"#;
            format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"token\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        let _ = stream.write_all(response.as_bytes());
    }

    /// A JWT granting the actions each `repository:NAME:ACTIONS` scope asks for.
    fn token(&self, scopes: &[&str]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({ "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>() }))
            })
            .collect();
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5c": [self.x5c] });
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": self.credentials.user, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", self.issued.load(Ordering::Relaxed)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = sign(&self.key, signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// RS256: an RSA PKCS#1 v1.5 signature over the SHA-256 of `data`.
fn sign(key: &Path, data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst -sign failed");
    out.stdout
}

/// Percent-decoding of a query value (scopes contain `:` and `/`, maybe escaped).
fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
