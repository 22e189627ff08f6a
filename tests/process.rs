//! The process life: daemonizing, the pid file, the log file and its
//! reopening, and signals. These tests observe the process, its pid file and
//! its log only; they do not need the proxy to serve traffic.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::kill;

/// A temp dir with a minimal valid config, and paths for a pid and log file.
struct Setup {
    dir: tempfile::TempDir,
    conf: PathBuf,
    pid: PathBuf,
    log: PathBuf,
    stats_port: u16,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("nutcracker.yml");
        let config = format!(
            "alpha:\n  listen: 127.0.0.1:{}\n  servers:\n    - 127.0.0.1:11211:1\n",
            common::free_port()
        );
        std::fs::write(&conf, config).expect("write config");
        Setup {
            conf,
            pid: dir.path().join("rustcracker.pid"),
            log: dir.path().join("rustcracker.log"),
            stats_port: common::free_port(),
            dir,
        }
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(common::rustcracker_bin());
        cmd.arg("-c")
            .arg(&self.conf)
            .args(["-a", "127.0.0.1", "-s"])
            .arg(self.stats_port.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts in the foreground with `-o log -p pid` and waits for the banner.
    fn start(&self, extra: &[&str]) -> Guard {
        let mut cmd = self.command(extra);
        cmd.arg("-o").arg(&self.log).arg("-p").arg(&self.pid);
        let child = cmd.spawn().expect("spawn rustcracker");
        let guard = Guard {
            child: Some(child),
            pid: None,
        };
        wait_for(
            || read(&self.log).contains("started on pid"),
            "the startup banner",
        );
        guard
    }
}

/// Kills what it started if a test fails half-way.
struct Guard {
    child: Option<Child>,
    pid: Option<u32>,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.pid
            .or(self.child.as_ref().map(Child::id))
            .expect("a pid")
    }

    /// Waits for the foreground child to exit; returns its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("a child");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rustcracker did not exit within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = self.pid {
            if alive(pid) {
                kill(pid, "KILL");
            }
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// `[YYYY-MM-DD HH:MM:SS.mmm] file.rs:N message`
fn well_formed(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 27
        && b[0] == b'['
        && b[24] == b']'
        && b[25] == b' '
        && b[11] == b' '
        && b[20] == b'.'
        && [1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19, 21, 22, 23]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && line[26..].split(' ').next().is_some_and(|loc| {
            loc.split_once(".rs:")
                .is_some_and(|(_, n)| n.parse::<u32>().is_ok())
        })
}

#[test]
fn daemonizes_writes_and_removes_pid_file() {
    let s = Setup::new();
    let started = Instant::now();
    let mut cmd = s.command(&["-d"]);
    cmd.arg("-p").arg(&s.pid).arg("-o").arg(&s.log);
    let out = cmd.output().expect("run rustcracker -d");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the parent returns at once"
    );

    wait_for(
        || !read(&s.pid).is_empty() && read(&s.log).contains("started on pid"),
        "pid file",
    );
    let pid: u32 = read(&s.pid)
        .trim()
        .parse()
        .expect("pid file holds a number");
    let guard = Guard {
        child: None,
        pid: Some(pid),
    };
    assert!(alive(pid), "daemon {pid} runs");
    assert!(read(&s.log).contains(&format!("started on pid {pid}")));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&s.pid).expect("pid file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);
    // A daemon's session id is its own... parent; it is not a session leader
    // (double fork), and it is no longer our child.
    let stat = read(Path::new(&format!("/proc/{pid}/stat")));
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let sid: u32 = fields[4].parse().expect("sid");
    assert_ne!(sid, pid, "not a session leader");
    assert_ne!(sid, std::process::id(), "not in our session");

    kill(pid, "TERM");
    wait_for(|| !alive(pid), "the daemon to exit");
    assert!(!s.pid.exists(), "pid file removed");
    let log = read(&s.log);
    assert!(
        log.contains("signal 15 (SIGTERM) received, exiting"),
        "{log}"
    );
    assert!(log.contains("done, rabbit done"), "{log}");
    drop(guard);
    drop(s.dir);
}

#[test]
fn daemonize_with_invalid_config_exits_1() {
    let s = Setup::new();
    std::fs::write(&s.conf, "alpha:\n  listen: 127.0.0.1:1\n").expect("write");
    let mut cmd = s.command(&["-d"]);
    cmd.arg("-p").arg(&s.pid).arg("-o").arg(&s.log);
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("syntax is invalid"), "{err}");
    assert!(!s.pid.exists());
}

#[test]
fn log_file_gets_wellformed_lines() {
    let s = Setup::new();
    let mut g = s.start(&[]);
    let pid = g.pid();
    kill(pid, "TERM");
    assert_eq!(g.wait_exit(), Some(0));
    let log = read(&s.log);
    assert!(log.contains(&format!("started on pid {pid}")), "{log}");
    assert!(log.contains("run, rabbit run / dig that hole"), "{log}");
    for line in log.lines() {
        assert!(well_formed(line), "malformed log line {line:?}");
    }
    assert!(!s.pid.exists(), "pid file removed");
}

#[test]
fn sighup_reopens_a_rotated_log() {
    let s = Setup::new();
    let mut g = s.start(&[]);
    let pid = g.pid();
    let rotated = s.dir.path().join("rustcracker.log.1");
    std::fs::rename(&s.log, &rotated).expect("rotate");
    kill(pid, "HUP");
    wait_for(|| s.log.exists(), "a new log file");
    wait_for(
        || read(&rotated).contains("signal 1 (SIGHUP) received, reopening log file"),
        "HUP line",
    );
    kill(pid, "USR1");
    wait_for(
        || read(&s.log).contains("signal 10 (SIGUSR1) received"),
        "USR1 line in the new file",
    );
    assert!(
        !read(&rotated).contains("SIGUSR1"),
        "old file no longer written"
    );
    kill(pid, "TERM");
    assert_eq!(g.wait_exit(), Some(0));
}

#[test]
fn sigttin_and_sigttou_change_the_level() {
    let s = Setup::new();
    let mut g = s.start(&["-v", "5"]);
    let pid = g.pid();
    kill(pid, "TTIN");
    wait_for(|| read(&s.log).contains("up log level to 6"), "level 6");
    kill(pid, "TTOU");
    wait_for(|| read(&s.log).contains("down log level to 5"), "level 5");
    let log = read(&s.log);
    assert!(
        log.contains("signal 21 (SIGTTIN) received, up logging level"),
        "{log}"
    );
    assert!(
        log.contains("signal 22 (SIGTTOU) received, down logging level"),
        "{log}"
    );
    kill(pid, "USR2");
    wait_for(
        || read(&s.log).contains("signal 12 (SIGUSR2) received"),
        "USR2 line",
    );
    kill(pid, "TERM");
    assert_eq!(g.wait_exit(), Some(0));
}

#[test]
fn sigint_and_sigterm_exit_cleanly() {
    for (sig, line) in [
        ("INT", "signal 2 (SIGINT) received, exiting"),
        ("TERM", "signal 15 (SIGTERM) received, exiting"),
    ] {
        let s = Setup::new();
        let mut g = s.start(&[]);
        assert_eq!(read(&s.pid), g.pid().to_string());
        kill(g.pid(), sig);
        assert_eq!(g.wait_exit(), Some(0), "SIG{sig}");
        assert!(!s.pid.exists(), "pid file removed after SIG{sig}");
        let log = read(&s.log);
        assert!(log.contains(line), "{log}");
        assert!(log.contains("done, rabbit done"), "{log}");
    }
}

#[test]
fn unwritable_log_file_exits_1() {
    let s = Setup::new();
    let out = s
        .command(&["-o", "/nonexistent/dir/x.log"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "opening log file '/nonexistent/dir/x.log' failed: No such file or directory\n"
    );
}
