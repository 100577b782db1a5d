//! A network link of a given speed in front of a server, for `benches/link.sh`.
//!
//! ```text
//! link 127.0.0.1:5000 100      # relay to the registry at 100 MB/s; prints the port
//! link 127.0.0.1:5000 100 150000000   # … and cut the first answer past 150 MB, once
//! ```
//!
//! A TCP relay on 127.0.0.1: every connection is forwarded to the server unchanged in
//! both directions, and what the server sends back is paced so that all connections
//! together get at most the rate (MB/s, 10^6 bytes) — one link shared by everything
//! that crosses it, as a node's uplink is. Requests go upstream unpaced (they are
//! small). It knows nothing of HTTP, so a registry, an HTTP file server and curl all
//! see the same link. Runs until killed.
//!
//! With a third argument, the first connection to have carried that many bytes back
//! is closed in the middle of its answer, once: a dropped connection, for the resume
//! bench (`benches/resume.sh`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes forwarded per step: fine enough to pace smoothly at tens of MB/s.
const STEP: usize = 64 << 10;

/// How far behind its schedule the link may fall and still catch up: the depth of its
/// token bucket, as a traffic shaper's burst or a switch's buffer. Without it every
/// late wake-up of the relay thread was link time lost for good, so a client busy on
/// the same cores (an importer inflating on both) got a slower link than an idle one
/// (curl): 3.4-3.5 s against 3.2 s for the same 309 MB at 100 MB/s.
const CATCH_UP: Duration = Duration::from_millis(5);

/// The link's schedule: when the bytes already sent will have crossed it.
struct Link {
    bytes_per_second: f64,
    busy_until: Mutex<Instant>,
    /// Cut the first answer that passes this many bytes.
    cut_after: Option<u64>,
    cut_done: AtomicBool,
}

impl Link {
    /// Whether a connection that has sent `sent` bytes back is to be cut now.
    fn cuts(&self, sent: u64) -> bool {
        self.cut_after.is_some_and(|at| sent >= at) && !self.cut_done.swap(true, Ordering::Relaxed)
    }

    /// Waits until `bytes` more may be sent: each send books the link for
    /// `bytes / rate` after the bookings before it, or after [`CATCH_UP`] ago if the
    /// link has been idle or late since.
    fn pace(&self, bytes: usize) {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second);
        let start = {
            let mut busy = self.busy_until.lock().expect("not poisoned");
            let now = Instant::now();
            let start = (*busy).max(now.checked_sub(CATCH_UP).unwrap_or(now));
            *busy = start + cost;
            start
        };
        let now = Instant::now();
        if start > now {
            std::thread::sleep(start - now);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(upstream), Some(rate)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: link UPSTREAM_ADDR RATE_MB_PER_S [CUT_AFTER_BYTES]");
        std::process::exit(2);
    };
    let upstream: SocketAddr = upstream.parse().expect("UPSTREAM_ADDR like 127.0.0.1:5000");
    let rate: f64 = rate.parse().expect("RATE_MB_PER_S, a number");
    let cut_after = args
        .get(3)
        .map(|n| n.parse().expect("CUT_AFTER_BYTES, a number"));
    let link = Arc::new(Link {
        bytes_per_second: rate * 1e6,
        busy_until: Mutex::new(Instant::now()),
        cut_after,
        cut_done: AtomicBool::new(false),
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1");
    println!("{}", listener.local_addr().expect("bound").port());
    io::stdout().flush().expect("stdout");
    for client in listener.incoming().flatten() {
        let link = Arc::clone(&link);
        std::thread::spawn(move || {
            if let Ok(server) = TcpStream::connect(upstream) {
                relay(client, server, &link);
            }
        });
    }
}

/// Forwards both ways until either side closes.
fn relay(client: TcpStream, server: TcpStream, link: &Link) {
    let _ = client.set_nodelay(true);
    let (Ok(client_in), Ok(server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let requests = std::thread::spawn(move || forward(client_in, server_out, None));
    forward(server, client, Some(link));
    let _ = requests.join();
}

fn forward(mut from: TcpStream, mut to: TcpStream, link: Option<&Link>) {
    let mut buf = vec![0u8; STEP];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(link) = link {
            if link.cuts(sent) {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
            link.pace(n);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
