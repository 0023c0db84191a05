//! Line-oriented logging to stderr. Init captures each service's stderr, prefixes
//! the service name and keeps it; so a line here is just `<level>: <message>`.
//! Debug lines are printed only after [`set_debug`]`(true)` (`--debug`).

use std::sync::atomic::{AtomicBool, Ordering};

static DEBUG: AtomicBool = AtomicBool::new(false);

/// Turns debug lines on or off.
pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

/// Whether debug lines are printed.
#[must_use]
pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Writes one line; used by the macros.
pub fn write(level: &str, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let line = format!("{level}: {args}\n");
    // One write call per line keeps lines whole when threads log at once.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Logs at info level.
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::log::write("info", format_args!($($arg)*)) };
}

/// Logs at warning level.
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { $crate::log::write("warn", format_args!($($arg)*)) };
}

/// Logs at error level.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::log::write("error", format_args!($($arg)*)) };
}

/// Logs at debug level, when enabled.
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => {
        if $crate::log::debug_enabled() { $crate::log::write("debug", format_args!($($arg)*)) }
    };
}
