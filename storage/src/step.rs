//! Named points between the store's durable steps, for crash tests.
//!
//! Every place where a crash leaves a different state on disk calls [`reached`] with a
//! name. Production code installs no hook and pays one atomic load per step. The crash
//! tests install a hook in a child process that reports each step and, at the chosen
//! one, waits to be killed with SIGKILL, so that every gap between two steps is tested
//! with a real kill and a real restart.

use std::sync::OnceLock;

static HOOK: OnceLock<fn(&'static str)> = OnceLock::new();

/// Installs the process-wide step hook (once; later calls are ignored and return
/// `false`). For tests only.
#[doc(hidden)]
pub fn set_step_hook(hook: fn(&'static str)) -> bool {
    HOOK.set(hook).is_ok()
}

/// Marks that the step `name` is done.
pub(crate) fn reached(name: &'static str) {
    if let Some(hook) = HOOK.get() {
        hook(name);
    }
}
