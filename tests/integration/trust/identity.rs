//! `signedIdentity`: every form containers knows, each with rows it accepts and rows it
//! refuses, judged by bootsource and by skopeo with the same policy. A row names the
//! rule, how the image is pulled (by tag or by digest) and the reference the signature
//! carries; `{H}` in it is the registry's `HOST:PORT`, `{D}` the manifest digest.

use serde_json::{Value, json};

use super::{Case, check_rows, policy, signed_by};
use crate::common::bootsource::serve;
use crate::common::oci::Artifact as _;
use crate::common::signing::GpgKey;

/// How the import names the image.
#[derive(Debug, Clone, Copy)]
enum Pull {
    /// `docker://H/os/img:1`.
    Tag,
    /// `docker://H/os/img@sha256:…`.
    Digest,
    /// `docker://H/os/img`: the `latest` tag.
    Untagged,
}

#[derive(Debug)]
struct Row {
    rule: Value,
    pull: Pull,
    signed: &'static str,
    accepted: bool,
}

fn row(rule: &Value, pull: Pull, signed: &'static str, accepted: bool) -> Row {
    Row {
        rule: rule.clone(),
        pull,
        signed,
        accepted,
    }
}

/// Replaces `{H}` (the registry) and `{D}` (the digest) in `text`.
fn fill(case: &Case, text: &str) -> String {
    text.replace("{H}", &case.host())
        .replace("{D}", case.image.digest())
}

/// Fills `{H}` in every string of a rule.
fn fill_rule(case: &Case, rule: &Value) -> Value {
    match rule {
        Value::String(s) => Value::String(fill(case, s)),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), fill_rule(case, v)))
            .collect(),
        other => other.clone(),
    }
}

fn rows() -> Vec<Row> {
    use Pull::{Digest, Tag, Untagged};
    let repo_digest_or_exact = json!({"type": "matchRepoDigestOrExact"});
    let exact = json!({"type": "matchExact"});
    let repository = json!({"type": "matchRepository"});
    let exact_reference =
        json!({"type": "exactReference", "dockerReference": "vendor.example/os/img:stable"});
    let short_reference = json!({"type": "exactReference", "dockerReference": "vendor/img:1"});
    let exact_repository =
        json!({"type": "exactRepository", "dockerRepository": "vendor.example/os/img"});
    let remap =
        json!({"type": "remapIdentity", "prefix": "{H}/os", "signedPrefix": "vendor.example/os"});
    let remap_elsewhere = json!({"type": "remapIdentity", "prefix": "{H}/mirror", "signedPrefix": "vendor.example/os"});
    let remap_partial = json!({"type": "remapIdentity", "prefix": "{H}/os/im", "signedPrefix": "vendor.example/os/im"});
    let remap_library =
        json!({"type": "remapIdentity", "prefix": "{H}/os", "signedPrefix": "docker.io/library"});
    let remap_short =
        json!({"type": "remapIdentity", "prefix": "{H}/os", "signedPrefix": "docker.io"});
    let remap_unqualified = json!({"type": "remapIdentity", "prefix": "os/img", "signedPrefix": "vendor.example/os/img"});
    let remap_upper =
        json!({"type": "remapIdentity", "prefix": "{H}/os", "signedPrefix": "Vendor.example/os"});
    let remap_host =
        json!({"type": "remapIdentity", "prefix": "127.0.0.1", "signedPrefix": "vendor.example"});
    vec![
        row(&repo_digest_or_exact, Tag, "{H}/os/img:1", true),
        row(&repo_digest_or_exact, Tag, "{H}/os/img:2", false),
        row(&repo_digest_or_exact, Tag, "{H}/os/img", false),
        row(&repo_digest_or_exact, Digest, "{H}/os/img:2", true),
        row(&repo_digest_or_exact, Digest, "{H}/os/other:1", false),
        row(&repo_digest_or_exact, Tag, "{H}/os/img:1@{D}", false),
        row(&repo_digest_or_exact, Tag, "{H}/os/IMG:1", false),
        row(&repo_digest_or_exact, Tag, "os/img:1", false),
        row(&repo_digest_or_exact, Untagged, "{H}/os/img:latest", true),
        row(&repo_digest_or_exact, Untagged, "{H}/os/img", false),
        row(&exact, Tag, "{H}/os/img:1", true),
        row(&exact, Tag, "{H}/os/img@{D}", false),
        row(&exact, Digest, "{H}/os/img:1", false),
        row(&exact, Digest, "{H}/os/img@{D}", true),
        row(&exact, Digest, "{H}/os/img:1@{D}", false),
        row(&exact, Untagged, "{H}/os/img:latest", true),
        row(&repository, Tag, "{H}/os/img:2", true),
        row(&repository, Tag, "{H}/os/img", true),
        row(&repository, Digest, "{H}/os/img:2", true),
        row(&repository, Tag, "{H}/os/other:1", false),
        row(&repository, Tag, "{H}/os/img:1@{D}", true),
        row(&repository, Untagged, "{H}/os/img:7", true),
        row(&exact_reference, Tag, "vendor.example/os/img:stable", true),
        row(
            &exact_reference,
            Digest,
            "vendor.example/os/img:stable",
            true,
        ),
        row(&exact_reference, Tag, "{H}/os/img:1", false),
        row(&exact_reference, Tag, "vendor.example/os/img:latest", false),
        row(&short_reference, Tag, "docker.io/vendor/img:1", true),
        row(&short_reference, Tag, "vendor/img:2", false),
        row(&exact_repository, Tag, "vendor.example/os/img:any", true),
        row(&exact_repository, Tag, "vendor.example/os/img", true),
        row(&exact_repository, Tag, "vendor.example/os/other:1", false),
        row(&remap, Tag, "vendor.example/os/img:1", true),
        row(&remap, Tag, "vendor.example/os/img:2", false),
        row(&remap, Tag, "{H}/os/img:1", false),
        row(&remap, Digest, "vendor.example/os/img:9", true),
        row(&remap_elsewhere, Tag, "{H}/os/img:1", true),
        row(&remap_elsewhere, Tag, "vendor.example/os/img:1", false),
        row(&remap, Untagged, "vendor.example/os/img:latest", true),
        // Remapped into Docker Hub: the result must be written in full.
        row(&remap_library, Tag, "img:1", true),
        row(&remap_library, Tag, "docker.io/library/img:1", true),
        row(&remap_short, Tag, "docker.io/library/img:1", false),
        row(&remap_short, Tag, "docker.io/img:1", false),
        row(&remap_partial, Tag, "vendor.example/os/img:1", false),
        // A prefix without a host is valid and never matches a (normalised) name.
        row(&remap_unqualified, Tag, "{H}/os/img:1", true),
        row(&remap_unqualified, Tag, "vendor.example/os/img:1", false),
        // Hosts are not case-folded.
        row(&remap_upper, Tag, "Vendor.example/os/img:1", true),
        row(&remap_upper, Tag, "vendor.example/os/img:1", false),
        row(&remap_partial, Tag, "{H}/os/img:1", true),
        // A host prefix does not take the port along: `127.0.0.1` is not remapped
        // in `127.0.0.1:PORT/…`, which is then matched as it is.
        row(&remap_host, Tag, "vendor.example:{P}/os/img:1", false),
        row(&remap_host, Tag, "{H}/os/img:1", true),
    ]
}

#[test]
fn trust_every_signed_identity_form_agrees_with_skopeo() {
    let case = Case::new();
    serve(
        &case.registry,
        &format!("{}:latest", super::REPO),
        &case.image,
    );
    let key = GpgKey::generate("vendor");
    let port = case.host().rsplit_once(':').unwrap().1.to_owned();
    check_rows(
        &rows(),
        |row| row.accepted,
        |row| {
            let mut requirement = signed_by(&key.public);
            requirement["signedIdentity"] = fill_rule(&case, &row.rule);
            let policy = case.policy(policy(requirement, json!({})));
            let signed = fill(&case, row.signed).replace("{P}", &port);
            let signature = key.standalone_sign(case.image.manifest.bytes(), &signed);
            case.plant(case.image.digest(), 1, &signature);
            let source = match row.pull {
                Pull::Tag => case.source.clone(),
                Pull::Digest => case.by_digest(),
                Pull::Untagged => format!("docker://{}/{}", case.host(), super::REPO),
            };
            case.judge_source(&source, &policy).0
        },
    );
}
