//! A hostile registry: an HTTP server on 127.0.0.1 that answers every request with a
//! canned response — a status, headers, and a body of any size made on the fly (so a
//! 300 MiB answer costs the test no memory) — one for `HEAD`, one for the rest.
//!
//! It speaks just enough HTTP/1.1 for a client: it reads the request head, answers, and
//! closes the connection. Tests use it for what a real registry never sends: huge
//! manifests, error pages full of terminal escape sequences.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// What every request gets.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `200 OK`, `500 Internal Server Error`, …
    pub status: &'static str,
    /// Extra header lines, `Name: value`.
    pub headers: Vec<String>,
    /// The body repeats this pattern…
    pub pattern: Vec<u8>,
    /// …up to this many bytes.
    pub body_bytes: u64,
    /// Send `Content-Length` (else the body runs until the connection closes, and
    /// the client cannot know its size in advance).
    pub declare_length: bool,
}

/// A running server; stops on drop.
#[derive(Debug)]
pub struct Canned {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Canned {
    /// Starts answering every request with `answer`.
    pub fn start(answer: Answer) -> Canned {
        Self::start_by_method(answer.clone(), answer)
    }

    /// Starts answering `HEAD` with `head` and every other request with `answer`.
    pub fn start_by_method(head: Answer, answer: Answer) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (head, answer) = (head.clone(), answer.clone());
                thread::spawn(move || {
                    let _ = serve(stream, &head, &answer);
                });
            }
        });
        Canned { port, stop }
    }

    /// `docker://127.0.0.1:PORT/{repo_and_tag}`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo_and_tag}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, head: &Answer, other: &Answer) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let is_head = line.starts_with("HEAD ");
    let answer = if is_head { head } else { other };
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let mut out = std::io::BufWriter::new(stream);
    write!(out, "HTTP/1.1 {}\r\n", answer.status)?;
    for header in &answer.headers {
        write!(out, "{header}\r\n")?;
    }
    if answer.declare_length {
        write!(out, "Content-Length: {}\r\n", answer.body_bytes)?;
    }
    write!(out, "Connection: close\r\n\r\n")?;
    let mut left = if is_head { 0 } else { answer.body_bytes };
    let block: Vec<u8> = answer
        .pattern
        .iter()
        .copied()
        .cycle()
        .take(64 << 10)
        .collect();
    while left > 0 {
        let n = usize::try_from(left.min(block.len() as u64)).unwrap();
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()
}
