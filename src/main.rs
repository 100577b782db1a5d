//! bootsource: keeps golden VM disk images on local storage up to date from container
//! disks. This binary is the edge: argument parsing, logging, and the commands that
//! wire the library crates together.

#![forbid(unsafe_code)]
// Doc comments on the CLI are clap's --help text (`docker://HOST[:PORT]/…`), not rustdoc.
#![allow(rustdoc::broken_intra_doc_links)]

mod cli;
mod commands;
mod daemon;
mod instance;
mod report;
mod state;

use bootsource::{config, human};

use std::process::ExitCode;

use clap::Parser;

/// How long the runtime's leftover threads get once a command is done.
const RUNTIME_STOP: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.command.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli.command));
    // Every command awaits its own work; what is left is a thread stuck in a read that
    // never returns (a FIFO, a hung NFS mount), which must not keep the process alive.
    runtime.shutdown_timeout(RUNTIME_STOP);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::print_error(&e);
            match e.downcast_ref::<commands::Interrupted>() {
                Some(interrupted) => ExitCode::from(interrupted.exit_status()),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the command's default level.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .fmt_fields(escaped_fields())
        .init();
}

/// Log fields as the default formatter writes them, with control characters escaped:
/// an error may quote a registry's answer, which must reach neither a terminal as
/// commands nor the journal as lines of its own.
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
