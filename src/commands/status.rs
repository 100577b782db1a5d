//! `bootsource status`: every configured boot source, from the catalog and the daemon's
//! last state — works whether the daemon runs or not.
//!
//! The JSON is a stable contract:
//! `{"daemon": {"running": true | false | null, "pid"}, "sources": [{"name", "auto_update", "storage",
//! "current": {"digest", "volume", "path"} | null, "versions": [{"digest", "volume",
//! "path", "created", "last_used"}], "activity", "last_poll", "last_poll_result",
//! "next_poll", "last_error", "outdated", "importing": {"digest", "bytes_done",
//! "bytes_total", "percent"} | null, "rejected": {"digest", "reason"} | null}],
//! "orphaned": [{"digest", "volume", "path", "created", "last_used"}]}`. Times are
//! RFC 3339 UTC. `running` is null when it cannot be told (the instance lock is not
//! readable); `unknown` then says why. `rejected` is the newest version the signature
//! policy refused (not imported; the current version is kept).
//!
//! `activity` is what the source does now: `waiting` (until `next_poll`), `polling` (a
//! poll runs now; `next_poll` is when it started), `queued` (an import waits for a free
//! slot), `importing` (see `importing`), `disabled` (`auto_update` off); null when the
//! daemon is not running. So `next_poll` is set whenever the daemon runs and an
//! auto-update source is neither queued nor importing (its next poll is scheduled when
//! the import ends); a failed poll's retry is always visible.

use anyhow::Context;
use std::path::PathBuf;

use bootsource_storage::{Digest, SourceStatus, Store, Timestamp, Version, VolumeId};
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::config::Config;
use crate::human;
use crate::instance::{self, Liveness};
use crate::state::{Activity, DaemonState, SourceRuntime};

#[derive(Debug, Serialize)]
struct Status {
    daemon: Daemon,
    sources: Vec<SourceView>,
    orphaned: Vec<VersionView>,
}

#[derive(Debug, Serialize)]
struct Daemon {
    running: Option<bool>,
    pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<String>,
}

impl Daemon {
    fn from(liveness: Liveness) -> Self {
        let (running, pid, unknown) = match liveness {
            Liveness::Running(pid) => (Some(true), Some(pid), None),
            Liveness::Stopped => (Some(false), None, None),
            Liveness::Unknown(why) => (None, None, Some(why)),
        };
        Self {
            running,
            pid,
            unknown,
        }
    }
}

#[derive(Debug, Serialize)]
struct SourceView {
    #[serde(flatten)]
    store: StoreView,
    auto_update: bool,
    storage: String,
    #[serde(flatten)]
    runtime: SourceRuntime,
}

/// What the store holds for a source, in the contract's shape.
#[derive(Debug, Serialize)]
struct StoreView {
    name: String,
    current: Option<CurrentView>,
    versions: Vec<VersionView>,
}

/// A version: `{"digest", "volume", "path", "created", "last_used"}`.
#[derive(Debug, Serialize)]
struct VersionView {
    digest: Digest,
    volume: VolumeId,
    path: PathBuf,
    created: Timestamp,
    last_used: Timestamp,
}

/// The current version: `{"digest", "volume", "path"}`.
#[derive(Debug, Serialize)]
struct CurrentView {
    digest: Digest,
    volume: VolumeId,
    path: PathBuf,
}

impl From<&Version> for VersionView {
    fn from(v: &Version) -> Self {
        Self {
            digest: v.digest,
            volume: v.volume.clone(),
            path: v.path.clone(),
            created: v.created,
            last_used: v.last_used,
        }
    }
}

impl From<&SourceStatus> for StoreView {
    fn from(s: &SourceStatus) -> Self {
        Self {
            name: s.name.clone(),
            current: s.current.as_ref().map(|v| CurrentView {
                digest: v.digest,
                volume: v.volume.clone(),
                path: v.path.clone(),
            }),
            versions: s.versions.iter().map(VersionView::from).collect(),
        }
    }
}

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config.config)?;
    let status = tokio::task::spawn_blocking(move || collect(&config)).await??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", text(&status));
    }
    Ok(())
}

fn collect(config: &Config) -> anyhow::Result<Status> {
    let store =
        Store::open_read_only(config.store_config()).context("reading the storage catalog")?;
    let daemon = Daemon::from(instance::find_daemon(&config.state_dir));
    let mut runtime = DaemonState::load(&config.state_dir).unwrap_or_default();
    let mut sources = Vec::new();
    for s in &config.sources {
        let store_status = store
            .source_status(&s.name)
            .with_context(|| format!("reading source {}", s.name))?;
        let mut rt = runtime.sources.remove(&s.name).unwrap_or_default();
        if daemon.running == Some(false) {
            // A dead daemon imports nothing and polls nothing.
            rt = rt.without_daemon();
        }
        sources.push(SourceView {
            store: StoreView::from(&store_status),
            auto_update: s.auto_update,
            storage: config.storage_of(s).to_owned(),
            runtime: rt,
        });
    }
    Ok(Status {
        daemon,
        sources,
        orphaned: store
            .orphans()
            .context("reading orphaned versions")?
            .iter()
            .map(VersionView::from)
            .collect(),
    })
}

fn text(status: &Status) -> String {
    let d = &status.daemon;
    let mut out = match (d.pid, &d.unknown) {
        (Some(pid), _) => format!("daemon: running (pid {pid})\n"),
        (None, Some(why)) => format!("daemon: unknown ({why})\n"),
        (None, None) => "daemon: not running\n".to_owned(),
    };
    for s in &status.sources {
        let rt = &s.runtime;
        out += &format!(
            "\n{}  (auto-update {}, storage {})\n",
            s.store.name,
            on_off(s.auto_update),
            s.storage
        );
        match &s.store.current {
            Some(v) => {
                out += &format!(
                    "  current:   {} {}\n             {}\n",
                    v.volume,
                    v.digest,
                    v.path.display()
                )
            }
            None => out += "  current:   none\n",
        }
        out += &format!("  versions:  {}\n", s.store.versions.len());
        if let Some(at) = rt.last_poll {
            out += &format!(
                "  last poll: {} ({})\n",
                at.to_rfc3339(),
                rt.last_poll_result.as_deref().unwrap_or("?")
            );
        }
        out += &next_poll_line(rt);
        if rt.outdated {
            out += &format!(
                "  outdated:  registry has {}\n",
                rt.remote_digest.as_deref().unwrap_or("?")
            );
        }
        if let Some(i) = &rt.importing {
            out += &format!(
                "  importing: {} {:.0}% ({} of {})\n",
                i.digest,
                i.percent,
                human::bytes(i.bytes_done),
                human::bytes(i.bytes_total)
            );
        }
        if let Some(r) = &rt.rejected {
            out += &format!(
                "{}\n",
                human::labelled(
                    "  refused:   ",
                    &format!(
                        "{} by the signature policy (current version kept): {}",
                        r.digest, r.reason
                    )
                )
            );
        }
        if let Some(e) = &rt.last_error {
            out += &format!("{}\n", human::labelled("  error:     ", e));
        }
    }
    if !status.orphaned.is_empty() {
        out += "\norphaned (outside the configured namespace or sources; remove by hand when no longer needed):\n";
        for v in &status.orphaned {
            out += &format!("  {} {}\n", v.volume, v.path.display());
        }
    }
    out
}

/// The `next poll:` line: when, or that a poll runs now, or why there is none yet.
fn next_poll_line(rt: &SourceRuntime) -> String {
    let at = rt.next_poll.map(|at| at.to_rfc3339());
    match (rt.activity, at) {
        (Some(Activity::Polling), Some(at)) => format!("  next poll: running now (since {at})\n"),
        (Some(Activity::Queued), _) => {
            "  next poll: after the import, which waits for a free slot\n".to_owned()
        }
        (Some(Activity::Importing), _) => "  next poll: after the import\n".to_owned(),
        (_, Some(at)) => format!("  next poll: {at}\n"),
        (_, None) => String::new(),
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn the_next_poll_line_says_when_or_that_a_poll_runs_now() {
        let at = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
        let line = |activity, next_poll| {
            next_poll_line(&SourceRuntime {
                activity,
                next_poll,
                ..SourceRuntime::default()
            })
        };
        let waiting = line(Some(Activity::Waiting), Some(at));
        assert_eq!(waiting, "  next poll: 2025-03-01T09:00:00+00:00\n");
        let polling = line(Some(Activity::Polling), Some(at));
        assert_eq!(
            polling,
            "  next poll: running now (since 2025-03-01T09:00:00+00:00)\n"
        );
        let importing = line(Some(Activity::Importing), None);
        assert_eq!(importing, "  next poll: after the import\n");
        assert_eq!(line(Some(Activity::Disabled), None), "");
        assert_eq!(line(None, None), "", "no daemon, no polls");
    }

    fn version(n: u8, current: bool) -> Version {
        let digest: Digest = format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap();
        Version {
            digest,
            volume: VolumeId::new("fedora", &digest).unwrap(),
            path: PathBuf::from(format!("/srv/images/v{n}")),
            created: Timestamp::now(),
            last_used: Timestamp::now(),
            namespace: "os-images".into(),
            source: "fedora".into(),
            backend: "local".into(),
            kind: bootsource_storage::BackendKind::Dir,
            size: 1 << 20,
            current,
        }
    }

    #[test]
    fn a_source_serialises_to_the_contract() {
        let status = SourceStatus {
            name: "fedora".into(),
            current: Some(version(2, true)),
            versions: vec![version(1, false), version(2, true)],
            importing: None,
        };
        let json = serde_json::to_value(StoreView::from(&status)).unwrap();
        let current = json["current"].as_object().unwrap();
        let mut keys: Vec<_> = current.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["digest", "path", "volume"]);
        assert_eq!(json["current"]["path"], "/srv/images/v2");
        let first = json["versions"][0].as_object().unwrap();
        let mut keys: Vec<_> = first.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["created", "digest", "last_used", "path", "volume"]);
        assert!(first["created"].as_str().unwrap().ends_with('Z'));
        assert_eq!(json["name"], "fedora");
        let none = SourceStatus {
            current: None,
            ..status
        };
        assert!(serde_json::to_value(StoreView::from(&none)).unwrap()["current"].is_null());
    }
}
