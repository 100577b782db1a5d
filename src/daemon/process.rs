//! The standard `process_*` metrics Prometheus client libraries export, read from
//! `/proc/self` when scraped: resident and virtual memory, open and allowed file
//! descriptors, CPU seconds, start time. Also `bootsource_build_info{version}`.
//!
//! Read by hand rather than through prometheus' `process` feature, which pulls in the
//! `procfs` crate for five numbers. Only Linux is supported, as for the daemon itself.

use prometheus::{Counter, Gauge, IntGauge, IntGaugeVec, Opts, Registry};

/// The process's own series.
#[derive(Debug)]
pub struct ProcessMetrics {
    resident: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    cpu: Counter,
    start_time: Gauge,
}

/// Numbers read from `/proc/self`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    resident_bytes: u64,
    virtual_bytes: u64,
    cpu_seconds: f64,
    start_time_seconds: f64,
}

impl ProcessMetrics {
    /// Registers the series (and `bootsource_build_info`) in `registry`.
    pub fn register(registry: &Registry) -> Self {
        let int = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let build = IntGaugeVec::new(
            Opts::new(
                "bootsource_build_info",
                "1, labelled with the running build.",
            ),
            &["version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(build.clone()))
            .expect("unique metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let cpu = Counter::new(
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(cpu.clone()))
            .expect("unique metric");
        let start_time = Gauge::new(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(start_time.clone()))
            .expect("unique metric");
        Self {
            resident: int(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virtual_memory: int(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            open_fds: int("process_open_fds", "Number of open file descriptors."),
            max_fds: int(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            cpu,
            start_time,
        }
    }

    /// Reads `/proc/self` into the series; a file that cannot be read leaves its
    /// series as it was.
    pub fn update(&self) {
        if let Some(sample) = read_stat() {
            self.resident.set(gauge(sample.resident_bytes));
            self.virtual_memory.set(gauge(sample.virtual_bytes));
            let more = sample.cpu_seconds - self.cpu.get();
            if more > 0.0 {
                self.cpu.inc_by(more);
            }
            self.start_time.set(sample.start_time_seconds);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // The directory's own descriptor is among them.
            self.open_fds.set(gauge(fds.count().saturating_sub(1)));
        }
        if let Ok((soft, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            self.max_fds.set(gauge(soft));
        }
    }
}

fn gauge(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// `/proc/self/stat`, and the boot time from `/proc/stat`.
fn read_stat() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok()??;
    parse_stat(
        &stat,
        &boot,
        u64::try_from(ticks).ok()?,
        u64::try_from(page).ok()?,
    )
}

/// The fields of `/proc/self/stat` after the command name (which may hold spaces and
/// parentheses, so it is skipped to its last `)`), per proc(5): utime 14, stime 15,
/// starttime 22, vsize 23, rss 24 (1-based over the whole line).
fn parse_stat(stat: &str, proc_stat: &str, ticks: u64, page: u64) -> Option<Sample> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state).
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let boot: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let ticks_f = ticks as f64;
    Some(Sample {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks_f,
        start_time_seconds: boot as f64 + field(22)? as f64 / ticks_f,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(page),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_command_name_with_spaces() {
        let stat = "4242 (boot (source) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 123456789 2048 18446744073709551615";
        let sample = parse_stat(stat, "cpu 1 2 3\nbtime 1700000000\n", 100, 4096).unwrap();
        assert_eq!(sample.cpu_seconds, 3.0);
        assert_eq!(sample.start_time_seconds, 1_700_000_010.0);
        assert_eq!(sample.virtual_bytes, 123_456_789);
        assert_eq!(sample.resident_bytes, 2048 * 4096);
    }

    #[test]
    fn this_process_reads() {
        let registry = Registry::new();
        let m = ProcessMetrics::register(&registry);
        m.update();
        assert!(m.resident.get() > 1 << 20);
        assert!(m.open_fds.get() >= 3);
        assert!(m.max_fds.get() >= m.open_fds.get());
    }
}
