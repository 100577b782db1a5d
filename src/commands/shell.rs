//! What is generated from the command line's definition (`cli.rs`), so it never drifts
//! from it: shell completions (`bootsource completions bash|zsh|fish`) and the manual
//! pages (`bootsource man DIR`: `bootsource.1` and one page per subcommand).

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// Prints the completion script for a shell.
pub fn completions(args: &CompletionsArgs) {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "bootsource",
        &mut std::io::stdout(),
    );
}

/// Writes the manual pages into `args.dir`.
pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    clap_mangen::generate_to(Cli::command(), &args.dir)
        .with_context(|| format!("writing manual pages into {}", args.dir.display()))
}
