//! Which signature policy applies: the one named (`--policy`, config `policy`), else
//! the system's `/etc/containers/policy.json` if it exists, else none — every image is
//! accepted, and the log says so. Signatures are looked up through the `registries.d`
//! named (`--registries-d`, config `registries_d`), else the system's
//! `/etc/containers/registries.d`.

use std::path::Path;

use anyhow::Context;
use bootsource_importer::TrustPolicy;
use bootsource_importer::trust::{SYSTEM_POLICY, SYSTEM_REGISTRIES_D};

/// Loads the policy in force (file reads, capped; call off the async runtime).
pub fn load(policy: Option<&Path>, registries_d: Option<&Path>) -> anyhow::Result<TrustPolicy> {
    let registries_d = registries_d.unwrap_or(Path::new(SYSTEM_REGISTRIES_D));
    let path = match policy {
        Some(path) => path,
        None if Path::new(SYSTEM_POLICY).is_file() => Path::new(SYSTEM_POLICY),
        None => {
            tracing::info!(
                "no signature policy ({SYSTEM_POLICY} does not exist and none is configured): every image is accepted"
            );
            return Ok(TrustPolicy::accept_anything());
        }
    };
    let trust = TrustPolicy::load(path, Some(registries_d))
        .with_context(|| format!("loading the signature policy {}", path.display()))?;
    tracing::info!(policy = %path.display(), registries_d = %registries_d.display(), "signature policy in force");
    Ok(trust)
}
