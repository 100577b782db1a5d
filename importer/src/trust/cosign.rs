//! Sigstore (cosign) signatures made with a key: ECDSA P-256 over SHA-256 of the payload.
//!
//! A cosign signature is an OCI layer of media type [`SIGNATURE_MEDIA_TYPE`], whose
//! bytes are the payload ([`super::payload`]) and whose
//! `dev.cosignproject.cosign/signature` annotation is the base64 of the ASN.1 (DER)
//! ECDSA signature. Keys are PEM `PUBLIC KEY` blocks (SubjectPublicKeyInfo), as
//! `cosign generate-key-pair` writes `cosign.pub`. Keyless signing (Fulcio, Rekor) is
//! not implemented: a policy asking for it refuses (see [`super::policy`]).
//!
//! Pure: bytes in, a verdict out; the `p256` crate does the cryptography.

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;

use super::{KeyProblem, SignatureProblem};

/// The media type of a cosign signature layer.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The public keys a `sigstoreSigned` requirement trusts.
#[derive(Debug)]
pub struct PublicKeys {
    keys: Vec<VerifyingKey>,
}

impl PublicKeys {
    /// Reads PEM public keys, one per blob.
    pub fn parse(blobs: &[Vec<u8>]) -> Result<Self, KeyProblem> {
        let keys = blobs
            .iter()
            .map(|blob| {
                let pem = std::str::from_utf8(blob).map_err(|_| KeyProblem::NotP256)?;
                VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| KeyProblem::NotP256)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyProblem::NoKeys);
        }
        Ok(Self { keys })
    }

    /// Checks `base64_signature` over `payload` with each key; the index of the one
    /// that verifies it.
    pub fn verify(
        &self,
        payload: &[u8],
        base64_signature: &str,
    ) -> Result<usize, SignatureProblem> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(base64_signature.trim())
            .map_err(|_| SignatureProblem::MalformedSignature)?;
        let signature =
            DerSignature::from_bytes(&der).map_err(|_| SignatureProblem::MalformedSignature)?;
        self.keys
            .iter()
            .position(|k| k.verify(payload, &signature).is_ok())
            .ok_or(SignatureProblem::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::{EncodePublicKey as _, LineEnding};

    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    fn pem(key: &SigningKey) -> Vec<u8> {
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
            .into_bytes()
    }

    fn sign(key: &SigningKey, payload: &[u8]) -> String {
        let signature: p256::ecdsa::Signature = key.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    #[test]
    fn verifies_with_the_right_key_only() {
        let (a, b) = (key(1), key(2));
        let keys = PublicKeys::parse(&[pem(&b), pem(&a)]).unwrap();
        assert_eq!(keys.verify(b"payload", &sign(&a, b"payload")), Ok(1));
        assert_eq!(
            keys.verify(b"payload!", &sign(&a, b"payload")),
            Err(SignatureProblem::BadSignature)
        );
        let only_b = PublicKeys::parse(&[pem(&b)]).unwrap();
        assert_eq!(
            only_b.verify(b"payload", &sign(&a, b"payload")),
            Err(SignatureProblem::BadSignature)
        );
        assert_eq!(
            only_b.verify(b"payload", "%%"),
            Err(SignatureProblem::MalformedSignature)
        );
    }

    #[test]
    fn refuses_what_is_not_a_p256_public_key() {
        assert_eq!(
            PublicKeys::parse(&[
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_vec()
            ])
            .unwrap_err(),
            KeyProblem::NotP256
        );
        assert_eq!(PublicKeys::parse(&[]).unwrap_err(), KeyProblem::NoKeys);
    }
}
