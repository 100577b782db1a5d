//! `bootsource import SOURCE --to TARGET`: one-shot import with progress and a summary.
//!
//! The target is checked before anything is downloaded (a busy device or a missing
//! directory fails at once), opened once the disk's size is known, and committed only
//! when the whole disk is written: a file target appears under its name complete, or
//! not at all.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use bootsource_importer::{Import, ImportOptions, ImportReport, SourceRef};
use bootsource_place::Target;
use serde::Serialize;

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
    let mut options = super::options(&args.registry);
    options.limits.spool_bytes = args.spool_limit;
    options.max_virtual_size = args.max_virtual_size;
    let target = Target::check(&args.to).context("checking the target")?;
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| ProgressLine::start(std::sync::Arc::clone(&options.progress)));
    let min_free = (args.min_free > 0).then_some(args.min_free);
    let result = import(&args.source, target, min_free, &options).await;
    if let Some(p) = progress {
        p.stop().await;
    }
    let report =
        result.with_context(|| format!("importing {} to {}", args.source, args.to.display()))?;
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
    source: &SourceRef,
    target: Target,
    min_free: Option<u64>,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let import = Import::start(source, options).await?;
    let open = target.open(import.disk().virtual_size, min_free)?;
    let report = import.write_into(open.place()).await?;
    open.commit()?;
    Ok(report)
}

/// One line with everything a person checks after an import.
fn summary(r: &ImportReport, target: &Path) -> String {
    let passes = if r.passes > 1 {
        format!(", {} passes", r.passes)
    } else {
        String::new()
    };
    format!(
        "imported {} ({}) to {}: {} {}, {} downloaded, {} written, {:.1} s ({}){passes}",
        r.source,
        r.digest,
        target.display(),
        r.format,
        human::bytes(r.virtual_size),
        human::bytes(r.downloaded),
        human::bytes(r.written),
        r.seconds,
        human::rate(r.downloaded, r.seconds),
    )
}
