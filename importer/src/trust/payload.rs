//! The JSON a signature signs: which image (manifest digest) under which name.
//!
//! Simple signing (`atomic container signature`) and cosign (`cosign container image
//! signature`) share one shape:
//!
//! ```json
//! {"critical": {"type": "…", "image": {"docker-manifest-digest": "sha256:…"},
//!               "identity": {"docker-reference": "host/repo:tag"}},
//!  "optional": {"creator": "…", "timestamp": 1700000000}}
//! ```
//!
//! Parsed strictly, as containers parses it: `critical` holds exactly these keys, no
//! key twice; `optional` may hold anything (cosign writes `null`). Only what a
//! signature proves is kept. Pure.

use serde::Deserialize;

use super::SignatureProblem;

/// Payloads larger than this are not signatures (real ones are a few hundred bytes).
pub const MAX_PAYLOAD_BYTES: usize = 64 << 10;

/// Which kind of payload is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// GPG simple signing.
    SimpleSigning,
    /// A cosign signature.
    Cosign,
}

impl PayloadKind {
    fn type_name(self) -> &'static str {
        match self {
            Self::SimpleSigning => "atomic container signature",
            Self::Cosign => "cosign container image signature",
        }
    }
}

/// What a (verified) payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `critical.image.docker-manifest-digest`, as written.
    pub manifest_digest: String,
    /// `critical.identity.docker-reference`, as written.
    pub docker_reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    critical: Critical,
    #[allow(dead_code)]
    optional: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
    identity: Identity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    reference: String,
}

/// Parses a payload of `kind`.
pub fn parse(bytes: &[u8], kind: PayloadKind) -> Result<Claims, SignatureProblem> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(SignatureProblem::PayloadTooLarge);
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|_| SignatureProblem::MalformedPayload)?;
    if raw.critical.kind != kind.type_name() {
        return Err(SignatureProblem::WrongPayloadType);
    }
    Ok(Claims {
        manifest_digest: raw.critical.image.digest,
        docker_reference: raw.critical.identity.reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &str = r#"{"critical":{"identity":{"docker-reference":"r.io/a:1"},
        "image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},
        "optional":{"creator":"skopeo","timestamp":1}}"#;

    #[test]
    fn reads_what_skopeo_and_cosign_write() {
        let c = parse(SIMPLE.as_bytes(), PayloadKind::SimpleSigning).unwrap();
        assert_eq!(c.docker_reference, "r.io/a:1");
        assert_eq!(c.manifest_digest, "sha256:00");
        let cosign = SIMPLE
            .replace(
                "atomic container signature",
                "cosign container image signature",
            )
            .replace(r#"{"creator":"skopeo","timestamp":1}"#, "null");
        assert!(parse(cosign.as_bytes(), PayloadKind::Cosign).is_ok());
    }

    #[test]
    fn strict_where_containers_is_strict() {
        assert_eq!(
            parse(SIMPLE.as_bytes(), PayloadKind::Cosign),
            Err(SignatureProblem::WrongPayloadType)
        );
        for bad in [
            SIMPLE.replace(r#""type""#, r#""extra":1,"type""#),
            SIMPLE.replace(r#"{"critical""#, r#"{"critical":{},"critical""#),
            SIMPLE.replace("docker-reference", "docker-ref"),
            "[]".to_owned(),
        ] {
            assert_eq!(
                parse(bad.as_bytes(), PayloadKind::SimpleSigning),
                Err(SignatureProblem::MalformedPayload),
                "{bad}"
            );
        }
    }
}
