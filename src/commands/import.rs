//! `bootsource import SOURCE --to TARGET`: one-shot import with progress and a summary.
//!
//! SIGTERM and SIGINT cancel the import (the importer removes its partial target) and
//! end the command with [`Interrupted`]: a message, and the shell's status for the
//! signal (128 + its number). A second signal while the cancelled import cleans up
//! exits at once.

use std::fmt;
use std::future::Future;
use std::io::IsTerminal;

use anyhow::Context;
use bootsource_importer::{Cancel, ImportReport, TargetSpec};
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

use super::progress::ProgressLine;
use crate::cli::ImportArgs;
use crate::human;

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let mut options = super::options(&args.registry);
    options.limits.spool_bytes = args.spool_limit;
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| ProgressLine::start(std::sync::Arc::clone(&options.progress)));
    let target = TargetSpec::Path(args.to.clone());
    let import = bootsource_importer::import(&args.source, target, &options);
    let (result, interrupted) = cancel_on_signals(import, &options.cancel).await?;
    if let Some(p) = progress {
        p.stop().await;
    }
    let context = || format!("importing {} to {}", args.source, args.to.display());
    let report = match (result, interrupted) {
        (Err(bootsource_importer::Error::Cancelled), Some(signal)) => {
            return Err(anyhow::Error::new(Interrupted(signal)).context(context()));
        }
        (result, _) => result.with_context(context)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", summary(&report));
    }
    Ok(())
}

/// The command was stopped by a signal; the import was cancelled and cleaned up.
#[derive(Debug)]
pub struct Interrupted(pub Signal);

impl Interrupted {
    /// The shell's exit status for a command ended by this signal.
    pub fn exit_status(&self) -> u8 {
        128 + u8::try_from(self.0 as i32).unwrap_or(0)
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "interrupted by {}: the import was cancelled (nothing is left of a file target; a block device is partly written)",
            self.0
        )
    }
}

impl std::error::Error for Interrupted {}

/// Runs `import` to its end; the first SIGTERM or SIGINT cancels it (it then ends with
/// `Cancelled` once cleaned up), a second one exits at once.
async fn cancel_on_signals<T>(
    import: impl Future<Output = T>,
    cancel: &Cancel,
) -> anyhow::Result<(T, Option<Signal>)> {
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    tokio::pin!(import);
    let mut interrupted = None;
    loop {
        let signal = tokio::select! {
            result = &mut import => return Ok((result, interrupted)),
            _ = term.recv() => Signal::SIGTERM,
            _ = int.recv() => Signal::SIGINT,
        };
        if let Some(first) = interrupted {
            eprintln!("{signal} again while cancelling after {first}: exiting now");
            std::process::exit(Interrupted(signal).exit_status().into());
        }
        tracing::warn!(%signal, "cancelling the import");
        cancel.cancel();
        interrupted = Some(signal);
    }
}

/// One line with everything a person checks after an import.
fn summary(r: &ImportReport) -> String {
    let passes = if r.passes > 1 {
        format!(", {} passes", r.passes)
    } else {
        String::new()
    };
    format!(
        "imported {} ({}) to {}: {} {}, {} downloaded, {} written, {:.1} s ({}){passes}",
        r.source,
        r.digest,
        r.target.display(),
        r.format,
        human::bytes(r.virtual_size),
        human::bytes(r.downloaded),
        human::bytes(r.written),
        r.seconds,
        human::rate(r.downloaded, r.seconds),
    )
}
