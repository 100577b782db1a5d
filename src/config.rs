//! The daemon's configuration file (TOML), read and checked in one place.
//!
//! Every field has a default except the sources. Unknown keys are errors that name the
//! key and its line (the toml parser reports both). Checks that need the whole file —
//! unique source names, storage names that exist, one schedule per source — happen
//! here too, so a file either loads completely or is refused with its first problem;
//! on SIGHUP the daemon then keeps the old configuration. Names that become path
//! components (sources, the namespace, backends) are checked by storage's rules as
//! they are read, so a refusal names the key and line too.
//!
//! ```toml
//! namespace = "os-images"            # golden-image namespace
//! metrics_address = "127.0.0.1:9478"
//! default_schedule = "0 */12 * * *"  # cron, or an interval such as "6h"
//! import_timeout = "6h"              # one import's deadline
//! stop_timeout = "20s"               # SIGTERM's grace for imports to clean up
//!
//! [storage.local]
//! kind = "dir"                       # dir | reflink | btrfs | block
//! path = "/var/lib/bootsource"
//!
//! [[registry]]                       # registries.conf-style mirrors
//! prefix = "quay.io"
//! [[registry.mirror]]
//! location = "mirror.example:5000"
//! insecure = true
//!
//! policy = "/etc/containers/policy.json"      # signature policy (containers')
//! registries_d = "/etc/containers/registries.d" # where signatures are found
//!
//! [[source]]
//! name = "fedora"
//! image = "docker://quay.io/containerdisks/fedora:latest"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use bootsource_importer::{Checksum, ImageRef, Platform, Url, read_regular_file};
use bootsource_poller::Schedule;
use bootsource_storage::{BackendConfig, BackendKind, StoreConfig};
use serde::Deserialize;

use crate::registries::{Registries, RegistryConfig};

/// Where the daemon looks when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/bootsource/config.toml";
/// containers' registry configuration, read when `registries_conf` is not set.
const DEFAULT_REGISTRIES_CONF: &str = "/etc/containers/registries.conf";
/// Credentials used when present and `auth_file` is not set.
const DEFAULT_AUTH_FILE: &str = "/etc/bootsource/auth.json";
/// Free space kept on file storage unless `min_free` says otherwise: 256 MiB, four
/// times what writers may write between two checks of the free space.
pub const DEFAULT_MIN_FREE: u64 = 256 << 20;
/// The backend sources use when they name none.
pub const DEFAULT_STORAGE: &str = "local";
/// The largest configuration read: thousands of sources.
pub const CONFIG_LIMIT: u64 = 1 << 20;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Golden-image namespace (like HyperConverged `commonBootImageNamespace`).
    #[serde(default = "default_namespace", deserialize_with = "namespace")]
    pub namespace: String,
    /// Where `/metrics` and `/healthz` listen.
    #[serde(default = "default_metrics_address")]
    pub metrics_address: SocketAddr,
    /// Schedule of sources that set none: cron (5 fields) or an interval (`6h`).
    #[serde(default = "default_schedule")]
    pub default_schedule: Schedule,
    /// containers `auth.json` with registry credentials.
    #[serde(default)]
    pub auth_file: Option<PathBuf>,
    /// Directory of per-registry certificates, `HOST[:PORT]/*.crt` (and a client
    /// `NAME.cert` + `NAME.key`); default: `/etc/containers/certs.d`, then
    /// `/etc/docker/certs.d`, as podman reads them.
    #[serde(default)]
    pub certs_d: Option<PathBuf>,
    /// `host[:port]` of registries reached without TLS verification (or plain HTTP).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// containers `policy.json`: versions it refuses are not imported (default:
    /// `/etc/containers/policy.json` if it exists, else every image is accepted).
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// containers `registries.d`: where signatures are looked up (default:
    /// `/etc/containers/registries.d`).
    #[serde(default)]
    pub registries_d: Option<PathBuf>,
    /// The catalog, locks, `current` links and daemon status live here.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Imports running at once across all sources (a node runs VMs: default 1).
    #[serde(default = "default_concurrency")]
    pub max_concurrent_imports: NonZeroUsize,
    /// The longest one import may take, however steadily its bytes trickle in (`6h`);
    /// past it the import is cancelled and counted as failed, freeing its slot.
    #[serde(default = "default_import_timeout", deserialize_with = "duration")]
    pub import_timeout: Duration,
    /// How long SIGTERM waits for cancelled imports to clean up before the daemon exits
    /// anyway (`20s`; keep it below systemd's `TimeoutStopSec`).
    #[serde(default = "default_stop_timeout", deserialize_with = "duration")]
    pub stop_timeout: Duration,
    /// Bytes of a qcow2 image held for clusters ahead of their tables before the
    /// layer is read again instead (`64M`).
    #[serde(default = "default_spool_limit", deserialize_with = "size")]
    pub spool_limit: u64,
    /// Disks with a larger virtual size are refused before a byte is written (`1T`).
    #[serde(default = "default_max_virtual_size", deserialize_with = "size")]
    pub max_virtual_size: u64,
    /// Free space kept on the filesystem of file-based storage: an import that would
    /// eat into it fails cleanly (`256M`; `0` for none).
    #[serde(default = "default_min_free", deserialize_with = "size")]
    pub min_free: u64,
    /// Named storage backends, like storage classes.
    #[serde(default, deserialize_with = "backends")]
    pub storage: BTreeMap<String, BackendConfig>,
    /// `[[registry]]` tables as in containers' `registries.conf` (mirrors, `location`,
    /// `blocked`); laid over those of [`registries_conf`](Self::registries_conf).
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryConfig>,
    /// containers' `registries.conf`, read with its `.d` drop-ins (default
    /// `/etc/containers/registries.conf`; `""` reads none).
    #[serde(default)]
    pub registries_conf: Option<PathBuf>,
    /// The registry tables in force: `registries_conf` and this file's, merged by
    /// [`load`](Self::load).
    #[serde(skip)]
    pub containers: Registries,
    /// `text`, `json` or `journal` (default: journal when systemd connects stderr
    /// to it, else text); `--log-format` wins.
    #[serde(default)]
    pub log_format: Option<LogFormat>,
    /// The boot sources.
    #[serde(rename = "source")]
    pub sources: Vec<SourceConfig>,
}

/// A `[[source]]` table: one boot source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name; also the directory and volume prefix.
    #[serde(deserialize_with = "source_name")]
    pub name: String,
    /// `docker://…`, `oci:…`, or `https://…` (`http://…`) for a disk file.
    #[serde(deserialize_with = "from_str")]
    pub image: ImageRef,
    /// An `https://` source's checksum (`sha256:HEX` or `sha512:HEX`); a file that
    /// does not match is refused. With a sha256, polls need no request at all.
    #[serde(default, deserialize_with = "opt_from_str")]
    pub checksum: Option<Checksum>,
    /// An `https://` source's checksum file (SHA256SUMS, BSD lines, Fedora's
    /// CHECKSUM), read at every poll: a new line for the file is a new version.
    #[serde(default, deserialize_with = "opt_from_str")]
    pub checksum_url: Option<Url>,
    /// Poll and import new digests; off keeps the current version.
    #[serde(default = "yes")]
    pub auto_update: bool,
    /// Versions kept, the current one included.
    #[serde(default = "default_keep")]
    pub imports_to_keep: usize,
    /// The backend (default `local`, or the only one configured).
    #[serde(default)]
    pub storage: Option<String>,
    /// A cron schedule for this source.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Or an interval (`6h`).
    #[serde(default)]
    pub interval: Option<Schedule>,
    /// The platform to import from a multi-arch image (default: this host's).
    #[serde(default, deserialize_with = "opt_from_str")]
    pub platform: Option<Platform>,
}

impl Config {
    /// Reads and checks `path`, which must be a regular file of at most
    /// [`CONFIG_LIMIT`] bytes (`/dev/zero` or a FIFO would never be read to its end),
    /// then merges containers' registry configuration and resolves each source's image
    /// with it (short names, `location`, `blocked`).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let reading = || format!("reading {}", path.display());
        let bytes = read_regular_file(path, CONFIG_LIMIT).with_context(reading)?;
        let text = String::from_utf8(bytes).with_context(reading)?;
        let mut config = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        config.containers =
            Registries::load(config.registries_conf().as_deref(), &config.registries)?;
        for source in &mut config.sources {
            if let ImageRef::Registry(r) = &source.image {
                let resolved = config
                    .containers
                    .resolve(r)
                    .with_context(|| format!("source {:?}", source.name))?;
                source.image = ImageRef::Registry(resolved);
            }
        }
        Ok(config)
    }

    /// The `registries.conf` to read, if any.
    pub fn registries_conf(&self) -> Option<PathBuf> {
        match &self.registries_conf {
            Some(path) if path.as_os_str().is_empty() => None,
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_REGISTRIES_CONF)),
        }
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut config: Self = toml::from_str(text)?;
        if config.storage.is_empty() {
            let local = BackendConfig::files(BackendKind::Dir, config.state_dir.clone());
            config.storage.insert(DEFAULT_STORAGE.into(), local);
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sources {
            if !names.insert(&s.name) {
                bail!("source {:?} is defined twice", s.name);
            }
            if s.schedule.is_some() && s.interval.is_some() {
                bail!(
                    "source {:?} sets both schedule and interval; choose one",
                    s.name
                );
            }
            if s.schedule
                .as_ref()
                .is_some_and(|c| c.as_interval().is_some())
            {
                bail!(
                    "source {:?}: schedule takes a cron expression; use interval = {:?}",
                    s.name,
                    c_str(&s.schedule)
                );
            }
            check_image(s)?;
            if s.imports_to_keep == 0 {
                bail!("source {:?}: imports_to_keep must be at least 1", s.name);
            }
            let storage = self.storage_of(s);
            if !self.storage.contains_key(storage) {
                bail!(
                    "source {:?} uses storage {storage:?}, which is not configured (have: {})",
                    s.name,
                    self.storage.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        if let Some(path) = &self.auth_file
            && !path.is_file()
        {
            bail!("auth_file {} does not exist", path.display());
        }
        if let Some(path) = &self.policy
            && !path.is_file()
        {
            bail!("policy {} does not exist", path.display());
        }
        Ok(())
    }

    /// The backend name a source uses.
    pub fn storage_of<'a>(&'a self, s: &'a SourceConfig) -> &'a str {
        match &s.storage {
            Some(name) => name,
            None if self.storage.len() == 1 => self.storage.keys().next().expect("one backend"),
            None => DEFAULT_STORAGE,
        }
    }

    /// The schedule a source polls on.
    pub fn schedule_of(&self, s: &SourceConfig) -> Schedule {
        s.schedule
            .clone()
            .or_else(|| s.interval.clone())
            .unwrap_or_else(|| self.default_schedule.clone())
    }

    /// The `certs.d` directories registries' certificates are looked up in.
    pub fn certs_d(&self) -> Vec<PathBuf> {
        match &self.certs_d {
            Some(dir) => vec![dir.clone()],
            None => bootsource_importer::RegistryOptions::default().certs_d,
        }
    }

    /// The credentials file to use, if any.
    pub fn auth_file(&self) -> Option<PathBuf> {
        self.auth_file
            .clone()
            .or_else(|| Some(PathBuf::from(DEFAULT_AUTH_FILE)).filter(|p| p.is_file()))
    }

    /// What the storage layer needs.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            state_dir: self.state_dir.clone(),
            namespace: self.namespace.clone(),
            backends: self.storage.clone(),
            min_free: (self.min_free > 0).then_some(self.min_free),
        }
    }

    /// The source named `name`.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }
}

/// The `log_format` of the file at `path`, read before logging starts (so before the
/// file is checked: a file with problems is reported, in the default format, by
/// [`Config::load`]).
pub fn peek_log_format(path: &Path) -> Option<LogFormat> {
    let text = std::fs::read_to_string(path).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    LogFormat::deserialize(table.get("log_format")?.clone()).ok()
}

/// The daemon imports what it can poll: registries, layouts and HTTP(S) files.
fn check_image(s: &SourceConfig) -> anyhow::Result<()> {
    match &s.image {
        ImageRef::File(_) | ImageRef::Stdin => bail!(
            "source {:?}: image must be docker://, oci: or http(s):// (file: and - are for bootsource import)",
            s.name
        ),
        ImageRef::Http(_) => {
            if s.checksum.is_some() && s.checksum_url.is_some() {
                bail!(
                    "source {:?} sets both checksum and checksum_url; choose one",
                    s.name
                );
            }
            Ok(())
        }
        _ if s.checksum.is_some() || s.checksum_url.is_some() => bail!(
            "source {:?}: checksum and checksum_url are for http(s):// images (a registry's digests are checked anyway)",
            s.name
        ),
        _ => Ok(()),
    }
}

fn c_str(s: &Option<Schedule>) -> String {
    s.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn default_namespace() -> String {
    bootsource_storage::DEFAULT_NAMESPACE.into()
}
fn default_metrics_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9478))
}
fn default_schedule() -> Schedule {
    "0 */12 * * *".parse().expect("a valid cron expression")
}
fn default_state_dir() -> PathBuf {
    bootsource_storage::DEFAULT_STATE_DIR.into()
}
fn default_concurrency() -> NonZeroUsize {
    NonZeroUsize::MIN
}
fn default_import_timeout() -> Duration {
    Duration::from_secs(6 * 3600)
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_spool_limit() -> u64 {
    64 << 20
}
fn default_max_virtual_size() -> u64 {
    bootsource_importer::DEFAULT_MAX_VIRTUAL_SIZE
}
fn default_min_free() -> u64 {
    DEFAULT_MIN_FREE
}
fn default_keep() -> usize {
    3
}
fn yes() -> bool {
    true
}

fn from_str<'de, D: serde::Deserializer<'de>, T: std::str::FromStr>(d: D) -> Result<T, D::Error>
where
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

fn opt_from_str<'de, D: serde::Deserializer<'de>, T: std::str::FromStr>(
    d: D,
) -> Result<Option<T>, D::Error>
where
    T::Err: std::fmt::Display,
{
    from_str(d).map(Some)
}

/// `20s`, `90m`, `6h`: humantime's durations, as systemd writes them.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?} ({e}): expected e.g. 20s"
        ))
    })
}

/// Names become path components: each is checked by storage's one rule as it is read,
/// so the error carries the key and its line.
fn source_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    checked_name(d, bootsource_storage::check_source_name)
}

fn namespace<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    checked_name(d, bootsource_storage::check_namespace)
}

fn backends<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, BackendConfig>, D::Error> {
    let backends = BTreeMap::<String, BackendConfig>::deserialize(d)?;
    for name in backends.keys() {
        bootsource_storage::check_backend_name(name).map_err(serde::de::Error::custom)?;
    }
    Ok(backends)
}

fn checked_name<'de, D: serde::Deserializer<'de>>(
    d: D,
    check: fn(&str) -> bootsource_storage::Result<()>,
) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    check(&name).map_err(serde::de::Error::custom)?;
    Ok(name)
}

fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    crate::human::parse_size(&text).map_err(serde::de::Error::custom)
}

/// A log format, as `--log-format` and `log_format` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human lines on stderr.
    Text,
    /// One JSON object per line on stderr.
    Json,
    /// journald's native protocol (the default under systemd).
    Journal,
}

impl LogFormat {
    /// The name `--log-format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Journal => "journal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[source]]
        name = "fedora"
        image = "docker://quay.io/containerdisks/fedora:latest"
    "#;

    #[test]
    fn every_field_but_sources_has_a_default() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.namespace, "os-images");
        assert_eq!(c.metrics_address.to_string(), "127.0.0.1:9478");
        assert_eq!(c.storage_of(&c.sources[0]), "local");
        assert_eq!(c.storage["local"].kind, BackendKind::Dir);
        assert_eq!(c.schedule_of(&c.sources[0]).to_string(), "0 */12 * * *");
        let s = &c.sources[0];
        assert!(s.auto_update);
        assert_eq!(s.imports_to_keep, 3);
        assert_eq!(c.spool_limit, 64 << 20);
        assert_eq!(c.stop_timeout, Duration::from_secs(20));
        assert_eq!(c.import_timeout, Duration::from_secs(6 * 3600));
        let c = Config::parse(&format!("stop_timeout = \"1m30s\"\n{MINIMAL}")).unwrap();
        assert_eq!(c.stop_timeout, Duration::from_secs(90));
        let err = format!(
            "{:#}",
            Config::parse(&format!("stop_timeout = \"soon\"\n{MINIMAL}")).unwrap_err()
        );
        assert!(
            err.contains("invalid duration") && err.contains("line 1"),
            "{err}"
        );
        assert!(
            Config::parse("namespace = \"x\"")
                .unwrap_err()
                .to_string()
                .contains("source")
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let text = format!("{MINIMAL}\nimports_to_kepe = 2\n");
        let err = format!("{:#}", Config::parse(&text).unwrap_err());
        assert!(err.contains("imports_to_kepe"), "{err}");
        assert!(err.contains("line 6"), "{err}");
    }

    #[test]
    fn per_source_schedule_interval_and_checks() {
        let text = r#"
            default_schedule = "6h"
            [storage.fast]
            kind = "dir"
            path = "/srv/images"
            [[source]]
            name = "a"
            image = "oci:/srv/layout:a"
            interval = "30m"
            [[source]]
            name = "b"
            image = "docker://r/b:1"
            schedule = "*/5 * * * *"
            platform = "linux/arm64"
        "#;
        let c = Config::parse(text).unwrap();
        assert_eq!(
            c.schedule_of(&c.sources[0]).as_interval(),
            Some(std::time::Duration::from_secs(1800))
        );
        assert_eq!(
            c.storage_of(&c.sources[1]),
            "fast",
            "the only backend is the default"
        );
        assert_eq!(
            c.sources[1].platform.as_ref().unwrap().architecture,
            "arm64"
        );

        let bad = |extra: &str| {
            format!(
                "{:#}",
                Config::parse(&format!("{MINIMAL}{extra}")).unwrap_err()
            )
        };
        assert!(bad("schedule = \"0 * * * *\"\ninterval = \"1h\"").contains("both"));
        assert!(bad("storage = \"nope\"").contains("not configured"));
        assert!(bad("imports_to_keep = 0").contains("at least 1"));
        assert!(bad("[[source]]\nname = \"fedora\"\nimage = \"oci:x\"").contains("twice"));
        assert!(bad("image2 = 1").contains("image2"));
        let bad_image = "[[source]]\nname = \"x\"\nimage = \"fedora:41\"";
        assert!(format!("{:#}", Config::parse(bad_image).unwrap_err()).contains("transport"));
    }

    #[test]
    fn http_sources_take_a_checksum_or_a_checksum_file() {
        let text = r#"
            [[source]]
            name = "debian"
            image = "https://cloud.debian.org/images/debian-12-generic-amd64.qcow2"
            checksum_url = "https://cloud.debian.org/images/SHA512SUMS"
            [[source]]
            name = "coreos"
            image = "http://127.0.0.1:8080/coreos.raw.xz"
            checksum = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        "#;
        let c = Config::parse(text).unwrap();
        assert!(c.sources[0].checksum_url.is_some());
        assert!(c.sources[1].checksum.is_some());
        let refused = |text: &str| format!("{:#}", Config::parse(text).unwrap_err());
        let both = format!("{text}checksum_url = \"https://x/SUMS\"\n");
        assert!(refused(&both).contains("both"), "{}", refused(&both));
        let registry = format!("{MINIMAL}checksum = \"sha256:{}\"\n", "0".repeat(64));
        assert!(refused(&registry).contains("http(s)"));
        assert!(refused("[[source]]\nname = \"x\"\nimage = \"-\"\n").contains("file: and -"));
        let bad = format!("{MINIMAL}checksum = \"sha256:12\"\n");
        assert!(refused(&bad).contains("invalid checksum"));
    }

    #[test]
    fn names_that_could_leave_the_store_are_refused_with_key_and_line() {
        let refused = |text: &str| format!("{:#}", Config::parse(text).unwrap_err());
        let evil = "[[source]]\nname = \"../../../tmp/evil\"\nimage = \"oci:x\"\n";
        let err = refused(evil);
        assert!(err.contains("invalid source name"), "{err}");
        assert!(err.contains("line 2") && err.contains("name ="), "{err}");
        for name in ["", ".hidden", "a/b", "a b"] {
            let text = format!("[[source]]\nname = {name:?}\nimage = \"oci:x\"\n");
            assert!(refused(&text).contains("invalid source name"), "{name:?}");
        }
        let err = refused(&format!("namespace = \"../x\"\n{MINIMAL}"));
        assert!(
            err.contains("invalid namespace name") && err.contains("line 1"),
            "{err}"
        );
        let err = refused(&format!(
            "{MINIMAL}\n[storage.\"..\"]\nkind = \"dir\"\npath = \"/x\"\n"
        ));
        assert!(err.contains("invalid backend name"), "{err}");
        assert!(Config::parse(&MINIMAL.replace("fedora\"", "fedora-41_x.y\"")).is_ok());
    }
}
