//! `bootsource check-config [FILE]`: loads a configuration exactly as the daemon does
//! (containers' `registries.conf` merged, sources resolved) and prints the effective
//! configuration as TOML, every default filled in. A problem exits 1 with the key and
//! line the TOML parser names (or the source a check refused).
//!
//! The output is itself a valid configuration that loads to the same thing: what an
//! operator reads is what the daemon runs with.

use std::path::PathBuf;

use anyhow::Context;
use toml::{Table, Value};

use crate::cli::CheckConfigArgs;
use crate::config::{Config, DEFAULT_PATH, SourceConfig};
use crate::human::size_setting;

pub fn run(args: &CheckConfigArgs) -> anyhow::Result<()> {
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    let config = Config::load(&path)?;
    let text = toml::to_string(&effective(&config)).context("printing the configuration")?;
    print!(
        "# {}: valid; every default filled in\n{text}",
        path.display()
    );
    Ok(())
}

/// The configuration in force, as TOML.
pub fn effective(c: &Config) -> Table {
    let mut t = Table::new();
    let mut put = |key: &str, value: Value| {
        t.insert(key.to_owned(), value);
    };
    let text = |s: &dyn std::fmt::Display| Value::String(s.to_string());
    let path = |p: &std::path::Path| Value::String(p.display().to_string());
    let duration = |d: std::time::Duration| text(&humantime::format_duration(d));
    put("namespace", text(&c.namespace));
    put("metrics_address", text(&c.metrics_address));
    put("default_schedule", text(&c.default_schedule));
    if let Some(auth) = c.auth_file() {
        put("auth_file", path(&auth));
    }
    if let Some(certs_d) = &c.certs_d {
        put("certs_d", path(certs_d));
    }
    put(
        "insecure_registries",
        Value::Array(c.insecure_registries.iter().map(|r| text(r)).collect()),
    );
    put("state_dir", path(&c.state_dir));
    put(
        "max_concurrent_imports",
        Value::Integer(i64::try_from(c.max_concurrent_imports.get()).unwrap_or(i64::MAX)),
    );
    put("import_timeout", duration(c.import_timeout));
    put("stop_timeout", duration(c.stop_timeout));
    put("spool_limit", text(&size_setting(c.spool_limit)));
    put("max_virtual_size", text(&size_setting(c.max_virtual_size)));
    put("min_free", text(&size_setting(c.min_free)));
    if let Some(format) = c.log_format {
        put("log_format", text(&format.name()));
    }
    put(
        "registries_conf",
        text(
            &c.registries_conf()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
    );
    let storage = c
        .storage
        .iter()
        .filter_map(|(name, b)| Some((name.clone(), Value::try_from(b).ok()?)))
        .collect::<Table>();
    put("storage", Value::Table(storage));
    let registries = c
        .registries
        .iter()
        .filter_map(|r| Value::try_from(r).ok())
        .collect();
    put("registry", Value::Array(registries));
    let sources = c.sources.iter().map(|s| source(c, s)).collect();
    put("source", Value::Array(sources));
    t
}

fn source(c: &Config, s: &SourceConfig) -> Value {
    let mut t = Table::new();
    t.insert("name".into(), Value::String(s.name.clone()));
    t.insert("image".into(), Value::String(s.image.to_string()));
    t.insert("auto_update".into(), Value::Boolean(s.auto_update));
    t.insert(
        "imports_to_keep".into(),
        Value::Integer(i64::try_from(s.imports_to_keep).unwrap_or(i64::MAX)),
    );
    t.insert("storage".into(), Value::String(c.storage_of(s).to_owned()));
    let schedule = c.schedule_of(s);
    let key = if schedule.as_interval().is_some() {
        "interval"
    } else {
        "schedule"
    };
    t.insert(key.into(), Value::String(schedule.to_string()));
    if let Some(platform) = &s.platform {
        t.insert("platform".into(), Value::String(platform.to_string()));
    }
    Value::Table(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_configuration_loads_to_the_same_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            format!(
                r#"
                state_dir = {state:?}
                registries_conf = ""
                log_format = "json"
                spool_limit = "32M"
                [storage.fast]
                kind = "dir"
                path = {state:?}
                [[registry]]
                prefix = "quay.io"
                [[registry.mirror]]
                location = "m.lab"
                pull-from-mirror = "digest-only"
                [[source]]
                name = "a"
                image = "docker://quay.io/cd/a:1"
                interval = "30m"
                platform = "linux/arm64"
                "#,
                state = dir.path().display().to_string()
            ),
        )
        .unwrap();
        let first = Config::load(&file).unwrap();
        let printed = toml::to_string(&effective(&first)).unwrap();
        assert!(printed.contains("import_timeout = \"6h\""), "{printed}");
        assert!(printed.contains("spool_limit = \"32M\""), "{printed}");
        assert!(printed.contains("imports_to_keep = 3"), "{printed}");
        assert!(
            printed.contains("pull-from-mirror = \"digest-only\""),
            "{printed}"
        );
        std::fs::write(&file, &printed).unwrap();
        let second = Config::load(&file).unwrap();
        assert_eq!(toml::to_string(&effective(&second)).unwrap(), printed);
    }
}
