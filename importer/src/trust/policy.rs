//! containers' `policy.json`, parsed: which requirements apply to which images.
//!
//! Pure: bytes in, a [`Policy`] out, checked as containers/image checks it — unknown
//! keys, an empty requirement list, a `signedBy` with not exactly one of `keyPath`,
//! `keyPaths`, `keyData`, a `signedIdentity` naming an invalid reference, an `oci`
//! scope that is not a clean absolute path: each is an error naming what is wrong.
//! Keys are *not* read here: as in containers, a key file is read when a requirement
//! that names it is evaluated, so a policy with a missing key for another registry
//! still works for this one. Choosing the requirements for an image is [`super::scope`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use super::PolicyProblem;
use super::reference::{DockerRef, check_remap_prefix};

/// A parsed `policy.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Requirements for images no transport scope matches.
    pub default: Vec<Requirement>,
    /// Per transport (`docker`, `oci`, …): requirements by scope (`""` is the
    /// transport's default).
    pub transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
}

/// One requirement; an image is accepted when every requirement of its scope accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Anything goes.
    InsecureAcceptAnything,
    /// Nothing goes.
    Reject,
    /// A GPG "simple signing" signature by one of these keys.
    SignedBy {
        /// `GPGKeys`, or a key type containers does not implement either.
        key_type: KeyType,
        /// Where the keyring comes from.
        keys: KeySource,
        /// Which signed references are accepted.
        identity: IdentityRule,
    },
    /// A sigstore (cosign) signature by one of these public keys.
    SigstoreSigned {
        /// Public keys (PEM), or a trust root bootsource does not implement.
        keys: SigstoreKeys,
        /// Which signed references are accepted.
        identity: IdentityRule,
    },
    /// `signedBaseLayer`: not implemented by containers either; refuses.
    SignedBaseLayer,
}

/// The `keyType` of a `signedBy` requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum KeyType {
    /// OpenPGP keys: the only type containers implements.
    #[serde(rename = "GPGKeys")]
    GpgKeys,
    /// Reserved by containers, unimplemented there and here.
    #[serde(rename = "signedByGPGKeys")]
    SignedByGpgKeys,
    /// Reserved by containers, unimplemented there and here.
    #[serde(rename = "X509Certificates")]
    X509Certificates,
    /// Reserved by containers, unimplemented there and here.
    #[serde(rename = "signedByX509CAs")]
    SignedByX509Cas,
}

/// Where keys come from: files, or inline data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Key files (`keyPath` is one, `keyPaths` several).
    Paths(Vec<PathBuf>),
    /// Key data given inline (`keyData`, `keyDatas`), base64-decoded.
    Data(Vec<Vec<u8>>),
}

/// The trust root of a `sigstoreSigned` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigstoreKeys {
    /// Public keys.
    Keys(KeySource),
    /// Fulcio certificates, a PKI, or Rekor: not implemented; the requirement refuses.
    Unsupported(&'static str),
}

/// `signedIdentity`: which reference a signature must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityRule {
    /// The same reference as the image's (tag or digest).
    MatchExact,
    /// The same reference, or for a digest reference the same repository (the default).
    MatchRepoDigestOrExact,
    /// The same repository.
    MatchRepository,
    /// Exactly this reference, whatever the image's.
    ExactReference(DockerRef),
    /// This repository, whatever the image's.
    ExactRepository(DockerRef),
    /// `matchRepoDigestOrExact` after replacing `prefix` with `signed_prefix` in the
    /// image's reference (mirrors signed under the vendor's name).
    RemapIdentity {
        /// Host or host/namespace of the image's reference.
        prefix: String,
        /// What the signatures name instead.
        signed_prefix: String,
    },
}

impl Policy {
    /// Parses `policy.json` bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, PolicyProblem> {
        let raw: RawPolicy = serde_json::from_slice(bytes).map_err(PolicyProblem::Json)?;
        let default = requirements(raw.default, "default")?;
        let mut transports = BTreeMap::new();
        for (transport, scopes) in raw.transports {
            let mut parsed = BTreeMap::new();
            for (scope, reqs) in scopes {
                if transport == "oci" && !scope.is_empty() {
                    check_oci_scope(&scope)?;
                }
                let reqs = requirements(reqs, &scope)?;
                parsed.insert(scope, reqs);
            }
            transports.insert(transport, parsed);
        }
        Ok(Self {
            default,
            transports,
        })
    }

    /// The policy that accepts every image: what applies when there is no policy file.
    pub fn accept_anything() -> Self {
        Self {
            default: vec![Requirement::InsecureAcceptAnything],
            transports: BTreeMap::new(),
        }
    }
}

/// An `oci` scope is a clean absolute path other than `/`, as containers requires.
fn check_oci_scope(scope: &str) -> Result<(), PolicyProblem> {
    let clean = scope.starts_with('/')
        && scope != "/"
        && !scope.ends_with('/')
        && scope
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if clean {
        Ok(())
    } else {
        Err(PolicyProblem::InvalidOciScope(scope.to_owned()))
    }
}

fn requirements(raw: Vec<RawRequirement>, scope: &str) -> Result<Vec<Requirement>, PolicyProblem> {
    if raw.is_empty() {
        return Err(PolicyProblem::NoRequirements(scope.to_owned()));
    }
    raw.into_iter().map(RawRequirement::check).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default: Vec<RawRequirement>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<RawRequirement>>>,
}

#[derive(Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum RawRequirement {
    // Struct variants, so that unknown keys beside `type` are refused.
    #[serde(rename = "insecureAcceptAnything")]
    InsecureAcceptAnything {},
    #[serde(rename = "reject")]
    Reject {},
    #[serde(rename = "signedBy", rename_all = "camelCase")]
    SignedBy {
        key_type: KeyType,
        key_path: Option<PathBuf>,
        key_paths: Option<Vec<PathBuf>>,
        key_data: Option<String>,
        signed_identity: Option<RawIdentity>,
    },
    #[serde(rename = "sigstoreSigned")]
    SigstoreSigned(Box<RawSigstore>),
    #[serde(rename = "signedBaseLayer", rename_all = "camelCase")]
    SignedBaseLayer {
        #[allow(dead_code)]
        base_layer_identity: RawIdentity,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSigstore {
    key_path: Option<PathBuf>,
    key_paths: Option<Vec<PathBuf>>,
    key_data: Option<String>,
    key_datas: Option<Vec<String>>,
    fulcio: Option<serde_json::Value>,
    pki: Option<serde_json::Value>,
    rekor_public_key_path: Option<serde_json::Value>,
    rekor_public_key_paths: Option<serde_json::Value>,
    rekor_public_key_data: Option<serde_json::Value>,
    rekor_public_key_datas: Option<serde_json::Value>,
    signed_identity: Option<RawIdentity>,
}

impl RawRequirement {
    fn check(self) -> Result<Requirement, PolicyProblem> {
        Ok(match self {
            Self::InsecureAcceptAnything {} => Requirement::InsecureAcceptAnything,
            Self::Reject {} => Requirement::Reject,
            Self::SignedBy {
                key_type,
                key_path,
                key_paths,
                key_data,
                signed_identity,
            } => Requirement::SignedBy {
                key_type,
                keys: one_key_source(key_path, key_paths, key_data.map(|d| vec![d]), None)?,
                identity: identity(signed_identity)?,
            },
            Self::SigstoreSigned(raw) => {
                let RawSigstore {
                    key_path,
                    key_paths,
                    key_data,
                    key_datas,
                    fulcio,
                    pki,
                    rekor_public_key_path,
                    rekor_public_key_paths,
                    rekor_public_key_data,
                    rekor_public_key_datas,
                    signed_identity,
                } = *raw;
                let rekor = [
                    rekor_public_key_path,
                    rekor_public_key_paths,
                    rekor_public_key_data,
                    rekor_public_key_datas,
                ]
                .iter()
                .any(Option::is_some);
                let keys = match (fulcio.is_some(), pki.is_some(), rekor) {
                    (true, _, _) => SigstoreKeys::Unsupported("fulcio"),
                    (_, true, _) => SigstoreKeys::Unsupported("pki"),
                    (_, _, true) => SigstoreKeys::Unsupported("rekorPublicKey*"),
                    _ => SigstoreKeys::Keys(one_key_source(
                        key_path,
                        key_paths,
                        key_data.map(|d| vec![d]),
                        key_datas,
                    )?),
                };
                Requirement::SigstoreSigned {
                    keys,
                    identity: identity(signed_identity)?,
                }
            }
            Self::SignedBaseLayer { .. } => Requirement::SignedBaseLayer,
        })
    }
}

/// Exactly one of the key fields, as containers insists.
fn one_key_source(
    path: Option<PathBuf>,
    paths: Option<Vec<PathBuf>>,
    data: Option<Vec<String>>,
    datas: Option<Vec<String>>,
) -> Result<KeySource, PolicyProblem> {
    let given = [
        path.is_some(),
        paths.is_some(),
        data.is_some(),
        datas.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(PolicyProblem::KeySources);
    }
    if let Some(path) = path {
        return Ok(KeySource::Paths(vec![path]));
    }
    if let Some(paths) = paths {
        return Ok(KeySource::Paths(paths));
    }
    let encoded = data.or(datas).unwrap_or_default();
    encoded
        .iter()
        .map(|d| {
            base64::engine::general_purpose::STANDARD
                .decode(d)
                .map_err(|_| PolicyProblem::KeyDataNotBase64)
        })
        .collect::<Result<_, _>>()
        .map(KeySource::Data)
}

#[derive(Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum RawIdentity {
    #[serde(rename = "matchExact")]
    MatchExact {},
    #[serde(rename = "matchRepoDigestOrExact")]
    MatchRepoDigestOrExact {},
    #[serde(rename = "matchRepository")]
    MatchRepository {},
    #[serde(rename = "exactReference", rename_all = "camelCase")]
    ExactReference { docker_reference: String },
    #[serde(rename = "exactRepository", rename_all = "camelCase")]
    ExactRepository { docker_repository: String },
    #[serde(rename = "remapIdentity", rename_all = "camelCase")]
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

fn identity(raw: Option<RawIdentity>) -> Result<IdentityRule, PolicyProblem> {
    let invalid = |field: &'static str, value: &str| PolicyProblem::InvalidReference {
        field,
        value: value.to_owned(),
    };
    Ok(match raw {
        None | Some(RawIdentity::MatchRepoDigestOrExact {}) => IdentityRule::MatchRepoDigestOrExact,
        Some(RawIdentity::MatchExact {}) => IdentityRule::MatchExact,
        Some(RawIdentity::MatchRepository {}) => IdentityRule::MatchRepository,
        Some(RawIdentity::ExactReference { docker_reference }) => {
            let r = DockerRef::parse(&docker_reference)
                .filter(|r| !r.is_name_only())
                .ok_or_else(|| invalid("dockerReference", &docker_reference))?;
            IdentityRule::ExactReference(r)
        }
        Some(RawIdentity::ExactRepository { docker_repository }) => {
            let r = DockerRef::parse(&docker_repository)
                .ok_or_else(|| invalid("dockerRepository", &docker_repository))?;
            IdentityRule::ExactRepository(r)
        }
        Some(RawIdentity::RemapIdentity {
            prefix,
            signed_prefix,
        }) => {
            for (field, value) in [("prefix", &prefix), ("signedPrefix", &signed_prefix)] {
                if !check_remap_prefix(value) {
                    return Err(invalid(field, value));
                }
            }
            IdentityRule::RemapIdentity {
                prefix,
                signed_prefix,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyProblem> {
        Policy::parse(text.as_bytes())
    }

    #[test]
    fn reads_the_policy_podman_ships_and_a_signed_scope() {
        let p = parse(
            r#"{"default":[{"type":"insecureAcceptAnything"}],
                "transports":{"docker-daemon":{"":[{"type":"insecureAcceptAnything"}]},
                  "docker":{"quay.io/vendor":[{"type":"signedBy","keyType":"GPGKeys",
                    "keyPath":"/etc/pki/vendor.gpg"}],
                    "quay.io/mirror":[{"type":"sigstoreSigned","keyData":"cGVt",
                    "signedIdentity":{"type":"remapIdentity","prefix":"quay.io/mirror","signedPrefix":"vendor.io"}}]}}}"#,
        )
        .unwrap();
        assert_eq!(p.default, [Requirement::InsecureAcceptAnything]);
        let docker = &p.transports["docker"];
        assert_eq!(
            docker["quay.io/vendor"],
            [Requirement::SignedBy {
                key_type: KeyType::GpgKeys,
                keys: KeySource::Paths(vec!["/etc/pki/vendor.gpg".into()]),
                identity: IdentityRule::MatchRepoDigestOrExact,
            }]
        );
        let Requirement::SigstoreSigned { keys, identity } = &docker["quay.io/mirror"][0] else {
            panic!("not sigstoreSigned")
        };
        assert_eq!(
            keys,
            &SigstoreKeys::Keys(KeySource::Data(vec![b"pem".to_vec()]))
        );
        assert!(matches!(identity, IdentityRule::RemapIdentity { .. }));
    }

    #[test]
    fn refuses_what_containers_refuses() {
        let bad = [
            r#"{"transports":{}}"#,
            r#"{"default":[]}"#,
            r#"{"default":[{"type":"insecureAcceptAnything"}],"extra":1}"#,
            r#"{"default":[{"type":"accept"}]}"#,
            r#"{"default":[{"type":"reject","keyPath":"/x"}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"matchExact","x":1}}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","keyData":"eA=="}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"PGP","keyPath":"/a"}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyData":"%%"}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"exactReference","dockerReference":"r.io/a"}}]}"#,
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/a","signedIdentity":{"type":"remapIdentity","prefix":"r.io/","signedPrefix":"s.io"}}]}"#,
            r#"{"default":[{"type":"reject"}],"transports":{"oci":{"relative/dir":[{"type":"reject"}]}}}"#,
            r#"{"default":[{"type":"reject"}],"transports":{"oci":{"/a/../b":[{"type":"reject"}]}}}"#,
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{"r.io":[]}}}"#,
        ];
        for text in bad {
            assert!(parse(text).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn identity_forms_parse() {
        let p = parse(
            r#"{"default":[
              {"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"matchExact"}},
              {"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"matchRepository"}},
              {"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{"type":"exactReference","dockerReference":"r.io/a:1"}},
              {"type":"signedBy","keyType":"GPGKeys","keyPaths":["/k","/l"],"signedIdentity":{"type":"exactRepository","dockerRepository":"r.io/a"}},
              {"type":"sigstoreSigned","keyPath":"/c.pub","fulcio":{}}]}"#,
        )
        .unwrap();
        let identities: Vec<_> = p
            .default
            .iter()
            .map(|r| match r {
                Requirement::SignedBy { identity, .. }
                | Requirement::SigstoreSigned { identity, .. } => identity.clone(),
                _ => panic!("unexpected {r:?}"),
            })
            .collect();
        assert_eq!(identities[0], IdentityRule::MatchExact);
        assert_eq!(identities[1], IdentityRule::MatchRepository);
        assert!(
            matches!(&identities[2], IdentityRule::ExactReference(r) if r.to_string() == "r.io/a:1")
        );
        assert!(matches!(&identities[3], IdentityRule::ExactRepository(r) if r.name() == "r.io/a"));
        assert!(matches!(
            &p.default[4],
            Requirement::SigstoreSigned {
                keys: SigstoreKeys::Unsupported("fulcio"),
                ..
            }
        ));
    }
}
