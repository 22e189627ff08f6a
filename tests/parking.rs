//! Parked clients: a client idle for a sweep period (and every client that
//! has not spoken yet) is held as a bare socket, without a task or buffers,
//! and resumes as if nothing happened. Observed through the
//! `rustcracker_parked_clients` gauge on `GET /metrics` and the JSON counters.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, read_len, read_until_suffix, resp, show, Flavor, Memcached, Proxy, Redis};

/// Sweep period 1 s: a client is parked after 1–2 s of silence.
const PARKED_WITHIN: Duration = Duration::from_secs(8);

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw
}

/// A value of the Prometheus text, by its full series name.
fn metric(stats_port: u16, series: &str) -> i64 {
    let text = http_get(stats_port, "/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Waits until the gauge of parked clients reads `want`.
fn wait_parked(stats_port: u16, want: i64) {
    let deadline = Instant::now() + PARKED_WITHIN;
    loop {
        let now = metric(stats_port, "rustcracker_parked_clients");
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "parked clients: {now}, expected {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pool_gauge(stats_port: u16, pool: &str, name: &str) -> i64 {
    metric(
        stats_port,
        &format!("nutcracker_pool_{name}{{pool=\"{pool}\"}}"),
    )
}

fn roundtrip(s: &mut TcpStream, request: &[u8], until: &[u8]) -> Vec<u8> {
    s.write_all(request).unwrap();
    read_until_suffix(s, until, Duration::from_secs(10))
}

/// A rustcracker with one memcache pool `mc` over a fresh memcached.
struct McProxy {
    _mc: Memcached,
    proxy: Proxy,
    port: u16,
}

fn mc_proxy() -> McProxy {
    let mc = Memcached::start();
    let port = free_port();
    let yaml = format!(
        "mc:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  servers:\n   - {}:1\n",
        mc.addr()
    );
    let proxy = Proxy::start(Flavor::Rustcracker, &yaml, port, &[]);
    McProxy {
        _mc: mc,
        proxy,
        port,
    }
}

#[test]
fn idle_memcache_clients_park_and_resume_in_order() {
    let McProxy { proxy, port, .. } = &mc_proxy();
    let (stats, port) = (proxy.stats_port, *port);
    // The readiness probe's connection has come and gone.
    let deadline = Instant::now() + PARKED_WITHIN;
    while pool_gauge(stats, "mc", "client_connections") != 0 {
        assert!(Instant::now() < deadline, "probe connection still counted");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Clients that have not spoken yet wait in the lot from the start.
    let mut clients: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    wait_parked(stats, 100);
    assert_eq!(pool_gauge(stats, "mc", "client_connections"), 100);

    // Each speaks once (now served by a session) ...
    for (i, c) in clients.iter_mut().enumerate() {
        let reply = roundtrip(
            c,
            format!("set park:{i} 0 0 2\r\n{:02}\r\n", i % 100).as_bytes(),
            b"\r\n",
        );
        assert_eq!(reply, b"STORED\r\n", "{}", show(&reply));
    }
    // ... and after a sweep period of silence is parked again.
    wait_parked(stats, 100);
    assert_eq!(pool_gauge(stats, "mc", "client_connections"), 100);

    // A parked client sends a pipeline: every reply comes back, in order.
    for (i, c) in clients.iter_mut().enumerate() {
        let mut pipeline = Vec::new();
        let mut expected = Vec::new();
        for j in [i, (i + 1) % 100, (i + 7) % 100] {
            pipeline.extend_from_slice(format!("get park:{j}\r\n").as_bytes());
            expected.extend_from_slice(
                format!("VALUE park:{j} 0 2\r\n{:02}\r\nEND\r\n", j % 100).as_bytes(),
            );
        }
        c.write_all(&pipeline).unwrap();
        let reply = read_len(c, expected.len());
        assert_eq!(show(&reply), show(&expected));
    }

    // A parked client that leaves is counted as an EOF, like any other.
    wait_parked(stats, 100);
    let eof_before = pool_gauge(stats, "mc", "client_eof_total");
    drop(clients.pop());
    let deadline = Instant::now() + PARKED_WITHIN;
    while pool_gauge(stats, "mc", "client_connections") != 99 {
        assert!(
            Instant::now() < deadline,
            "closed parked client still counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pool_gauge(stats, "mc", "client_eof_total"), eof_before + 1);
    wait_parked(stats, 99);
}

#[test]
fn half_sent_request_keeps_its_session() {
    let McProxy { proxy, port, .. } = &mc_proxy();
    let (stats, port) = (proxy.stats_port, *port);
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    wait_parked(stats, 1);
    // Half a request: the session holds the bytes and must not be parked.
    c.write_all(b"set half 0 0 5\r\nab").unwrap();
    wait_parked(stats, 0);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(metric(stats, "rustcracker_parked_clients"), 0);
    let reply = roundtrip(&mut c, b"cde\r\nget half\r\n", b"END\r\n");
    assert_eq!(
        show(&reply),
        show(b"STORED\r\nVALUE half 0 5\r\nabcde\r\nEND\r\n")
    );
}

#[test]
fn redis_client_stays_authenticated_while_parked() {
    let rd = Redis::start_with(&["--requirepass", "sesame"]);
    let port = free_port();
    let yaml = format!(
        "rd:\n  listen: 127.0.0.1:{port}\n  redis: true\n  redis_auth: sesame\n  servers:\n   - {}:1\n",
        rd.addr()
    );
    let proxy = Proxy::start(Flavor::Rustcracker, &yaml, port, &[]);
    let stats = proxy.stats_port;
    let mut authed = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut stranger = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let reply = roundtrip(&mut authed, &resp(&[b"AUTH", b"sesame"]), b"\r\n");
    assert_eq!(reply, b"+OK\r\n");
    let reply = roundtrip(&mut stranger, &resp(&[b"GET", b"k"]), b"\r\n");
    assert_eq!(reply, b"-NOAUTH Authentication required\r\n");
    wait_parked(stats, 2);

    let reply = roundtrip(&mut authed, &resp(&[b"SET", b"k", b"v"]), b"\r\n");
    assert_eq!(show(&reply), "+OK\\r\\n");
    let reply = roundtrip(&mut stranger, &resp(&[b"GET", b"k"]), b"\r\n");
    assert_eq!(show(&reply), show(b"-NOAUTH Authentication required\r\n"));
    let reply = roundtrip(&mut authed, &resp(&[b"GET", b"k"]), b"v\r\n");
    assert_eq!(show(&reply), show(b"$1\r\nv\r\n"));
}

#[test]
fn shutdown_closes_parked_clients() {
    let McProxy {
        mut proxy, port, ..
    } = mc_proxy();
    let mut clients: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    wait_parked(proxy.stats_port, 20);
    common::kill(proxy.process.child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if proxy.process.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "proxy still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every parked client sees its connection closed.
    for c in &mut clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        let n = c.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "a parked client got bytes instead of a close");
    }
}
