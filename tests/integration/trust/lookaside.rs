//! Where signatures are found, as `registries.d` says: a lookaside served over
//! `http://` by nginx (skopeo, reading the same URL, is the oracle), the entry of the
//! most specific namespace winning key by key, and `use-sigstore-attachments` turning
//! cosign signatures on and off per namespace (Debian's skopeo cannot judge sigstore:
//! checked against containers' documented rules, and by what the registry was asked).
//! Also what a lookaside may hold besides good signatures (another key's, garbage,
//! empty files, unknown envelopes, gaps), skopeo again the oracle.

use serde_json::json;

use super::{Case, REPO, check_rows, policy, signed_by};
use crate::common::bootsource::{expect_error, expect_success, serve};
use crate::common::nginx::Nginx;
use crate::common::oci::Artifact as _;
use crate::common::signing::{self, CosignKey, GpgKey};

/// Where a signature of `REPO` lives under a lookaside at `base`.
fn signature_name(base: &str, digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap();
    format!("{base}/{REPO}@sha256={hex}/signature-1")
}

#[derive(Debug)]
struct Row {
    what: &'static str,
    /// `registries.d`, with `{N}` for nginx's `http://HOST:PORT`, `{S}` for the (empty)
    /// file store and `{H}` for the registry.
    registries_d: &'static str,
    accepted: bool,
}

fn rows() -> Vec<Row> {
    let row = |what, registries_d, accepted| Row {
        what,
        registries_d,
        accepted,
    };
    vec![
        row(
            "the default lookaside over http",
            "default-docker:\n  lookaside: {N}/signed\n",
            true,
        ),
        row(
            "a lookaside with another key's signature",
            "default-docker:\n  lookaside: {N}/intruder\n",
            false,
        ),
        row(
            "a lookaside without the signature (404)",
            "default-docker:\n  lookaside: {N}/empty\n",
            false,
        ),
        row(
            "the namespace's lookaside over the default",
            "default-docker:\n  lookaside: file://{S}\ndocker:\n  {H}/os:\n    lookaside: {N}/signed\n",
            true,
        ),
        row(
            "the repository's lookaside over the namespace's",
            "docker:\n  {H}/os:\n    lookaside: {N}/signed\n  {H}/os/img:\n    lookaside: {N}/empty\n",
            false,
        ),
        row(
            "the tag's lookaside over the repository's",
            "docker:\n  {H}/os/img:1:\n    lookaside: {N}/signed\n  {H}/os/img:\n    lookaside: {N}/empty\n",
            true,
        ),
        row(
            "an entry without a lookaside falls through to the default",
            "default-docker:\n  lookaside: {N}/signed\ndocker:\n  {H}/os:\n    use-sigstore-attachments: false\n",
            true,
        ),
    ]
}

#[test]
fn trust_a_lookaside_over_http_chosen_per_namespace_as_in_skopeo() {
    let case = Case::new();
    let (key, intruder) = (GpgKey::generate("vendor"), GpgKey::generate("intruder"));
    let nginx = Nginx::start();
    let digest = case.image.digest();
    let manifest = case.image.manifest.bytes();
    nginx.put(
        &signature_name("signed", digest),
        &key.standalone_sign(manifest, &case.name()),
    );
    nginx.put(
        &signature_name("intruder", digest),
        &intruder.standalone_sign(manifest, &case.name()),
    );
    let base = nginx.url("");
    let base = base.trim_end_matches('/');
    let empty = case.dir.path().join("empty-store");
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    check_rows(
        &rows(),
        |row| row.accepted,
        |row| {
            println!("row: {}", row.what);
            let text = row
                .registries_d
                .replace("{N}", base)
                .replace("{S}", empty.to_str().unwrap())
                .replace("{H}", &case.host());
            case.registries_d(&text);
            case.judge(&policy).0
        },
    );
    let fetched = nginx
        .access_log()
        .lines()
        .filter(|l| l.contains(&format!("GET /{} ", signature_name("signed", digest))))
        .count();
    // Four rows read the signed store over http, each by bootsource and by skopeo.
    assert_eq!(fetched, 8, "{}", nginx.access_log());
}

#[test]
fn trust_sigstore_attachments_are_read_only_where_registries_d_turns_them_on() {
    let case = Case::new();
    let key = CosignKey::generate();
    let host = case.host();
    case.registries_d(&format!(
        "default-docker:\n  lookaside: file://{}\n\
         docker:\n  {host}/os:\n    use-sigstore-attachments: true\n  \
         {host}/os/plain:\n    use-sigstore-attachments: false\n",
        case.store.display()
    ));
    let policy = case.policy(policy(
        json!({"type": "sigstoreSigned", "keyPath": key.public,
               "signedIdentity": {"type": "matchRepository"}}),
        json!({}),
    ));
    let digest = case.image.digest();
    // The same image in three repositories, each signed for its own name.
    let mut sources = Vec::new();
    for repo in [REPO, "os/plain", "vendor/img"] {
        let source = serve(&case.registry, &format!("{repo}:1"), &case.image);
        let name = source.strip_prefix("docker://").unwrap();
        let payload = signing::payload(name, digest, true);
        let signature = key.sign(&payload);
        signing::attach_cosign(&case.registry, repo, digest, &[(payload, signature)]);
        sources.push((repo, source));
    }
    let tag = format!("sha256-{}.sig", digest.strip_prefix("sha256:").unwrap());
    for (repo, source) in &sources {
        let before = case.registry.log().len();
        let output = case.import(source, &policy);
        let asked = case.registry.log()[before..].contains(&format!("/v2/{repo}/manifests/{tag}"));
        if *repo == REPO {
            expect_success(&output, "import under use-sigstore-attachments: true");
            assert!(asked, "{repo}: the signature tag was not read");
        } else {
            expect_error(&output, &["requires a signature"]);
            assert!(
                !asked,
                "{repo}: the signature tag was read with attachments off"
            );
        }
    }
}

/// What a lookaside file holds.
#[derive(Debug, Clone, Copy)]
enum Blob {
    /// The vendor's signature of this image.
    Good,
    /// The same, in containers' newer `\0simple-signing\n` envelope.
    Enveloped,
    /// A valid signature by another key.
    Intruder,
    /// Bytes that are no OpenPGP message.
    Garbage,
    Empty,
    /// An envelope of a format nobody knows.
    UnknownEnvelope,
    /// No file.
    Missing,
}

/// A lookaside holding other things than good signatures: skopeo's verdict and
/// bootsource's agree on each mix.
#[test]
fn trust_bad_lookaside_blobs_beside_a_good_signature_as_in_skopeo() {
    use Blob::*;
    let case = Case::new();
    let (key, intruder) = (GpgKey::generate("vendor"), GpgKey::generate("intruder"));
    let manifest = case.image.manifest.bytes();
    let good = key.standalone_sign(manifest, &case.name());
    let bytes = |blob: Blob| -> Vec<u8> {
        match blob {
            Good => good.clone(),
            Enveloped => [b"\0simple-signing\n".as_slice(), &good].concat(),
            Intruder => intruder.standalone_sign(manifest, &case.name()),
            Garbage => b"<html>not a signature</html>".to_vec(),
            Empty => Vec::new(),
            UnknownEnvelope => b"\0future-format\n{}".to_vec(),
            Missing => unreachable!("not planted"),
        }
    };
    // Signatures 1, 2, …; `Missing` ends the list. A blob that cannot be read as a
    // signature fails the image even beside a good one, as in containers.
    let rows: Vec<(Vec<Blob>, bool)> = vec![
        (vec![Good], true),
        (vec![Enveloped], true),
        (vec![Intruder, Good], true),
        (vec![Good, Missing, Garbage], true),
        (vec![Garbage, Good], false),
        (vec![Good, Garbage], false),
        (vec![Empty, Good], false),
        (vec![UnknownEnvelope, Good], false),
    ];
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    check_rows(
        &rows,
        |(_, accepted)| *accepted,
        |(blobs, _)| {
            let _ = std::fs::remove_dir_all(&case.store);
            for (n, blob) in blobs.iter().enumerate() {
                if !matches!(blob, Missing) {
                    case.plant(case.image.digest(), n + 1, &bytes(*blob));
                }
            }
            case.judge(&policy).0
        },
    );
}
