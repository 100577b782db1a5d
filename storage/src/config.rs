//! What the store is told: where its state lives, the golden-image namespace, and the
//! named backends (like storage classes).
//!
//! These types deserialize from the `[storage.NAME]` tables of the daemon's TOML config,
//! but this crate never reads a file: the binary parses its config and hands a
//! [`StoreConfig`] to [`Store::open`](crate::Store::open), which validates it here.
//!
//! `format` follows CDI's `dataImportCronSourceFormat`: `snapshot` makes each sealed
//! version a snapshot (a reflinked copy, or a read-only btrfs snapshot) and is only
//! possible on `reflink` and `btrfs`; `volume` keeps the imported volume itself, made
//! read-only. Left out, it is the best the backend can do (`snapshot` on reflink and
//! btrfs, `volume` on dir and block); asking for `snapshot` on dir or block is an error,
//! not a silent downgrade.
//!
//! Where `state_dir` comes from is the binary's business; `/var/lib/bootsource` is the
//! default, and it may equal the root of a `dir` backend: the store's own entries
//! (`catalog.json`, `.locks/`, `<namespace>/<source>/current`) never collide with
//! volumes (`<namespace>/<source>/<source>-<hex>`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bootsource_blockdev::topology::{DeviceNumber, Sysfs};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::landing::landing;
use crate::names;
use crate::problem::ConfigProblem;

/// The default golden-image namespace (as HyperConverged's `commonBootImageNamespace`).
pub const DEFAULT_NAMESPACE: &str = "os-images";

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/bootsource";

/// The store's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Where the catalog, the locks and the `current` links live.
    pub state_dir: PathBuf,
    /// The golden-image namespace new versions go to.
    pub namespace: String,
    /// The backends, by name.
    pub backends: BTreeMap<String, BackendConfig>,
    /// Bytes to keep free on the filesystem of a file-based staging volume
    /// (`min_free`): an import that would eat into them fails cleanly.
    pub min_free: Option<u64>,
}

/// The kind of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Sparse raw files on any file system.
    Dir,
    /// Sparse raw files on XFS (reflink=1) or btrfs, sealed and cloned by `FICLONE`.
    Reflink,
    /// One btrfs subvolume per version.
    Btrfs,
    /// A pool of block devices, one version per device.
    Block,
}

impl BackendKind {
    /// Whether versions are files under a root directory (every kind but `block`).
    pub fn is_file_based(self) -> bool {
        self != Self::Block
    }

    fn can_snapshot(self) -> bool {
        matches!(self, Self::Reflink | Self::Btrfs)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dir => "dir",
            Self::Reflink => "reflink",
            Self::Btrfs => "btrfs",
            Self::Block => "block",
        })
    }
}

/// How a sealed version is kept (CDI's `dataImportCronSourceFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A snapshot of the imported volume (reflink copy or read-only btrfs snapshot).
    Snapshot,
    /// The imported volume itself, made read-only.
    Volume,
}

/// One named backend, as written in `[storage.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `dir`, `reflink`, `btrfs` or `block`.
    pub kind: BackendKind,
    /// The root directory (every kind but `block`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The pool (`block` only). Prefer stable names (`/dev/disk/by-id/…`): the catalog
    /// records the path, and a renumbered `/dev/sdX` would point at someone else's disk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<PathBuf>,
    /// `snapshot` or `volume`; the backend's best when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
}

impl BackendConfig {
    /// A file-based backend rooted at `path`, in its default format.
    pub fn files(kind: BackendKind, path: impl Into<PathBuf>) -> Self {
        Self {
            kind,
            path: Some(path.into()),
            devices: Vec::new(),
            format: None,
        }
    }

    /// A block pool, in `volume` format.
    pub fn block(devices: Vec<PathBuf>) -> Self {
        Self {
            kind: BackendKind::Block,
            path: None,
            devices,
            format: None,
        }
    }

    /// The same backend with an explicit format.
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }
}

/// Where a validated backend keeps its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Site {
    /// Under this root directory.
    Root(PathBuf),
    /// On these devices.
    Pool(Vec<PathBuf>),
}

/// A backend after validation: format resolved, site known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backend {
    pub name: String,
    pub kind: BackendKind,
    pub format: Format,
    pub site: Site,
}

impl Backend {
    /// The root directory of a file-based backend.
    pub fn root(&self) -> Option<&Path> {
        match &self.site {
            Site::Root(root) => Some(root),
            Site::Pool(_) => None,
        }
    }
}

impl StoreConfig {
    /// A config with the default namespace and no backends.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            backends: BTreeMap::new(),
            min_free: None,
        }
    }

    /// The same config keeping `bytes` free on file-based backends' filesystems.
    pub fn with_min_free(mut self, bytes: u64) -> Self {
        self.min_free = Some(bytes);
        self
    }

    /// The same config with one more backend.
    pub fn with_backend(mut self, name: &str, backend: BackendConfig) -> Self {
        self.backends.insert(name.to_owned(), backend);
        self
    }

    /// Checks everything that can be checked without changing the disk (paths are
    /// resolved, nothing is created).
    pub(crate) fn validate(&self) -> Result<Vec<Backend>> {
        names::check_namespace(&self.namespace)?;
        if !self.state_dir.is_absolute() {
            return Err(config_err(
                "*",
                ConfigProblem::RelativeStateDir(self.state_dir.clone()),
            ));
        }
        let backends = self
            .backends
            .iter()
            .map(|(name, cfg)| validate_backend(name, cfg))
            .collect::<Result<Vec<_>>>()?;
        check_roots_disjoint(&self.state_dir, &backends)?;
        check_devices_unique(&backends)?;
        Ok(backends)
    }
}

fn config_err(backend: &str, problem: ConfigProblem) -> Error {
    Error::Config {
        backend: backend.to_owned(),
        problem,
    }
}

fn validate_backend(name: &str, cfg: &BackendConfig) -> Result<Backend> {
    names::check_backend_name(name)?;
    let kind = cfg.kind;
    let format = match (cfg.format, kind.can_snapshot()) {
        (None, true) | (Some(Format::Snapshot), true) => Format::Snapshot,
        (None, false) | (Some(Format::Volume), _) => Format::Volume,
        (Some(Format::Snapshot), false) => {
            return Err(config_err(name, ConfigProblem::SnapshotUnsupported(kind)));
        }
    };
    let site = match (kind, &cfg.path, cfg.devices.is_empty()) {
        (BackendKind::Block, None, false) => {
            for dev in &cfg.devices {
                if !dev.is_absolute() {
                    return Err(config_err(name, ConfigProblem::RelativeDevice(dev.clone())));
                }
            }
            Site::Pool(cfg.devices.clone())
        }
        (BackendKind::Block, _, _) => {
            return Err(config_err(name, ConfigProblem::BlockNeedsDevices));
        }
        (_, Some(path), true) if path.is_absolute() => Site::Root(path.clone()),
        (_, _, _) => {
            return Err(config_err(name, ConfigProblem::FilesNeedPath(kind)));
        }
    };
    Ok(Backend {
        name: name.to_owned(),
        kind,
        format,
        site,
    })
}

/// Two backends sharing a tree would see each other's volumes as leftovers, and a root
/// inside the state directory would mix its volumes with the `current` links (the
/// state directory itself may be a root). Compared where the paths land, so neither
/// `..` nor a symlink hides an overlap.
fn check_roots_disjoint(state_dir: &Path, backends: &[Backend]) -> Result<()> {
    let state = landing(state_dir);
    let roots: Vec<(&Backend, PathBuf)> = backends
        .iter()
        .filter_map(|b| b.root().map(|root| (b, landing(root))))
        .collect();
    for (i, (a, ra)) in roots.iter().enumerate() {
        if ra.starts_with(&state) && *ra != state {
            return Err(overlap_err(&a.name, ra, &state, "the state directory"));
        }
        for (b, rb) in &roots[i + 1..] {
            if ra.starts_with(rb) || rb.starts_with(ra) {
                return Err(overlap_err(&b.name, rb, ra, &format!("backend {}", a.name)));
            }
        }
    }
    Ok(())
}

fn overlap_err(backend: &str, root: &Path, other: &Path, what: &str) -> Error {
    config_err(
        backend,
        ConfigProblem::RootsOverlap {
            root: root.to_owned(),
            other: other.to_owned(),
            what: what.to_owned(),
        },
    )
}

/// Two pool entries for one device (another name, its disk, a partition of it) would
/// put two versions on the same bytes. Devices that exist are compared by number and
/// topology; the others (unplugged now) by where their paths land.
fn check_devices_unique(backends: &[Backend]) -> Result<()> {
    let sysfs = Sysfs::system();
    let mut seen: Vec<(PathBuf, Option<DeviceNumber>, &str)> = Vec::new();
    for backend in backends {
        let Site::Pool(devices) = &backend.site else {
            continue;
        };
        for dev in devices {
            let key = landing(dev);
            let number =
                DeviceNumber::of_block_device(&key).map_err(|e| device_err(&backend.name, e))?;
            for (other, other_number, other_backend) in &seen {
                if *other == key {
                    return Err(config_err(
                        &backend.name,
                        ConfigProblem::DeviceListedTwice {
                            device: dev.clone(),
                            other_backend: (*other_backend).to_owned(),
                        },
                    ));
                }
                let (Some(a), Some(b)) = (number, *other_number) else {
                    continue;
                };
                if let Some(relation) = sysfs
                    .overlap(a, b)
                    .map_err(|e| device_err(&backend.name, e))?
                {
                    return Err(config_err(
                        &backend.name,
                        ConfigProblem::DevicesOverlap {
                            device: dev.clone(),
                            number: a,
                            other: other.clone(),
                            other_number: b,
                            other_backend: (*other_backend).to_owned(),
                            relation,
                        },
                    ));
                }
            }
            seen.push((key, number, &backend.name));
        }
    }
    Ok(())
}

fn device_err(backend: &str, source: bootsource_blockdev::Error) -> Error {
    Error::BlockDevice {
        purpose: format!("the pool of backend {backend}"),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(backends: &[(&str, BackendConfig)]) -> StoreConfig {
        backends
            .iter()
            .fold(StoreConfig::new("/var/lib/bootsource"), |c, (n, b)| {
                c.with_backend(n, b.clone())
            })
    }

    #[test]
    fn format_defaults_to_what_the_backend_can_do() {
        let cfg = store(&[
            ("d", BackendConfig::files(BackendKind::Dir, "/d")),
            ("r", BackendConfig::files(BackendKind::Reflink, "/r")),
            ("b", BackendConfig::block(vec!["/dev/null-a".into()])),
        ]);
        let formats: Vec<_> = cfg
            .validate()
            .unwrap()
            .into_iter()
            .map(|b| b.format)
            .collect();
        // BTreeMap order: b, d, r.
        assert_eq!(formats, [Format::Volume, Format::Volume, Format::Snapshot]);
    }

    #[test]
    fn snapshot_on_dir_or_block_is_a_config_error() {
        for b in [
            BackendConfig::files(BackendKind::Dir, "/d"),
            BackendConfig::block(vec!["/dev/x".into()]),
        ] {
            let err = store(&[("local", b.with_format(Format::Snapshot))])
                .validate()
                .unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("local") && msg.contains("reflink"), "{msg}");
        }
    }

    #[test]
    fn parses_the_documented_toml_shape() {
        let json = r#"{"kind": "reflink", "path": "/srv/xfs", "format": "volume"}"#;
        let b: BackendConfig = serde_json::from_str(json).unwrap();
        assert_eq!(b.kind, BackendKind::Reflink);
        assert_eq!(b.format, Some(Format::Volume));
        let bad = r#"{"kind": "dir", "path": "/x", "colour": "blue"}"#;
        assert!(serde_json::from_str::<BackendConfig>(bad).is_err());
    }

    #[test]
    fn overlapping_roots_and_shared_devices_are_refused() {
        let nested = store(&[
            ("a", BackendConfig::files(BackendKind::Dir, "/srv/a")),
            ("b", BackendConfig::files(BackendKind::Dir, "/srv/a/b")),
        ]);
        assert!(
            nested
                .validate()
                .unwrap_err()
                .to_string()
                .contains("overlaps")
        );
        let shared = store(&[
            ("p", BackendConfig::block(vec!["/dev/fake0".into()])),
            ("q", BackendConfig::block(vec!["/dev/fake0".into()])),
        ]);
        assert!(
            shared
                .validate()
                .unwrap_err()
                .to_string()
                .contains("also listed")
        );
    }

    #[test]
    fn roots_reached_through_dotdot_or_symlinks_are_compared_where_they_land() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for d in ["a", "x", "state", "b"] {
            std::fs::create_dir(t.join(d)).unwrap();
        }
        std::os::unix::fs::symlink(t.join("a"), t.join("to-a")).unwrap();
        std::os::unix::fs::symlink(t.join("state"), t.join("to-state")).unwrap();
        let with_roots = |state: &Path, roots: &[PathBuf]| {
            roots
                .iter()
                .enumerate()
                .fold(StoreConfig::new(state), |c, (i, r)| {
                    c.with_backend(&format!("r{i}"), BackendConfig::files(BackendKind::Dir, r))
                })
        };
        let state = t.join("state");
        for roots in [
            vec![t.join("a"), t.join("x/../a/b")],
            vec![t.join("a"), t.join("to-a/b")],
            vec![t.join("to-a/new/.."), t.join("a")],
            vec![t.join("x/../state/images")],
            vec![t.join("to-state/images")],
            vec![t.join("to-state/new/deeper")],
        ] {
            let err = with_roots(&state, &roots).validate().unwrap_err();
            assert!(err.to_string().contains("overlaps"), "{roots:?}: {err}");
        }
        for roots in [
            vec![t.join("a"), t.join("b")],
            vec![t.join("to-a"), t.join("x/../b")],
            vec![t.join("to-state")],
            vec![t.join("x/new"), t.join("x/new2")],
        ] {
            with_roots(&state, &roots)
                .validate()
                .unwrap_or_else(|e| panic!("{roots:?}: {e}"));
        }
    }

    #[test]
    fn kinds_take_the_right_place() {
        for bad in [
            BackendConfig::files(BackendKind::Block, "/x"),
            BackendConfig::block(vec![]),
            BackendConfig::files(BackendKind::Dir, "relative"),
            BackendConfig {
                devices: vec!["/dev/x".into()],
                ..BackendConfig::files(BackendKind::Dir, "/x")
            },
        ] {
            assert!(store(&[("x", bad.clone())]).validate().is_err(), "{bad:?}");
        }
    }
}
