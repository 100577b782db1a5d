//! One event's fields, collected once for the structured formats (JSON, journald), with
//! every string escaped ([`bootsource_importer::escape_controls`]): text quoted from a
//! registry can start no line of its own, move no cursor and reorder nothing, whatever
//! reads the log.

use std::fmt::Debug;

use tracing::field::{Field, Visit};

/// A field's value as the event recorded it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

/// An event's `message` and its other fields, in the order written.
#[derive(Debug, Default)]
pub struct Fields {
    pub message: String,
    pub fields: Vec<(&'static str, Value)>,
}

impl Fields {
    /// The fields of `event`.
    pub fn of(event: &tracing::Event<'_>) -> Self {
        let mut fields = Self::default();
        event.record(&mut fields);
        fields
    }

    fn push(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::Text(text)) => self.message = text,
            (name, value) => self.fields.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(
            field,
            Value::Text(bootsource_importer::escape_controls(value)),
        );
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let text = bootsource_importer::escape_controls(&format!("{value:?}"));
        self.push(field, Value::Text(text));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::Uint(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(t) => f.write_str(t),
            Self::Int(n) => write!(f, "{n}"),
            Self::Uint(n) => write!(f, "{n}"),
            Self::Float(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}
