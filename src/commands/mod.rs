//! One module per subcommand; each turns parsed arguments into library calls and
//! prints what a person (or, with `--json`, a script) needs.

mod check_config;
mod clone;
mod import;
mod inspect;
mod managed;
mod poll;
mod progress;
mod shell;
mod status;

use std::sync::Arc;

use anyhow::Context;
use bootsource_importer::{HttpOptions, ImportOptions, RegistryOptions};

use crate::cli::{Command, FileFlags, RegistryFlags, TrustFlags};

pub use import::Interrupted;

/// Runs a command to completion.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Import(args) => import::run(args).await,
        Command::Inspect(args) => inspect::run(args).await,
        Command::Daemon(args) => crate::daemon::run(args.config).await,
        Command::Status(args) => status::run(args).await,
        Command::Poll(args) => poll::run(&args),
        Command::Clone(args) => clone::run(args).await,
        Command::CheckConfig(args) => check_config::run(&args),
        Command::Completions(args) => {
            shell::completions(&args);
            Ok(())
        }
        Command::Man(args) => shell::man(&args),
    }
}

/// Importer options from the registry, trust and single-file flags.
async fn options(
    flags: &RegistryFlags,
    trust: &TrustFlags,
    file: &FileFlags,
) -> anyhow::Result<ImportOptions> {
    let trust = trust.clone();
    let policy = tokio::task::spawn_blocking(move || {
        crate::policy::load(trust.policy.as_deref(), trust.registries_d.as_deref())
    })
    .await
    .context("policy thread failed")??;
    Ok(ImportOptions {
        registry: RegistryOptions {
            tls_verify: flags.tls_verify,
            cert_dir: flags.cert_dir.clone(),
            certs_d: RegistryOptions::default().certs_d,
            auth_file: flags.auth_file.clone(),
            insecure_registries: Vec::new(),
        },
        http: HttpOptions {
            credentials: file.creds.clone(),
            headers: file.headers.clone(),
            checksum: file.checksum.clone(),
            checksum_url: file.checksum_url.clone(),
        },
        platform: flags.platform.clone(),
        trust: Arc::new(policy),
        ..ImportOptions::default()
    })
}
