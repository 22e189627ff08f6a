//! What breaks in production: dead, slow, silent, lying and restarting
//! backends, ejection and re-admission, and very many clients. Each test
//! checks what every client receives: no reply lost, duplicated, misordered
//! or delivered to the wrong client.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Flavor, Memcached, Proxy};

/// Reads one memcache reply: a line, or VALUE blocks through END; `<closed>` at end of
/// stream, `<read failed: …>` on a reset or when the read timeout passes.
fn read_reply(r: &mut BufReader<TcpStream>) -> String {
    let mut out = String::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => {
                out.push_str("<closed>");
                return out;
            }
            Ok(_) => {}
            // A reset, or no reply within the read timeout: say which.
            Err(e) => {
                out.push_str(&format!("<read failed: {e}>"));
                return out;
            }
        }
        out.push_str(&line);
        if let Some(rest) = line.strip_prefix("VALUE ") {
            let bytes: usize = rest
                .split_whitespace()
                .nth(2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut data = vec![0u8; bytes + 2];
            r.read_exact(&mut data).unwrap();
            out.push_str(&String::from_utf8_lossy(&data));
            continue;
        }
        return out;
    }
}

/// Sends `request` and reads one reply.
fn ask(r: &mut BufReader<TcpStream>, request: &str) -> String {
    r.get_mut().write_all(request.as_bytes()).unwrap();
    read_reply(r)
}

fn connect(port: u16) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

/// The server `rustcracker --route` names for `key` in the config.
fn route(config: &str, key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(common::rustcracker_bin())
        .arg("-c")
        .arg(&path)
        .args(["--route", key])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .rsplit('\t')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The §7.4 timeline, differentially: a backend dies, fails `server_failure_limit`
/// times, is ejected (its keys move to the live server), is re-admitted after
/// `server_retry_timeout`, fails again and is ejected again. nutcracker and
/// rustcracker must answer every step identically.
#[test]
fn ejection_and_readmission_match_nutcracker() {
    let mut transcripts = Vec::new();
    for flavor in [Flavor::Nutcracker, Flavor::Rustcracker] {
        let a = Memcached::start();
        let b = Memcached::start();
        let port = common::free_port();
        let config = format!(
            "pool:\n  listen: 127.0.0.1:{port}\n  auto_eject_hosts: true\n  server_failure_limit: 2\n  \
             server_retry_timeout: 1500\n  timeout: 1000\n  servers:\n   - 127.0.0.1:{}:1 alpha\n   - 127.0.0.1:{}:1 beta\n",
            a.port, b.port
        );
        // Keys that live on beta, and one on alpha.
        let on_beta: Vec<String> = (0..200)
            .map(|i| format!("key{i}"))
            .filter(|k| route(&config, k) == "beta")
            .take(3)
            .collect();
        let on_alpha = (0..200)
            .map(|i| format!("key{i}"))
            .find(|k| route(&config, k) == "alpha")
            .unwrap();
        let proxy = Proxy::start(flavor, &config, port, &[]);
        let mut c = connect(port);
        let mut t = Vec::new();
        let kb = &on_beta[0];
        t.push(ask(&mut c, &format!("set {kb} 0 0 2\r\nvb\r\n")));
        t.push(ask(&mut c, &format!("set {on_alpha} 0 0 2\r\nva\r\n")));
        t.push(ask(&mut c, &format!("get {kb}\r\n")));
        drop(b); // kill beta: its connection sees EOF (failure 1)
        std::thread::sleep(Duration::from_millis(300));
        t.push(ask(&mut c, &format!("get {kb}\r\n"))); // refused (failure 2): ejected
        t.push(ask(&mut c, &format!("get {kb}\r\n"))); // rehashed to alpha: miss
        t.push(ask(&mut c, &format!("set {kb} 0 0 2\r\nv2\r\n")));
        t.push(ask(&mut c, &format!("get {kb} {on_alpha}\r\n")));
        t.push(ask(&mut c, &format!("get {on_alpha}\r\n")));
        std::thread::sleep(Duration::from_millis(1700)); // retry timeout passes: beta re-admitted
        t.push(ask(&mut c, &format!("get {kb}\r\n"))); // refused (failure 1)
        t.push(ask(&mut c, &format!("get {kb}\r\n"))); // refused (failure 2): ejected again
        t.push(ask(&mut c, &format!("get {kb}\r\n"))); // alpha again: the value set there
        transcripts.push(t);
        drop(proxy);
    }
    let (nut, rust) = (&transcripts[0], &transcripts[1]);
    for (i, (n, r)) in nut.iter().zip(rust).enumerate() {
        assert_eq!(r, n, "step {i}: rustcracker vs nutcracker");
    }
    assert!(rust[3].starts_with("SERVER_ERROR"), "{rust:?}");
    assert_eq!(rust[4], "END\r\n");
    assert!(rust[10].starts_with("VALUE"), "{rust:?}");
}

/// With `auto_eject_hosts: false` nothing is ejected: every request to the dead
/// server gets the error, keys never move, and the client connection stays usable.
#[test]
fn without_auto_eject_errors_but_keys_never_move() {
    let a = Memcached::start();
    let dead = common::free_port();
    let port = common::free_port();
    let config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  servers:\n   - 127.0.0.1:{}:1 alpha\n   - 127.0.0.1:{dead}:1 beta\n",
        a.port
    );
    let kb = (0..200)
        .map(|i| format!("key{i}"))
        .find(|k| route(&config, k) == "beta")
        .unwrap();
    let ka = (0..200)
        .map(|i| format!("key{i}"))
        .find(|k| route(&config, k) == "alpha")
        .unwrap();
    let _proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
    let mut c = connect(port);
    for _ in 0..5 {
        assert_eq!(
            ask(&mut c, &format!("get {kb}\r\n")),
            "SERVER_ERROR Connection refused\r\n"
        );
        assert_eq!(ask(&mut c, &format!("get {ka}\r\n")), "END\r\n");
    }
}

/// 50 clients pipeline against three backends; one is killed with SIGKILL in the
/// middle. Every client gets exactly one reply per request, in order: its own
/// value, or an error.
#[test]
fn backend_killed_under_pipelined_load() {
    let mut backends: Vec<Memcached> = (0..3).map(|_| Memcached::start()).collect();
    let port = common::free_port();
    // md5 spreads similar keys well (nutcracker's fnv1a_64 clusters keys that differ only at the end).
    let mut config =
        format!("pool:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  timeout: 2000\n  servers:\n");
    for b in &backends {
        config.push_str(&format!("   - 127.0.0.1:{}:1\n", b.port));
    }
    let _proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
    let clients: Vec<_> = (0..50)
        .map(|client| {
            std::thread::spawn(move || {
                let mut r = connect(port);
                let mut errors = 0;
                for round in 0..40 {
                    let mut batch = String::new();
                    for i in 0..5 {
                        let v = format!("c{client}r{round}i{i}");
                        batch.push_str(&format!(
                            "set k{client}-{i} 0 0 {}\r\n{v}\r\nget k{client}-{i}\r\n",
                            v.len()
                        ));
                    }
                    r.get_mut().write_all(batch.as_bytes()).unwrap();
                    for i in 0..5 {
                        let v = format!("c{client}r{round}i{i}");
                        let set = read_reply(&mut r);
                        let get = read_reply(&mut r);
                        if set.starts_with("SERVER_ERROR") {
                            errors += 1;
                        } else {
                            assert_eq!(set, "STORED\r\n", "client {client}");
                        }
                        if get.starts_with("SERVER_ERROR") || get == "END\r\n" {
                            errors += 1;
                        } else {
                            assert_eq!(
                                get,
                                format!("VALUE k{client}-{i} 0 {}\r\n{v}\r\nEND\r\n", v.len()),
                                "client {client}"
                            );
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                errors
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let victim = backends.remove(1);
    unsafe_kill9(victim.process.child.id());
    drop(victim);
    let errors: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(errors > 0, "killing a backend produced no errors at all");
    // The proxy still serves keys of the live backends.
    let mut c = connect(port);
    let mut ok = 0;
    for i in 0..100 {
        let reply = ask(&mut c, &format!("set after{i} 0 0 1\r\nx\r\n"));
        match reply.as_str() {
            "STORED\r\n" => ok += 1,
            "SERVER_ERROR Connection refused\r\n" => {}
            other => panic!("unexpected reply after the kill: {other:?}"),
        }
    }
    // Keys of the two live servers (about two thirds) are stored.
    assert!(ok >= 20, "only {ok} of 100 stored after the kill");
}

fn unsafe_kill9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// A scripted fake backend: answers each request line with `reply`, after `delay`.
fn fake_backend(reply: &'static [u8], delay: Duration, close_after: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    std::thread::sleep(delay);
                    if r.get_mut().write_all(reply).is_err() {
                        return;
                    }
                    if close_after {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn garbage_from_a_backend_is_invalid_argument() {
    let (_p, port) =
        common::single_server_proxy(fake_backend(b"FOO BAR\r\n", Duration::ZERO, false), 1000);
    let mut c = connect(port);
    assert_eq!(
        ask(&mut c, "get a\r\n"),
        "SERVER_ERROR Invalid argument\r\n"
    );
    assert_eq!(
        ask(&mut c, "get b\r\n"),
        "SERVER_ERROR Invalid argument\r\n"
    );
}

#[test]
fn backend_closing_mid_reply_fails_the_request() {
    let (_p, port) = common::single_server_proxy(
        fake_backend(b"VALUE a 0 10\r\nabc", Duration::ZERO, true),
        1000,
    );
    let mut c = connect(port);
    assert_eq!(ask(&mut c, "get a\r\n"), "SERVER_ERROR unknown\r\n");
    assert_eq!(ask(&mut c, "get a\r\n"), "SERVER_ERROR unknown\r\n");
}

/// A backend that answers after twice the timeout: the request times out, and
/// its late reply is never handed to a later request.
#[test]
fn slow_backend_times_out_and_late_replies_are_dropped() {
    let (_p, port) = common::single_server_proxy(
        fake_backend(b"END\r\n", Duration::from_millis(400), false),
        200,
    );
    let mut c = connect(port);
    let start = Instant::now();
    assert_eq!(
        ask(&mut c, "get a\r\n"),
        "SERVER_ERROR Connection timed out\r\n"
    );
    assert!(start.elapsed() >= Duration::from_millis(180));
    assert_eq!(
        ask(&mut c, "get b\r\n"),
        "SERVER_ERROR Connection timed out\r\n"
    );
}

/// A backend that restarts: after the retry timeout traffic flows again.
#[test]
fn restarted_backend_gets_traffic_again() {
    let port_b = common::free_port();
    let b = memcached_on(port_b);
    let port = common::free_port();
    let config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  \
         server_retry_timeout: 500\n  timeout: 500\n  servers:\n   - 127.0.0.1:{port_b}:1\n"
    );
    let _proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
    let mut c = connect(port);
    assert_eq!(ask(&mut c, "set a 0 0 1\r\nx\r\n"), "STORED\r\n");
    drop(b);
    std::thread::sleep(Duration::from_millis(200));
    // Ejected (the only server): refused without a connection attempt.
    assert_eq!(
        ask(&mut c, "get a\r\n"),
        "SERVER_ERROR Connection refused\r\n"
    );
    let _b2 = memcached_on(port_b);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(ask(&mut c, "get a\r\n"), "END\r\n");
    assert_eq!(ask(&mut c, "set a 0 0 1\r\ny\r\n"), "STORED\r\n");
}

/// 10,000 clients connected at once, each served.
#[test]
fn ten_thousand_concurrent_clients() {
    raise_fd_limit(30_000);
    let backend = Memcached::start();
    let port = common::free_port();
    let config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  backlog: 4096\n  servers:\n   - 127.0.0.1:{}:1\n",
        backend.port
    );
    let proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
    let mut conns = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        conns.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(format!("get k{i}\r\n").as_bytes()).unwrap();
    }
    for s in conns.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"END\r\n");
    }
    let rss = std::fs::read_to_string(format!("/proc/{}/status", proxy.process.child.id()))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:").map(|v| {
                v.trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    assert!(rss < 256 * 1024, "RSS {rss} KiB with 10,000 clients");
}

fn raise_fd_limit(want: u64) {
    // The test process and the proxy it starts both need the descriptors.
    let _ = Command::new("true").status();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// SIGTERM drains: listeners close at once, a request already in flight still
/// gets its reply, then the process exits 0.
#[test]
fn sigterm_finishes_requests_in_flight() {
    let (mut proxy, port) = common::single_server_proxy(
        fake_backend(b"END\r\n", Duration::from_millis(600), false),
        5000,
    );
    let mut c = connect(port);
    c.get_mut().write_all(b"get slow\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    common::kill(proxy.process.child.id(), "TERM");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting after SIGTERM"
    );
    assert_eq!(read_reply(&mut c), "END\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = proxy.process.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "proxy still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}

/// Restores /etc/hosts when dropped.
struct HostsEntry {
    original: String,
}

impl HostsEntry {
    /// Adds `127.0.0.1 name` to /etc/hosts; `None` when the file is not writable (not root).
    fn add(name: &str) -> Option<HostsEntry> {
        let original = std::fs::read_to_string("/etc/hosts").ok()?;
        std::fs::write("/etc/hosts", format!("{original}\n127.0.0.1 {name}\n")).ok()?;
        Some(HostsEntry { original })
    }

    fn remove(&self) {
        let _ = std::fs::write("/etc/hosts", &self.original);
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A backend host name that stops resolving: the next new connection fails
/// with `Host is down` (names are resolved on every new connection, as in
/// nutcracker), and traffic returns when the name resolves again.
#[test]
fn backend_name_that_stops_resolving() {
    let name = format!("rustcracker-dns-test-{}.internal", std::process::id());
    let Some(hosts) = HostsEntry::add(&name) else {
        eprintln!("skipped: /etc/hosts is not writable");
        return;
    };
    let port_b = common::free_port();
    let b = memcached_on(port_b);
    let port = common::free_port();
    let config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  timeout: 1000\n  servers:\n   - {name}:{port_b}:1\n"
    );
    let _proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
    let mut c = connect(port);
    assert_eq!(ask(&mut c, "set a 0 0 1\r\nx\r\n"), "STORED\r\n");
    // The name disappears, and the server connection breaks: reconnecting must resolve again.
    hosts.remove();
    drop(b);
    std::thread::sleep(Duration::from_millis(200));
    let _b2 = memcached_on(port_b);
    assert_eq!(ask(&mut c, "get a\r\n"), "SERVER_ERROR Host is down\r\n");
    drop(hosts);
    let _hosts = HostsEntry::add(&name).unwrap();
    assert_eq!(ask(&mut c, "get a\r\n"), "END\r\n");
}

/// A memcached on a given port (to restart a backend where it was).
fn memcached_on(port: u16) -> common::Process {
    let child = Command::new("memcached")
        .args([
            "-u",
            "root",
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "-t",
            "1",
            "-p",
            &port.to_string(),
        ])
        .spawn()
        .unwrap();
    common::wait_for_port(port);
    common::Process {
        child,
        name: "memcached".into(),
    }
}

/// A redis backend that sends garbage, or `-LOADING` (spec §6.5): the server
/// connection closes and the request gets `-ERR Invalid argument`; the client
/// connection stays open (`PING` is answered after it, in order).
#[test]
fn redis_garbage_and_loading_replies_are_invalid_argument() {
    for reply in [
        &b"FOO BAR\r\n"[..],
        b"-LOADING Redis is loading the dataset in memory\r\n",
    ] {
        let backend = fake_backend(reply, Duration::ZERO, false);
        let port = common::free_port();
        let config = format!(
            "pool:\n  listen: 127.0.0.1:{port}\n  redis: true\n  timeout: 1000\n  servers:\n   - 127.0.0.1:{backend}:1\n"
        );
        let _proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
        let mut c = connect(port);
        c.get_mut()
            .write_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n")
            .unwrap();
        assert_eq!(
            read_reply(&mut c),
            "-ERR Invalid argument\r\n",
            "{}",
            String::from_utf8_lossy(reply)
        );
        assert_eq!(read_reply(&mut c), "+PONG\r\n");
    }
}
