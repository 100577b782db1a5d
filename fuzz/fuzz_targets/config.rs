//! The daemon's configuration file on arbitrary text: parsing must end in a config or
//! an error, never panic; a config that parses keeps its promises (every source's
//! backend exists, at least one version kept) and its schedules can be evaluated.
#![no_main]

use bootsource::config::Config;
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(text) else { return };
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    for source in &config.sources {
        assert!(config.storage.contains_key(config.storage_of(source)));
        assert!(source.imports_to_keep >= 1);
        let schedule = config.schedule_of(source);
        assert!(schedule.next_after(now) > now);
        let _ = schedule.gap_after(now);
    }
});
