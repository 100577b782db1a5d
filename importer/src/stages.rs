//! Where an import's time went: busy and waiting time per pipeline stage.
//!
//! The pipeline is a chain of threads joined by bounded queues: the producer receives
//! the blob and hashes it, the decoding thread decompresses, walks the tar and decodes
//! the disk format, the writer pool inflates clusters and writes. When the chain runs
//! at full speed, one stage is always busy and the others wait on it. Each thread adds
//! its busy and waiting time to a [`Clock`] here; at the end [`StageTimes`] tells the
//! user (the `--json` report, the daemon's metrics) what each stage cost and which one
//! set the pace.
//!
//! The decoding thread is the hub, so its time is what decides: it is either busy
//! (decompress or decode is the limit, whichever of the two took more of it), starved
//! of input (the producer is: download or verify, whichever took longer), or blocked
//! on a full writer queue (write is). Its idle wait for the caller to open a place is
//! not counted against any stage. Its busy time is split by the decompressor, which
//! clocks the time spent inside it less the input waits that happened there
//! ([`Clock::time_less`]): the rest is the tar walk and the disk format's decoding.
//!
//! After the pipeline, the place's owner commits it (zeroes what a device never got,
//! fsyncs, publishes) and times that with [`Progress::time_commit`](crate::Progress):
//! the `commit` stage. It follows the others instead of overlapping them, so it never
//! names the limit, but on a slow disk it is where the last seconds go.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Nanoseconds one stage spent, summed over the threads that add to it.
#[derive(Debug, Default)]
pub(crate) struct Clock(AtomicU64);

impl Clock {
    /// Adds the time since `since`.
    pub fn add_since(&self, since: Instant) {
        self.add(since.elapsed());
    }

    pub fn add(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Runs `f`, adding the time it took.
    pub fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.add_since(start);
        out
    }

    /// Runs `f`, adding the time it took less what `other` gained meanwhile (a wait
    /// inside `f` that another clock counts).
    pub fn time_less<T>(&self, other: &Clock, f: impl FnOnce() -> T) -> T {
        let (start, before) = (Instant::now(), other.nanos());
        let out = f();
        let elapsed = start
            .elapsed()
            .saturating_sub(Duration::from_nanos(other.nanos() - before));
        self.add(elapsed);
        out
    }

    fn nanos(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn seconds(&self) -> f64 {
        Duration::from_nanos(self.nanos()).as_secs_f64()
    }
}

/// The clocks of one import, shared by its threads.
#[derive(Debug, Default)]
pub(crate) struct StageClocks {
    /// The producer waiting for the origin's next bytes (network, or a file's reads).
    pub download: Clock,
    /// The producer hashing what arrived.
    pub verify: Clock,
    /// The decoding thread's whole life, waits included.
    pub decode_thread: Clock,
    /// The decoding thread waiting for the producer.
    pub waiting_for_input: Clock,
    /// The decoding thread inside the decompressor, its input waits excluded.
    pub decompress: Clock,
    /// The decoding thread waiting for room in the writer queue.
    pub waiting_for_writers: Clock,
    /// The decoding thread waiting for its caller to open the place.
    pub waiting_for_place: Clock,
    /// The writer threads inflating and writing, summed over threads.
    pub write: Clock,
    /// The place's owner committing it, after the pipeline.
    pub commit: Clock,
}

/// A pipeline stage, as named in reports and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Receiving the blob from the origin.
    Download,
    /// Hashing it (sha256, and the user's checksum).
    Verify,
    /// Decompressing it (gzip, zstd, xz, bzip2).
    Decompress,
    /// Walking the tar and decoding the disk format.
    Decode,
    /// Inflating compressed clusters and writing to the place.
    Write,
    /// Making the place complete and durable after the pipeline: zeroing what a device
    /// never got, the final fsync, publishing.
    Commit,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 6] = [
        Stage::Download,
        Stage::Verify,
        Stage::Decompress,
        Stage::Decode,
        Stage::Write,
        Stage::Commit,
    ];

    /// Its name in reports and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Download => "download",
            Stage::Verify => "verify",
            Stage::Decompress => "decompress",
            Stage::Decode => "decode",
            Stage::Write => "write",
            Stage::Commit => "commit",
        }
    }
}

/// Seconds each stage was busy, the decoding thread's waits, and the stage that set
/// the pace.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StageTimes {
    /// Waiting for the origin's bytes.
    pub download: f64,
    /// Hashing them.
    pub verify: f64,
    /// The decoding thread decompressing.
    pub decompress: f64,
    /// The decoding thread busy otherwise: walking the tar, decoding the disk format.
    pub decode: f64,
    /// Writer threads busy (summed over threads: may exceed the wall time).
    pub write: f64,
    /// The decoding thread starved of input.
    pub decode_waiting_for_input: f64,
    /// The decoding thread blocked on a full writer queue.
    pub decode_waiting_for_writers: f64,
    /// Committing the place after the pipeline (0 until its owner has).
    pub commit: f64,
    /// The pipeline stage that limited the import (never `commit`, which follows it).
    pub limited_by: Stage,
}

impl StageTimes {
    /// Seconds `stage` was busy.
    pub fn busy(&self, stage: Stage) -> f64 {
        match stage {
            Stage::Download => self.download,
            Stage::Verify => self.verify,
            Stage::Decompress => self.decompress,
            Stage::Decode => self.decode,
            Stage::Write => self.write,
            Stage::Commit => self.commit,
        }
    }
}

impl StageClocks {
    /// What the clocks say now.
    pub fn times(&self) -> StageTimes {
        let input = self.waiting_for_input.seconds();
        let writers = self.waiting_for_writers.seconds();
        let busy =
            (self.decode_thread.seconds() - input - writers - self.waiting_for_place.seconds())
                .max(0.0);
        let decompress = self.decompress.seconds().min(busy);
        let decode = busy - decompress;
        let (download, verify) = (self.download.seconds(), self.verify.seconds());
        let limited_by = if input >= busy && input >= writers {
            if verify > download {
                Stage::Verify
            } else {
                Stage::Download
            }
        } else if writers >= busy {
            Stage::Write
        } else if decompress > decode {
            Stage::Decompress
        } else {
            Stage::Decode
        };
        StageTimes {
            download,
            verify,
            decompress,
            decode,
            write: self.write.seconds(),
            decode_waiting_for_input: input,
            decode_waiting_for_writers: writers,
            commit: self.commit.seconds(),
            limited_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clocks(thread: u64, input: u64, writers: u64, download: u64, verify: u64) -> StageClocks {
        let c = StageClocks::default();
        c.decode_thread.add(Duration::from_secs(thread));
        c.waiting_for_input.add(Duration::from_secs(input));
        c.waiting_for_writers.add(Duration::from_secs(writers));
        c.download.add(Duration::from_secs(download));
        c.verify.add(Duration::from_secs(verify));
        c
    }

    #[test]
    fn the_decoding_threads_largest_share_names_the_limit() {
        assert_eq!(clocks(10, 6, 1, 9, 1).times().limited_by, Stage::Download);
        assert_eq!(clocks(10, 6, 1, 2, 8).times().limited_by, Stage::Verify);
        assert_eq!(clocks(10, 1, 6, 1, 1).times().limited_by, Stage::Write);
        let busy = clocks(10, 2, 1, 2, 1).times();
        assert_eq!(busy.limited_by, Stage::Decode);
        assert!((busy.decode - 7.0).abs() < 1e-9, "{busy:?}");
    }

    #[test]
    fn the_decoding_threads_busy_time_is_split_between_decompress_and_decode() {
        let c = clocks(10, 2, 1, 2, 1);
        c.decompress.add(Duration::from_secs(5));
        let times = c.times();
        assert_eq!(times.limited_by, Stage::Decompress);
        assert!((times.decompress - 5.0).abs() < 1e-9, "{times:?}");
        assert!((times.decode - 2.0).abs() < 1e-9, "{times:?}");
        // Busy 7 s, of which 3 decompressing: the decoding is the larger share.
        let c = clocks(10, 2, 1, 2, 1);
        c.decompress.add(Duration::from_secs(3));
        assert_eq!(c.times().limited_by, Stage::Decode);
    }

    #[test]
    fn time_less_leaves_out_what_the_other_clock_counted_meanwhile() {
        let (busy, waiting) = (Clock::default(), Clock::default());
        busy.time_less(&waiting, || {
            waiting.time(|| std::thread::sleep(Duration::from_millis(50)));
        });
        assert!(waiting.nanos() >= 50_000_000);
        assert!(busy.nanos() < 25_000_000, "{} ns", busy.nanos());
    }

    #[test]
    fn waiting_for_the_place_counts_against_no_stage() {
        let c = clocks(10, 1, 1, 1, 0);
        c.waiting_for_place.add(Duration::from_secs(7));
        let times = c.times();
        assert!((times.decode - 1.0).abs() < 1e-9, "{times:?}");
    }
}
