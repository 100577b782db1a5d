//! Talking to systemd (`Type=notify` and `Type=notify-reload`): READY, STATUS lines,
//! watchdog pings, and RELOADING=1 with MONOTONIC_USEC when SIGHUP starts a reload
//! (READY=1 again once it is done), which `Type=notify-reload` (systemd 253) waits
//! for. Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells systemd start-up is done.
pub fn ready() {
    notify(&[NotifyState::Ready]);
}

/// One human-readable line for `systemctl status`.
pub fn status(line: &str) {
    notify(&[NotifyState::Status(line)]);
}

/// Tells systemd a reload has started, with the monotonic time it started at.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(e) => tracing::debug!(error = %e, "no monotonic clock for RELOADING=1"),
    }
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// A watchdog ping.
pub fn watchdog() {
    notify(&[NotifyState::Watchdog]);
}

/// How often to ping the watchdog: half its timeout, if systemd set one.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
}

fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}
