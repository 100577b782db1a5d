//! A real `docker-registry` (distribution 2.8) on a free 127.0.0.1 port.
//!
//! Each [`Registry`] has its own temporary directory: the generated `config.yml`, the
//! storage root, the log, and for the variants an htpasswd file or a CA. Starting waits
//! until `GET /v2/` answers; dropping kills the process. [`Registry::stop`] and
//! [`Registry::restart`] keep the port and the storage, for "registry down" tests.
//!
//! ```ignore
//! let registry = Registry::builder().basic_auth("alice", "s3cret").tls().start();
//! registry.write_auth_json(&dir.join("auth.json"));
//! // bootsource import docker://{registry.host_port()}/os/img:1 --cert-dir {registry.cert_dir()} …
//! ```
//!
//! The registry stores blobs as plain files (`docker/registry/v2/blobs/sha256/XX/HEX/data`)
//! and keeps no cache of them, so [`Registry::plant_blob`] can put bytes under a digest
//! they do not have: the only way to serve a tampered blob from a registry.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::auth::{self, Credentials};
use super::client::RegistryClient;
use super::tls::TestCa;
use super::tools;

/// How long a registry may take to answer `GET /v2/` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at a free port: another test may take the one we picked before we bind it.
const PORT_ATTEMPTS: usize = 5;

/// Options of a registry to start.
#[derive(Debug, Default, Clone)]
pub struct RegistryBuilder {
    credentials: Option<Credentials>,
    tls: bool,
    proxy_of: Option<String>,
}

impl RegistryBuilder {
    /// Require HTTP basic auth with this user (htpasswd, bcrypt).
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some(Credentials::new(user, password));
        self
    }

    /// Serve HTTPS with a certificate from a fresh test CA.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// A pull-through cache of `origin` (distribution's proxy mode): read-only, it
    /// fetches what it lacks from the origin and keeps it.
    pub fn proxy_of(mut self, origin: &Registry) -> Self {
        self.proxy_of = Some(origin.url());
        self
    }

    /// Starts the registry and waits until it answers.
    pub fn start(self) -> Registry {
        tools::require("docker-registry", "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir()
            .unwrap();
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).unwrap();
        let ca = self.tls.then(|| TestCa::generate(&dir.path().join("tls")));
        let htpasswd = self.credentials.as_ref().map(|c| {
            let path = dir.path().join("htpasswd");
            c.write_htpasswd(&path);
            path
        });
        let mut registry = Registry {
            dir,
            storage,
            port: 0,
            process: None,
            ca,
            credentials: self.credentials,
            htpasswd,
            token: None,
            proxy_of: self.proxy_of,
        };
        registry.start_on_free_port();
        registry
    }
}

/// A request a registry answered (see [`Registry::requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub status: u16,
}

/// A running (or stopped) `docker-registry`.
#[derive(Debug)]
pub struct Registry {
    dir: TempDir,
    storage: PathBuf,
    port: u16,
    process: Option<Child>,
    ca: Option<TestCa>,
    credentials: Option<Credentials>,
    htpasswd: Option<PathBuf>,
    /// Realm and certificate of a token server, once token auth is required.
    token: Option<(String, PathBuf)>,
    /// The origin's URL, for a pull-through cache.
    proxy_of: Option<String>,
}

impl Registry {
    /// An anonymous plain-HTTP registry.
    pub fn start() -> Registry {
        Registry::builder().start()
    }

    /// A plain-HTTP registry that requires `user`/`password`.
    pub fn with_basic_auth(user: &str, password: &str) -> Registry {
        Registry::builder().basic_auth(user, password).start()
    }

    /// An anonymous HTTPS registry with a certificate from a fresh CA (see [`Self::cert_dir`]).
    pub fn with_tls() -> Registry {
        Registry::builder().tls().start()
    }

    /// Options for combinations (basic auth over TLS).
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// `127.0.0.1:PORT`: the registry part of an image reference.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` or `https://…`.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host_port())
    }

    /// A skopeo-style reference: `docker://127.0.0.1:PORT/{repo_and_tag}`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host_port())
    }

    /// Whether clients must speak TLS.
    pub fn is_tls(&self) -> bool {
        self.ca.is_some()
    }

    /// The directory holding the CA as `ca.crt`, for `--cert-dir`. Panics without TLS.
    pub fn cert_dir(&self) -> &Path {
        &self.test_ca().cert_dir
    }

    /// The credentials the registry requires, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Writes a containers `auth.json` with this registry's credentials. Panics without
    /// basic auth.
    pub fn write_auth_json(&self, path: &Path) {
        let credentials = self
            .credentials
            .as_ref()
            .expect("registry started without basic auth");
        auth::write_auth_json(path, &self.host_port(), credentials);
    }

    /// A client that trusts the CA and sends the credentials.
    pub fn client(&self) -> RegistryClient {
        RegistryClient::new(
            &self.url(),
            self.ca_pem_if_tls().as_deref(),
            self.credentials.clone(),
        )
    }

    /// A client that trusts the CA but sends no credentials.
    pub fn anonymous_client(&self) -> RegistryClient {
        RegistryClient::new(&self.url(), self.ca_pem_if_tls().as_deref(), None)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| p.try_wait().unwrap().is_none())
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// Kills the registry; the port and the storage are kept for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // Ignore "already exited": stop must work after a crash too.
            let _ = process.kill();
            process.wait().unwrap();
        }
    }

    /// Starts the registry again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.spawn_and_wait() {
            panic!(
                "docker-registry did not restart on port {}:\n{log}",
                self.port
            );
        }
    }

    /// Restarts the registry (same port, same storage) requiring Bearer tokens from
    /// `server`. Push what you need first: the pusher speaks Basic only.
    pub fn require_token_auth(&mut self, server: &super::token::TokenServer) {
        self.token = Some((server.realm(), server.cert.clone()));
        self.restart();
    }

    /// Where the registry keeps the bytes of blob `digest` (`sha256:…`).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stores `bytes` as blob `digest` of `repo` directly in the storage, bypassing the
    /// digest check of the upload API. With bytes that do not hash to `digest`, the
    /// registry serves a tampered blob under the digest a manifest names.
    pub fn plant_blob(&self, repo: &str, digest: &str, bytes: &[u8]) {
        let data = self.blob_data_path(digest);
        fs::create_dir_all(data.parent().unwrap()).unwrap();
        fs::write(&data, bytes).unwrap();
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        let link = self
            .storage
            .join("docker/registry/v2/repositories")
            .join(repo)
            .join("_layers/sha256")
            .join(hex)
            .join("link");
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        fs::write(link, digest).unwrap();
    }

    /// Everything the registry logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every request the registry answered, from its log (distribution logs each as
    /// `response completed` with method, URI and status), in order.
    pub fn requests(&self) -> Vec<Request> {
        self.log()
            .lines()
            .filter(|line| line.contains("response completed"))
            .filter_map(|line| {
                let field = |key: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(key))
                        .map(|v| v.trim_matches('"').to_owned())
                };
                Some(Request {
                    method: field("http.request.method=")?,
                    uri: field("http.request.uri=")?,
                    status: field("http.response.status=")?.parse().ok()?,
                })
            })
            .collect()
    }

    fn test_ca(&self) -> &TestCa {
        self.ca.as_ref().expect("registry started without TLS")
    }

    fn ca_pem_if_tls(&self) -> Option<Vec<u8>> {
        self.ca.as_ref().map(TestCa::ca_pem)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    fn start_on_free_port(&mut self) {
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            self.port = free_port();
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(log) if log.contains("address already in use") => last_log = log,
                Err(log) => panic!("docker-registry did not start:\n{log}"),
            }
        }
        panic!("docker-registry found no free port in {PORT_ATTEMPTS} attempts:\n{last_log}");
    }

    /// Starts the process and waits for `GET /v2/`; `Err` carries the log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let config = self.dir.path().join("config.yml");
        fs::write(&config, self.config_yaml()).unwrap();
        let log = fs::File::create(self.log_path()).unwrap();
        let process = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
        self.process = Some(process);
        let client = self.anonymous_client();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if client.ping().is_ok() {
                return Ok(());
            }
            let exited = self.process.as_mut().unwrap().try_wait().unwrap();
            if let Some(status) = exited {
                self.process = None;
                return Err(format!("exited with {status}\n{}", self.log()));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "no answer within {START_TIMEOUT:?}\n{}",
                    self.log()
                ));
            }
            sleep(Duration::from_millis(20));
        }
    }

    fn config_yaml(&self) -> String {
        let mut yaml = format!(
            "version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  # Fixed, so that upload sessions survive a restart.
  secret: bootsource-test
",
            storage = self.storage.display(),
            port = self.port,
        );
        if let Some(ca) = &self.ca {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.server_cert.display(),
                ca.server_key.display()
            ));
        }
        if let Some(origin) = &self.proxy_of {
            yaml.push_str(&format!("proxy:\n  remoteurl: {origin}\n"));
        }
        if let Some((realm, cert)) = &self.token {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                super::token::SERVICE,
                super::token::ISSUER,
                cert.display()
            ));
        } else if let Some(htpasswd) = &self.htpasswd {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: bootsource-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        yaml
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nobody listens on right now (the kernel's pick for an ephemeral bind).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
