//! nutcracker-style log lines to stderr or a file that SIGHUP reopens.
//!
//! The macros `log_error!`, `log_warn!`, `log_notice!`, `log_info!` and
//! `log_debug!` take `format!` arguments. A line looks like
//! `[2026-11-25 12:17:08.886] client.rs:182 message` (local time, like
//! nutcracker). The level is an atomic holding nutcracker's numbering
//! (0 EMERG … 3 ERR, 4 WARN, 5 NOTICE, 6 INFO, 7 DEBUG … 11 PVERB); a message
//! the level filters out costs one atomic load and is never formatted.
//!
//! Writes are synchronous under a mutex: logging is never on a hot path.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// System is unusable.
pub const LOG_EMERG: u8 = 0;
/// Action must be taken immediately. nutcracker's `log_error` (and ours)
/// logs at this threshold, so errors show at every level but 0.
pub const LOG_ALERT: u8 = 1;
/// Critical conditions.
pub const LOG_CRIT: u8 = 2;
/// Error conditions.
pub const LOG_ERR: u8 = 3;
/// Warnings.
pub const LOG_WARN: u8 = 4;
/// Normal but significant (the default level).
pub const LOG_NOTICE: u8 = 5;
/// Informational.
pub const LOG_INFO: u8 = 6;
/// Debug messages.
pub const LOG_DEBUG: u8 = 7;
/// Verbose.
pub const LOG_VERB: u8 = 8;
/// Very verbose.
pub const LOG_VVERB: u8 = 9;
/// Extremely verbose.
pub const LOG_VVVERB: u8 = 10;
/// Periodic verbose; the highest level.
pub const LOG_PVERB: u8 = 11;

static LEVEL: AtomicU8 = AtomicU8::new(LOG_NOTICE);
static SINK: Mutex<Sink> = Mutex::new(Sink::Stderr);

enum Sink {
    Stderr,
    File { path: PathBuf, file: Option<File> },
}

/// Sets the level, clamped to 0..=11.
pub fn set_level(level: u8) {
    LEVEL.store(level.min(LOG_PVERB), Ordering::Relaxed);
}

/// The current level.
pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// Whether a message of `level` would be written.
#[inline]
pub fn enabled(level: u8) -> bool {
    level <= LEVEL.load(Ordering::Relaxed)
}

/// Sets the level and the output: `None` (or an empty path) is stderr,
/// otherwise the file is opened for appending (created with mode 0644).
/// The error is nutcracker's `opening log file '<f>' failed: <reason>`.
pub fn init(level: u8, path: Option<&Path>) -> Result<(), LogError> {
    set_level(level);
    let sink = match path {
        Some(p) if !p.as_os_str().is_empty() => {
            let file = open_log(p).map_err(|source| LogError {
                path: p.to_path_buf(),
                source,
            })?;
            Sink::File {
                path: p.to_path_buf(),
                file: Some(file),
            }
        }
        _ => Sink::Stderr,
    };
    *lock() = sink;
    Ok(())
}

/// Opening the log file failed.
#[derive(Debug, thiserror::Error)]
#[error("opening log file '{}' failed: {}", path.display(), strerror(source))]
pub struct LogError {
    /// The `-o` path.
    pub path: PathBuf,
    /// The OS error.
    pub source: io::Error,
}

/// An IO error as C's `strerror` words it (std's text without the
/// ` (os error N)` suffix), for nutcracker-identical messages.
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(cut) if e.raw_os_error().is_some() => text[..cut].to_owned(),
        _ => text,
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
}

fn lock() -> std::sync::MutexGuard<'static, Sink> {
    // A panic while holding the lock leaves the sink usable.
    SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reopens the log file (SIGHUP), so a rotated file is replaced by a new
/// one at the same path. Does nothing when logging to stderr. A failure is
/// reported on stderr and logging continues without a file, like nutcracker.
pub fn reopen() {
    let mut sink = lock();
    if let Sink::File { path, file } = &mut *sink {
        *file = None;
        match open_log(path) {
            Ok(f) => *file = Some(f),
            Err(e) => {
                let _ = writeln!(
                    io::stderr(),
                    "reopening log file '{}' failed, ignored: {}",
                    path.display(),
                    strerror(&e)
                );
            }
        }
    }
}

/// Raises the level by one (SIGTTIN); returns the new level, or `None` if
/// it already was the maximum.
pub fn level_up() -> Option<u8> {
    LEVEL
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
            (l < LOG_PVERB).then_some(l + 1)
        })
        .ok()
        .map(|old| old + 1)
}

/// Lowers the level by one (SIGTTOU); returns the new level, or `None` if
/// it already was 0.
pub fn level_down() -> Option<u8> {
    LEVEL
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
        .ok()
        .map(|old| old - 1)
}

/// Formats and writes one line. Use the macros, which check the level first.
#[doc(hidden)]
pub fn write_record(file: &'static str, line: u32, args: fmt::Arguments<'_>) {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let buf = record(format_args!("{name}:{line} {args}"));
    let mut sink = lock();
    let _ = match &mut *sink {
        Sink::Stderr => io::stderr().lock().write_all(buf.as_bytes()),
        Sink::File { file: Some(f), .. } => f.write_all(buf.as_bytes()),
        Sink::File { file: None, .. } => Ok(()),
    };
}

/// Makes any panic end the process (SIGABRT) after logging it. Without
/// this a panic in a worker's task is caught by the runtime, which goes on:
/// that connection's requests would never be answered and its clients would
/// hang, where an operator's supervisor would rather restart a proxy that
/// crashed. The message goes to the log file too (a daemon's stderr is
/// `/dev/null`).
pub fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let buf = record(format_args!("{info}, aborting"));
        // Not `lock()`: the panic may have come while this thread held it.
        let sink = match SINK.try_lock() {
            Ok(sink) => Some(sink),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        if let Some(mut sink) = sink {
            if let Sink::File { file: Some(f), .. } = &mut *sink {
                let _ = f.write_all(buf.as_bytes());
            }
        }
        default(info);
        std::process::abort();
    }));
}

/// One log line: the time, then `text`.
fn record(text: fmt::Arguments<'_>) -> String {
    let mut buf = String::with_capacity(128);
    push_timestamp(&mut buf, SystemTime::now());
    let _ = fmt::Write::write_fmt(&mut buf, format_args!(" {text}\n"));
    buf
}

/// Appends `[YYYY-MM-DD HH:MM:SS.mmm]` in local time.
fn push_timestamp(buf: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let millis = since.subsec_millis();
    let _ = match crate::daemon::local_time(secs) {
        Some(t) => fmt::Write::write_fmt(
            buf,
            format_args!(
                "[{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}]",
                t.year, t.month, t.day, t.hour, t.minute, t.second, millis
            ),
        ),
        None => fmt::Write::write_fmt(buf, format_args!("[{secs}.{millis:03}]")),
    };
}

/// Logs unconditionally (nutcracker's `loga`): banners and signal lines.
#[macro_export]
macro_rules! log_always {
    ($($arg:tt)*) => {
        $crate::logging::write_record(file!(), line!(), format_args!($($arg)*))
    };
}

/// Logs an error. Like nutcracker's `log_error`, it is written at every
/// level from 1 (ALERT) up, i.e. unless `-v 0`.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => {
        if $crate::logging::enabled($crate::logging::LOG_ALERT) {
            $crate::logging::write_record(file!(), line!(), format_args!($($arg)*))
        }
    };
}

/// Logs at level WARN (4).
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => {
        if $crate::logging::enabled($crate::logging::LOG_WARN) {
            $crate::logging::write_record(file!(), line!(), format_args!($($arg)*))
        }
    };
}

/// Logs at level NOTICE (5, the default).
#[macro_export]
macro_rules! log_notice {
    ($($arg:tt)*) => {
        if $crate::logging::enabled($crate::logging::LOG_NOTICE) {
            $crate::logging::write_record(file!(), line!(), format_args!($($arg)*))
        }
    };
}

/// Logs at level INFO (6).
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => {
        if $crate::logging::enabled($crate::logging::LOG_INFO) {
            $crate::logging::write_record(file!(), line!(), format_args!($($arg)*))
        }
    };
}

/// Logs at level DEBUG (7).
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => {
        if $crate::logging::enabled($crate::logging::LOG_DEBUG) {
            $crate::logging::write_record(file!(), line!(), format_args!($($arg)*))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_shape() {
        let mut s = String::new();
        push_timestamp(&mut s, SystemTime::now());
        // [YYYY-MM-DD HH:MM:SS.mmm]
        assert_eq!(s.len(), 25, "{s}");
        assert!(s.starts_with('[') && s.ends_with(']'));
        assert_eq!(&s[5..6], "-");
        assert_eq!(&s[20..21], ".");
    }

    #[test]
    fn level_steps_saturate() {
        set_level(LOG_PVERB);
        assert_eq!(level_up(), None);
        assert_eq!(level_down(), Some(10));
        set_level(0);
        assert_eq!(level_down(), None);
        assert_eq!(level_up(), Some(1));
        set_level(LOG_NOTICE);
    }
}
