//! The command line, as clap sees it. Flags follow skopeo where they overlap.

use std::path::PathBuf;

use bootsource_importer::{Checksum, Credentials, ExtraHeader, ImageRef, Platform, Url};
use clap::{Args, Parser, Subcommand};

/// Keeps golden VM disk images on local storage up to date from container disks.
#[derive(Debug, Parser)]
#[command(name = "bootsource", version, about, max_term_width = 100)]
pub struct Cli {
    /// Log format: text, json, or journal (journald's native protocol; the default
    /// when systemd connects stderr to the journal). The daemon also reads
    /// `log_format` from its configuration; this flag wins.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<crate::logging::LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a container disk once, onto a raw file or a block device.
    Import(ImportArgs),
    /// Show an image's digest, platform, layers and disk without importing it.
    Inspect(InspectArgs),
    /// Run the node daemon: poll, import, publish, collect garbage.
    Daemon(ConfigArgs),
    /// Show every boot source: current version, versions kept, polls, errors, imports.
    Status(StatusArgs),
    /// Ask the running daemon to reload its configuration and poll now (SIGHUP).
    Poll(ConfigArgs),
    /// Make a new VM disk from the current version of a boot source.
    Clone(CloneArgs),
    /// Check a configuration file and print it with every default filled in; exit 1
    /// naming the key and line of the first problem.
    CheckConfig(CheckConfigArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Write the manual pages (bootsource.1, bootsource-import.1, …) into a directory,
    /// generated from this command line's definition.
    #[command(hide = true)]
    Man(ManArgs),
}

impl Command {
    /// Log level when RUST_LOG is not set: the daemon narrates, commands answer.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Self::Daemon(_) => "info",
            _ => "warn",
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The file to check [default: $BOOTSOURCE_CONFIG, else /etc/bootsource/config.toml]
    #[arg(value_name = "FILE", env = "BOOTSOURCE_CONFIG")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Where to write the pages, e.g. /usr/local/share/man/man1.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Which configuration file to use.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The daemon's configuration file.
    #[arg(long, value_name = "PATH", default_value = crate::config::DEFAULT_PATH, env = "BOOTSOURCE_CONFIG")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print JSON (a stable contract) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CloneArgs {
    /// The boot source to clone from.
    pub name: String,
    /// The new disk: a file path (must not exist) or a block device.
    #[arg(long, value_name = "TARGET")]
    pub to: PathBuf,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// How to reach the registry.
#[derive(Debug, Clone, Args)]
pub struct RegistryFlags {
    /// Require HTTPS and verify certificates; false also allows plain HTTP.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Directory of *.crt CA certificates for the registry.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// containers auth.json or docker config.json with credentials
    /// (default: $REGISTRY_AUTH_FILE, then the usual locations).
    #[arg(long, visible_alias = "authfile", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Platform to pick from a multi-arch image (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
}

/// Which publishers to trust: containers' signature policy.
#[derive(Debug, Clone, Args)]
pub struct TrustFlags {
    /// containers policy.json: images it refuses are not imported
    /// [default: /etc/containers/policy.json if it exists, else accept any image]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// containers registries.d: where signatures are looked up
    /// [default: /etc/containers/registries.d]
    #[arg(long, value_name = "DIR")]
    pub registries_d: Option<PathBuf>,
}

/// For a single disk file: https://…, http://…, file:PATH or - (standard input).
#[derive(Debug, Clone, Args)]
pub struct FileFlags {
    /// The checksum the file must have, checked while it streams (sha256:HEX or sha512:HEX).
    #[arg(long, value_name = "ALGO:HEX", conflicts_with = "checksum_url")]
    pub checksum: Option<Checksum>,
    /// A checksum file (SHA256SUMS, BSD style, Fedora's CHECKSUM) listing the file by name.
    #[arg(long, value_name = "URL")]
    pub checksum_url: Option<Url>,
    /// Basic credentials for the web server (default: the auth file's entry for HOST:PORT).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<Credentials>,
    /// An extra request header, repeatable (like CDI's extraHeaders).
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<ExtraHeader>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// docker://HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG], https://…/FILE, file:PATH or -.
    pub source: ImageRef,
    /// A file to create (sparse, sized to the disk) or an existing block device.
    #[arg(long, value_name = "TARGET")]
    pub to: PathBuf,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub trust: TrustFlags,
    #[command(flatten)]
    pub file: FileFlags,
    /// Print the result as JSON on stdout instead of a summary line.
    #[arg(long)]
    pub json: bool,
    /// Most bytes of a qcow2 image to hold while waiting for their tables before
    /// reading the layer again instead (e.g. 64M).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::human::parse_size)]
    pub spool_limit: u64,
    /// Refuse disks larger than this, before writing anything (e.g. 1T).
    #[arg(long, value_name = "SIZE", default_value = "1T", value_parser = crate::human::parse_size)]
    pub max_virtual_size: u64,
    /// Free space to leave on a file target's filesystem; the import fails cleanly
    /// rather than eat into it (e.g. 256M, or 0 for none).
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = crate::human::parse_size)]
    pub min_free: u64,
    /// The daemon's configuration file: a target that is, contains or is inside the
    /// storage it manages is refused [default: /etc/bootsource/config.toml, if it exists]
    #[arg(long, value_name = "PATH", env = "BOOTSOURCE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// docker://HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG], https://…/FILE, file:PATH or -.
    pub source: ImageRef,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub trust: TrustFlags,
    #[command(flatten)]
    pub file: FileFlags,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_verify_takes_skopeo_forms() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap();
        let Command::Import(a) = parse(&[
            "bootsource",
            "import",
            "oci:x",
            "--to",
            "y",
            "--tls-verify=false",
        ])
        .command
        else {
            panic!()
        };
        assert!(!a.registry.tls_verify);
        let Command::Inspect(a) =
            parse(&["bootsource", "inspect", "oci:x", "--tls-verify"]).command
        else {
            panic!()
        };
        assert!(a.registry.tls_verify);
        let Command::Inspect(a) = parse(&["bootsource", "inspect", "oci:x"]).command else {
            panic!()
        };
        assert!(a.registry.tls_verify);
    }

    #[test]
    fn file_flags() {
        let Command::Import(a) = Cli::try_parse_from([
            "bootsource",
            "import",
            "https://127.0.0.1:8080/d.qcow2",
            "--to",
            "y",
            "--creds",
            "u:p:w",
            "--header",
            "X-A: 1",
            "--header",
            "X-B: 2",
            "--checksum",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.file.headers.len(), 2);
        assert!(a.file.creds.is_some() && a.file.checksum.is_some());
        assert!(
            Cli::try_parse_from([
                "bootsource",
                "import",
                "-",
                "--to",
                "y",
                "--checksum",
                "sha256:00",
            ])
            .is_err()
        );
    }

    #[test]
    fn bad_sources_and_platforms_are_usage_errors() {
        assert!(Cli::try_parse_from(["bootsource", "inspect", "fedora:41"]).is_err());
        assert!(
            Cli::try_parse_from(["bootsource", "inspect", "oci:x", "--platform", "amd64"]).is_err()
        );
    }
}
