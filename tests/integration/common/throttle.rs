//! A slow network in front of a real registry: a TCP forwarder on 127.0.0.1 that
//! limits (or holds) the bytes the registry sends back.
//!
//! The daemon tests need an import that is still running when they look at it, kill the
//! daemon or send SIGTERM. On a loopback interface any image small enough to build in a
//! test imports in a second or two, so the daemon talks to the registry through a
//! [`Throttle`] instead: it forwards every byte unchanged in both directions (it knows
//! nothing of HTTP), and paces only the answers, at a rate a test changes at any time.
//! [`Throttle::hold`] stops the answers altogether — a stalled network, which also lets a
//! test look at the node before the daemon can start writing. Dropping the throttle
//! closes every connection.
//!
//! ```ignore
//! let registry = Registry::start();
//! let throttle = Throttle::start(&registry);
//! throttle.set_rate(4 << 20); // 4 MiB/s
//! // image = "docker://{throttle.host_port()}/os/big:1", insecure_registries = [throttle.host_port()]
//! throttle.unlimited();
//! ```

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, sleep};
use std::time::Duration;

use super::acceptor::Acceptor;
use super::registry::Registry;

/// The rate meaning "as fast as the registry sends".
const UNLIMITED: u64 = u64::MAX;
/// The most forwarded in one step; small enough to pace smoothly.
const CHUNK: usize = 16 * 1024;
/// How often a held connection looks whether it may go on.
const HOLD_TICK: Duration = Duration::from_millis(5);

/// A running forwarder; stopped on drop.
#[derive(Debug)]
pub struct Throttle {
    shared: Arc<Shared>,
    acceptor: Acceptor,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    /// Bytes per second sent back to clients; 0 holds them, [`UNLIMITED`] does not pace.
    rate: AtomicU64,
    /// Bytes sent back to clients so far.
    forwarded: AtomicU64,
    /// Connections open now, and the most open at once.
    open: AtomicU64,
    most_open: AtomicU64,
    stop: AtomicBool,
}

impl Throttle {
    /// Forwards a free 127.0.0.1 port to `registry`, unlimited at first.
    pub fn start(registry: &Registry) -> Throttle {
        let shared = Arc::new(Shared {
            upstream: registry.host_port().parse().unwrap(),
            rate: AtomicU64::new(UNLIMITED),
            forwarded: AtomicU64::new(0),
            open: AtomicU64::new(0),
            most_open: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            Acceptor::start(move |client| relay(client, &shared))
        };
        Throttle { shared, acceptor }
    }

    /// `127.0.0.1:PORT`: use it in place of the registry's.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.acceptor.port())
    }

    /// `docker://127.0.0.1:PORT/{repo_and_tag}` through the throttle.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host_port())
    }

    /// Sends answers at about `bytes_per_second`.
    pub fn set_rate(&self, bytes_per_second: u64) {
        assert!(bytes_per_second > 0, "use hold() to stop the answers");
        self.shared.rate.store(bytes_per_second, Ordering::SeqCst);
    }

    /// Sends answers as fast as they come.
    pub fn unlimited(&self) {
        self.shared.rate.store(UNLIMITED, Ordering::SeqCst);
    }

    /// Sends nothing back until the rate is set again (requests still go through).
    pub fn hold(&self) {
        self.shared.rate.store(0, Ordering::SeqCst);
    }

    /// Drops every open connection, as a flaky network does; new ones are accepted.
    pub fn cut(&self) {
        self.acceptor.close_all();
    }

    /// Bytes sent back to clients so far.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Client connections open now.
    pub fn open(&self) -> u64 {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// The most client connections that were open at once.
    pub fn most_open(&self) -> u64 {
        self.shared.most_open.load(Ordering::SeqCst)
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        // Held answers give up; the acceptor, dropped next, closes the connections.
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// Forwards one connection both ways until either side closes.
fn relay(client: TcpStream, shared: &Shared) {
    let Ok(server) = TcpStream::connect(shared.upstream) else {
        // The registry is down: the client sees the connection close.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client_in), Ok(server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    thread::spawn(move || requests(client_in, server_out));
    let open = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
    shared.most_open.fetch_max(open, Ordering::SeqCst);
    answers(server, client, shared);
    shared.open.fetch_sub(1, Ordering::SeqCst);
}

/// Client to registry, unpaced.
fn requests(mut client: TcpStream, mut server: TcpStream) {
    let _ = std::io::copy(&mut client, &mut server);
    let _ = server.shutdown(Shutdown::Write);
}

/// Registry to client, paced by the current rate.
fn answers(mut server: TcpStream, mut client: TcpStream, shared: &Shared) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let rate = loop {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            match shared.rate.load(Ordering::SeqCst) {
                0 => sleep(HOLD_TICK),
                rate => break rate,
            }
        };
        let n = match server.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        shared.forwarded.fetch_add(n as u64, Ordering::SeqCst);
        if rate != UNLIMITED {
            let nanos = (n as u64).saturating_mul(1_000_000_000) / rate;
            sleep(Duration::from_nanos(nanos));
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}
