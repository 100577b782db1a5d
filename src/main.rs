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
mod logging;
mod policy;
mod report;
mod state;

use bootsource::{config, human, registries};

use std::process::ExitCode;

use clap::Parser;

/// How long the runtime's leftover threads get once a command is done.
const RUNTIME_STOP: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let format = cli.log_format.or_else(|| match &cli.command {
        cli::Command::Daemon(args) => config::peek_log_format(&args.config),
        _ => None,
    });
    logging::init(format, cli.command.default_log_level());
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
