//! Logging straight to journald under systemd, with its native protocol: one datagram
//! per event on `/run/systemd/journal/socket`, made of `KEY=value` lines.
//!
//! `PRIORITY` follows the level (error 3, warn 4, info 6, debug and trace 7), so
//! `journalctl -p warning -u bootsource` shows what needs a person; every field of the
//! event becomes a journal field of its own (`SOURCE=fedora`, `DIGEST=sha256:…`,
//! for `journalctl SOURCE=fedora`), and `MESSAGE` reads like the text format.
//! Values are escaped ([`super::fields`]), so none holds a newline and the simple
//! `KEY=value` form always applies; each is cut to [`MAX_VALUE`] bytes so a datagram
//! stays far below the socket's buffer (no memfd hand-over needed). When the socket
//! cannot be reached the line goes to stderr instead, which systemd also collects.
//!
//! Written by hand rather than with `tracing-journald`: the protocol is a few lines,
//! and the fields must pass through the same escaping as every other format.

use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::fields::Fields;

/// systemd's native journal socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";
/// The longest value sent, in bytes (cut at a character boundary).
const MAX_VALUE: usize = 16 << 10;

/// Sends each event to journald.
#[derive(Debug)]
pub struct Journal {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Journal {
    /// A sender to the journal socket at `path`.
    pub fn new(path: PathBuf) -> std::io::Result<Self> {
        Ok(Self {
            socket: UnixDatagram::unbound()?,
            path,
        })
    }
}

impl<S: Subscriber> Layer<S> for Journal {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        let fields = Fields::of(event);
        let datagram = datagram(level, &fields);
        if self.socket.send_to(&datagram, &self.path).is_err() {
            let line = format!("{} {}\n", level, super::text_line(&fields));
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// syslog's priority for a level.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// The native-protocol datagram of one event.
fn datagram(level: Level, fields: &Fields) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |key: &str, value: &str| {
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(cut(value).as_bytes());
        out.push(b'\n');
    };
    put("PRIORITY", &priority(level).to_string());
    put("SYSLOG_IDENTIFIER", "bootsource");
    put("MESSAGE", &super::text_line(fields));
    let ours = ["PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE"];
    for (name, value) in &fields.fields {
        let key = key(name);
        if !key.is_empty() && !ours.contains(&key.as_str()) {
            put(&key, &value.to_string());
        }
    }
    out
}

/// A journal field name for a tracing field: upper case, `[A-Z0-9_]`, not starting
/// with `_` (those are journald's own, trusted fields), at most 64 bytes.
fn key(name: &str) -> String {
    let key: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        })
        .collect();
    let key = key.trim_start_matches(|c: char| c == '_' || c.is_ascii_digit());
    key.chars().take(64).collect()
}

fn cut(value: &str) -> &str {
    if value.len() <= MAX_VALUE {
        return value;
    }
    let mut end = MAX_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::super::fields::Value;
    use super::*;

    #[test]
    fn a_datagram_has_priority_identifier_message_and_fields() {
        let fields = Fields {
            message: "import failed".into(),
            fields: vec![
                ("source", Value::Text("fedora".into())),
                ("bytes", Value::Uint(7)),
                ("_hostname", Value::Text("forged".into())),
                ("message_id", Value::Text("x".repeat(MAX_VALUE + 10))),
            ],
        };
        let text = String::from_utf8(datagram(Level::ERROR, &fields)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "PRIORITY=3");
        assert_eq!(lines[1], "SYSLOG_IDENTIFIER=bootsource");
        assert!(
            lines[2].starts_with("MESSAGE=import failed source=fedora bytes=7"),
            "{text}"
        );
        assert!(lines.contains(&"SOURCE=fedora"), "{text}");
        assert!(lines.contains(&"BYTES=7"), "{text}");
        assert!(
            lines.contains(&"HOSTNAME=forged"),
            "a trusted field was forged: {text}"
        );
        assert!(lines.iter().all(|l| l.len() <= MAX_VALUE + 64), "{text}");
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(key("9x-y.z"), "X_Y_Z");
    }
}
