//! The daemon's Prometheus metrics: one registry, names by Prometheus conventions.
//!
//! Series are labelled by `source`; counters end in `_total`, sizes in `_bytes`,
//! times in `_seconds`. `bootsource_source_outdated` mirrors CDI's
//! `kubevirt_cdi_dataimportcron_outdated`: 1 while the registry's digest differs from
//! the current version's. The `process_*` series and `bootsource_build_info` come
//! from [`ProcessMetrics`].

use super::process::ProcessMetrics;
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric the daemon exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Imports finished, by `result` (`success`, `failure`, `rejected`, `cancelled`,
    /// `unchanged`).
    pub imports: IntCounterVec,
    /// How long imports took.
    pub import_duration: HistogramVec,
    /// Compressed bytes received from registries or layouts.
    pub downloaded: IntCounterVec,
    /// Bytes written to storage.
    pub written: IntCounterVec,
    /// The running import's bytes received so far.
    pub import_progress: IntGaugeVec,
    /// The running import's total bytes to receive.
    pub import_size: IntGaugeVec,
    /// Polls, by `result` (`up_to_date`, `outdated`, `failed`).
    pub polls: IntCounterVec,
    /// 1 while the registry digest differs from the current version's.
    pub outdated: IntGaugeVec,
    /// Versions kept on storage.
    pub versions: IntGaugeVec,
    /// 1 when automatic updates are on.
    pub auto_update: IntGaugeVec,
    /// Unix time of the last successful poll.
    pub last_successful_poll: GaugeVec,
    /// Configuration reloads, by `result` (`success`, `failure`).
    pub reloads: IntCounterVec,
    /// Versions the signature policy refused (each digest once).
    pub rejected_versions: IntCounterVec,
    /// Seconds each import stage was busy, by `stage` (`download`, `verify`,
    /// `decompress`, `decode`, `write`, `commit`; see `bootsource_importer::StageTimes`).
    pub stage_seconds: CounterVec,
    /// Seconds the decoding thread waited, by `on` (`input`: the download or its
    /// hashing was slower; `writers`: the disk was).
    pub decode_wait_seconds: CounterVec,
    /// `process_*` and `bootsource_build_info`, read when scraped.
    process: ProcessMetrics,
}

impl Metrics {
    /// Creates and registers every series.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["source"]).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let import_duration = HistogramVec::new(
            HistogramOpts::new("bootsource_import_duration_seconds", "Duration of imports.")
                .buckets(vec![
                    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0,
                ]),
            &["source"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(import_duration.clone()))
            .expect("unique metric");
        let seconds = |name: &str, help: &str, label: &str| {
            let c =
                CounterVec::new(Opts::new(name, help), &["source", label]).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let last_successful_poll = GaugeVec::new(
            Opts::new(
                "bootsource_last_successful_poll_timestamp_seconds",
                "Unix time of the last successful poll.",
            ),
            &["source"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(last_successful_poll.clone()))
            .expect("unique metric");
        Self {
            imports: counter(
                "bootsource_imports_total",
                "Imports finished, by result.",
                &["source", "result"],
            ),
            import_duration,
            downloaded: counter(
                "bootsource_downloaded_bytes_total",
                "Layer bytes received.",
                &["source"],
            ),
            written: counter(
                "bootsource_written_bytes_total",
                "Bytes written to storage.",
                &["source"],
            ),
            import_progress: gauge(
                "bootsource_import_progress_bytes",
                "Bytes of the running import received so far.",
            ),
            import_size: gauge(
                "bootsource_import_size_bytes",
                "Bytes the running import will receive.",
            ),
            polls: counter(
                "bootsource_polls_total",
                "Registry polls, by result.",
                &["source", "result"],
            ),
            outdated: gauge(
                "bootsource_source_outdated",
                "1 while the registry digest differs from the current version.",
            ),
            versions: gauge("bootsource_source_versions", "Versions kept on storage."),
            auto_update: gauge(
                "bootsource_source_auto_update",
                "1 when automatic updates are on.",
            ),
            last_successful_poll,
            reloads: counter(
                "bootsource_config_reloads_total",
                "Configuration reloads, by result.",
                &["result"],
            ),
            rejected_versions: counter(
                "bootsource_rejected_versions_total",
                "Versions the signature policy refused (each digest counted once).",
                &["source"],
            ),
            stage_seconds: seconds(
                "bootsource_import_stage_seconds_total",
                "Seconds each import stage was busy.",
                "stage",
            ),
            decode_wait_seconds: seconds(
                "bootsource_import_decode_wait_seconds_total",
                "Seconds the decoding thread waited for input or for the writers.",
                "on",
            ),
            process: ProcessMetrics::register(&registry),
            registry,
        }
    }

    /// Forgets the series of a source removed from the configuration.
    pub fn forget(&self, source: &str) {
        for g in [
            &self.import_progress,
            &self.import_size,
            &self.outdated,
            &self.versions,
            &self.auto_update,
        ] {
            let _ = g.remove_label_values(&[source]);
        }
        let _ = self.last_successful_poll.remove_label_values(&[source]);
        let _ = self.rejected_versions.remove_label_values(&[source]);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.process.update();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_series_with_labels() {
        let m = Metrics::new();
        m.imports.with_label_values(&["fedora", "success"]).inc();
        m.outdated.with_label_values(&["fedora"]).set(1);
        m.reloads.with_label_values(&["failure"]).inc();
        let text = m.render();
        assert!(
            text.contains(r#"bootsource_imports_total{result="success",source="fedora"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"bootsource_source_outdated{source="fedora"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"bootsource_config_reloads_total{result="failure"} 1"#),
            "{text}"
        );
        m.forget("fedora");
        assert!(
            !m.render()
                .contains(r#"bootsource_source_outdated{source="fedora"}"#)
        );
    }
}
