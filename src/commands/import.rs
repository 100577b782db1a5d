//! `bootsource import SOURCE --to TARGET`: one-shot import with progress and a summary.
//!
//! The target is checked before anything is downloaded (a busy device or a missing
//! directory fails at once), opened once the disk's size is known, and committed only
//! when the whole disk is written: a file target appears under its name complete, or
//! not at all (it is an unnamed `O_TMPFILE` until then, so even SIGKILL leaves nothing).
//!
//! SIGTERM and SIGINT cancel the import and end the command with [`Interrupted`]: a
//! message, and the shell's status for the signal (128 + its number). A second signal
//! while the cancelled import cleans up exits at once.

use std::fmt;
use std::future::Future;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use bootsource_importer::{Cancel, ImageRef, Import, ImportOptions, ImportReport};
use bootsource_place::Target;
use nix::sys::signal::Signal;
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use super::progress::ProgressLine;
use crate::cli::ImportArgs;
use crate::human;

/// What `--json` prints: the report and where it went.
#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    report: &'a ImportReport,
    target: &'a Path,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    super::managed::refuse_managed_target(args.config.as_deref(), &args.to).await?;
    let mut options = super::options(&args.registry, &args.trust, &args.file).await?;
    options.limits.spool_bytes = args.spool_limit;
    options.max_virtual_size = args.max_virtual_size;
    let target = Target::check(&args.to).context("checking the target")?;
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| ProgressLine::start(std::sync::Arc::clone(&options.progress)));
    let min_free = (args.min_free > 0).then_some(args.min_free);
    let import = import(&args.source, target, min_free, &options);
    let (result, interrupted) = cancel_on_signals(import, &options.cancel).await?;
    if let Some(p) = progress {
        p.stop().await;
    }
    let context = || format!("importing {} to {}", args.source, args.to.display());
    let report = match (result, interrupted) {
        (Err(e), Some(signal)) if cancelled(&e) => {
            return Err(anyhow::Error::new(Interrupted(signal)).context(context()));
        }
        (result, _) => result.with_context(context)?,
    };
    if args.json {
        let output = Output {
            report: &report,
            target: &args.to,
        };
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        println!("{}", summary(&report, &args.to));
    }
    Ok(())
}

/// Starts the import, opens the target at the disk's size, fills and commits it.
async fn import(
    source: &ImageRef,
    target: Target,
    min_free: Option<u64>,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let import = Import::start(source, options).await?;
    let open = target.open(import.disk().virtual_size, min_free)?;
    let mut report = import.write_into(open.place()).await?;
    options.progress.time_commit(|| open.commit())?;
    report.committed(&options.progress);
    Ok(report)
}

/// Whether `e` is the import's own cancellation.
fn cancelled(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<bootsource_importer::Error>()
            .is_some_and(|e| matches!(e, bootsource_importer::Error::Cancelled))
    })
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
fn summary(r: &ImportReport, target: &Path) -> String {
    let passes = if r.passes > 1 {
        format!(", {} passes", r.passes)
    } else {
        String::new()
    };
    format!(
        "imported {} ({}) to {}: {} {}, {} downloaded, {} written, {:.1} s ({}, limited by {}; {:.1} s to commit){passes}",
        r.image,
        r.digest,
        target.display(),
        r.format,
        human::bytes(r.virtual_size),
        human::bytes(r.downloaded),
        human::bytes(r.written),
        r.seconds,
        human::rate(r.downloaded, r.seconds),
        r.stages.limited_by.name(),
        r.stages.commit,
    )
}
