//! Reading what a registry says, with every byte counted before it is kept.
//!
//! Nothing from a registry is buffered whole: a body is read chunk by chunk up to its
//! cap (manifests 4 MiB, tokens 64 KiB, error bodies 16 KiB) and refused past it, so an
//! endless or huge answer costs at most the cap. An error body is reduced to the
//! registry's own error codes and its first message, and anything a server says that
//! may reach a log, `status` or a terminal is made printable first ([`printable`]):
//! control characters are escaped and the text is cut to a few hundred characters.

use bytes::{Bytes, BytesMut};
use reqwest::Response;
use serde::Deserialize;

use super::RegistryError;
pub(crate) use crate::text::printable;

/// Error bodies read at most (the rest is not read).
const ERROR_BODY_BYTES: usize = 16 << 10;
/// Characters kept of a server's message.
const MESSAGE_CHARS: usize = 300;
/// Error codes kept of an error envelope.
const MAX_CODES: usize = 4;

/// Reads a successful response's body, refusing it past `limit` bytes.
pub(crate) async fn read_capped(
    mut response: Response,
    limit: usize,
    what: &'static str,
) -> Result<Bytes, RegistryError> {
    let url = printable(response.url().as_str(), MESSAGE_CHARS);
    let too_large = || RegistryError::TooLarge {
        url: url.clone(),
        what,
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|source| RegistryError::Transport {
            url: url.clone(),
            source,
        })?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Passes a successful response through; turns any other into [`RegistryError::Status`]
/// with the registry's codes, message and `Retry-After`, read within their caps.
pub(crate) async fn check(response: Response) -> Result<Response, RegistryError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let url = printable(response.url().as_str(), MESSAGE_CHARS);
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|v| printable(v, 64));
    // A body that breaks off or runs past the cap still says what it said so far.
    let body = read_prefix(response, ERROR_BODY_BYTES).await;
    let (codes, message) = summarise(&body);
    Err(RegistryError::Status {
        url,
        status: status.as_u16(),
        codes,
        message,
        retry_after,
    })
}

/// At most `limit` bytes of the body, whatever happens after them.
async fn read_prefix(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - body.len());
                body.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

#[derive(Deserialize)]
struct Envelope {
    errors: Vec<EnvelopeError>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The error codes and first message of an OCI error envelope, or the body's first
/// characters when it is not one; everything printable.
pub(super) fn summarise(body: &[u8]) -> (Vec<String>, String) {
    match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => {
            let codes = envelope
                .errors
                .iter()
                .take(MAX_CODES)
                .map(|e| printable(&e.code, 64))
                .collect();
            let message = envelope
                .errors
                .first()
                .map(|e| printable(&e.message, MESSAGE_CHARS))
                .unwrap_or_default();
            (codes, message)
        }
        Err(_) => (
            Vec::new(),
            printable(&String::from_utf8_lossy(body), MESSAGE_CHARS),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_newlines_are_escaped_and_long_text_is_cut() {
        assert_eq!(
            printable("a\u{1b}[31mred\nx", 100),
            "a\\u{1b}[31mred\\u{a}x"
        );
        let long = "x".repeat(1000);
        let cut = printable(&long, 10);
        assert_eq!(cut.chars().count(), 11);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn envelopes_give_codes_and_the_first_message() {
        let (codes, message) = summarise(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"X\u001b"}]}"#,
        );
        assert_eq!(codes, ["MANIFEST_UNKNOWN", "X\\u{1b}"]);
        assert_eq!(message, "manifest unknown");
        let (codes, message) = summarise(b"<html>502 Bad Gateway</html>");
        assert!(codes.is_empty());
        assert_eq!(message, "<html>502 Bad Gateway</html>");
    }
}
