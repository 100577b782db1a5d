//! What can be wrong with a policy, its keys, a signature or where signatures live.
//!
//! Values, not text: each variant names one problem and carries what was read (a
//! scope, a URL, a key fingerprint), made printable where it came from outside.

use std::path::PathBuf;

/// Why a `policy.json` or `registries.d` could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyProblem {
    /// Not a policy: bad JSON, an unknown key or requirement type, a missing field.
    #[error("it is not a valid policy")]
    Json(#[source] serde_json::Error),
    /// A scope with an empty list of requirements.
    #[error("scope {0:?} has no requirements")]
    NoRequirements(String),
    /// Not exactly one of `keyPath`, `keyPaths`, `keyData` (`keyDatas`).
    #[error("a requirement must name exactly one of keyPath, keyPaths and keyData")]
    KeySources,
    /// `keyData` that is not base64.
    #[error("keyData is not base64")]
    KeyDataNotBase64,
    /// An `oci` scope that is not a clean absolute path (or is `/`).
    #[error("oci scope {0:?} is not a clean absolute path")]
    InvalidOciScope(String),
    /// A `signedIdentity` naming an invalid reference or prefix.
    #[error("{field} {value:?} is not a valid docker reference for it")]
    InvalidReference {
        /// `dockerReference`, `prefix`, …
        field: &'static str,
        /// What the file says.
        value: String,
    },
    /// A `registries.d` file that is not the YAML containers reads.
    #[error("{path}: it is not valid YAML")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: yaml_rust2::ScanError,
    },
    /// A `registries.d` key with a value of the wrong kind.
    #[error("{path}: {key} must be {expected}")]
    YamlShape {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// `a string`, `true or false`, `a mapping`.
        expected: &'static str,
    },
    /// The same `registries.d` entry in two files.
    #[error("{what} is defined both in {first} and {second}")]
    Duplicate {
        /// `default-docker` or the namespace.
        what: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
    /// A lookaside location that is not a `file://`, `http://` or `https://` URL.
    #[error("lookaside {0:?} is not a file://, http:// or https:// URL")]
    LookasideUrl(String),
}

/// Why the keys a requirement names could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// A key file could not be read.
    #[error("cannot read key file {path}: {kind}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        kind: std::io::ErrorKind,
    },
    /// A key path that names no regular file.
    #[error("key file {path} is a {kind}, not a regular file")]
    NotRegularFile {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A key file larger than any key.
    #[error("key file {0} is too large to be a key")]
    TooLarge(PathBuf),
    /// Not an OpenPGP certificate (armored or binary).
    #[error("the GPG keys are not OpenPGP public keys")]
    NotOpenPgp,
    /// A certificate whose self-signatures do not verify.
    #[error("key {fingerprint} has invalid self-signatures")]
    BadSelfSignature {
        /// Its primary fingerprint.
        fingerprint: String,
    },
    /// Not a PEM ECDSA P-256 public key.
    #[error("the sigstore key is not a PEM ECDSA P-256 public key")]
    NotP256,
    /// No key at all.
    #[error("no public keys")]
    NoKeys,
}

/// Why one signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// Larger than any signature.
    #[error("the signature is too large")]
    TooLarge,
    /// Not an OpenPGP signed message.
    #[error("it is not an OpenPGP signed message")]
    NotOpenPgp,
    /// An OpenPGP message with other than one signature.
    #[error("it holds other than exactly one signature")]
    SignatureCount,
    /// A cosign signature annotation that is not base64 DER.
    #[error("its signature is not base64 ASN.1")]
    MalformedSignature,
    /// A cosign layer without its signature annotation.
    #[error("it has no dev.cosignproject.cosign/signature annotation")]
    NoSignatureAnnotation,
    /// Made by a key the requirement does not trust.
    #[error("it is signed by key {key}, which the policy does not trust")]
    UntrustedKey {
        /// The issuer's fingerprint or key id.
        key: String,
    },
    /// The cryptographic check failed: the payload or the signature was altered, or
    /// another key made it.
    #[error("it does not verify (altered, or made by a key the policy does not trust)")]
    BadSignature,
    /// The payload is larger than any payload.
    #[error("its payload is too large")]
    PayloadTooLarge,
    /// The payload is not the JSON containers signs.
    #[error("its payload is not a valid signature payload")]
    MalformedPayload,
    /// The payload is of the other kind (simple signing vs cosign).
    #[error("its payload has the wrong type")]
    WrongPayloadType,
    /// It signs another manifest: another image, or an older version (a replay).
    #[error("it signs manifest {signed}, not {actual}")]
    DigestMismatch {
        /// What the signature names.
        signed: String,
        /// The manifest fetched.
        actual: crate::Digest,
    },
    /// It names a reference the requirement's `signedIdentity` does not accept.
    #[error("it is for {signed}, which signedIdentity does not accept for {image}")]
    IdentityMismatch {
        /// What the signature names.
        signed: String,
        /// The image as judged.
        image: String,
    },
}

/// Why a policy refuses an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A `reject` requirement.
    #[error("the policy rejects every image in this scope")]
    Rejected,
    /// A signature was required and there is none.
    #[error("{requirement} requires a signature, and the image has none")]
    Unsigned {
        /// `signedBy`, `sigstoreSigned`.
        requirement: &'static str,
    },
    /// Signatures exist; none is acceptable.
    #[error("{requirement}: no signature is accepted: {}", numbered(.reasons))]
    NoneAccepted {
        /// `signedBy`, `sigstoreSigned`.
        requirement: &'static str,
        /// Why each signature was refused, in order.
        reasons: Vec<SignatureProblem>,
    },
    /// The requirement's keys cannot be used.
    #[error("{requirement}: {problem}")]
    Keys {
        /// `signedBy`, `sigstoreSigned`.
        requirement: &'static str,
        /// What is wrong with them.
        problem: KeyProblem,
    },
    /// A requirement bootsource (or containers) does not implement.
    #[error("{0} is not supported, so the image cannot be accepted")]
    Unsupported(&'static str),
}

/// A refusal, with the policy and the section that made it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{refusal} (policy {policy}, section {scope})")]
pub struct PolicyRefusal {
    /// Where the policy came from.
    pub policy: String,
    /// The section that applied.
    pub scope: super::Scope,
    /// Why.
    pub refusal: Refusal,
}

fn numbered(reasons: &[SignatureProblem]) -> String {
    reasons
        .iter()
        .enumerate()
        .map(|(i, r)| format!("signature {}: {r}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why an image's signatures could not be gathered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchProblem {
    /// The location is not a usable URL.
    #[error("it is not a file://, http:// or https:// URL")]
    BadUrl,
    /// An empty signature file.
    #[error("the signature is empty")]
    Empty,
    /// A lookaside blob that is neither OpenPGP nor containers' envelope.
    #[error("the signature is in an unknown format")]
    UnknownFormat,
    /// More signatures than any image has.
    #[error("more than {} signatures", super::fetch::MAX_SIGNATURES)]
    TooMany,
    /// A `sha256-….sig` tag that is not an OCI image manifest.
    #[error("the attachment is not an OCI image manifest (content type {0:?})")]
    AttachmentType(Option<String>),
    /// A `sha256-….sig` manifest that does not parse.
    #[error("the attachment manifest is invalid")]
    AttachmentManifest,
}
