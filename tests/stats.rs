//! The stats port: nutcracker's JSON document (layout compared with
//! nutcracker 0.5.0 itself), exact counts for known traffic, ejections, the
//! upstream `test_nc_stats`, and Prometheus text for `GET /metrics`.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{dead_port, free_port, read_until_suffix, Flavor, Memcached, Proxy, Redis};

// ---------------------------------------------------------------------------
// A parser for the stats document (objects, strings and integers only), which
// keeps key order so layouts can be compared.

/// A value of the stats document.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
    Obj(Vec<(String, Val)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i).copied(),
            Some(c),
            "expected {:?} at {} in {}",
            c as char,
            self.i,
            String::from_utf8_lossy(self.s)
        );
        self.i += 1;
    }

    fn string(&mut self) -> String {
        self.expect(b'"');
        let start = self.i;
        while self.s[self.i] != b'"' {
            self.i += 1;
        }
        self.i += 1;
        String::from_utf8(self.s[start..self.i - 1].to_vec()).unwrap()
    }

    fn value(&mut self) -> Val {
        self.ws();
        match self.s[self.i] {
            b'"' => Val::Str(self.string()),
            b'{' => Val::Obj(self.object()),
            _ => {
                let start = self.i;
                while self.s[self.i] == b'-' || self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                Val::Int(
                    std::str::from_utf8(&self.s[start..self.i])
                        .unwrap()
                        .parse()
                        .unwrap(),
                )
            }
        }
    }

    fn object(&mut self) -> Vec<(String, Val)> {
        self.expect(b'{');
        let mut out = Vec::new();
        loop {
            let key = self.string();
            self.expect(b':');
            out.push((key, self.value()));
            self.ws();
            match self.s[self.i] {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return out;
                }
                c => panic!("unexpected {:?} at {}", c as char, self.i),
            }
        }
    }
}

/// One stats document.
#[derive(Debug, Clone)]
struct Doc {
    raw: String,
    top: Vec<(String, Val)>,
}

impl Doc {
    fn parse(raw: &str) -> Doc {
        assert!(raw.ends_with("}\n"), "document ends with }}\\n: {raw:?}");
        let mut p = Parser {
            s: raw.as_bytes(),
            i: 0,
        };
        let top = p.object();
        assert_eq!(p.i, raw.len() - 1, "one document, then a newline");
        Doc {
            raw: raw.to_owned(),
            top,
        }
    }

    fn get<'a>(obj: &'a [(String, Val)], key: &str) -> &'a Val {
        &obj.iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no {key:?} in {obj:?}"))
            .1
    }

    fn obj<'a>(obj: &'a [(String, Val)], key: &str) -> &'a [(String, Val)] {
        match Self::get(obj, key) {
            Val::Obj(o) => o,
            v => panic!("{key} is not an object: {v:?}"),
        }
    }

    fn int(obj: &[(String, Val)], key: &str) -> i64 {
        match Self::get(obj, key) {
            Val::Int(n) => *n,
            v => panic!("{key} is not an integer: {v:?}"),
        }
    }

    /// A top-level integer (`total_connections`, …).
    fn top(&self, key: &str) -> i64 {
        Self::int(&self.top, key)
    }

    /// A pool metric.
    fn pool(&self, pool: &str, key: &str) -> i64 {
        Self::int(Self::obj(&self.top, pool), key)
    }

    /// A server metric.
    fn server(&self, pool: &str, server: &str, key: &str) -> i64 {
        Self::int(Self::obj(Self::obj(&self.top, pool), server), key)
    }

    /// A server metric summed over the pool's servers.
    fn pool_sum(&self, pool: &str, key: &str) -> i64 {
        Self::obj(&self.top, pool)
            .iter()
            .filter_map(|(_, v)| match v {
                Val::Obj(o) => Some(Self::int(o, key)),
                _ => None,
            })
            .sum()
    }

    /// Every integer with its path (`pool/server/field`), in document order.
    fn flatten(&self) -> Vec<(String, i64)> {
        fn walk(prefix: &str, obj: &[(String, Val)], out: &mut Vec<(String, i64)>) {
            for (k, v) in obj {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}/{k}")
                };
                match v {
                    Val::Int(n) => out.push((path, *n)),
                    Val::Obj(o) => walk(&path, o, out),
                    Val::Str(_) => {}
                }
            }
        }
        let mut out = Vec::new();
        walk("", &self.top, &mut out);
        out
    }

    /// The raw document with every number replaced by `N` and the host
    /// name by `HOST`: the layout alone.
    fn skeleton(&self) -> String {
        let host = match Self::get(&self.top, "source") {
            Val::Str(s) => s.clone(),
            v => panic!("source is {v:?}"),
        };
        let raw = self
            .raw
            .replacen(&format!("\"source\":\"{host}\""), "\"source\":\"HOST\"", 1);
        let mut out = String::new();
        let mut in_number = false;
        let mut in_string = false;
        for c in raw.chars() {
            if c == '"' {
                in_string = !in_string;
            }
            if !in_string && (c.is_ascii_digit() || c == '-') {
                if !in_number {
                    out.push('N');
                }
                in_number = true;
            } else {
                in_number = false;
                out.push(c);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Talking to the stats port and the proxies.

fn fetch(port: u16) -> Doc {
    Doc::parse(&common::stats_raw(port))
}

/// Fetches until `ready` holds (nutcracker publishes after its aggregation
/// interval), at most 5 s; returns the last document either way.
fn fetch_when(port: u16, ready: impl Fn(&Doc) -> bool) -> Doc {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let doc = fetch(port);
        if ready(&doc) || Instant::now() > deadline {
            return doc;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fetches until two documents 300 ms apart carry the same counters.
fn fetch_settled(port: u16) -> Doc {
    let mut last = fetch(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let doc = fetch(port);
        let strip = |d: &Doc| {
            d.flatten()
                .into_iter()
                .filter(|(k, _)| k != "uptime" && k != "timestamp")
                .collect::<Vec<_>>()
        };
        if strip(&doc) == strip(&last) || Instant::now() > deadline {
            return doc;
        }
        last = doc;
    }
}

/// An HTTP GET on the stats port: (status line, headers, body).
fn http_get(port: u16, path: &str) -> (String, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect::<Vec<_>>();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("Content-Length");
    assert_eq!(body.len(), length, "Content-Length matches the body");
    (status, headers, body.to_owned())
}

/// Sends `request` over a new client connection, reads until the reply ends
/// with `until`, then closes (the proxy sees EOF).
fn roundtrip(port: u16, request: &[u8], until: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request).unwrap();
    read_until_suffix(&mut s, until, Duration::from_secs(10))
}

/// One RESP multi-bulk request.
fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// `rustcracker --route`: the server of each key in `pool`.
fn route(yaml: &str, pool: &str, keys: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("route.yml");
    std::fs::write(&conf, yaml).unwrap();
    let out = Command::new(common::rustcracker_bin())
        .arg("-c")
        .arg(&conf)
        .arg(format!("--pool={pool}"))
        .arg("--route")
        .args(keys)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap().to_owned())
        .collect()
}

/// The first key `k<n>` that `route` places on each of `servers`.
fn keys_for(yaml: &str, pool: &str, servers: &[&str]) -> Vec<String> {
    let keys: Vec<String> = (0..2000).map(|n| format!("k{n}")).collect();
    let placed = route(yaml, pool, &keys);
    servers
        .iter()
        .map(|server| {
            keys.iter()
                .zip(&placed)
                .find(|(_, s)| s == server)
                .unwrap_or_else(|| panic!("no key on {server}"))
                .0
                .clone()
        })
        .collect()
}

/// Starts a proxy, waits for every pool port in `pools` and the stats port,
/// and returns it with a document taken once the harness' probe
/// connections (one per pool port) are closed: only the listeners open.
fn start(flavor: Flavor, yaml: &str, pools: &[u16], args: &[&str]) -> (Proxy, Doc) {
    let proxy = Proxy::start(flavor, yaml, pools[0], args);
    for &port in &pools[1..] {
        common::wait_for_port(port);
    }
    // rustcracker binds the stats port after the pools' listeners.
    common::wait_for_port(proxy.stats_port);
    // Each pool port was probed by exactly one connection.
    let listeners = pools.len() as i64;
    let doc = fetch_when(proxy.stats_port, |d| {
        let closed: i64 = d
            .flatten()
            .iter()
            .filter(|(k, _)| k.ends_with("/client_eof") || k.ends_with("/client_err"))
            .map(|(_, v)| v)
            .sum();
        d.top("curr_connections") == listeners && closed == listeners
    });
    assert_eq!(doc.top("curr_connections"), listeners, "{}", doc.raw);
    (proxy, doc)
}

fn both() -> [Flavor; 2] {
    [Flavor::Nutcracker, Flavor::Rustcracker]
}

// ---------------------------------------------------------------------------
// The JSON document compared with nutcracker 0.5.0's.

/// Three pools (names chosen so nutcracker's sort, shorter first, differs
/// from plain lexicographic order), memcache and redis, a named server and a
/// dead one.
fn layout_config(ports: [u16; 3], mc: &Memcached, rd: &[Redis; 2], dead: u16) -> String {
    format!(
        "beta:\n  listen: 127.0.0.1:{b}\n  servers:\n   - 127.0.0.1:{mc}:1\n   - 127.0.0.1:{dead}:1 zed\n\
         al:\n  listen: 127.0.0.1:{a}\n  redis: true\n  servers:\n   - 127.0.0.1:{r1}:1\n   - 127.0.0.1:{r0}:1\n\
         alpha2:\n  listen: 127.0.0.1:{c}\n  servers:\n   - 127.0.0.1:{mc}:1 only\n",
        b = ports[0],
        a = ports[1],
        c = ports[2],
        mc = mc.port,
        r0 = rd[0].port,
        r1 = rd[1].port,
    )
}

/// Identical traffic for either proxy: single-key commands only, so every
/// request and reply byte is the same through both.
fn layout_traffic(yaml: &str, ports: [u16; 3], mc: &Memcached, rd: &[Redis; 2]) {
    let beta = keys_for(yaml, "beta", &[&mc.addr(), "zed"]);
    let al = keys_for(
        yaml,
        "al",
        &[
            &format!("127.0.0.1:{}", rd[0].port),
            &format!("127.0.0.1:{}", rd[1].port),
        ],
    );
    let live = &beta[0];
    let r = roundtrip(
        ports[0],
        format!("set {live} 0 0 3\r\nabc\r\nget {live}\r\n").as_bytes(),
        b"END\r\n",
    );
    assert_eq!(
        r,
        format!("STORED\r\nVALUE {live} 0 3\r\nabc\r\nEND\r\n").as_bytes()
    );
    let r = roundtrip(ports[0], format!("get {}\r\n", beta[1]).as_bytes(), b"\r\n");
    assert_eq!(r, b"SERVER_ERROR Connection refused\r\n");
    for key in &al {
        let mut req = cmd(&["SET", key, "value"]);
        req.extend(cmd(&["GET", key]));
        req.extend(cmd(&["PING"]));
        let r = roundtrip(ports[1], &req, b"+PONG\r\n");
        assert_eq!(r, b"+OK\r\n$5\r\nvalue\r\n+PONG\r\n");
    }
    let r = roundtrip(ports[2], b"get nothing\r\n", b"END\r\n");
    assert_eq!(r, b"END\r\n");
}

#[test]
fn json_layout_and_values_match_nutcracker() {
    let mc = Memcached::start();
    let rd = [Redis::start(), Redis::start()];
    let dead_guard = dead_port();
    let dead = dead_guard.port;
    let mut docs = Vec::new();
    for flavor in both() {
        let ports = [free_port(), free_port(), free_port()];
        let yaml = layout_config(ports, &mc, &rd, dead);
        let (proxy, fresh) = start(flavor, &yaml, &ports, &["-i", "100"]);
        assert_eq!(fresh.top("curr_connections"), 3, "{flavor:?}: 3 listeners");
        layout_traffic(&yaml, ports, &mc, &rd);
        let doc = fetch_settled(proxy.stats_port);
        docs.push((flavor, doc));
    }
    let (_, nc) = &docs[0];
    let (_, rc) = &docs[1];
    // The layout, byte for byte.
    assert_eq!(
        rc.skeleton(),
        nc.skeleton(),
        "\nrustcracker: {}\nnutcracker:  {}",
        rc.raw,
        nc.raw
    );
    // Keys in order: service, source, version, uptime, timestamp, totals, pools.
    let keys: Vec<&str> = rc.top.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "service",
            "source",
            "version",
            "uptime",
            "timestamp",
            "total_connections",
            "curr_connections",
            "al",
            "beta",
            "alpha2"
        ]
    );
    assert!(rc
        .raw
        .starts_with("{\"service\":\"nutcracker\", \"source\":\""));
    assert!(rc.raw.contains("\", \"version\":\"0.5.0\", \"uptime\":"));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        Doc::get(&rc.top, "source"),
        &Val::Str(host.trim().to_owned())
    );
    // Every number but the clock ones is equal.
    let differ: Vec<String> = nc
        .flatten()
        .into_iter()
        .zip(rc.flatten())
        .filter(|((k, a), (_, b))| k != "uptime" && k != "timestamp" && a != b)
        .map(|((k, a), (_, b))| format!("{k}: nutcracker {a}, rustcracker {b}"))
        .collect();
    assert!(
        differ.is_empty(),
        "values differ:\n{}\n{}\n{}",
        differ.join("\n"),
        nc.raw,
        rc.raw
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((rc.top("timestamp") - now).abs() <= 2);
    assert!(rc.top("uptime") >= 0 && rc.top("uptime") < 60);
}

// ---------------------------------------------------------------------------
// Exact counts.

#[test]
fn memcache_counts_are_exact() {
    let s1 = Memcached::start();
    let s2 = Memcached::start();
    let dead_guard = dead_port();
    let dead = dead_guard.port;
    let one = free_port();
    let two = free_port();
    let gone = free_port();
    let yaml = format!(
        "one:\n  listen: 127.0.0.1:{one}\n  servers:\n   - 127.0.0.1:{p1}:1\n\
         two:\n  listen: 127.0.0.1:{two}\n  servers:\n   - 127.0.0.1:{p1}:1\n   - 127.0.0.1:{p2}:1\n\
         gone:\n  listen: 127.0.0.1:{gone}\n  servers:\n   - 127.0.0.1:{dead}:1\n",
        p1 = s1.port,
        p2 = s2.port,
    );
    let (proxy, base) = start(
        Flavor::Rustcracker,
        &yaml,
        &[one, two, gone],
        &["-i", "100"],
    );
    let stats = proxy.stats_port;
    // Client connections beyond the harness' probes, per pool.
    let eof = |d: &Doc, pool: &str| d.pool(pool, "client_eof") - base.pool(pool, "client_eof");
    let a = format!("127.0.0.1:{}", s1.port);
    let b = format!("127.0.0.1:{}", s2.port);
    let d = format!("127.0.0.1:{dead}");

    // Three listeners open; every pool and server metric but client_eof
    // (the probes) is 0.
    assert_eq!(base.top("curr_connections"), 3);
    let total = base.top("total_connections");
    for (path, value) in base.flatten() {
        if path.contains('/') && !path.ends_with("/client_eof") {
            assert_eq!(value, 0, "{path}");
        }
    }

    // Pool "one": a set and a get with known sizes, then EOF.
    let set = b"set k 0 0 5\r\nhello\r\n"; // 20 bytes -> STORED\r\n (8)
    let get = b"get k\r\n"; // 7 bytes -> VALUE k 0 5\r\nhello\r\nEND\r\n (25)
    let mut c = TcpStream::connect(("127.0.0.1", one)).unwrap();
    c.write_all(set).unwrap();
    c.write_all(get).unwrap();
    let r = read_until_suffix(&mut c, b"END\r\n", Duration::from_secs(5));
    assert_eq!(r, b"STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n");
    // While the client is connected.
    let doc = fetch(stats);
    assert_eq!(doc.pool("one", "client_connections"), 1);
    assert_eq!(doc.top("curr_connections"), 3 + 1 + 1);
    drop(c);
    // A worker counts a client's end and its gauges one after another, and a
    // stats snapshot (another thread) can fall between: wait for all three.
    let client_left = |d: &Doc| {
        eof(d, "one") == 1
            && d.pool("one", "client_connections") == 0
            && d.top("curr_connections") == 4
    };
    let doc = fetch_when(stats, client_left);
    assert_eq!(eof(&doc, "one"), 1);
    assert_eq!(doc.pool("one", "client_err"), 0);
    assert_eq!(doc.pool("one", "client_connections"), 0);
    assert_eq!(doc.pool("one", "forward_error"), 0);
    assert_eq!(doc.pool("one", "fragments"), 0);
    assert_eq!(doc.server("one", &a, "requests"), 2);
    assert_eq!(doc.server("one", &a, "request_bytes"), 27);
    assert_eq!(doc.server("one", &a, "responses"), 2);
    assert_eq!(doc.server("one", &a, "response_bytes"), 33);
    assert_eq!(doc.server("one", &a, "server_connections"), 1);
    for q in ["in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes"] {
        assert_eq!(doc.server("one", &a, q), 0, "{q}");
    }
    // Listeners 3 + one client + one server connection ever; the client left.
    assert_eq!(doc.top("total_connections"), total + 2);
    assert_eq!(doc.top("curr_connections"), 4);

    // A client that resets its connection: client_err.
    let c = TcpStream::connect(("127.0.0.1", one)).unwrap();
    let sock = socket2::SockRef::from(&c);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    // Let the proxy accept it before the reset.
    fetch_when(stats, |d| d.pool("one", "client_connections") == 1);
    drop(c);
    let doc = fetch_when(stats, |d| {
        d.pool("one", "client_err") == 1 && d.pool("one", "client_connections") == 0
    });
    assert_eq!(doc.pool("one", "client_err"), 1);
    assert_eq!(eof(&doc, "one"), 1);
    assert_eq!(doc.pool("one", "client_connections"), 0);

    // Pool "two": a multi-get over both servers makes 2 fragments, one
    // request on each server.
    let keys = keys_for(&yaml, "two", &[&a, &b]);
    let r = roundtrip(
        two,
        format!("get {} {}\r\n", keys[0], keys[1]).as_bytes(),
        b"END\r\n",
    );
    assert_eq!(r, b"END\r\n");
    let doc = fetch_when(stats, |d| eof(d, "two") == 1);
    assert_eq!(doc.pool("two", "fragments"), 2);
    assert_eq!(doc.server("two", &a, "requests"), 1);
    assert_eq!(doc.server("two", &b, "requests"), 1);
    assert_eq!(doc.server("two", &a, "responses"), 1);
    assert_eq!(doc.server("two", &b, "responses"), 1);
    // Each fragment gets "END\r\n" from its server.
    assert_eq!(doc.server("two", &a, "response_bytes"), 5);
    assert_eq!(doc.server("two", &b, "response_bytes"), 5);
    assert_eq!(doc.pool_sum("two", "in_queue"), 0);
    assert_eq!(doc.pool_sum("two", "out_queue"), 0);
    assert_eq!(doc.pool_sum("two", "out_queue_bytes"), 0);
    // Pool "one" shares a memcached but counts separately.
    assert_eq!(doc.server("one", &a, "requests"), 2);

    // Pool "gone": a request to a dead server is one forward error.
    let r = roundtrip(gone, b"get x\r\n", b"\r\n");
    assert_eq!(r, b"SERVER_ERROR Connection refused\r\n");
    let doc = fetch_when(stats, |d| eof(d, "gone") == 1);
    assert_eq!(doc.pool("gone", "forward_error"), 1);
    assert_eq!(doc.server("gone", &d, "server_err"), 1);
    assert_eq!(doc.server("gone", &d, "requests"), 1);
    assert_eq!(doc.server("gone", &d, "request_bytes"), 7);
    assert_eq!(doc.server("gone", &d, "responses"), 0);
    assert_eq!(doc.server("gone", &d, "server_connections"), 0);
    assert_eq!(doc.server("gone", &d, "server_ejected_at"), 0);
    assert_eq!(doc.pool("gone", "server_ejects"), 0);
    for q in ["in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes"] {
        assert_eq!(doc.server("gone", &d, q), 0, "{q}");
    }
}

/// `auto_eject_hosts` with `server_failure_limit: 1`: the first refused
/// connect ejects the server; both proxies count it the same way.
#[test]
fn ejections_are_counted() {
    let live = Memcached::start();
    let dead_guard = dead_port();
    let dead = dead_guard.port;
    for flavor in both() {
        let port = free_port();
        let yaml = format!(
            "ej:\n  listen: 127.0.0.1:{port}\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n  servers:\n   - 127.0.0.1:{l}:1\n   - 127.0.0.1:{dead}:1\n",
            l = live.port
        );
        let d = format!("127.0.0.1:{dead}");
        let l = format!("127.0.0.1:{}", live.port);
        let key = &keys_for(&yaml, "ej", &[&d])[0];
        let (proxy, base) = start(flavor, &yaml, &[port], &["-i", "100"]);
        let before = now_micros();
        let r = roundtrip(port, format!("get {key}\r\n").as_bytes(), b"\r\n");
        assert_eq!(r, b"SERVER_ERROR Connection refused\r\n", "{flavor:?}");
        // The key now lives on the live server.
        let r = roundtrip(port, format!("get {key}\r\n").as_bytes(), b"END\r\n");
        assert_eq!(r, b"END\r\n", "{flavor:?}");
        let after = now_micros();
        let doc = fetch_when(proxy.stats_port, |d| {
            d.pool("ej", "client_eof") - base.pool("ej", "client_eof") == 2
                && d.server("ej", &l, "responses") == 1
        });
        assert_eq!(doc.pool("ej", "server_ejects"), 1, "{flavor:?}");
        assert_eq!(doc.pool("ej", "forward_error"), 1, "{flavor:?}");
        assert_eq!(doc.server("ej", &d, "server_err"), 1, "{flavor:?}");
        let at = doc.server("ej", &d, "server_ejected_at");
        assert!(
            before <= at && at <= after,
            "{flavor:?}: {before} <= {at} <= {after}"
        );
        assert_eq!(doc.server("ej", &l, "server_ejected_at"), 0, "{flavor:?}");
        assert_eq!(doc.server("ej", &l, "requests"), 1, "{flavor:?}");
        assert_eq!(doc.server("ej", &l, "server_connections"), 1, "{flavor:?}");
        assert_eq!(doc.server("ej", &d, "server_connections"), 0, "{flavor:?}");
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Ten keys `kkk-<n>` with at least one on each server (with the random
/// ports of a run, the upstream keys `kkk-0..9` may all land on one).
fn spread_keys(yaml: &str, rd: &[Redis; 2]) -> Vec<String> {
    let candidates: Vec<String> = (0..2000).map(|i| format!("kkk-{i}")).collect();
    let placed = route(yaml, "rd", &candidates);
    let first = |server: String| {
        candidates
            .iter()
            .zip(&placed)
            .find(|(_, s)| **s == server)
            .unwrap()
            .0
            .clone()
    };
    let mut keys = vec![first(rd[0].addr()), first(rd[1].addr())];
    for k in &candidates {
        if keys.len() == 10 {
            break;
        }
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys
}

/// Upstream `tests/test_redis/test_basic.py::test_nc_stats`: 10 SET and 10 GET
/// are 20 requests; one MGET of 10 keys over two servers adds 2.
#[test]
fn upstream_test_nc_stats() {
    let rd = [Redis::start(), Redis::start()];
    for flavor in both() {
        let port = free_port();
        let yaml = format!(
            "rd:\n  listen: 127.0.0.1:{port}\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{}:1\n",
            rd[0].port, rd[1].port
        );
        let (proxy, _) = start(flavor, &yaml, &[port], &["-i", "1"]);
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let keys = spread_keys(&yaml, &rd);
        for k in &keys {
            c.write_all(&cmd(&["SET", k, k])).unwrap();
            assert_eq!(
                read_until_suffix(&mut c, b"\r\n", Duration::from_secs(5)),
                b"+OK\r\n"
            );
        }
        for k in &keys {
            c.write_all(&cmd(&["GET", k])).unwrap();
            let want = format!("${}\r\n{k}\r\n", k.len());
            assert_eq!(
                read_until_suffix(&mut c, want.as_bytes(), Duration::from_secs(5)),
                want.as_bytes()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
        let before = fetch_when(proxy.stats_port, |d| d.pool_sum("rd", "requests") == 20);
        assert_eq!(before.pool_sum("rd", "requests"), 20, "{flavor:?}");
        assert_eq!(before.pool_sum("rd", "responses"), 20, "{flavor:?}");
        let mut mget = vec!["MGET"];
        mget.extend(keys.iter().map(String::as_str));
        c.write_all(&cmd(&mget)).unwrap();
        let last = format!("{}\r\n", keys[9]);
        let r = read_until_suffix(&mut c, last.as_bytes(), Duration::from_secs(5));
        assert!(r.starts_with(b"*10\r\n"), "{flavor:?}");
        std::thread::sleep(Duration::from_secs(1));
        let doc = fetch_when(proxy.stats_port, |d| d.pool_sum("rd", "requests") == 22);
        assert_eq!(doc.pool_sum("rd", "requests"), 22, "{flavor:?}");
        assert_eq!(doc.pool_sum("rd", "responses"), 22, "{flavor:?}");
        // One fragment to each server.
        for r in &rd {
            let requests = |d: &Doc| d.server("rd", &r.addr(), "requests");
            assert_eq!(requests(&doc) - requests(&before), 1, "{flavor:?}");
        }
        // nutcracker 0.5.0 never counts fragments (COMPATIBILITY.md).
        let fragments = match flavor {
            Flavor::Nutcracker => 0,
            Flavor::Rustcracker => 2,
        };
        assert_eq!(doc.pool("rd", "fragments"), fragments, "{flavor:?}");
        assert_eq!(doc.pool("rd", "client_connections"), 1, "{flavor:?}");
        assert_eq!(doc.pool_sum("rd", "in_queue"), 0, "{flavor:?}");
        assert_eq!(doc.pool_sum("rd", "out_queue"), 0, "{flavor:?}");
    }
}

// ---------------------------------------------------------------------------
// Serving: plain connections, HTTP, Prometheus.

/// Parses Prometheus text: sample name with labels -> value; checks that each
/// family has HELP and TYPE before its samples and appears once.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut typed: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_owned();
            let kind = parts.next().unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(!typed.contains(&name), "{name} declared twice");
            typed.push(name.clone());
            current = name;
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "{line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|base| *base == current))
            .unwrap_or(name);
        assert_eq!(family, current, "sample outside its family: {line}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{name}"
        );
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

#[test]
fn prometheus_and_http_serve_the_same_counters() {
    let mc = Memcached::start();
    let dead_guard = dead_port();
    let dead = dead_guard.port;
    let port = free_port();
    let yaml = format!(
        "web:\n  listen: 127.0.0.1:{port}\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{dead}:1 down\n",
        mc.port
    );
    let (proxy, _) = start(Flavor::Rustcracker, &yaml, &[port], &["-i", "100"]);
    let stats = proxy.stats_port;
    let keys = keys_for(&yaml, "web", &[&format!("127.0.0.1:{}", mc.port), "down"]);
    roundtrip(
        port,
        format!("set {} 0 0 1\r\nx\r\n", keys[0]).as_bytes(),
        b"\r\n",
    );
    roundtrip(
        port,
        format!("get {} {}\r\n", keys[0], keys[1]).as_bytes(),
        b"\r\n",
    );
    // A client that stays connected.
    let _idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    fetch_when(stats, |d| d.pool("web", "client_connections") == 1);
    // Earlier clients may still be closing: compare against counters at rest.
    let json = fetch_settled(stats);

    let (status, headers, body) = http_get(stats, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let content_type = headers.iter().find(|(k, _)| k == "content-type").unwrap();
    assert!(
        content_type.1.starts_with("text/plain; version=0.0.4"),
        "{content_type:?}"
    );
    let prom = parse_prometheus(&body);
    let get = |series: &str| -> f64 {
        *prom
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing in\n{body}"))
    };
    assert_eq!(
        get("nutcracker_connections_created_total") as i64,
        json.top("total_connections")
    );
    assert_eq!(
        get("nutcracker_connections_open") as i64,
        json.top("curr_connections")
    );
    let pool_fields = [
        ("client_eof", "nutcracker_pool_client_eof_total"),
        ("client_err", "nutcracker_pool_client_err_total"),
        ("client_connections", "nutcracker_pool_client_connections"),
        ("server_ejects", "nutcracker_pool_server_ejects_total"),
        ("forward_error", "nutcracker_pool_forward_error_total"),
        ("fragments", "nutcracker_pool_fragments_total"),
    ];
    for (field, metric) in pool_fields {
        assert_eq!(
            get(&format!("{metric}{{pool=\"web\"}}")) as i64,
            json.pool("web", field),
            "{field}"
        );
    }
    let server_fields = [
        ("server_eof", "nutcracker_server_eof_total"),
        ("server_err", "nutcracker_server_err_total"),
        ("server_timedout", "nutcracker_server_timedout_total"),
        ("server_connections", "nutcracker_server_connections"),
        ("requests", "nutcracker_server_requests_total"),
        ("request_bytes", "nutcracker_server_request_bytes_total"),
        ("responses", "nutcracker_server_responses_total"),
        ("response_bytes", "nutcracker_server_response_bytes_total"),
        ("in_queue", "nutcracker_server_in_queue"),
        ("in_queue_bytes", "nutcracker_server_in_queue_bytes"),
        ("out_queue", "nutcracker_server_out_queue"),
        ("out_queue_bytes", "nutcracker_server_out_queue_bytes"),
    ];
    let live = format!("127.0.0.1:{}", mc.port);
    for server in [live.as_str(), "down"] {
        for (field, metric) in server_fields {
            assert_eq!(
                get(&format!("{metric}{{pool=\"web\",server=\"{server}\"}}")) as i64,
                json.server("web", server, field),
                "{server} {field}"
            );
        }
        let at = get(&format!(
            "nutcracker_server_ejected_at_seconds{{pool=\"web\",server=\"{server}\"}}"
        ));
        let want = json.server("web", server, "server_ejected_at") as f64 / 1e6;
        assert!((at - want).abs() < 1e-3, "{server}: {at} vs {want}");
    }
    // One backend latency sample per response.
    let samples = get(&format!(
        "nutcracker_server_latency_seconds_count{{pool=\"web\",server=\"{live}\"}}"
    ));
    assert_eq!(samples as i64, json.server("web", &live, "responses"));
    assert!(samples > 0.0);
    // Request latency per command, and the proxy-added part per pool.
    let gets = get("nutcracker_request_latency_seconds_count{pool=\"web\",command=\"get\"}");
    assert!(gets >= 1.0, "{gets}");
    let all: f64 = prom
        .iter()
        .filter(|(k, _)| k.starts_with("nutcracker_request_latency_seconds_count{pool=\"web\""))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        get("nutcracker_proxy_latency_seconds_count{pool=\"web\"}"),
        all
    );
    // The traffic shows.
    assert_eq!(json.pool("web", "server_ejects"), 1);
    assert_eq!(json.pool("web", "fragments"), 2);
    assert!(json.server("web", "down", "server_ejected_at") > 0);
    assert!(json.server("web", &live, "requests") >= 2);
    // Process metrics.
    assert!(get("process_resident_memory_bytes") > 1e5);
    assert!(get("process_open_fds") >= 4.0);
    assert!(get("process_max_fds") > 0.0);
    assert!(get("process_cpu_seconds_total") >= 0.0);
    assert!(get("process_start_time_seconds") > 1e9);
    assert!(get("nutcracker_uptime_seconds") >= 0.0);
    assert!(body.contains("nutcracker_build_info{version=\""));

    // A query string is ignored.
    let (status, _, body) = http_get(stats, "/metrics?name[]=x");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("# TYPE nutcracker_server_requests_total counter\n"));

    // Any other path: the JSON document over HTTP.
    let (status, headers, body) = http_get(stats, "/");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/json"));
    let doc = Doc::parse(&body);
    assert_eq!(doc.skeleton(), json.skeleton());
}

#[test]
fn plain_connections_get_json() {
    let mc = Memcached::start();
    let port = free_port();
    let yaml = format!(
        "p:\n  listen: 127.0.0.1:{port}\n  servers:\n   - 127.0.0.1:{}:1\n",
        mc.port
    );
    let (proxy, doc) = start(Flavor::Rustcracker, &yaml, &[port], &["-i", "100"]);
    let stats = proxy.stats_port;
    assert_eq!(doc.top("curr_connections"), 1);
    // A client that sends something else (telnet "stats").
    let mut s = TcpStream::connect(("127.0.0.1", stats)).unwrap();
    s.write_all(b"stats\r\n").unwrap();
    let mut out = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(Doc::parse(&out).skeleton(), doc.skeleton());
    // A client that sends nothing and keeps its side open gets the document
    // after a short wait, and the connection closes.
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", stats)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(Doc::parse(&out).skeleton(), doc.skeleton());
    // Something that looks like HTTP but is not a GET.
    let mut s = TcpStream::connect(("127.0.0.1", stats)).unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("{\"service\":\"nutcracker\""), "{out}");
}

/// A stats port that is taken fails startup with nutcracker's message.
#[test]
fn busy_stats_port_fails_startup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stats = taken.local_addr().unwrap().port();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("n.yml");
    std::fs::write(
        &conf,
        format!("p:\n  listen: 127.0.0.1:{port}\n  servers:\n   - 127.0.0.1:11211:1\n"),
    )
    .unwrap();
    let out = Command::new(common::rustcracker_bin())
        .arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-s", &stats.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bind on m "), "{err}");
    assert!(
        err.contains(&format!(
            " to stats server addr '127.0.0.1:{stats}' failed: Address already in use"
        )),
        "{err}"
    );
}
