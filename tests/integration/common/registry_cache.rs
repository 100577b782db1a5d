//! Debian's `nginx` as a fleet's site cache in front of a registry, run from the very
//! file the repository ships (`deploy/nginx/registry-cache.conf`): only the registry's
//! URL, the listening address and the cache directory are replaced, so the test proves
//! the configuration users install.
//!
//! Its access log has one line per request: `"GET /v2/… HTTP/1.1" 200 "RANGE" CACHE START
//! END` (`RANGE` the request's `Range` header or `-`; `CACHE` nginx's cache status:
//! `MISS`, `HIT`, or `-` for what passes through uncached; `START` and `END` in seconds
//! since the epoch, so a test can tell which requests overlapped). A second server,
//! only for the test, reports with `stub_status` how many requests are being served.
//!
//! ```ignore
//! let cache = RegistryCache::start(&origin.url());
//! // [[registry.mirror]] location = "{cache.host_port()}", insecure = true
//! ```

use std::collections::BTreeMap;
use std::fs;

use super::daemon::free_port;
use super::nginx::Nginx;

/// The shipped configuration.
const CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/nginx/registry-cache.conf"
);

/// nginx running the shipped cache configuration.
#[derive(Debug)]
pub struct RegistryCache {
    nginx: Nginx,
    status_port: u16,
    agent: ureq::Agent,
}

/// One line of the cache's access log.
#[derive(Debug, Clone)]
pub struct Served {
    pub method: String,
    pub uri: String,
    pub status: u16,
    /// The request's `Range` header, if any.
    pub range: Option<String>,
    /// `MISS`, `HIT`, … or `-` (not cached).
    pub cache: String,
    /// When the request arrived and when its answer ended, seconds since the epoch.
    pub start: f64,
    pub end: f64,
}

impl RegistryCache {
    /// Starts nginx caching the registry at `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> RegistryCache {
        let dir = tempfile::Builder::new()
            .prefix("nginx-cache-")
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        let (port, status_port) = (free_port(), free_port());
        let shipped = fs::read_to_string(CONF).unwrap();
        let conf = [
            ("https://registry.example.com", upstream.to_owned()),
            ("listen 5000;", format!("listen 127.0.0.1:{port};")),
            ("resolver 192.0.2.53", "resolver 127.0.0.1".to_owned()),
            (
                "/var/cache/nginx/registry",
                dir.path().join("cache").display().to_string(),
            ),
        ]
        .iter()
        .fold(shipped, |conf, (from, to)| {
            assert!(conf.contains(from), "{CONF} no longer has {from:?}");
            conf.replace(from, to)
        });
        let http = format!(
            "log_format cache '\"$request\" $status \"$http_range\" $upstream_cache_status '
                              '$request_time $msec';
             access_log {}/access.log cache;
             {conf}
             server {{ listen 127.0.0.1:{status_port}; location = /status {{ stub_status; }} }}",
            dir.path().display()
        );
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build()
            .new_agent();
        RegistryCache {
            nginx: Nginx::launch(dir, port, None, &http),
            status_port,
            agent,
        }
    }

    /// `127.0.0.1:PORT`: the mirror's `location`.
    pub fn host_port(&self) -> String {
        self.nginx.addr().to_string()
    }

    /// Requests being served now (nginx's `Writing`), not counting this one.
    pub fn in_flight(&self) -> usize {
        let url = format!("http://127.0.0.1:{}/status", self.status_port);
        let text = self
            .agent
            .get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let writing = text
            .split_whitespace()
            .skip_while(|w| *w != "Writing:")
            .nth(1)
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("stub_status: {text}"));
        writing - 1
    }

    /// Every request answered so far.
    pub fn served(&self) -> Vec<Served> {
        self.nginx.access_log().lines().map(parse_line).collect()
    }

    /// Requests answered so far by kind: `"GET blob 200 MISS"`, `"HEAD manifest 200 -"`,
    /// with ` range` added when the request had a `Range` header.
    pub fn tally(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for s in self.served() {
            let ranged = if s.range.is_some() { " range" } else { "" };
            let key = format!(
                "{} {} {} {}{ranged}",
                s.method,
                kind_of(&s.uri),
                s.status,
                s.cache
            );
            *counts.entry(key).or_default() += 1;
        }
        counts
    }
}

/// A registry's front that answers every blob GET with a 307 to the same path at
/// `blobs_at` (`http://127.0.0.1:PORT`), as Docker Hub or Quay send blobs to a CDN, and
/// passes everything else to `registry`. Its access log has the request and status.
pub fn redirecting_front(registry: &str, blobs_at: &str) -> Nginx {
    let dir = tempfile::Builder::new()
        .prefix("nginx-front-")
        .tempdir()
        .unwrap();
    fs::create_dir(dir.path().join("root")).unwrap();
    let port = free_port();
    let http = format!(
        "access_log {}/access.log;
         server {{
           listen 127.0.0.1:{port};
           location ~ /blobs/ {{ return 307 {blobs_at}$request_uri; }}
           location / {{ proxy_pass {registry}; proxy_buffering off; }}
         }}",
        dir.path().display()
    );
    Nginx::launch(dir, port, None, &http)
}

/// `blob`, `manifest`, or the path itself (`/v2/`).
pub fn kind_of(uri: &str) -> &str {
    if uri.contains("/blobs/") {
        "blob"
    } else if uri.contains("/manifests/") {
        "manifest"
    } else {
        uri
    }
}

/// `"GET /v2/x HTTP/1.1" 200 "-" MISS 0.120 1764740000.123`.
fn parse_line(line: &str) -> Served {
    try_parse(line).unwrap_or_else(|| panic!("unexpected access log line: {line}"))
}

fn try_parse(line: &str) -> Option<Served> {
    let mut quoted = line.split('"').skip(1);
    let mut request = quoted.next()?.split_whitespace();
    let status = quoted.next()?.trim().parse().ok()?;
    let range = quoted.next()?;
    let mut rest = quoted.next()?.split_whitespace();
    let cache = rest.next()?.to_owned();
    let took: f64 = rest.next()?.parse().ok()?;
    let end: f64 = rest.next()?.parse().ok()?;
    // Not every request line is HTTP: an `insecure` client first tries TLS (a 400).
    Some(Served {
        method: request.next().unwrap_or("-").to_owned(),
        uri: request.next().unwrap_or("-").to_owned(),
        status,
        range: (range != "-").then(|| range.to_owned()),
        cache,
        start: end - took,
        end,
    })
}
