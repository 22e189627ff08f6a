//! The init script under contrib/ works with `-d -p -o`: start, status,
//! reload (log reopen), stop (pid file removed).

mod common;

use std::process::Command;
use std::time::Duration;

fn init(action: &str, dir: &std::path::Path, conf: &std::path::Path) -> (bool, String) {
    let out = Command::new("sh")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/contrib/rustcracker.init"
        ))
        .arg(action)
        .env("DAEMON", common::rustcracker_bin())
        .env("CONF", conf)
        .env("PIDFILE", dir.join("run/rc.pid"))
        .env("LOGFILE", dir.join("log/rc.log"))
        .env("OPTS", format!("-s {} -a 127.0.0.1", common::free_port()))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn init_script_starts_reloads_and_stops_the_daemon() {
    let backend = common::Memcached::start();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let conf = dir.path().join("nutcracker.yml");
    std::fs::write(
        &conf,
        format!(
            "pool:\n  listen: 127.0.0.1:{port}\n  servers:\n   - 127.0.0.1:{}:1\n",
            backend.port
        ),
    )
    .unwrap();
    let (ok, out) = init("start", dir.path(), &conf);
    assert!(ok, "start: {out}");
    common::wait_for_port(port);
    let pid: i32 = std::fs::read_to_string(dir.path().join("run/rc.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 1);
    let (ok, out) = init("status", dir.path(), &conf);
    assert!(ok && out.contains("is running"), "status: {out}");
    // Log rotation: move the log away, reload, and the daemon writes a new file.
    std::fs::rename(
        dir.path().join("log/rc.log"),
        dir.path().join("log/rc.log.1"),
    )
    .unwrap();
    let (ok, _) = init("reload", dir.path(), &conf);
    assert!(ok);
    std::thread::sleep(Duration::from_millis(300));
    let (ok, out) = init("stop", dir.path(), &conf);
    assert!(ok, "stop: {out}");
    assert!(
        !dir.path().join("run/rc.pid").exists(),
        "pid file left behind"
    );
    assert!(
        dir.path().join("log/rc.log").exists(),
        "no new log file after reload"
    );
    let (ok, out) = init("status", dir.path(), &conf);
    assert!(
        !ok && out.contains("not running"),
        "status after stop: {out}"
    );
}
