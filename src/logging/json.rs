//! `--log-format json`: one JSON object a line on stderr, for log shippers (Vector,
//! Fluent Bit, Loki's promtail): `{"timestamp", "level", "message", …fields}`.
//!
//! Field values keep their types (numbers stay numbers); strings are escaped as in
//! every format ([`super::fields`]), and JSON escapes the rest, so one event is always
//! exactly one line.

use std::io::Write as _;

use serde_json::{Map, Value as Json};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};

use super::fields::{Fields, Value};

/// Writes each event as a JSON line on stderr.
#[derive(Debug, Default)]
pub struct JsonLines;

impl<S: Subscriber> Layer<S> for JsonLines {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut line = line(event.metadata().level(), Fields::of(event));
        line.push('\n');
        // A log line that cannot be written has nowhere to be reported.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// The JSON text of one event, without its newline.
pub fn line(level: &tracing::Level, fields: Fields) -> String {
    let mut object = Map::new();
    object.insert(
        "timestamp".into(),
        Json::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    );
    object.insert("level".into(), Json::String(level.as_str().to_owned()));
    object.insert("message".into(), Json::String(fields.message));
    for (name, value) in fields.fields {
        let value = match value {
            Value::Text(t) => Json::String(t),
            Value::Int(n) => Json::from(n),
            Value::Uint(n) => Json::from(n),
            Value::Float(n) => Json::from(n),
            Value::Bool(b) => Json::Bool(b),
        };
        // A field named like ours never replaces ours.
        object.entry(name).or_insert(value);
    }
    Json::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_is_one_line_of_typed_fields() {
        let fields = Fields {
            message: "import failed".into(),
            fields: vec![
                ("source", Value::Text("fedora".into())),
                ("bytes", Value::Uint(42)),
                // What escape_controls made of a registry's "\n\x1b[31mFAKE".
                ("error", Value::Text("\\u{a}\\u{1b}[31mFAKE".into())),
                ("level", Value::Text("forged".into())),
            ],
        };
        let text = line(&tracing::Level::WARN, fields);
        assert!(!text.contains('\n'), "{text}");
        let parsed: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["level"], "WARN");
        assert_eq!(parsed["message"], "import failed");
        assert_eq!(parsed["source"], "fedora");
        assert_eq!(parsed["bytes"], 42);
        assert!(parsed["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
