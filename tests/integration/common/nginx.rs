//! Web servers for single-file sources: Debian's `nginx` on a free 127.0.0.1 port, and
//! a bare server that knows neither `HEAD` nor `Range`.
//!
//! [`Nginx`] serves the files of its own root directory as vendors' mirrors do: `Range`
//! (206), a strong `ETag` (`"mtime-size"`), `Last-Modified`, `If-Range`,
//! `If-None-Match`. It runs in the foreground (`daemon off`, no worker processes), its
//! configuration, logs and temporary paths in its temporary directory; starting waits
//! until it answers, dropping kills it. [`Nginx::put`] replaces a file atomically with
//! a distinct modification time, so nginx's `ETag` changes even within one second.
//!
//! [`BareServer`] answers every `GET` with the whole file (200, `Content-Length`, no
//! validators, `Range` ignored) and every other method with 405: the oldest servers
//! and the simplest upload endpoints.
//!
//! ```ignore
//! let nginx = Nginx::builder().basic_auth("alice", "s3cret").start();
//! nginx.put("disk.qcow2.xz", &bytes);
//! // bootsource import {nginx.url("disk.qcow2.xz")} --creds alice:s3cret --to …
//! ```

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;

use super::auth::Credentials;
use super::daemon::free_port;
use super::tls::TestCa;
use super::tools;

/// How long nginx may take to answer after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Options of an nginx to start.
#[derive(Debug, Default)]
pub struct NginxBuilder {
    credentials: Option<Credentials>,
    tls: bool,
}

impl NginxBuilder {
    /// Require HTTP basic auth with this user (htpasswd, bcrypt).
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some(Credentials::new(user, password));
        self
    }

    /// Serve HTTPS with a certificate from a fresh test CA (see [`Nginx::cert_dir`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Starts nginx and waits until it answers.
    pub fn start(self) -> Nginx {
        let dir = tempfile::Builder::new().prefix("nginx-").tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let auth = match &self.credentials {
            Some(c) => {
                let htpasswd = dir.path().join("htpasswd");
                c.write_htpasswd(&htpasswd);
                format!(
                    "auth_basic \"files\"; auth_basic_user_file {};",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let ca = self.tls.then(|| TestCa::generate(&dir.path().join("tls")));
        let ssl = match &ca {
            Some(ca) => format!(
                "ssl; ssl_certificate {}; ssl_certificate_key {};",
                ca.server_cert.display(),
                ca.server_key.display()
            ),
            None => ";".into(),
        };
        let port = free_port();
        let d = dir.path().display();
        let http = format!(
            "access_log {d}/access.log;
             types {{ }} default_type application/octet-stream;
             server {{
               listen 127.0.0.1:{port} {ssl} root {}; {auth}
               location /private/ {{ if ($http_x_token != \"abc\") {{ return 403; }} }}
               location /redirect/ {{ rewrite ^/redirect/(.*)$ /$1 redirect; }}
               location = /loop {{ return 302 /loop; }}
             }}",
            root.display()
        );
        Nginx::launch(dir, port, ca, &http)
    }
}

/// A running nginx serving [`Nginx::root`].
#[derive(Debug)]
pub struct Nginx {
    dir: TempDir,
    root: PathBuf,
    port: u16,
    process: Child,
    ca: Option<TestCa>,
}

impl Nginx {
    pub fn builder() -> NginxBuilder {
        NginxBuilder::default()
    }

    /// An nginx without authentication.
    pub fn start() -> Nginx {
        Nginx::builder().start()
    }

    /// Starts nginx in `dir` (made by a builder, holding `root/`) on `port` with `http`
    /// as the body of its `http` block (which must set its `access_log`), and waits
    /// until it answers. Temporary paths, the error log and the pid are in `dir`.
    pub(super) fn launch(dir: TempDir, port: u16, ca: Option<TestCa>, http: &str) -> Nginx {
        tools::require("nginx", "nginx");
        let d = dir.path().display();
        let config = format!(
            "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log info;
             events {{ worker_connections 256; }}
             http {{
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
               fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
               {http}
             }}"
        );
        let conf = dir.path().join("nginx.conf");
        fs::write(&conf, config).unwrap();
        let process = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx");
        let root = dir.path().join("root");
        let mut nginx = Nginx {
            dir,
            root,
            port,
            process,
            ca,
        };
        nginx.wait_until_up();
        nginx
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(self.addr()).is_err() {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("nginx exited ({status}): {}", self.error_log());
            }
            assert!(Instant::now() < deadline, "nginx did not start");
            sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `http://127.0.0.1:PORT/NAME` (`https://` with TLS).
    pub fn url(&self, name: &str) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/{name}", self.addr())
    }

    /// The directory holding the CA as `ca.crt`, for `--cert-dir`. Panics without TLS.
    pub fn cert_dir(&self) -> &Path {
        &self
            .ca
            .as_ref()
            .expect("nginx started without TLS")
            .cert_dir
    }

    /// Serves `bytes` as `name` from now on: written beside it, given a modification
    /// time distinct from any earlier version's, then renamed over it.
    pub fn put(&self, name: &str, bytes: &[u8]) {
        let staged = self.dir.path().join("staged");
        fs::write(&staged, bytes).unwrap();
        self.publish(&staged, name);
    }

    /// Serves the file at `path` as `name` (moved, not copied: big files stay one copy).
    pub fn publish(&self, path: &Path, name: &str) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let bump = NEXT.fetch_add(1, Ordering::SeqCst);
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + bump * 10);
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(time).unwrap();
        drop(file);
        let served = self.root.join(name);
        fs::create_dir_all(served.parent().unwrap()).unwrap();
        fs::rename(path, served).unwrap();
    }

    /// Request lines nginx logged (`"GET /x HTTP/1.1" 206 …`).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A server that answers `GET` with the whole file and nothing else (see the module doc).
#[derive(Debug)]
pub struct BareServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareServer {
    /// Serves the files of `root` by name.
    pub fn start(root: &Path) -> BareServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_owned();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let root = root.clone();
                            std::thread::spawn(move || {
                                let _ = serve_bare(client, &root);
                            });
                        }
                        Err(_) => sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        BareServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request per connection: the head is read, the answer written, the socket closed.
fn serve_bare(client: TcpStream, root: &Path) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? <= 2 {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let mut client = client;
    if method != "GET" {
        return client.write_all(
            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let name = path.trim_start_matches('/');
    match fs::read(root.join(name)) {
        Ok(bytes) if !name.contains('/') => {
            write!(
                client,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            )?;
            client.write_all(&bytes)
        }
        _ => client
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    }
}
