//! Where log lines go, and in what shape: `--log-format text|json|journal` (the
//! daemon also reads `log_format` from its config; the flag wins).
//!
//! - `text`: one human line per event on stderr (the default on a terminal).
//! - `json`: one JSON object per line on stderr ([`json`]).
//! - `journal`: journald's native protocol, with `PRIORITY` and a field per event field
//!   ([`journal`]). Chosen by default when systemd connected stderr to the journal
//!   (`JOURNAL_STREAM` names stderr's device and inode, as `sd_journal_stream_fd`
//!   documents), so a unit needs no flag.
//!
//! Every format escapes control characters and bidi overrides in every value: an error
//! may quote a registry's answer, which must reach neither a terminal as commands nor a
//! log as lines of its own. `RUST_LOG` overrides the command's default level.

mod fields;
mod journal;
mod json;

use std::path::PathBuf;

use fields::Fields;

pub use crate::config::LogFormat;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the global subscriber: `format`, else journald when stderr is the
/// journal, else text.
pub fn init(format: Option<LogFormat>, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let format = format.unwrap_or_else(|| {
        if stderr_is_the_journal() {
            LogFormat::Journal
        } else {
            LogFormat::Text
        }
    });
    let layer = match format {
        LogFormat::Text => text_layer(),
        LogFormat::Json => json::JsonLines.boxed(),
        LogFormat::Journal => match journal::Journal::new(journal_socket()) {
            Ok(journal) => journal.boxed(),
            Err(_) => text_layer(),
        },
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .init();
}

/// The journal socket: systemd's, unless `BOOTSOURCE_JOURNAL_SOCKET` names another
/// (a test's, or a journal namespace's).
fn journal_socket() -> PathBuf {
    std::env::var_os("BOOTSOURCE_JOURNAL_SOCKET")
        .map_or_else(|| PathBuf::from(journal::SOCKET), PathBuf::from)
}

/// Whether systemd connected stderr to the journal: `JOURNAL_STREAM` is `DEV:INODE` of
/// that stream, and still names stderr (not one inherited by a child of ours).
fn stderr_is_the_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    value.to_str() == Some(&format!("{}:{}", stderr.dev(), stderr.ino()))
}

type BoxedLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

fn text_layer() -> BoxedLayer {
    use std::io::IsTerminal;
    tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .fmt_fields(escaped_fields())
        .boxed()
}

/// An event as the text format shows it after the level: the message, then
/// `name=value` for each field.
fn text_line(fields: &Fields) -> String {
    let mut line = fields.message.clone();
    for (name, value) in &fields.fields {
        line.push_str(&format!(" {name}={value}"));
    }
    line
}

/// Log fields as the default formatter writes them, with control characters escaped.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    use std::fmt::Debug;
    use tracing_subscriber::field::MakeExt as _;
    use tracing_subscriber::fmt::format::{Writer, debug_fn};
    debug_fn(
        |writer: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn Debug| {
            let text = bootsource_importer::escape_controls(&format!("{value:?}"));
            match field.name() {
                "message" => writer.write_str(&text),
                name => write!(writer, "{name}={text}"),
            }
        },
    )
    .delimited(" ")
}
