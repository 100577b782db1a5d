//! `bootsource status`: every configured boot source, from the catalog and the daemon's
//! last state — works whether the daemon runs or not.
//!
//! The JSON is a stable contract:
//! `{"daemon": {"running", "pid"}, "sources": [{"name", "auto_update", "storage",
//! "current": {"digest", "volume", "path"} | null, "versions": [{"digest", "volume",
//! "path", "created", "last_used"}], "last_poll", "last_poll_result", "next_poll",
//! "last_error", "outdated", "importing": {"digest", "bytes_done", "bytes_total",
//! "percent"} | null}], "orphaned": [{"digest", "volume", "path", "created",
//! "last_used"}]}`. Times are RFC 3339 UTC.

use anyhow::Context;
use bootsource_storage::{SourceStatus, Store, Version};
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::config::Config;
use crate::human;
use crate::state::{self, DaemonState, SourceRuntime};

#[derive(Debug, Serialize)]
struct Status {
    daemon: Daemon,
    sources: Vec<SourceView>,
    orphaned: Vec<Version>,
}

#[derive(Debug, Serialize)]
struct Daemon {
    running: bool,
    pid: Option<i32>,
}

#[derive(Debug, Serialize)]
struct SourceView {
    #[serde(flatten)]
    store: SourceStatus,
    auto_update: bool,
    storage: String,
    #[serde(flatten)]
    runtime: SourceRuntime,
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
    let pid = state::running_daemon(&config.state_dir);
    let mut runtime = DaemonState::load(&config.state_dir).unwrap_or_default();
    let mut sources = Vec::new();
    for s in &config.sources {
        let store_status = store
            .source_status(&s.name)
            .with_context(|| format!("reading source {}", s.name))?;
        let mut rt = runtime.sources.remove(&s.name).unwrap_or_default();
        if pid.is_none() {
            // A dead daemon imports nothing and polls nothing.
            rt.importing = None;
            rt.next_poll = None;
        }
        sources.push(SourceView {
            store: store_status,
            auto_update: s.auto_update,
            storage: config.storage_of(s).to_owned(),
            runtime: rt,
        });
    }
    Ok(Status {
        daemon: Daemon {
            running: pid.is_some(),
            pid,
        },
        sources,
        orphaned: store.orphans().context("reading orphaned versions")?,
    })
}

fn text(status: &Status) -> String {
    let mut out = match status.daemon.pid {
        Some(pid) => format!("daemon: running (pid {pid})\n"),
        None => "daemon: not running\n".to_owned(),
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
        if let Some(at) = rt.next_poll {
            out += &format!("  next poll: {}\n", at.to_rfc3339());
        }
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

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}
