//! GPG simple signing: an OpenPGP signed message whose literal data is the payload.
//!
//! What skopeo (through gpgme) writes: a compressed data packet holding a one-pass
//! signature, the literal data (the JSON of [`super::payload`]) and the signature. It is
//! accepted when the message holds exactly one signature and that signature verifies
//! with the primary key or a bound subkey of a certificate in the policy's keyring;
//! the signer is then that certificate's primary fingerprint, as containers reports it.
//!
//! Everything is bounded: a signature blob is read at most [`super::MAX_SIGNATURE_BYTES`]
//! and its (decompressed) payload at most [`MAX_PAYLOAD_BYTES`], so a compression bomb
//! costs a few KiB. Pure: bytes in, a verdict out; rpgp does the cryptography.

use std::io::Read;

use pgp::composed::{Deserializable, Message, SignedPublicKey};
use pgp::types::KeyDetails;

use super::payload::MAX_PAYLOAD_BYTES;
use super::{KeyProblem, SignatureProblem};

/// The certificates a `signedBy` requirement trusts.
#[derive(Debug, Default)]
pub struct Keyring {
    certificates: Vec<SignedPublicKey>,
}

/// A verified signature: what it signs and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed payload.
    pub payload: Vec<u8>,
    /// The signing certificate's primary key fingerprint, upper-case hex.
    pub signer: String,
}

impl Keyring {
    /// Reads keyrings: each blob armored or binary, one or more certificates
    /// (`gpg --export`, with or without `--armor`). A certificate whose self-signatures
    /// do not verify is refused.
    pub fn parse(blobs: &[Vec<u8>]) -> Result<Self, KeyProblem> {
        let mut certificates = Vec::new();
        for blob in blobs {
            let (keys, _) =
                SignedPublicKey::from_reader_many(&blob[..]).map_err(|_| KeyProblem::NotOpenPgp)?;
            for key in keys {
                let key = key.map_err(|_| KeyProblem::NotOpenPgp)?;
                key.verify_bindings()
                    .map_err(|_| KeyProblem::BadSelfSignature {
                        fingerprint: hex(key.fingerprint().as_bytes()),
                    })?;
                certificates.push(key);
            }
        }
        if certificates.is_empty() {
            return Err(KeyProblem::NoKeys);
        }
        Ok(Self { certificates })
    }

    /// Verifies `signature` and returns its payload and signer.
    pub fn verify(&self, signature: &[u8]) -> Result<Verified, SignatureProblem> {
        let (message, payload) = open(signature)?;
        for certificate in &self.certificates {
            let signed_by_primary = message.verify(&certificate.primary_key).is_ok();
            let signed_by_subkey = || {
                certificate
                    .public_subkeys
                    .iter()
                    .any(|s| message.verify(&s.key).is_ok())
            };
            if signed_by_primary || signed_by_subkey() {
                return Ok(Verified {
                    payload,
                    signer: hex(certificate.fingerprint().as_bytes()),
                });
            }
        }
        match issuer(&message) {
            Some(key) if !self.knows(&key) => Err(SignatureProblem::UntrustedKey { key }),
            _ => Err(SignatureProblem::BadSignature),
        }
    }

    /// Whether `issuer` (a fingerprint or key id in hex) names a key of this keyring.
    fn knows(&self, issuer: &str) -> bool {
        self.certificates.iter().any(|c| {
            std::iter::once(hex(c.fingerprint().as_bytes()))
                .chain(
                    c.public_subkeys
                        .iter()
                        .map(|s| hex(s.key.fingerprint().as_bytes())),
                )
                .any(|fingerprint| fingerprint.ends_with(issuer))
        })
    }
}

/// The key a signature claims to be made by and its payload, unverified: for showing
/// who signed an image when the policy holds no key to check it with.
pub fn claimed(signature: &[u8]) -> Result<(Option<String>, Vec<u8>), SignatureProblem> {
    let (message, payload) = open(signature)?;
    Ok((issuer(&message), payload))
}

/// Parses the message, decompresses it and reads its payload to the end (the
/// signature can only be checked then), refusing anything but one signature.
fn open(signature: &[u8]) -> Result<(Message<'_>, Vec<u8>), SignatureProblem> {
    if signature.len() > super::MAX_SIGNATURE_BYTES {
        return Err(SignatureProblem::TooLarge);
    }
    let message = Message::from_bytes(signature)
        .and_then(Message::decompress)
        .map_err(|_| SignatureProblem::NotOpenPgp)?;
    let mut message = message;
    let mut payload = Vec::new();
    let limit = u64::try_from(MAX_PAYLOAD_BYTES).expect("a small constant") + 1;
    (&mut message)
        .take(limit)
        .read_to_end(&mut payload)
        .map_err(|_| SignatureProblem::NotOpenPgp)?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(SignatureProblem::PayloadTooLarge);
    }
    match &message {
        Message::Signed { reader, .. } if reader.num_signatures() == 1 => Ok((message, payload)),
        Message::Signed { .. } => Err(SignatureProblem::SignatureCount),
        _ => Err(SignatureProblem::NotOpenPgp),
    }
}

/// The issuer fingerprint (or key id) the signature names, upper-case hex.
fn issuer(message: &Message<'_>) -> Option<String> {
    let Message::Signed { reader, .. } = message else {
        return None;
    };
    let signature = reader.signature(0)?;
    signature
        .issuer_fingerprint()
        .first()
        .map(|f| hex(f.as_bytes()))
        .or_else(|| signature.issuer_key_id().first().map(|k| hex(k.as_ref())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
