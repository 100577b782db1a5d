//! Keeping one-shot commands off the storage the daemon manages.
//!
//! `bootsource import --to TARGET` writes wherever it is told; on a node running the
//! daemon, TARGET must not be a pool device, the disk under one, or a place inside a
//! storage root. The daemon's config (`--config`, else the default path if that file
//! exists) says what is managed; the store decides what overlaps
//! ([`Store::refuse_overlap`]). Without a config nothing is managed and nothing is
//! refused.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bootsource_storage::Store;

use crate::config::{Config, DEFAULT_PATH};

/// Fails if `target` overlaps what the config at `config` (or the default one, if it
/// exists) manages.
pub async fn refuse_managed_target(config: Option<&Path>, target: &Path) -> anyhow::Result<()> {
    let path = match config {
        Some(path) => path.to_owned(),
        None if Path::new(DEFAULT_PATH).exists() => PathBuf::from(DEFAULT_PATH),
        None => return Ok(()),
    };
    let store_config = Config::load(&path)?.store_config();
    let target = target.to_owned();
    tokio::task::spawn_blocking(move || {
        let store = Store::open_read_only(store_config)
            .with_context(|| format!("reading the storage configured in {}", path.display()))?;
        store
            .refuse_overlap(&target)
            .with_context(|| format!("refusing to import to {}", target.display()))
    })
    .await?
}
