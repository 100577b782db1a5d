//! One module per subcommand; each turns parsed arguments into library calls and
//! prints what a person (or, with `--json`, a script) needs.

mod clone;
mod import;
mod inspect;
mod managed;
mod poll;
mod progress;
mod status;

use bootsource_importer::{HttpOptions, ImportOptions, RegistryOptions};

use crate::cli::{Command, FileFlags, RegistryFlags};

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
    }
}

/// Importer options from the registry and single-file flags.
fn options(flags: &RegistryFlags, file: &FileFlags) -> ImportOptions {
    ImportOptions {
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
        ..ImportOptions::default()
    }
}
