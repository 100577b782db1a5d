//! A real HTTP proxy: Debian's `tinyproxy` on a free 127.0.0.1 port.
//!
//! It runs in the foreground (`-d`) with its log (level Info: one `Request` line per
//! proxied request, one `Connect` per client) in its own temporary directory, so a test
//! can prove that requests went through it. Dropping the [`Proxy`] kills the process.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::tools;

const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `tinyproxy`.
#[derive(Debug)]
pub struct Proxy {
    dir: TempDir,
    port: u16,
    process: Child,
}

impl Proxy {
    /// Starts tinyproxy on a free port and waits until it accepts connections.
    pub fn start() -> Proxy {
        tools::require("tinyproxy", "tinyproxy");
        let dir = tempfile::Builder::new().prefix("proxy-").tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("tinyproxy.conf");
        // No ConnectPort line: CONNECT (HTTPS) is allowed to any port.
        fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogLevel Info\nMaxClients 20\n\
                 Allow 127.0.0.1\nUser nobody\nGroup nogroup\n"
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("tinyproxy.log")).unwrap();
        let process = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tinyproxy: {e}"));
        let mut proxy = Proxy { dir, port, process };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = proxy.process.try_wait().unwrap() {
                panic!("tinyproxy exited with {status}:\n{}", proxy.log());
            }
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not listen within {START_TIMEOUT:?}:\n{}",
                proxy.log()
            );
            sleep(Duration::from_millis(20));
        }
        proxy
    }

    /// `http://127.0.0.1:PORT`, for `HTTP_PROXY` / `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything tinyproxy logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }

    /// The request lines it proxied (`GET http://… HTTP/1.1`, `CONNECT host:port …`).
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("]: Request (file descriptor ").map(|(_, r)| r))
            .filter_map(|r| r.split_once("): ").map(|(_, line)| line.to_owned()))
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
