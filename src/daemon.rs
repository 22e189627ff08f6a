//! Daemonizing (double fork) and the pid file, plus the few other libc calls
//! the process needs (local time for log lines, `uname` for the banner,
//! `malloc_trim` to hand the memory of parked clients back to the system).
//!
//! This is the only module of the crate allowed `unsafe`; every block has a
//! `// SAFETY:` note.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::logging::strerror;

/// Why daemonizing or the pid file failed; the Display texts are nutcracker's.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// `fork()` failed.
    #[error("fork() failed: {}", strerror(.0))]
    Fork(io::Error),
    /// `setsid()` failed.
    #[error("setsid() failed: {}", strerror(.0))]
    Setsid(io::Error),
    /// Opening `/dev/null` failed.
    #[error("open(\"/dev/null\") failed: {}", strerror(.0))]
    DevNull(io::Error),
    /// `dup2()` onto a standard descriptor failed.
    #[error("dup2({fd}, {target}) failed: {}", strerror(source))]
    Dup2 {
        /// The `/dev/null` descriptor.
        fd: i32,
        /// `STDIN`, `STDOUT` or `STDERR`.
        target: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Creating or writing the pid file failed.
    #[error("opening pid file '{}' failed: {}", path.display(), strerror(source))]
    PidFile {
        /// The pid file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Detaches from the terminal like nutcracker: fork (the parent exits 0),
/// `setsid`, ignore SIGHUP while forking again (the first child exits 0),
/// `umask(0)`, and stdin/stdout/stderr onto `/dev/null`. The working
/// directory is kept, so relative paths keep working.
///
/// Must be called while the process has a single thread: before any runtime,
/// worker or signal-hook thread exists.
pub fn daemonize() -> Result<(), DaemonError> {
    fork_and_exit_parent()?;

    // SAFETY: setsid has no memory-safety preconditions.
    if unsafe { libc::setsid() } < 0 {
        return Err(DaemonError::Setsid(io::Error::last_os_error()));
    }

    // The session leader must not die of the SIGHUP sent when it exits.
    // SAFETY: installs the predefined SIG_IGN disposition; no handler code runs.
    let old = unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    fork_and_exit_parent()?;
    // SAFETY: restores the disposition returned by the call above (SIG_DFL
    // unless the caller had set something else); no Rust handler involved.
    unsafe { libc::signal(libc::SIGHUP, old) };

    // SAFETY: umask only changes the process's file creation mask.
    unsafe { libc::umask(0) };

    redirect_std_to_dev_null()
}

/// Forks; the parent leaves with `_exit(0)` and the child returns.
fn fork_and_exit_parent() -> Result<(), DaemonError> {
    // SAFETY: the caller guarantees the process is single-threaded, so the
    // child is a complete copy and may keep running Rust code. The parent
    // calls only `_exit`, which runs no destructors or atexit handlers.
    match unsafe { libc::fork() } {
        -1 => Err(DaemonError::Fork(io::Error::last_os_error())),
        0 => Ok(()),
        _ => {
            // SAFETY: `_exit` is async-signal-safe and never returns.
            unsafe { libc::_exit(0) }
        }
    }
}

fn redirect_std_to_dev_null() -> Result<(), DaemonError> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(DaemonError::DevNull)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    for (target, name) in [
        (libc::STDIN_FILENO, "STDIN"),
        (libc::STDOUT_FILENO, "STDOUT"),
        (libc::STDERR_FILENO, "STDERR"),
    ] {
        // SAFETY: `fd` is open for the duration of the call (owned by
        // `null`); replacing the standard descriptors is the point: Rust's
        // stdio handles keep using descriptors 0..2, now /dev/null.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(DaemonError::Dup2 {
                fd,
                target: name,
                source: io::Error::last_os_error(),
            });
        }
    }
    // `null` closes its own descriptor (always > 2 here, since 0..2 were open).
    Ok(())
}

/// Writes the pid file (`O_WRONLY|O_CREAT|O_TRUNC`, mode 0644, the pid
/// without a newline, like nutcracker).
pub fn write_pid_file(path: &Path) -> Result<(), DaemonError> {
    let err = |source| DaemonError::PidFile {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .map_err(err)?;
    file.write_all(std::process::id().to_string().as_bytes())
        .map_err(err)
}

/// Removes the pid file; a failure is logged and ignored, as nutcracker does.
pub fn remove_pid_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        crate::log_error!(
            "unlink of pid file '{}' failed, ignored: {}",
            path.display(),
            e
        );
    }
}

/// A broken-down local time, as `localtime_r` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Full year, e.g. 2026.
    pub year: i32,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=60.
    pub second: u32,
}

/// Converts seconds since the epoch to local time (the TZ environment
/// variable or /etc/localtime, as for nutcracker); `None` if libc cannot.
pub fn local_time(secs: i64) -> Option<LocalTime> {
    // time_t is 32 bits on some targets.
    #[allow(clippy::useless_conversion)]
    let t: libc::time_t = secs.try_into().ok()?;
    // SAFETY: `tm` is plain old data for which all-zero bytes are valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // reentrant variant and writes only into `tm`.
    let res = unsafe { libc::localtime_r(&t, &mut tm) };
    if res.is_null() {
        return None;
    }
    Some(LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
    })
}

/// `uname`'s sysname, release and machine (e.g. `Linux 6.1.0 x86_64`).
pub fn uname() -> Option<(String, String, String)> {
    // SAFETY: `utsname` is plain old data for which all-zero bytes are valid.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid; uname fills the NUL-terminated arrays.
    if unsafe { libc::uname(&mut name) } < 0 {
        return None;
    }
    let field = |chars: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates every field within its array, and the
        // zeroed initialisation guarantees a NUL even if it did not.
        unsafe { CStr::from_ptr(chars.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    Some((
        field(&name.sysname),
        field(&name.release),
        field(&name.machine),
    ))
}

/// Fixes glibc's thresholds for serving allocations with `mmap` and for
/// trimming the top of the heap at their defaults (128 KiB). Left dynamic,
/// glibc raises both each time a big `mmap`ed block is freed (a burst that
/// grew a server connection's buffer to megabytes, say), up to 32 MiB and
/// 64 MiB: the heap of a worker thread then keeps that much free memory at
/// its top, resident, whatever [`trim_heap`] does (it cannot trim the top of a
/// thread's heap). Call once, before the workers start.
pub fn fix_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets glibc's allocator parameters; setting the
    // mmap threshold also turns off their dynamic adjustment.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Returns the heap's free pages to the system. glibc keeps freed memory
/// for reuse, so without this the sessions of clients that went idle would
/// keep the process's RSS at its peak.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks glibc's own arenas under their locks;
    // it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Sets the calling thread's timer slack (how late the kernel may fire its
/// timers, 50 µs by default) so that short sleeps last what they ask for.
pub fn set_timer_slack(slack: std::time::Duration) {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the
    // calling thread's timers.
    unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            slack.as_nanos().max(1) as libc::c_ulong,
            0,
            0,
            0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_is_sane() {
        let t = local_time(86_400 * 365 * 30).expect("localtime_r");
        assert!((1999..=2001).contains(&t.year));
        assert!((1..=12).contains(&t.month));
    }

    #[test]
    fn uname_has_a_sysname() {
        let (sys, _, _) = uname().expect("uname");
        assert!(!sys.is_empty());
    }

    #[test]
    fn pid_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        write_pid_file(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        remove_pid_file(&path);
        assert!(!path.exists());
    }
}
