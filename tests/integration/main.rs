//! bootsource's integration tests: the real binary against a real registry, real
//! filesystems and real tools, in one test binary (the harness in [`common`] is
//! compiled once). Each module is one area; `cargo test --test integration daemon_`
//! runs the daemon's.

mod common;

mod daemon_endpoint;
mod daemon_faults;
mod daemon_health;
mod daemon_http;
mod daemon_instance;
mod daemon_logs;
mod daemon_metrics;
mod daemon_mirrors;
mod daemon_poll_slots;
mod daemon_registries_conf;
mod daemon_service;
mod daemon_signals;
mod daemon_storage;
mod daemon_stuck;
mod daemon_updates;
mod deploy_kubernetes;
mod fleet_cache;
mod fleet_nginx;
mod harness;
mod harness_faults;
mod import_disk_formats;
mod import_faults;
mod import_file_formats;
mod import_formats;
mod import_hostile;
mod import_hostile_files;
mod import_hostile_local;
mod import_hostile_registry;
mod import_http;
mod import_inspect;
mod import_layers;
mod import_resume;
mod import_signals;
mod import_sources;
mod import_stages;
mod import_targets;
mod import_unknown_length;
mod oci_image;
mod soak;
mod storage_overlap;
mod trust;
