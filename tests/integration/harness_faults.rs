//! Tests of the fault proxy itself (`common/faults.rs`): that it relays faithfully when
//! told nothing, and that each fault reaches the client exactly as documented, checked
//! on the raw bytes of the answer. No bootsource binary is involved; when these fail,
//! fix the proxy before reading the fault tests of the product.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::bootsource::{disk_tar, image, serve};
use crate::common::client::RegistryClient;
use crate::common::faults::{Chaos, Fault, FaultProxy, When};
use crate::common::oci::LayerType;
use crate::common::registry::Registry;

/// A registry with one small image, the proxy in front, and the layer's digest and bytes.
fn setup() -> (Registry, FaultProxy, String, Vec<u8>) {
    let registry = Registry::start();
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let image = image(&disk_tar("disk.img", &bytes), LayerType::OciTar);
    serve(&registry, "os/img:1", &image);
    let layer = image.layers[0].digest().to_owned();
    let blob = registry.client().get_blob("os/img", &layer).body;
    let proxy = FaultProxy::start(&registry);
    (registry, proxy, layer, blob)
}

/// A raw answer: the head's lines and every body byte until the connection closed.
struct RawAnswer {
    head: Vec<String>,
    body: Vec<u8>,
}

impl RawAnswer {
    fn status(&self) -> u16 {
        self.head[0].split(' ').nth(1).unwrap().parse().unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    fn content_length(&self) -> u64 {
        self.header("content-length").unwrap().parse().unwrap()
    }
}

/// `GET path` with `extra` header lines and `Connection: close`, read to the end of the
/// connection: what a client gets, without a client's opinion of it.
fn raw_get(proxy: &FaultProxy, path: &str, extra: &str) -> RawAnswer {
    raw_request(proxy, "GET", path, extra)
}

/// [`raw_get`] with another method.
fn raw_request(proxy: &FaultProxy, method: &str, path: &str, extra: &str) -> RawAnswer {
    let mut stream = TcpStream::connect(proxy.host_port()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
        proxy.host_port()
    )
    .unwrap();
    let mut all = Vec::new();
    // A cut or a lie ends in a reset as often as in a clean close: keep what came.
    let _ = stream.read_to_end(&mut all);
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let head = String::from_utf8(all[..end].to_vec()).unwrap();
    RawAnswer {
        head: head.lines().map(str::to_owned).collect(),
        body: all[end + 4..].to_vec(),
    }
}

fn blob_path(layer: &str) -> String {
    format!("/v2/os/img/blobs/{layer}")
}

#[test]
fn fault_proxy_relays_faithfully_when_told_nothing() {
    let (registry, proxy, layer, blob) = setup();
    let direct = registry.client();
    let relayed = RegistryClient::new(&proxy.url(), None, None);
    // Several requests on one kept-alive connection (ureq pools them).
    for _ in 0..3 {
        let manifest = relayed.get_manifest("os/img", "1").expect(200, "manifest");
        assert_eq!(manifest.body, direct.get_manifest("os/img", "1").body);
        let head = relayed.head_manifest("os/img", "1").expect(200, "HEAD");
        assert_eq!(head.digest(), manifest.digest());
        assert_eq!(relayed.get_blob("os/img", &layer).body, blob);
    }
    let missing = relayed.get_blob("os/img", &format!("sha256:{}", "0".repeat(64)));
    assert_eq!(missing.status, 404, "errors pass through");
    // distribution 2.8 answers a range past the end with 416 and the blob's length as
    // Content-Length over a short text: relayed as it is, lie included.
    let past_end = format!("Range: bytes={}-\r\n", blob.len());
    let refused = raw_get(&proxy, &blob_path(&layer), &past_end);
    assert_eq!(refused.status(), 416);
    assert_eq!(refused.content_length(), blob.len() as u64);
    assert!(refused.body.len() < blob.len(), "{:?}", refused.body);
    let served = proxy.served();
    assert_eq!(served.len(), 11);
    assert!(served.iter().all(|s| s.fault.is_none()), "{served:?}");
    assert_eq!(proxy.injected(), 0);
}

#[test]
fn fault_proxy_cuts_refuses_and_rate_limits_as_planned() {
    let (_registry, proxy, layer, blob) = setup();
    let path = blob_path(&layer);
    proxy.add(When::get("/blobs/").skip(1), Fault::CutAfter(1000));
    proxy.add(When::get("/blobs/").times(2), Fault::Status(503));
    proxy.add(
        When::get("/blobs/"),
        Fault::TooManyRequests {
            retry_after_secs: 7,
        },
    );

    // The cut rule lets the first request pass on to the 503 rule; it takes the
    // second; the 503 rule the third.
    let assert_refused = |refused: RawAnswer| {
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.body.len() as u64, refused.content_length());
    };
    assert_refused(raw_get(&proxy, &path, ""));
    // The cut: the true length is declared, 1000 bytes arrive.
    let cut = raw_get(&proxy, &path, "");
    assert_eq!(cut.status(), 200);
    assert_eq!(cut.content_length(), blob.len() as u64);
    assert_eq!(cut.body, blob[..1000]);
    assert_refused(raw_get(&proxy, &path, ""));
    // 429 with Retry-After and the registry's error envelope.
    let limited = raw_get(&proxy, &path, "");
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert!(String::from_utf8_lossy(&limited.body).contains("TOOMANYREQUESTS"));
    // Every rule is spent: faithful again.
    assert_eq!(raw_get(&proxy, &path, "").body, blob);
    // A refused HEAD declares its body's length and sends none.
    proxy.add(When::head("/manifests/"), Fault::Status(502));
    let head = raw_request(&proxy, "HEAD", "/v2/os/img/manifests/1", "");
    assert_eq!(head.status(), 502);
    assert!(head.content_length() > 0 && head.body.is_empty());
    assert_eq!(
        proxy.injected_by_kind().into_iter().collect::<Vec<_>>(),
        [("429", 1), ("cut", 1), ("status", 3)]
    );
}

#[test]
fn fault_proxy_stalls_alters_resumed_ranges_and_lies_about_lengths() {
    let (_registry, proxy, layer, blob) = setup();
    let path = blob_path(&layer);
    let pause = Duration::from_millis(300);
    proxy.add(When::get("/blobs/"), Fault::Stall { after: 10, pause });
    proxy.add(When::get("/blobs/"), Fault::AlterResumedRange(u64::MAX));
    proxy.add(When::get("/blobs/"), Fault::AlterResumedRange(5));
    proxy.add(When::get("/blobs/"), Fault::LyingLength(10));
    proxy.add(When::get("/blobs/"), Fault::LyingLength(-10));

    let started = Instant::now();
    let stalled = raw_get(&proxy, &path, "");
    assert!(started.elapsed() >= pause, "no stall");
    assert_eq!(stalled.body, blob, "a stall delays, it does not change");

    // A range from 0 is not a resumed range; a range from 100 is, and is inverted.
    // (Lying-length rules take GETs without a range first: they come after in the plan
    // but the altering rule does not want a request from 0.)
    let lied_longer = raw_get(&proxy, &path, "Range: bytes=0-\r\n");
    assert_eq!(lied_longer.content_length(), blob.len() as u64 + 10);
    assert_eq!(lied_longer.body, blob);
    let altered = raw_get(&proxy, &path, "Range: bytes=100-\r\n");
    assert_eq!(altered.status(), 206);
    let inverted: Vec<u8> = blob[100..].iter().map(|b| !b).collect();
    assert_eq!(altered.body, inverted);
    let partly = raw_get(&proxy, &path, "Range: bytes=100-\r\n");
    assert_eq!(partly.body[..5], inverted[..5]);
    assert_eq!(partly.body[5..], blob[105..]);
    let lied_shorter = raw_get(&proxy, &path, "");
    assert_eq!(lied_shorter.content_length(), blob.len() as u64 - 10);
    assert_eq!(lied_shorter.body, blob, "the whole body follows the lie");
    assert_eq!(proxy.injected(), 5);
    let ranges: Vec<Option<u64>> = proxy.served().iter().map(|s| s.range_start).collect();
    assert_eq!(ranges, [None, Some(0), Some(100), Some(100), None]);
}

#[test]
fn fault_proxy_chaos_is_seeded_and_calm_ends_it() {
    let (_registry, proxy, layer, blob) = setup();
    let path = blob_path(&layer);
    let statuses = |proxy: &FaultProxy| -> Vec<u16> {
        (0..20)
            .map(|_| raw_get(proxy, &path, "").status())
            .collect()
    };
    let chaos = Chaos {
        seed: 42,
        one_in: 3,
        faults: vec![Fault::Status(500), Fault::Status(502)],
    };
    proxy.chaos(chaos.clone());
    let first = statuses(&proxy);
    proxy.chaos(chaos);
    assert_eq!(statuses(&proxy), first, "the same seed, the same faults");
    let faulty = first.iter().filter(|&&s| s != 200).count();
    assert!(
        (1..20).contains(&faulty),
        "one in three should fail: {first:?}"
    );
    assert_eq!(proxy.injected(), 2 * faulty);
    proxy.calm();
    assert!(statuses(&proxy).iter().all(|&s| s == 200));
    assert_eq!(raw_get(&proxy, &path, "").body, blob);
}
