//! The accept loop of the relays a test puts in front of a registry
//! ([`super::throttle`], [`super::faults`]): a listener on a free 127.0.0.1 port that
//! serves each connection on its own thread and can close every open one at once.
//!
//! Dropping the [`Acceptor`] closes the open connections, wakes the loop blocked in
//! `accept` and joins it; the connection threads end as their sockets close.

use std::collections::HashMap;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// A running accept loop; stopped on drop.
#[derive(Debug)]
pub struct Acceptor {
    port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    /// The client side of every open connection, by id.
    open: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

impl Acceptor {
    /// Listens on a free 127.0.0.1 port and calls `serve` with each new connection, on
    /// a thread of its own.
    pub fn start(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept(&listener, &shared, Arc::new(serve)))
        };
        Acceptor {
            port,
            shared,
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every open connection, as a flaky network does; new ones are accepted.
    pub fn close_all(&self) {
        for (_, stream) in self.shared.open.lock().unwrap().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.close_all();
        // Wakes the loop blocked in accept().
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    serve: Arc<dyn Fn(TcpStream) + Send + Sync>,
) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(handle) = client.try_clone() else {
            continue;
        };
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        shared.open.lock().unwrap().insert(id, handle);
        let (shared, serve) = (Arc::clone(shared), Arc::clone(&serve));
        thread::spawn(move || {
            serve(client);
            shared.open.lock().unwrap().remove(&id);
        });
    }
}
