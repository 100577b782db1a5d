//! `bootsource poll`: SIGHUP to the running daemon (reload the config, poll now).
//!
//! The process signalled is the one holding the state directory's instance lock
//! ([`crate::instance`]), never whatever pid a stale pid file names.

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::ConfigArgs;
use crate::config::Config;
use crate::instance::{self, Liveness};

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let pid = match instance::find_daemon(&config.state_dir) {
        Liveness::Running(pid) => pid,
        Liveness::Stopped => bail!(
            "no bootsource daemon is running for {} (nothing holds {})",
            args.config.display(),
            instance::lock_file(&config.state_dir).display()
        ),
        Liveness::Unknown(why) => {
            bail!("cannot tell whether a bootsource daemon is running: {why}")
        }
    };
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .with_context(|| format!("signalling the daemon (pid {pid})"))?;
    println!("asked the daemon (pid {pid}) to reload its configuration and poll every source now");
    Ok(())
}
