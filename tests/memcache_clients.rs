//! The memcache data plane under many clients: ownership of every reply under
//! concurrency, a real client library, and clients that misbehave.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::{read_len, Flavor, Memcached, Proxy};

struct Setup {
    backends: Vec<Memcached>,
    _proxy: Proxy,
    port: u16,
}

fn setup(servers: usize, args: &[&str]) -> Setup {
    let backends: Vec<Memcached> = (0..servers).map(|_| Memcached::start()).collect();
    let port = common::free_port();
    let mut config = format!("pool:\n  listen: 127.0.0.1:{port}\n  timeout: 5000\n  servers:\n");
    for b in &backends {
        config.push_str(&format!("   - 127.0.0.1:{}:1\n", b.port));
    }
    let proxy = Proxy::start(Flavor::Rustcracker, &config, port, args);
    Setup {
        backends,
        _proxy: proxy,
        port,
    }
}

/// 50 clients pipeline 200 mixed requests each (10,000 in all); values encode
/// client and sequence number, so every client checks each reply is its own
/// and in its order.
#[test]
fn fifty_pipelining_clients_get_their_own_replies_in_order() {
    for threads in ["1", "2"] {
        let setup = setup(4, &["--threads", threads]);
        let port = setup.port;
        let handles: Vec<_> = (0..50)
            .map(|client| {
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let mut request = Vec::new();
                    let mut expected = Vec::new();
                    for seq in 0..100 {
                        let key = format!("c{client}k{}", seq % 7);
                        let value = format!("client{client}seq{seq}");
                        request.extend_from_slice(
                            format!("set {key} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(),
                        );
                        expected.extend_from_slice(b"STORED\r\n");
                        request.extend_from_slice(
                            format!("get {key} c{client}missing{seq}\r\n").as_bytes(),
                        );
                        expected.extend_from_slice(
                            format!("VALUE {key} 0 {}\r\n{value}\r\nEND\r\n", value.len())
                                .as_bytes(),
                        );
                    }
                    // Write in a second thread so a full socket buffer never deadlocks the test.
                    let mut w = s.try_clone().unwrap();
                    let writer = std::thread::spawn(move || w.write_all(&request).unwrap());
                    let got = read_len(&mut s, expected.len());
                    writer.join().unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&expected),
                        "client {client}"
                    );
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        drop(setup.backends);
    }
}

/// A real client library (the `memcache` crate) through the proxy.
#[test]
fn memcache_crate_set_get_multi_delete_multi() {
    let setup = setup(4, &[]);
    let client = memcache::connect(format!(
        "memcache://127.0.0.1:{}?protocol=ascii",
        setup.port
    ))
    .unwrap();
    let keys: Vec<String> = (0..1000).map(|i| format!("lib-key-{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        client.set(k, format!("value-{i}"), 0).unwrap();
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let got: std::collections::HashMap<String, String> = client.gets(&refs).unwrap();
    assert_eq!(got.len(), 1000);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(got[k], format!("value-{i}"));
    }
    for k in &keys[..500] {
        assert!(client.delete(k).unwrap());
    }
    let got: std::collections::HashMap<String, String> = client.gets(&refs).unwrap();
    assert_eq!(got.len(), 500);
    assert!(!got.contains_key("lib-key-0"));
    client.set("counter", 10u64, 0).unwrap();
    assert_eq!(client.increment("counter", 5).unwrap(), 15);
}

/// A client that leaves with requests in flight does not desynchronise the
/// server connection other clients share.
#[test]
fn client_leaving_mid_flight_leaves_others_in_sync() {
    let setup = setup(1, &[]);
    let mut a = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    a.write_all(b"set shared 0 0 5\r\nhello\r\n").unwrap();
    assert_eq!(read_len(&mut a, 8), b"STORED\r\n");
    for _ in 0..5 {
        let mut b = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
        let mut burst = Vec::new();
        for i in 0..1000 {
            burst.extend_from_slice(format!("get shared\r\nset x{i} 0 0 1\r\n").as_bytes());
        }
        // Leave mid-request: the last set has no data block.
        b.write_all(&burst).unwrap();
        drop(b);
        a.write_all(b"get shared\r\n").unwrap();
        assert_eq!(
            read_len(&mut a, 30),
            b"VALUE shared 0 5\r\nhello\r\nEND\r\n"
        );
    }
}

/// A client that pipelines 32 MiB of replies and does not read for a while:
/// the replies wait for it (the server connection never blocks on it), the
/// clients sharing that server connection are served meanwhile, and in the
/// end every byte arrives in order.
#[test]
fn slow_reader_gets_every_reply_and_does_not_stall_others() {
    let setup = setup(1, &[]);
    let value: Vec<u8> = (0..512 * 1024)
        .map(|i: u32| b'a' + (i % 26) as u8)
        .collect();
    let mut writer = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    writer.write_all(&set).unwrap();
    assert_eq!(read_len(&mut writer, 8), b"STORED\r\n");

    let mut slow = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    let gets = 64;
    slow.write_all(&b"get big\r\n".repeat(gets)).unwrap();
    // While the slow client's replies pile up, another client is served.
    for i in 0..200 {
        writer
            .write_all(format!("set k{i} 0 0 3\r\nv{:02}\r\nget k{i}\r\n", i % 100).as_bytes())
            .unwrap();
        let want = format!("STORED\r\nVALUE k{i} 0 3\r\nv{:02}\r\nEND\r\n", i % 100);
        assert_eq!(
            String::from_utf8_lossy(&read_len(&mut writer, want.len())),
            want
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut one = format!("VALUE big 0 {}\r\n", value.len()).into_bytes();
    one.extend_from_slice(&value);
    one.extend_from_slice(b"\r\nEND\r\n");
    let got = read_len(&mut slow, one.len() * gets);
    assert_eq!(got.len(), one.len() * gets);
    for (n, reply) in got.chunks(one.len()).enumerate() {
        assert!(reply == one, "reply {n} of {gets} differs");
    }
}

/// A client that sends without pause (every read of it finds more) takes its
/// turn with the others: a second client is answered while the first one's
/// stream goes on, and the first one gets every reply, in order.
#[test]
fn client_that_never_pauses_takes_turns_with_others() {
    for threads in ["1", "2"] {
        let setup = setup(2, &["--threads", threads]);
        let mut other = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
        other.write_all(b"set turn 0 0 2\r\nok\r\n").unwrap();
        assert_eq!(read_len(&mut other, 8), b"STORED\r\n");

        // 4 MB of gets, written by one thread while another reads the replies.
        let flood = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
        let batch = b"get turn\r\n".repeat(10_000);
        let batches = 40;
        let mut writer_side = flood.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            for _ in 0..batches {
                writer_side.write_all(&batch).unwrap();
            }
        });
        let mut reader_side = flood;
        reader_side
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let reader = std::thread::spawn(move || {
            let one = b"VALUE turn 0 2\r\nok\r\nEND\r\n";
            let mut buf = vec![0u8; 1 << 16];
            let mut carry = Vec::new();
            let mut replies = 0usize;
            while replies < 10_000 * batches {
                let n = reader_side.read(&mut buf).expect("flood replies stopped");
                assert!(n > 0, "flood client closed after {replies} replies");
                carry.extend_from_slice(&buf[..n]);
                let whole = carry.len() / one.len();
                for reply in carry[..whole * one.len()].chunks(one.len()) {
                    assert_eq!(reply, one, "flood reply {replies}");
                    replies += 1;
                }
                carry.drain(..whole * one.len());
            }
            replies
        });
        // While the flood is on, the other client is served, request by request.
        for i in 0..50 {
            other.write_all(b"get turn\r\n").unwrap();
            assert_eq!(
                String::from_utf8_lossy(&read_len(&mut other, 25)),
                "VALUE turn 0 2\r\nok\r\nEND\r\n",
                "other client, request {i}"
            );
        }
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), 10_000 * batches);
        drop(setup.backends);
    }
}

/// After `quit`, or when the client half-closes, the replies owed still
/// arrive and then the proxy closes the connection at once, even when the
/// last reply comes from a server (written straight to the client's socket).
#[test]
fn quit_and_half_close_deliver_replies_then_close() {
    let setup = setup(2, &[]);
    let until_eof = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => got,
            Err(e) => panic!("no close after {:?}: {e}", String::from_utf8_lossy(&got)),
        }
    };
    for _ in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
        s.write_all(b"set q 0 0 1\r\nx\r\nget q\r\nget nothing\r\nquit\r\n")
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&until_eof(&mut s)),
            "STORED\r\nVALUE q 0 1\r\nx\r\nEND\r\nEND\r\n"
        );

        let mut s = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
        s.write_all(b"get q\r\nget q nothing\r\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&until_eof(&mut s)),
            "VALUE q 0 1\r\nx\r\nEND\r\nVALUE q 0 1\r\nx\r\nEND\r\n"
        );
    }
}

/// 100 MB of garbage from one client: it gets errors (or is closed), while
/// another client keeps being served, and the proxy's memory stays bounded.
#[test]
fn garbage_client_does_not_disturb_others() {
    let setup = setup(2, &[]);
    let port = setup.port;
    let garbage = std::thread::spawn(move || {
        let mut g = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut r = g.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
            }
            total
        });
        let chunk: Vec<u8> = (0..1 << 20)
            .map(|i| match i % 98 {
                96 => b'\r',
                97 => b'\n',
                _ => b'a' + (i % 26) as u8,
            })
            .collect();
        let mut sent = 0usize;
        for _ in 0..100 {
            if g.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        let _ = g.shutdown(Shutdown::Write);
        let replies = reader.join().unwrap();
        (sent, replies)
    });
    let mut ok = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let start = Instant::now();
    let mut rounds = 0;
    while !garbage.is_finished() && start.elapsed() < Duration::from_secs(60) {
        ok.write_all(b"set alive 0 0 2\r\nok\r\nget alive\r\n")
            .unwrap();
        assert_eq!(
            read_len(&mut ok, 33),
            b"STORED\r\nVALUE alive 0 2\r\nok\r\nEND\r\n"
        );
        rounds += 1;
    }
    let (sent, replies) = garbage.join().unwrap();
    assert!(rounds > 0);
    // Every garbage line is an unknown command: one `ERROR\r\n` each, connection kept.
    assert_eq!(sent, 100 << 20);
    // Each 1 MiB chunk holds 10,699 whole lines; its 74-byte tail joins the next chunk's first
    // line, and the very last tail is an incomplete request dropped at EOF.
    let lines = 100 * ((1 << 20) / 98);
    assert_eq!(replies, lines * 7, "{sent} bytes sent");
    let rss = rss_kib(setup._proxy.process.child.id());
    assert!(
        rss < 200 * 1024,
        "proxy RSS {rss} KiB after 100 MB of garbage"
    );
    drop(setup.backends);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A backend that accepts connections and never answers: every request on
/// the connection gets `SERVER_ERROR Connection timed out` after `timeout`,
/// and the client connection stays usable.
#[test]
fn black_hole_backend_times_out_every_request_on_the_connection() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hole.incoming().take(4) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let (_proxy, port) = common::single_server_proxy(hole_port, 300);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let start = Instant::now();
    c.write_all(b"get a\r\nget b\r\nset c 0 0 1 noreply\r\nx\r\nget c\r\n")
        .unwrap();
    let want = b"SERVER_ERROR Connection timed out\r\n".repeat(3);
    assert_eq!(read_len(&mut c, want.len()), want);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "timed out after {took:?}"
    );
    // The connection is still served (a new server connection, timing out again).
    c.write_all(b"get d\r\n").unwrap();
    assert_eq!(
        read_len(&mut c, 35),
        b"SERVER_ERROR Connection timed out\r\n"
    );
    drop(keep);
}

/// A server connection that sat idle for several timeouts, then got a
/// request its server never answers: the request still times out after about
/// `timeout` (the connection keeps its timer set while idle, since requests
/// are written without waking its task).
#[test]
fn a_request_after_an_idle_spell_still_times_out() {
    let backend = Memcached::start();
    let (_proxy, port) = common::single_server_proxy(backend.port, 200);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"set a 0 0 1\r\nx\r\n").unwrap();
    assert_eq!(read_len(&mut c, 8), b"STORED\r\n");
    for idle_ms in [700, 130] {
        std::thread::sleep(Duration::from_millis(idle_ms));
        backend.signal("STOP");
        let start = Instant::now();
        c.write_all(b"get a\r\n").unwrap();
        assert_eq!(
            read_len(&mut c, 35),
            b"SERVER_ERROR Connection timed out\r\n"
        );
        let took = start.elapsed();
        // Not before its deadline, and not at some later timer's either.
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_secs(5),
            "timed out after {took:?}"
        );
        backend.signal("CONT");
        // A new server connection serves the next request.
        c.write_all(b"get a\r\n").unwrap();
        assert_eq!(read_len(&mut c, 20), b"VALUE a 0 1\r\nx\r\nEND\r\n");
    }
}

/// Errors are worded as nutcracker words them (glibc strerror).
#[test]
fn backend_errors_use_nutcracker_wording() {
    let dead_guard = common::dead_port();
    let dead_port = dead_guard.port;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let (port, port2, port3) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let config = format!(
        "refused:\n  listen: 127.0.0.1:{port}\n  servers:\n   - 127.0.0.1:{dead_port}:1\n\
         nosocket:\n  listen: 127.0.0.1:{}\n  servers:\n   - {}:1\n\
         nodns:\n  listen: 127.0.0.1:{}\n  servers:\n   - no-such-host.invalid:11211:1\n",
        port2,
        missing.display(),
        port3,
    );
    let _proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
    for (p, want) in [
        (port, "SERVER_ERROR Connection refused\r\n"),
        (port2, "SERVER_ERROR No such file or directory\r\n"),
        (port3, "SERVER_ERROR Host is down\r\n"),
    ] {
        common::wait_for_port(p);
        let mut c = TcpStream::connect(("127.0.0.1", p)).unwrap();
        c.write_all(b"get a\r\nset b 0 0 1\r\nx\r\n").unwrap();
        let want = want.repeat(2);
        assert_eq!(
            String::from_utf8_lossy(&read_len(&mut c, want.len())),
            want,
            "pool on {p}"
        );
    }
}

/// `client_connections` is enforced (nutcracker parses and ignores it): clients
/// beyond the limit are accepted and closed; the others are served.
#[test]
fn client_connections_limit_is_enforced() {
    let backend = Memcached::start();
    let port = common::free_port();
    let config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  client_connections: 2\n  servers:\n   - 127.0.0.1:{}:1\n",
        backend.port
    );
    let _proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
    // Let the harness's readiness probe (a connection too) finish leaving.
    std::thread::sleep(Duration::from_millis(200));
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for c in [&mut first, &mut second] {
        c.write_all(b"get a\r\n").unwrap();
        assert_eq!(read_len(c, 5), b"END\r\n");
    }
    let mut third = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = third.write_all(b"get a\r\n");
    let (got, closed) = common::read_quiet(&mut third, Duration::from_secs(2));
    assert!(
        got.is_empty() && closed,
        "third client got {got:?}, closed {closed}"
    );
    // When one leaves, a new client gets its place.
    drop(first);
    std::thread::sleep(Duration::from_millis(100));
    let mut fourth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    fourth.write_all(b"get a\r\n").unwrap();
    assert_eq!(read_len(&mut fourth, 5), b"END\r\n");
}

/// An IPv6 listen address, written unbracketed as nutcracker takes it.
#[test]
fn ipv6_listen() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    let backend = Memcached::start();
    let port = common::free_port();
    let config = format!(
        "pool:\n  listen: ::1:{port}\n  servers:\n   - 127.0.0.1:{}:1\n",
        backend.port
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nutcracker.yml");
    std::fs::write(&conf, &config).unwrap();
    let child = std::process::Command::new(common::rustcracker_bin())
        .arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-s", &common::free_port().to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = common::Process {
        child,
        name: "rustcracker".into(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        if let Ok(c) = TcpStream::connect(("::1", port)) {
            break c;
        }
        assert!(Instant::now() < deadline, "nothing listens on [::1]:{port}");
        std::thread::sleep(Duration::from_millis(10));
    };
    c.write_all(b"set six 0 0 1\r\n6\r\nget six\r\n").unwrap();
    assert_eq!(
        read_len(&mut c, 27),
        b"STORED\r\nVALUE six 0 1\r\n6\r\nEND\r\n"
    );
}

/// Replies leave in request order when the servers answer out of order: with
/// the first request's server stopped, a multi-get over the two others and a
/// plain get after it are answered first (they wait, merged and in order,
/// behind the first), and everything is sent once that server answers.
#[test]
fn replies_wait_in_order_behind_a_stopped_server() {
    let setup = setup(3, &[]);
    let mut c = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    // Store keys until each server holds two, and learn which holds which.
    let mut on: Vec<Vec<String>> = vec![Vec::new(); 3];
    for i in 0.. {
        if on.iter().all(|keys| keys.len() >= 2) {
            break;
        }
        if i == 1000 {
            // Say what the proxy saw: its per-server counters.
            let stats = common::stats_raw(setup._proxy.stats_port);
            let ports: Vec<u16> = setup.backends.iter().map(|b| b.port).collect();
            let counts: Vec<usize> = on.iter().map(Vec::len).collect();
            panic!(
                "ketama put no key on some server: keys per server {counts:?}, servers {ports:?}, \
                 proxy {}, stats {stats}",
                setup.port
            );
        }
        // Varying first bytes: fnv1a_64 (the default hash) maps keys that differ only in their
        // last bytes to nearby points of the ketama ring: with the ports of some runs,
        // `order0`..`order999` all missed one of the three servers (nutcracker places them the
        // same way; `--route` over random port triples: 5 of 150).
        let key = format!("{i}:order");
        c.write_all(format!("set {key} 0 0 {}\r\n{key}\r\n", key.len()).as_bytes())
            .unwrap();
        assert_eq!(read_len(&mut c, 8), b"STORED\r\n");
        let server = (0..3)
            .find(|&s| {
                setup.backends[s]
                    .direct(format!("get {key}\r\n").as_bytes(), b"END\r\n")
                    .starts_with(b"VALUE")
            })
            .expect("one server holds the key");
        on[server].push(key);
    }
    let value = |key: &str| format!("VALUE {key} 0 {}\r\n{key}\r\n", key.len());
    let (a, b, c2, d) = (&on[0][0], &on[1][0], &on[2][0], &on[1][1]);
    let expected = format!(
        "{}END\r\n{}{}END\r\n{}END\r\n",
        value(a),
        value(b),
        value(c2),
        value(d)
    );
    setup.backends[0].signal("STOP");
    c.write_all(format!("get {a}\r\nget {b} {c2}\r\nget {d}\r\n").as_bytes())
        .unwrap();
    let (early, _) = common::read_quiet(&mut c, Duration::from_millis(300));
    setup.backends[0].signal("CONT");
    assert!(
        early.is_empty(),
        "replies ahead of the first: {}",
        common::show(&early)
    );
    assert_eq!(
        common::show(&read_len(&mut c, expected.len())),
        common::show(expected.as_bytes())
    );
}

/// Big multi-get replies merged from two servers are written straight from
/// the fragment replies while the socket takes them, and the rest is kept:
/// a client that does not read for a while still gets every byte, in order,
/// with a small reply pipelined behind them.
#[test]
fn big_merged_replies_reach_a_slow_reader_whole_and_in_order() {
    let setup = setup(2, &[]);
    let mut c = common::connect_slow_reader(setup.port);
    // Keys until each server holds 20: every multi-get is split and merged.
    let (mut on, mut keys) = ([0, 0], Vec::new());
    for i in 0.. {
        let key = format!("{i}:big");
        c.write_all(format!("set {key} 0 0 1\r\nx\r\n").as_bytes())
            .unwrap();
        assert_eq!(read_len(&mut c, 8), b"STORED\r\n");
        let get = format!("get {key}\r\n");
        let server = (setup.backends.iter())
            .position(|b| b.direct(get.as_bytes(), b"END\r\n").starts_with(b"VALUE"))
            .expect("the key is on a server");
        if on[server] < 20 {
            on[server] += 1;
            keys.push(key);
        }
        if on == [20, 20] {
            break;
        }
    }
    let mut expected_one = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let value: Vec<u8> = (0..20_000).map(|j| b'a' + ((i + j) % 26) as u8).collect();
        let mut set = format!("set {key} {i} 0 {}\r\n", value.len()).into_bytes();
        set.extend_from_slice(&value);
        set.extend_from_slice(b"\r\n");
        c.write_all(&set).unwrap();
        assert_eq!(read_len(&mut c, 8), b"STORED\r\n");
        expected_one.extend_from_slice(format!("VALUE {key} {i} {}\r\n", value.len()).as_bytes());
        expected_one.extend_from_slice(&value);
        expected_one.extend_from_slice(b"\r\n");
    }
    expected_one.extend_from_slice(b"END\r\n");
    let get = format!("get {} missing\r\n", keys.join(" "));
    let rounds = 16;
    let mut request = get.repeat(rounds).into_bytes();
    request.extend_from_slice(b"get missing\r\n");
    c.write_all(&request).unwrap();
    // ~800 KB per reply, 13 MB in all: the socket buffers (4 MiB at most for the proxy's
    // side, 64 KiB for the client's) fill long before the client reads.
    std::thread::sleep(Duration::from_millis(500));
    let mut expected = expected_one.repeat(rounds);
    expected.extend_from_slice(b"END\r\n");
    let got = read_len(&mut c, expected.len());
    assert!(
        got == expected,
        "got {} bytes, want {}",
        got.len(),
        expected.len()
    );
}
