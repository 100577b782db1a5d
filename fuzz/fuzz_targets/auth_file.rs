//! Credentials from a containers auth.json / docker config.json on arbitrary bytes:
//! finding a registry's entry (by exact key or normalised URL) and decoding its
//! base64 `user:password` must end in credentials or an error, never panic.
#![no_main]

use bootsource_importer::fuzz;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if names_a_helper(data) {
        return;
    }
    for registry in ["127.0.0.1:5000", "docker.io", "quay.io"] {
        let _ = fuzz::parse_credentials(data, registry);
    }
});

/// Whether the document names a credential helper, which parsing would run as a
/// program. Keys are compared as serde reads them, after JSON unescaping; a document
/// serde cannot read as JSON is skipped too (it never reaches a helper, and its
/// parsing is serde_json's, not ours).
fn names_a_helper(data: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(map)) => map.contains_key("credHelpers") || map.contains_key("credsStore"),
        Ok(_) => false,
        Err(_) => true,
    }
}
