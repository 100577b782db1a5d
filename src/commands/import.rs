//! `bootsource import SOURCE --to TARGET`: one-shot import with progress and a summary.

use std::io::IsTerminal;

use anyhow::Context;
use bootsource_importer::{ImportReport, TargetSpec};

use super::progress::ProgressLine;
use crate::cli::ImportArgs;
use crate::human;

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    super::managed::refuse_managed_target(args.config.as_deref(), &args.to).await?;
    let mut options = super::options(&args.registry);
    options.limits.spool_bytes = args.spool_limit;
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| ProgressLine::start(std::sync::Arc::clone(&options.progress)));
    let target = TargetSpec::Path(args.to.clone());
    let result = bootsource_importer::import(&args.source, target, &options).await;
    if let Some(p) = progress {
        p.stop().await;
    }
    let report =
        result.with_context(|| format!("importing {} to {}", args.source, args.to.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", summary(&report));
    }
    Ok(())
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
