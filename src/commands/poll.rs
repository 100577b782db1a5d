//! `bootsource poll`: SIGHUP to the running daemon (reload the config, poll now).

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::ConfigArgs;
use crate::config::Config;
use crate::state;

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let Some(pid) = state::running_daemon(&config.state_dir) else {
        bail!(
            "no bootsource daemon is running for {} (no live pid in {})",
            args.config.display(),
            state::pid_file(&config.state_dir).display()
        );
    };
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .with_context(|| format!("signalling the daemon (pid {pid})"))?;
    println!("asked the daemon (pid {pid}) to reload its configuration and poll every source now");
    Ok(())
}
