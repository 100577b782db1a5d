//! A progress line on the terminal: downloaded / total, written, rate, ETA.
//!
//! Redrawn in place on stderr a few times a second from the importer's counters;
//! cleared when the import ends so the summary line stands alone.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bootsource_importer::{Progress, ProgressSnapshot};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::human;

const REFRESH: Duration = Duration::from_millis(250);

pub struct ProgressLine {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ProgressLine {
    pub fn start(progress: Arc<Progress>) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => draw(&progress.snapshot(), started.elapsed().as_secs_f64()),
                }
            }
            eprint!("\r\x1b[2K");
        });
        Self { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn draw(p: &ProgressSnapshot, elapsed: f64) {
    if p.download_total == 0 {
        eprint!("\r\x1b[2Kresolving…");
    } else {
        eprint!("\r\x1b[2K{}", line(p, elapsed));
    }
    let _ = std::io::stderr().flush();
}

fn line(p: &ProgressSnapshot, elapsed: f64) -> String {
    let percent = p.downloaded.saturating_mul(100) / p.download_total.max(1);
    let speed = p.downloaded as f64 / elapsed.max(0.001);
    let left = p.download_total.saturating_sub(p.downloaded) as f64;
    let eta = if speed > 0.0 {
        human::duration(left / speed)
    } else {
        "-".into()
    };
    let pass = if p.pass > 1 {
        format!(" (pass {})", p.pass)
    } else {
        String::new()
    };
    format!(
        "downloaded {} / {} ({percent}%){pass} · written {} · {} · ETA {eta}",
        human::bytes(p.downloaded),
        human::bytes(p.download_total),
        human::bytes(p.written),
        human::rate(p.downloaded, elapsed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_bytes_percent_rate_and_eta() {
        let p = ProgressSnapshot {
            downloaded: 50 << 20,
            download_total: 100 << 20,
            written: 80 << 20,
            pass: 1,
            ..ProgressSnapshot::default()
        };
        let l = line(&p, 1.0);
        assert!(l.contains("50.0 MiB / 100.0 MiB (50%)"), "{l}");
        assert!(l.contains("written 80.0 MiB"), "{l}");
        assert!(l.contains("52 MB/s"), "{l}");
        assert!(l.contains("ETA 1s"), "{l}");
    }
}
