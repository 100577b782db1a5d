//! Evaluating a scope's requirements against an image's signatures: containers'
//! semantics, as a pure function.
//!
//! Every requirement must accept the image. `signedBy` accepts it when one simple
//! signature verifies with a key of its keyring, signs exactly the manifest being
//! imported (a replayed signature of an older version fails here) and names a
//! reference its `signedIdentity` accepts (a signature for another image fails here);
//! `sigstoreSigned` the same for cosign signatures and its public keys. Keys are loaded
//! through the caller's `load`, only for requirements that are evaluated.

use super::cosign::{PublicKeys, SIGNATURE_MEDIA_TYPE};
use super::fetch::Signature;
use super::gpg::{self, Keyring};
use super::identity;
use super::payload::{self, Claims, PayloadKind};
use super::policy::{IdentityRule, KeySource, KeyType, Requirement, SigstoreKeys};
use super::reference::DockerRef;
use super::verdict::SignatureInfo;
use super::{KeyProblem, Refusal, SignatureProblem};
use crate::Digest;

/// Keys as loaded: a label for messages (a path) and the bytes.
pub type LoadedKeys = Vec<(String, Vec<u8>)>;

/// The image being judged.
#[derive(Debug, Clone)]
pub struct Judged<'a> {
    /// Its docker reference as the user named it (`None` for an `oci:` layout).
    pub intended: Option<&'a DockerRef>,
    /// How it is shown in messages.
    pub shown: String,
    /// The digest of the manifest being imported.
    pub manifest: Digest,
}

/// Evaluates `requirements`; the refusal, if any, and what each signature showed.
pub fn judge(
    requirements: &[Requirement],
    judged: &Judged<'_>,
    signatures: &[Signature],
    load: &dyn Fn(&KeySource) -> Result<LoadedKeys, KeyProblem>,
) -> (Option<Refusal>, Vec<SignatureInfo>) {
    let mut infos: Vec<SignatureInfo> = signatures.iter().map(claimed).collect();
    for requirement in requirements {
        if let Err(refusal) = check(requirement, judged, signatures, &mut infos, load) {
            return (Some(refusal), infos);
        }
    }
    (None, infos)
}

fn check(
    requirement: &Requirement,
    judged: &Judged<'_>,
    signatures: &[Signature],
    infos: &mut [SignatureInfo],
    load: &dyn Fn(&KeySource) -> Result<LoadedKeys, KeyProblem>,
) -> Result<(), Refusal> {
    match requirement {
        Requirement::InsecureAcceptAnything => Ok(()),
        Requirement::Reject => Err(Refusal::Rejected),
        Requirement::SignedBaseLayer => Err(Refusal::Unsupported("signedBaseLayer")),
        Requirement::SignedBy { key_type, .. } if *key_type != KeyType::GpgKeys => Err(
            Refusal::Unsupported("a signedBy keyType other than GPGKeys"),
        ),
        Requirement::SignedBy { keys, identity, .. } => {
            let name = "signedBy";
            let keys = load(keys).map_err(|problem| Refusal::Keys {
                requirement: name,
                problem,
            })?;
            let blobs: Vec<Vec<u8>> = keys.into_iter().map(|(_, b)| b).collect();
            let keyring = Keyring::parse(&blobs).map_err(|problem| Refusal::Keys {
                requirement: name,
                problem,
            })?;
            any_accepted(name, signatures, infos, |signature| match signature {
                Signature::Simple { bytes, .. } => Some(simple(&keyring, bytes, identity, judged)),
                Signature::Sigstore { .. } => None,
            })
        }
        Requirement::SigstoreSigned {
            keys: SigstoreKeys::Unsupported(what),
            ..
        } => Err(Refusal::Unsupported(what)),
        Requirement::SigstoreSigned {
            keys: SigstoreKeys::Keys(keys),
            identity,
        } => {
            let name = "sigstoreSigned";
            let keys = load(keys).map_err(|problem| Refusal::Keys {
                requirement: name,
                problem,
            })?;
            let (labels, blobs): (Vec<String>, Vec<Vec<u8>>) = keys.into_iter().unzip();
            let public = PublicKeys::parse(&blobs).map_err(|problem| Refusal::Keys {
                requirement: name,
                problem,
            })?;
            any_accepted(name, signatures, infos, |signature| match signature {
                Signature::Sigstore {
                    media_type,
                    payload,
                    signature,
                    ..
                } if media_type == SIGNATURE_MEDIA_TYPE => Some(
                    sigstore(&public, payload, signature.as_deref(), identity, judged)
                        .map(|index| labels[index].clone()),
                ),
                _ => None,
            })
        }
    }
}

/// Accepts when `check` accepts one of the signatures it applies to (`Some`).
fn any_accepted(
    requirement: &'static str,
    signatures: &[Signature],
    infos: &mut [SignatureInfo],
    check: impl Fn(&Signature) -> Option<Result<String, SignatureProblem>>,
) -> Result<(), Refusal> {
    let mut reasons = Vec::new();
    for (signature, info) in signatures.iter().zip(infos.iter_mut()) {
        match check(signature) {
            None => {}
            Some(Ok(signer)) => {
                info.signer = Some(signer);
                info.verified = true;
                info.problem = None;
                return Ok(());
            }
            Some(Err(problem)) => {
                info.problem = Some(problem.to_string());
                reasons.push(problem);
            }
        }
    }
    if reasons.is_empty() {
        Err(Refusal::Unsigned { requirement })
    } else {
        Err(Refusal::NoneAccepted {
            requirement,
            reasons,
        })
    }
}

/// A simple signature's signer, if it verifies and fits the image.
fn simple(
    keyring: &Keyring,
    bytes: &[u8],
    rule: &IdentityRule,
    judged: &Judged<'_>,
) -> Result<String, SignatureProblem> {
    let verified = keyring.verify(bytes)?;
    let claims = payload::parse(&verified.payload, PayloadKind::SimpleSigning)?;
    fits(&claims, rule, judged)?;
    Ok(verified.signer)
}

/// The index of the key that made a cosign signature, if it verifies and fits.
fn sigstore(
    keys: &PublicKeys,
    payload: &[u8],
    signature: Option<&str>,
    rule: &IdentityRule,
    judged: &Judged<'_>,
) -> Result<usize, SignatureProblem> {
    let signature = signature.ok_or(SignatureProblem::NoSignatureAnnotation)?;
    let index = keys.verify(payload, signature)?;
    let claims = payload::parse(payload, PayloadKind::Cosign)?;
    fits(&claims, rule, judged)?;
    Ok(index)
}

/// The digest first (a replay fails here), then the identity.
fn fits(claims: &Claims, rule: &IdentityRule, judged: &Judged<'_>) -> Result<(), SignatureProblem> {
    if claims.manifest_digest.parse::<Digest>().ok() != Some(judged.manifest) {
        return Err(SignatureProblem::DigestMismatch {
            signed: crate::printable(&claims.manifest_digest, 100),
            actual: judged.manifest,
        });
    }
    let accepted = DockerRef::parse(&claims.docker_reference)
        .is_some_and(|signed| identity::matches(rule, judged.intended, &signed));
    if accepted {
        Ok(())
    } else {
        Err(SignatureProblem::IdentityMismatch {
            signed: crate::printable(&claims.docker_reference, 200),
            image: judged.shown.clone(),
        })
    }
}

/// What a signature says before anything is checked.
fn claimed(signature: &Signature) -> SignatureInfo {
    let (format, signer, claims) = match signature {
        Signature::Simple { bytes, .. } => {
            let opened = gpg::claimed(bytes);
            let signer = opened.as_ref().ok().and_then(|(issuer, _)| issuer.clone());
            let claims = opened.and_then(|(_, p)| payload::parse(&p, PayloadKind::SimpleSigning));
            ("simple-signing", signer, claims)
        }
        Signature::Sigstore { payload, .. } => (
            "sigstore",
            None,
            payload::parse(payload, PayloadKind::Cosign),
        ),
    };
    let (identity, manifest_digest, problem) = match claims {
        Ok(c) => (
            Some(crate::printable(&c.docker_reference, 200)),
            Some(crate::printable(&c.manifest_digest, 100)),
            None,
        ),
        Err(problem) => (None, None, Some(problem.to_string())),
    };
    SignatureInfo {
        format,
        location: signature.location().to_owned(),
        signer,
        verified: false,
        identity,
        manifest_digest,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::{EncodePublicKey as _, LineEnding};

    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32].into()).unwrap()
    }

    fn payload(reference: &str, digest: &Digest) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes()
    }

    fn cosign(key: &SigningKey, payload: Vec<u8>) -> Signature {
        let signature: p256::ecdsa::Signature = key.sign(&payload);
        Signature::Sigstore {
            location: "r.io/os/img:sha256-x.sig".into(),
            media_type: SIGNATURE_MEDIA_TYPE.into(),
            payload,
            signature: Some(
                base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes()),
            ),
        }
    }

    fn requirement() -> Requirement {
        Requirement::SigstoreSigned {
            keys: SigstoreKeys::Keys(KeySource::Paths(vec!["/k.pub".into()])),
            identity: IdentityRule::MatchRepoDigestOrExact,
        }
    }

    fn load(_: &KeySource) -> Result<LoadedKeys, KeyProblem> {
        let pem = key()
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        Ok(vec![("/k.pub".into(), pem.into_bytes())])
    }

    fn verdict(signatures: &[Signature]) -> Option<Refusal> {
        let intended = DockerRef::parse("r.io/os/img:1").unwrap();
        let judged = Judged {
            intended: Some(&intended),
            shown: "r.io/os/img:1".into(),
            manifest: Digest::of(b"v2"),
        };
        judge(&[requirement()], &judged, signatures, &load).0
    }

    #[test]
    fn accepts_a_matching_signature_and_says_why_others_fail() {
        let now = Digest::of(b"v2");
        assert_eq!(
            verdict(&[cosign(&key(), payload("r.io/os/img:1", &now))]),
            None
        );
        assert_eq!(
            verdict(&[]),
            Some(Refusal::Unsigned {
                requirement: "sigstoreSigned"
            })
        );
        let replayed = cosign(&key(), payload("r.io/os/img:1", &Digest::of(b"v1")));
        let other_image = cosign(&key(), payload("r.io/os/other:1", &now));
        let other_key = cosign(
            &SigningKey::from_bytes(&[9; 32].into()).unwrap(),
            payload("r.io/os/img:1", &now),
        );
        let mut tampered = cosign(&key(), payload("r.io/os/img:1", &now));
        if let Signature::Sigstore { payload, .. } = &mut tampered {
            let text = String::from_utf8(payload.clone()).unwrap();
            *payload = text.replace("img:1", "img:2").into_bytes();
        }
        let Some(Refusal::NoneAccepted { reasons, .. }) =
            verdict(&[replayed, other_image, other_key, tampered])
        else {
            panic!("accepted")
        };
        assert!(matches!(
            reasons[0],
            SignatureProblem::DigestMismatch { .. }
        ));
        assert!(matches!(
            reasons[1],
            SignatureProblem::IdentityMismatch { .. }
        ));
        assert_eq!(reasons[2], SignatureProblem::BadSignature);
        assert_eq!(reasons[3], SignatureProblem::BadSignature);
    }

    #[test]
    fn every_requirement_must_accept() {
        let intended = DockerRef::parse("r.io/os/img:1").unwrap();
        let judged = Judged {
            intended: Some(&intended),
            shown: "r.io/os/img:1".into(),
            manifest: Digest::of(b"v2"),
        };
        let none = |_: &KeySource| -> Result<LoadedKeys, KeyProblem> { Err(KeyProblem::NoKeys) };
        let reqs = [Requirement::InsecureAcceptAnything, Requirement::Reject];
        assert_eq!(judge(&reqs, &judged, &[], &none).0, Some(Refusal::Rejected));
        let reqs = [Requirement::InsecureAcceptAnything];
        assert_eq!(judge(&reqs, &judged, &[], &none).0, None);
        let reqs = [requirement()];
        assert!(matches!(
            judge(&reqs, &judged, &[], &none).0,
            Some(Refusal::Keys { .. })
        ));
    }
}
