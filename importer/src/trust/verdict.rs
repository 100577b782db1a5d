//! What a policy decided about an image, and what each signature showed: the answer
//! `inspect` prints and an import refusal carries.

use serde::Serialize;

use super::problem::Refusal;
use super::scope::Scope;

/// A policy's decision for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Where the policy came from (a path, or that there is none).
    pub policy: String,
    /// The policy section that applied.
    pub scope: Scope,
    /// Whether every requirement of that section accepts the image.
    pub accepted: bool,
    /// Why not, if not.
    #[serde(serialize_with = "display")]
    pub refusal: Option<Refusal>,
    /// Every signature found, in the order they were found.
    pub signatures: Vec<SignatureInfo>,
}

/// One signature, as far as it could be read and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureInfo {
    /// `simple-signing` (GPG) or `sigstore` (cosign).
    pub format: &'static str,
    /// Where it was found.
    pub location: String,
    /// Who signed it: a GPG key fingerprint, or the policy's cosign key. Claimed only
    /// (the key it names) unless `verified`.
    pub signer: Option<String>,
    /// Whether a key of the policy verified it and it fits this image.
    pub verified: bool,
    /// The reference it signs (`critical.identity.docker-reference`).
    pub identity: Option<String>,
    /// The manifest digest it signs.
    pub manifest_digest: Option<String>,
    /// Why a requirement did not accept it.
    pub problem: Option<String>,
}

fn display<S: serde::Serializer>(refusal: &Option<Refusal>, s: S) -> Result<S::Ok, S::Error> {
    match refusal {
        Some(r) => s.serialize_some(&r.to_string()),
        None => s.serialize_none(),
    }
}
