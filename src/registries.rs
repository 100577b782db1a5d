//! Registries as containers describe them: `[[registry]]` tables with a `prefix`, an
//! optional `location`, `insecure`, `blocked`, `mirror-by-digest-only` and
//! `[[registry.mirror]]` entries (each with `pull-from-mirror`), and
//! `unqualified-search-registries` for short names.
//!
//! One type reads both places such tables come from: bootsource's own `config.toml`
//! and containers' `registries.conf` with its `registries.conf.d/*.conf` drop-ins, as
//! podman reads them (later files replace a table with the same prefix and the search
//! list if they set one; bootsource's own tables come last, so they win). From the
//! merged tables [`Registries`] answers two questions, with no I/O:
//!
//! - [`resolve`](Registries::resolve): the reference a source really names — a short
//!   name resolved on the one search registry (refused when there is none, or several:
//!   a daemon cannot prompt, as podman's `enforcing` mode cannot without a TTY), a
//!   `location` rewrite applied, a `blocked` registry refused.
//! - [`candidates`](Registries::candidates): where to fetch it from, in order — each
//!   mirror that may serve this kind of reference, then the registry itself. A mirror
//!   with `pull-from-mirror = "digest-only"` (or a registry with
//!   `mirror-by-digest-only`) is never asked for a tag: a stale mirror cannot pin a
//!   tag to an old digest, yet still serves the digest once the origin named it.
//!
//! Not here: reaching the registries (`importer`), per-host credentials and CAs (they
//! follow the host contacted, in the importer's session).
//!
//! ```toml
//! unqualified-search-registries = ["registry.lab:5000"]
//! [[registry]]
//! prefix = "quay.io/containerdisks"
//! location = "registry.lab:5000/containerdisks"   # optional rewrite
//! [[registry.mirror]]
//! location = "cache.lab:5000/containerdisks"
//! pull-from-mirror = "digest-only"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bootsource_importer::{RegistryRef, read_regular_file};
use serde::{Deserialize, Serialize};

/// The most bytes read of one registries file: root's configuration, capped anyway.
const MAX_FILE: u64 = 1 << 20;
/// Drop-in files read from a `registries.conf.d`, at most.
const MAX_DROP_INS: usize = 256;

/// One `[[registry]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// What image names the table applies to: `host[:port][/path…]` or `*.domain`
    /// (default: `location`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Where images under `prefix` are really pulled from (default: `prefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// `location` is reached without TLS verification (or over plain HTTP).
    #[serde(default)]
    pub insecure: bool,
    /// Images under `prefix` are refused.
    #[serde(default)]
    pub blocked: bool,
    /// Mirrors serve digests only (the older spelling of `pull-from-mirror`).
    #[serde(default)]
    pub mirror_by_digest_only: bool,
    /// Tried in order before `location` (`[[registry.mirror]]`).
    #[serde(default, rename = "mirror")]
    pub mirrors: Vec<MirrorConfig>,
}

/// One `[[registry.mirror]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MirrorConfig {
    /// `host[:port][/path…]` serving the same repositories under that path.
    pub location: String,
    /// Reached without TLS verification (or over plain HTTP).
    #[serde(default)]
    pub insecure: bool,
    /// Which references this mirror is asked for.
    #[serde(default)]
    pub pull_from_mirror: PullFromMirror,
}

/// containers' `pull-from-mirror`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullFromMirror {
    /// Tags and digests.
    #[default]
    All,
    /// Digests only: a tag is always resolved by the registry itself.
    DigestOnly,
    /// Tags only.
    TagOnly,
}

/// A `registries.conf` file: the keys bootsource uses (others, such as `[aliases]`
/// or `short-name-mode`, are podman's and ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RegistriesFile {
    #[serde(default, rename = "registry")]
    registries: Vec<RegistryConfig>,
    #[serde(default)]
    unqualified_search_registries: Option<Vec<String>>,
}

/// Where to fetch an image from, one registry at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The reference on that registry.
    pub reference: RegistryRef,
    /// Reached without TLS verification.
    pub insecure: bool,
}

/// Why a reference is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A `blocked` table matches.
    Blocked { name: String, prefix: String },
    /// A short name and no search registry.
    ShortNameUnresolved { short: String },
    /// A short name and several search registries: which one is meant is ambiguous.
    ShortNameAmbiguous { short: String, count: usize },
    /// A `location` or search registry that does not make a valid reference.
    BadRewrite { text: String, reason: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Blocked { name, prefix } => write!(
                f,
                "{name} is blocked by the registry configuration (prefix {prefix:?})"
            ),
            Self::ShortNameUnresolved { short } => write!(
                f,
                "{short:?} is a short name and no unqualified-search-registries are configured: name the registry (docker://HOST/{short})"
            ),
            Self::ShortNameAmbiguous { short, count } => write!(
                f,
                "{short:?} is a short name and unqualified-search-registries lists {count}: name the registry (a daemon cannot ask which)"
            ),
            Self::BadRewrite { text, reason } => {
                write!(f, "{text} does not make a valid image reference: {reason}")
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// The merged registry tables in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registries {
    tables: Vec<RegistryConfig>,
    search: Vec<String>,
}

impl Registries {
    /// Reads `registries.conf` at `path` (if it exists) and its `PATH.d/*.conf`
    /// drop-ins in name order, then lays `own` (bootsource's tables) over them.
    pub fn load(path: Option<&Path>, own: &[RegistryConfig]) -> anyhow::Result<Self> {
        let mut merged = Self::default();
        if let Some(path) = path {
            for file in files(path)? {
                let text = read_text(&file)?;
                let parsed: RegistriesFile =
                    toml::from_str(&text).with_context(|| format!("in {}", file.display()))?;
                merged.lay_over(parsed.registries, parsed.unqualified_search_registries);
            }
        }
        merged.lay_over(own.to_vec(), None);
        merged.check()?;
        Ok(merged)
    }

    /// Tables replace those with the same prefix; a search list replaces the old one.
    fn lay_over(&mut self, tables: Vec<RegistryConfig>, search: Option<Vec<String>>) {
        for table in tables {
            let prefix = table.prefix();
            self.tables.retain(|t| t.prefix() != prefix);
            self.tables.push(table);
        }
        if let Some(search) = search {
            self.search = search;
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        for t in &self.tables {
            let prefix = t.prefix();
            if prefix.is_empty() {
                bail!("a [[registry]] table needs a prefix or a location");
            }
            if prefix.starts_with("*.") && t.location.is_some() {
                bail!("[[registry]] prefix {prefix:?}: a wildcard prefix takes no location");
            }
        }
        Ok(())
    }

    /// The reference `image` really names: short names resolved, `location` applied;
    /// refused when blocked or when a short name cannot be resolved.
    pub fn resolve(&self, image: &RegistryRef) -> Result<RegistryRef, Refusal> {
        let image = match image.short_name() {
            None => image.clone(),
            Some(short) => match self.search.as_slice() {
                [] => {
                    return Err(Refusal::ShortNameUnresolved {
                        short: short.to_owned(),
                    });
                }
                [registry] => rewrite(image.resolved_on(registry), registry)?,
                many => {
                    return Err(Refusal::ShortNameAmbiguous {
                        short: short.to_owned(),
                        count: many.len(),
                    });
                }
            },
        };
        match self.table_for(&image) {
            Some(t) if t.blocked => Err(Refusal::Blocked {
                name: image.name(),
                prefix: t.prefix().to_owned(),
            }),
            Some(t) => match &t.location {
                Some(location) => rewrite(image.rebased(t.prefix(), location), location),
                None => Ok(image),
            },
            None => Ok(image),
        }
    }

    /// Where to fetch `image` (already [resolved](Self::resolve)), in order: the
    /// mirrors that may serve it (a tag never comes from a digest-only mirror), then
    /// the registry itself. A mirror whose location makes no valid reference is left
    /// out (with a warning).
    pub fn candidates(&self, image: &RegistryRef) -> Vec<Candidate> {
        let Some(table) = self.table_for(image) else {
            return vec![Candidate {
                reference: image.clone(),
                insecure: false,
            }];
        };
        let by_digest = image.digest().is_some();
        let mut out: Vec<Candidate> = table
            .mirrors
            .iter()
            .filter(|m| match m.pull_from_mirror {
                _ if table.mirror_by_digest_only && !by_digest => false,
                PullFromMirror::All => true,
                PullFromMirror::DigestOnly => by_digest,
                PullFromMirror::TagOnly => !by_digest,
            })
            .filter_map(|m| {
                // The table matched the resolved name, whose prefix may be `location`.
                let from = table.location.as_deref().unwrap_or(table.prefix());
                match image.rebased(from, &m.location) {
                    Some(Ok(reference)) => Some(Candidate {
                        reference,
                        insecure: m.insecure,
                    }),
                    other => {
                        tracing::warn!(mirror = %m.location, image = %image, error = ?other.map(|r| r.err()),
                            "mirror location makes no valid reference; skipped");
                        None
                    }
                }
            })
            .collect();
        out.push(Candidate {
            reference: image.clone(),
            insecure: table.insecure,
        });
        out
    }

    /// The table with the longest prefix matching `image`'s name (after a `location`
    /// rewrite, the table whose location it now names).
    fn table_for(&self, image: &RegistryRef) -> Option<&RegistryConfig> {
        let name = image.name();
        self.tables
            .iter()
            .filter_map(|t| {
                let by_prefix = matches(t.prefix(), &name, image.registry());
                let by_location = t
                    .location
                    .as_deref()
                    .is_some_and(|l| matches(l, &name, image.registry()));
                (by_prefix || by_location).then(|| (t.prefix().len(), t))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, t)| t)
    }
}

impl RegistryConfig {
    /// `prefix`, or `location` when no prefix is given.
    pub fn prefix(&self) -> &str {
        self.prefix
            .as_deref()
            .or(self.location.as_deref())
            .unwrap_or_default()
    }
}

/// Whether `prefix` covers `name` (`host/path/repo`): equal, or followed by `/`; a
/// `*.domain` prefix covers every host under the domain.
fn matches(prefix: &str, name: &str, host: &str) -> bool {
    if let Some(domain) = prefix.strip_prefix('*') {
        return host.ends_with(domain);
    }
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn rewrite(
    result: Option<Result<RegistryRef, bootsource_importer::ParseImageRefError>>,
    text: &str,
) -> Result<RegistryRef, Refusal> {
    match result {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(Refusal::BadRewrite {
            text: text.to_owned(),
            reason: e.to_string(),
        }),
        None => Err(Refusal::BadRewrite {
            text: text.to_owned(),
            reason: "it does not cover the name".into(),
        }),
    }
}

/// `path` if it exists, then `path.d/*.conf` in name order.
fn files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if path.exists() {
        out.push(path.to_owned());
    }
    let mut dir = path.as_os_str().to_owned();
    dir.push(".d");
    let dir = PathBuf::from(dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut drop_ins = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "conf") {
            drop_ins.push(path);
        }
        if drop_ins.len() > MAX_DROP_INS {
            bail!("{} holds more than {MAX_DROP_INS} files", dir.display());
        }
    }
    drop_ins.sort();
    out.extend(drop_ins);
    Ok(out)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let reading = || format!("reading {}", path.display());
    let bytes = read_regular_file(path, MAX_FILE).with_context(reading)?;
    String::from_utf8(bytes).with_context(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Registries {
        let file: RegistriesFile = toml::from_str(text).unwrap();
        let mut r = Registries::default();
        r.lay_over(file.registries, file.unqualified_search_registries);
        r.check().unwrap();
        r
    }

    fn image(text: &str) -> RegistryRef {
        text.parse().unwrap()
    }

    fn names(c: &[Candidate]) -> Vec<String> {
        c.iter().map(|c| c.reference.to_string()).collect()
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn digest_only_mirrors_are_never_asked_for_a_tag() {
        let r = parse(
            r#"
            [[registry]]
            prefix = "quay.io"
            [[registry.mirror]]
            location = "stale.lab:5000"
            pull-from-mirror = "digest-only"
            [[registry.mirror]]
            location = "fresh.lab:5000"
            insecure = true
            "#,
        );
        let tag = r.resolve(&image("quay.io/cd/fedora:41")).unwrap();
        assert_eq!(
            names(&r.candidates(&tag)),
            ["fresh.lab:5000/cd/fedora:41", "quay.io/cd/fedora:41"]
        );
        assert!(r.candidates(&tag)[0].insecure);
        let pinned = image(&format!("quay.io/cd/fedora:41@{DIGEST}"));
        assert_eq!(
            names(&r.candidates(&pinned)),
            [
                format!("stale.lab:5000/cd/fedora:41@{DIGEST}"),
                format!("fresh.lab:5000/cd/fedora:41@{DIGEST}"),
                format!("quay.io/cd/fedora:41@{DIGEST}"),
            ]
        );
        // The older spelling, on the registry, means the same for all its mirrors.
        let r = parse(
            "[[registry]]\nprefix = \"quay.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.lab\"\n",
        );
        assert_eq!(names(&r.candidates(&tag)), ["quay.io/cd/fedora:41"]);
        assert_eq!(r.candidates(&pinned).len(), 2);
    }

    #[test]
    fn the_longest_prefix_wins_and_paths_are_rebased() {
        let r = parse(
            r#"
            [[registry]]
            prefix = "quay.io"
            [[registry.mirror]]
            location = "all.lab"
            [[registry]]
            prefix = "quay.io/containerdisks"
            location = "internal.lab/cd"
            [[registry.mirror]]
            location = "cache.lab/quay-cd"
            "#,
        );
        let resolved = r
            .resolve(&image("quay.io/containerdisks/fedora:41"))
            .unwrap();
        assert_eq!(resolved.to_string(), "internal.lab/cd/fedora:41");
        assert_eq!(
            names(&r.candidates(&resolved)),
            ["cache.lab/quay-cd/fedora:41", "internal.lab/cd/fedora:41"]
        );
        // `quay.io/containerdisksX` is not under `quay.io/containerdisks`.
        let other = r.resolve(&image("quay.io/containerdisksx/a:1")).unwrap();
        assert_eq!(
            names(&r.candidates(&other)),
            ["all.lab/containerdisksx/a:1", "quay.io/containerdisksx/a:1"]
        );
        let unrelated = image("ghcr.io/a/b:1");
        assert_eq!(names(&r.candidates(&unrelated)), ["ghcr.io/a/b:1"]);
    }

    #[test]
    fn blocked_registries_and_wildcards_are_refused() {
        let r = parse(
            "[[registry]]\nprefix = \"*.evil.example\"\nblocked = true\n[[registry]]\nlocation = \"docker.io\"\nblocked = true\n",
        );
        for name in ["cdn.evil.example/a/b:1", "docker.io/library/fedora:1"] {
            assert!(
                matches!(r.resolve(&image(name)), Err(Refusal::Blocked { .. })),
                "{name}"
            );
        }
        assert!(r.resolve(&image("evil.example.org/a:1")).is_ok());
    }

    #[test]
    fn short_names_need_exactly_one_search_registry() {
        let short = image("fedora:41");
        assert!(matches!(
            Registries::default().resolve(&short),
            Err(Refusal::ShortNameUnresolved { .. })
        ));
        let one = parse("unqualified-search-registries = [\"registry.lab:5000\"]");
        assert_eq!(
            one.resolve(&short).unwrap().to_string(),
            "registry.lab:5000/fedora:41"
        );
        let two = parse("unqualified-search-registries = [\"a.lab\", \"b.lab\"]");
        assert!(matches!(
            two.resolve(&short),
            Err(Refusal::ShortNameAmbiguous { count: 2, .. })
        ));
        // A qualified name is never searched.
        assert_eq!(
            two.resolve(&image("docker.io/library/fedora:41"))
                .unwrap()
                .to_string(),
            "docker.io/library/fedora:41"
        );
    }

    #[test]
    fn drop_ins_replace_tables_and_the_search_list_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("registries.conf");
        std::fs::write(
            &conf,
            "unqualified-search-registries = [\"a.lab\"]\n[[registry]]\nprefix = \"quay.io\"\nblocked = true\n\n[aliases]\n\"x\" = \"quay.io/x\"\n",
        )
        .unwrap();
        let d = dir.path().join("registries.conf.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("20-mirror.conf"),
            "[[registry]]\nprefix = \"quay.io\"\n[[registry.mirror]]\nlocation = \"m2.lab\"\n",
        )
        .unwrap();
        std::fs::write(
            d.join("10-search.conf"),
            "unqualified-search-registries = [\"b.lab\"]\n",
        )
        .unwrap();
        std::fs::write(d.join("README"), "not a conf file").unwrap();
        let own = [RegistryConfig {
            prefix: Some("ghcr.io".into()),
            location: None,
            insecure: false,
            blocked: true,
            mirror_by_digest_only: false,
            mirrors: Vec::new(),
        }];
        let r = Registries::load(Some(&conf), &own).unwrap();
        let quay = r.resolve(&image("quay.io/a:1")).unwrap();
        assert_eq!(names(&r.candidates(&quay)), ["m2.lab/a:1", "quay.io/a:1"]);
        assert_eq!(
            r.resolve(&image("fedora:1")).unwrap().to_string(),
            "b.lab/fedora:1"
        );
        assert!(r.resolve(&image("ghcr.io/a:1")).is_err());
        // An absent file is no configuration; a bad one names its file and line.
        assert_eq!(
            Registries::load(Some(&dir.path().join("none.conf")), &[]).unwrap(),
            Registries::default()
        );
        std::fs::write(d.join("30-bad.conf"), "[[registry]]\nprefx = \"x\"\n").unwrap();
        let err = format!("{:#}", Registries::load(Some(&conf), &[]).unwrap_err());
        assert!(
            err.contains("30-bad.conf") && err.contains("prefx") && err.contains("line 2"),
            "{err}"
        );
    }
}
