//! Garbage collection, and the one way any volume is removed.
//!
//! Policy, per source in the store's namespace ([`plan`], pure):
//!
//! 1. the current version is never removed;
//! 2. versions on another backend than the current version's are removed: they are
//!    what is left after the source's backend changed, and the version on the new
//!    backend exists and is published, or it would not be current;
//! 3. of the rest, the `imports_to_keep` most recently used (current included, at least
//!    one) are kept, and the others go, least recently used first. `last_used` is when
//!    a version stopped being current or was last cloned.
//!
//! A version a clone holds (shared volume lock) is skipped and reported as held; the
//! next run removes it. Removal ([`Store::retire`]) is two-phase so a crash cannot leak
//! space or a block device: the records are marked `removing` (one catalog write), the
//! data is deleted outside the catalog lock while each volume lock is held exclusively,
//! then the records are dropped (a second catalog write). A crash in between leaves
//! `removing` records that the next [`recover`](Store::recover) finishes.

use crate::backend;
use crate::catalog::{Catalog, State, VolumeKey, VolumeRecord};
use crate::error::Result;
use crate::lifecycle::key_of;
use crate::lock::{FileLock, Mode};
use crate::names;
use crate::status::Version;
use crate::step;
use crate::store::Store;

/// What a garbage collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Versions removed, in the order they were removed.
    pub removed: Vec<Version>,
    /// Versions due for removal but held by a clone in progress.
    pub held: Vec<Version>,
}

impl Store {
    /// Removes the versions of `source` beyond `imports_to_keep` (see the module docs).
    pub fn gc(&self, source: &str, imports_to_keep: usize) -> Result<GcReport> {
        self.writable()?;
        names::check_source_name(source)?;
        let catalog = self.catalog.load()?;
        let doomed = plan(&catalog, self.namespace(), source, imports_to_keep);
        self.retire_unless_held(doomed, Current::Keep)
    }

    /// Removes every version in other namespaces (see [`orphans`](Store::orphans))
    /// that no clone holds, and their `current` links.
    pub fn remove_orphans(&self) -> Result<GcReport> {
        self.writable()?;
        let keys: Vec<VolumeKey> = self.orphans()?.iter().map(key_of).collect();
        let report = self.retire_unless_held(keys, Current::Remove)?;
        let locked = self.catalog.lock()?;
        self.reconcile_links(&locked.catalog)?;
        Ok(report)
    }

    fn retire_unless_held(&self, keys: Vec<VolumeKey>, current: Current) -> Result<GcReport> {
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        let catalog = self.catalog.load()?;
        for key in keys {
            match self.volume_lock(&key, Mode::ExclusiveNow)? {
                Some(lock) => doomed.push((key, lock)),
                None => {
                    if let Some(r) = catalog.find(&key) {
                        tracing::info!(volume = %r.volume, source = %r.source,
                            "version held by a clone; kept until the next collection");
                        report.held.push(r.into());
                    }
                }
            }
        }
        report.removed = self.retire(doomed, current)?;
        Ok(report)
    }

    /// Removes volumes whose locks the caller holds exclusively: mark `removing`,
    /// delete the data, drop the records, unlink the lock files.
    pub(crate) fn retire(
        &self,
        volumes: Vec<(VolumeKey, FileLock)>,
        current: Current,
    ) -> Result<Vec<Version>> {
        if volumes.is_empty() {
            return Ok(Vec::new());
        }
        let mut records = Vec::new();
        {
            let mut locked = self.catalog.lock()?;
            for (key, lock) in volumes {
                let Some(r) = locked.catalog.find_mut(&key) else {
                    lock.remove()?;
                    continue;
                };
                if r.current && current == Current::Keep {
                    // Published meanwhile (the plan was made without the lock).
                    continue;
                }
                r.current = false;
                r.state = State::Removing;
                records.push((r.clone(), lock));
            }
            // A current version is only retired with its whole namespace (orphans); its
            // link is removed by the caller, or by recovery after a crash.
            locked.save()?;
        }
        step::reached("remove.marked");
        let mut removed = Vec::new();
        for (record, lock) in records {
            backend::remove(&record, &self.backends)?;
            step::reached("remove.deleted");
            let mut locked = self.catalog.lock()?;
            locked.catalog.remove(&record.key());
            locked.save()?;
            drop(locked);
            lock.remove()?;
            tracing::info!(volume = %record.volume, source = %record.source,
                backend = %record.backend, "version removed");
            removed.push(Version::from(&record));
        }
        Ok(removed)
    }
}

/// Whether [`Store::retire`] may remove a current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Current {
    /// No: skip it (garbage collection, staging leftovers).
    Keep,
    /// Yes: the whole namespace goes (orphans).
    Remove,
}

/// The versions of `source` to remove, least recently used first.
pub(crate) fn plan(
    catalog: &Catalog,
    namespace: &str,
    source: &str,
    keep: usize,
) -> Vec<VolumeKey> {
    let ready: Vec<&VolumeRecord> = catalog.ready(namespace, source).collect();
    let home = ready.iter().find(|r| r.current).map(|r| r.backend.clone());
    let (mut kept, mut doomed): (Vec<&VolumeRecord>, Vec<&VolumeRecord>) = ready
        .into_iter()
        .partition(|r| home.as_ref().is_none_or(|b| &r.backend == b));
    // Current first, then most recently used.
    kept.sort_by(|a, b| {
        (b.current, b.last_used, b.created).cmp(&(a.current, a.last_used, a.created))
    });
    doomed.extend(kept.drain(keep.max(1).min(kept.len())..));
    doomed.sort_by_key(|r| (r.last_used, r.created));
    doomed.iter().map(|r| r.key()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::record;
    use crate::time::Timestamp;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_system_time(UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn catalog(specs: &[(u8, &str, u64, bool)]) -> Catalog {
        let mut c = Catalog::default();
        for &(seed, backend, used, current) in specs {
            let mut r = record("fedora", seed, backend);
            r.created = at(u64::from(seed));
            r.last_used = at(used);
            r.current = current;
            c.volumes.push(r);
        }
        c
    }

    fn seeds(c: &Catalog, keys: &[VolumeKey]) -> Vec<u8> {
        keys.iter()
            .map(|k| {
                let r = c.find(k).unwrap();
                u8::from_str_radix(&r.digest.hex()[..2], 16).unwrap()
            })
            .collect()
    }

    #[test]
    fn keeps_the_most_recently_used_and_removes_lru_first() {
        // 1 was cloned recently (used 50); 2 and 3 were current before 4.
        let c = catalog(&[
            (1, "a", 50, false),
            (2, "a", 20, false),
            (3, "a", 30, false),
            (4, "a", 40, true),
        ]);
        assert_eq!(seeds(&c, &plan(&c, "os-images", "fedora", 2)), [2, 3]);
        assert_eq!(seeds(&c, &plan(&c, "os-images", "fedora", 3)), [2]);
        assert_eq!(
            seeds(&c, &plan(&c, "os-images", "fedora", 9)),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn never_the_current_one_even_with_nothing_to_keep() {
        let c = catalog(&[(1, "a", 90, false), (2, "a", 10, true)]);
        assert_eq!(seeds(&c, &plan(&c, "os-images", "fedora", 0)), [1]);
        assert_eq!(seeds(&c, &plan(&c, "os-images", "fedora", 1)), [1]);
    }

    #[test]
    fn versions_on_a_former_backend_go_once_the_new_one_is_current() {
        let c = catalog(&[
            (1, "old", 10, false),
            (2, "old", 20, false),
            (3, "new", 30, true),
        ]);
        assert_eq!(seeds(&c, &plan(&c, "os-images", "fedora", 3)), [1, 2]);
        // Still current on the old backend: nothing to do.
        let c = catalog(&[(1, "old", 10, false), (2, "old", 20, true)]);
        assert!(plan(&c, "os-images", "fedora", 3).is_empty());
    }

    #[test]
    fn other_sources_and_namespaces_are_not_considered() {
        let mut c = catalog(&[(1, "a", 10, false), (2, "a", 20, true)]);
        let mut other = record("centos", 3, "a");
        other.last_used = at(1);
        c.volumes.push(other);
        let mut orphan = record("fedora", 4, "a");
        orphan.namespace = "old".into();
        c.volumes.push(orphan);
        assert_eq!(seeds(&c, &plan(&c, "os-images", "fedora", 1)), [1]);
    }
}
