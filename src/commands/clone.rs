//! `bootsource clone NAME --to TARGET`: a VM disk from the current version.

use anyhow::Context;
use bootsource_storage::{CloneMethod, Store};

use crate::cli::CloneArgs;
use crate::config::Config;
use crate::human;

pub async fn run(args: CloneArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config.config)?;
    if config.source(&args.name).is_none() {
        anyhow::bail!(
            "no boot source named {:?} in {}",
            args.name,
            args.config.config.display()
        );
    }
    let store_config = config.store_config();
    let (name, target) = (args.name.clone(), args.to.clone());
    let report = tokio::task::spawn_blocking(move || {
        let store = Store::open(store_config).context("opening the storage")?;
        store
            .clone_current(&name, &target)
            .with_context(|| format!("cloning {name} to {}", target.display()))
    })
    .await??;
    let how = match report.method {
        CloneMethod::Reflink => "shared extents (reflink/snapshot), no data copied".to_owned(),
        CloneMethod::SparseCopy => format!(
            "sparse copy, {} written",
            human::bytes(report.bytes_written)
        ),
    };
    println!(
        "cloned {} ({}) to {}: {how}",
        args.name,
        report.version.volume,
        report.target.display()
    );
    Ok(())
}
