//! Signatures good and bad: one made by skopeo and accepted; none; another key's; one
//! for another image; a tampered payload; a replayed signature of an older digest; a
//! `reject` scope; an `insecureAcceptAnything` scope under a stricter default; a
//! multi-arch index; cosign signatures (checked against cosign's documented format,
//! which Debian's skopeo cannot judge).

use serde_json::{Value, json};

use super::{
    Case, REPO, anything, disk_image, expect_error_text, policy, refused, reject, signed_by,
};
use crate::common::bootsource::{PLAIN_HTTP, expect_error, expect_success, inspect_json, serve};
use crate::common::disk;
use crate::common::oci::{Artifact as _, Index, Platform, Schema};
use crate::common::signing::{self, CosignKey, GpgKey, lookaside_path, skopeo_sign_copy};

#[test]
fn trust_signed_by_skopeo_is_accepted_and_inspect_names_the_signer() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    skopeo_sign_copy(&key, &case.registries_d, &case.source, false);
    assert!(lookaside_path(&case.store, REPO, case.image.digest(), 1).is_file());
    let policy = case.policy(policy(
        reject(),
        json!({ case.name(): [signed_by(&key.public)] }),
    ));
    assert!(case.judge(&policy).0);

    let json = inspect_json(
        &case.source,
        &[
            PLAIN_HTTP,
            "--policy",
            policy.to_str().unwrap(),
            "--registries-d",
            case.registries_d.to_str().unwrap(),
        ],
    );
    let trust = &json["trust"];
    assert_eq!(trust["accepted"], true, "{json:#}");
    assert_eq!(trust["signatures"][0]["signer"], key.fingerprint.as_str());
    assert_eq!(trust["signatures"][0]["verified"], true);
    assert_eq!(trust["signatures"][0]["identity"], case.name());
}

#[test]
fn trust_unsigned_is_refused() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    refused(&case, &policy, &["requires a signature"]);
}

#[test]
fn trust_another_key_is_refused() {
    let case = Case::new();
    let (vendor, intruder) = (GpgKey::generate("vendor"), GpgKey::generate("intruder"));
    skopeo_sign_copy(&intruder, &case.registries_d, &case.source, false);
    let policy = case.policy(policy(signed_by(&vendor.public), json!({})));
    refused(&case, &policy, &["not trust"]);
}

#[test]
fn trust_a_signature_for_another_image_is_refused() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let other = format!("{}/os/other:1", case.registry.host_port());
    let signature = key.standalone_sign(case.image.manifest.bytes(), &other);
    case.plant(case.image.digest(), 1, &signature);
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    refused(
        &case,
        &policy,
        &["signedIdentity does not accept", "os/other:1"],
    );
}

#[test]
fn trust_a_tampered_payload_is_refused() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    // Signed for another digest, then altered in place to name this image's.
    let honest = signing::payload(&case.name(), &digest_like(case.image.digest()), false);
    let mut signature = key.sign_uncompressed(&honest);
    let at = find(&signature, &digest_like(case.image.digest())).expect("payload in the clear");
    let digest = case.image.digest().as_bytes();
    signature[at..at + digest.len()].copy_from_slice(digest);
    case.plant(case.image.digest(), 1, &signature);
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    refused(&case, &policy, &["does not verify"]);
}

#[test]
fn trust_a_replayed_older_signature_is_refused() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let old = case.image.clone();
    let signature = key.standalone_sign(old.manifest.bytes(), &case.name());
    // Version 2 under the same tag, carrying version 1's (valid) signature.
    let raw2 = case.dir.path().join("v2.raw");
    disk::write_raw_disk(&raw2, 1 << 20, 8);
    let new = disk_image(&raw2, Platform::linux_amd64());
    serve(&case.registry, &format!("{REPO}:1"), &new);
    case.plant(new.digest(), 1, &signature);
    let policy = case.policy(policy(signed_by(&key.public), json!({})));
    let (accepted, stderr) = case.judge(&policy);
    assert!(!accepted);
    expect_error_text(&stderr, &[old.digest(), "not"]);
}

#[test]
fn trust_a_reject_scope_refuses() {
    let case = Case::new();
    let scope = format!("{}/os", case.registry.host_port());
    let policy = case.policy(policy(anything(), json!({ scope: [reject()] })));
    refused(&case, &policy, &["rejects every image"]);
}

#[test]
fn trust_an_accept_anything_scope_under_a_stricter_default() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let policy = case.policy(policy(
        signed_by(&key.public),
        json!({ format!("{}/os/img", case.registry.host_port()): [anything()] }),
    ));
    assert!(case.judge(&policy).0);
    // A narrower scope for another repository does not apply.
    let other = case.policy(policy_for_other(&case, &key));
    assert!(!case.judge(&other).0);
}

fn policy_for_other(case: &Case, key: &GpgKey) -> Value {
    policy(
        signed_by(&key.public),
        json!({ format!("{}/os/other", case.registry.host_port()): [anything()] }),
    )
}

#[test]
fn trust_a_multi_arch_index_signed_with_its_platform_manifests() {
    let case = Case::new();
    let key = GpgKey::generate("vendor");
    let arm = disk_image(&case.raw, Platform::linux_arm64());
    let index = Index::new(Schema::Oci, vec![case.image.clone(), arm]);
    serve(&case.registry, &format!("{REPO}:1"), &index);
    let policy = case.policy(policy(signed_by(&key.public), json!({})));

    // Only the index signed: skopeo checks the platform manifest it copies, and so do we.
    let signature = key.standalone_sign(index.manifest.bytes(), &case.name());
    case.plant(index.digest(), 1, &signature);
    assert!(!case.judge(&policy).0);

    // What `skopeo copy --all --sign-by` makes: the index and every manifest signed.
    skopeo_sign_copy(&key, &case.registries_d, &case.source, true);
    assert!(lookaside_path(&case.store, REPO, case.image.digest(), 1).is_file());
    assert!(case.judge(&policy).0);
}

#[test]
fn trust_cosign_signatures_are_checked_for_key_digest_and_payload() {
    let case = Case::with_sigstore(true);
    let (key, other) = (CosignKey::generate(), CosignKey::generate());
    let sigstore = |key: &CosignKey| {
        policy(
            reject(),
            json!({ case.name(): [{
                "type": "sigstoreSigned", "keyPath": key.public,
                "signedIdentity": {"type": "matchRepository"},
            }] }),
        )
    };
    let digest = case.image.digest();
    let payload = signing::payload(&case.name(), digest, true);
    let signature = key.sign(&payload);
    let attach = |signed: &[(Vec<u8>, String)]| {
        signing::attach_cosign(&case.registry, REPO, digest, signed);
    };
    let import_with = |policy: &Value| case.import(&case.source, &case.policy(policy.clone()));

    // Unsigned.
    expect_error(&import_with(&sigstore(&key)), &["requires a signature"]);
    // Signed with the policy's key.
    attach(&[(payload.clone(), signature.clone())]);
    expect_success(&import_with(&sigstore(&key)), "import");
    // The same signature under a policy trusting another key.
    expect_error(&import_with(&sigstore(&other)), &["does not verify"]);
    // A tampered payload (another identity) with the original signature.
    let tampered = signing::payload(
        &format!("{}/os/evil:1", case.registry.host_port()),
        digest,
        true,
    );
    attach(&[(tampered, signature.clone())]);
    expect_error(&import_with(&sigstore(&key)), &["does not verify"]);
    // A valid signature of another (older) digest, replayed.
    let old = signing::payload(&case.name(), &digest_like(digest), true);
    attach(&[(old.clone(), key.sign(&old))]);
    expect_error(&import_with(&sigstore(&key)), &["signs manifest"]);
}

/// A digest of the same length that is not `digest`.
fn digest_like(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let flipped: String = hex
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    format!("sha256:{flipped}")
}

fn find(haystack: &[u8], needle: &str) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
}
