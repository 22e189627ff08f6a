//! Combined retrievals (`--combine-gets`): the `get`s and `gets` queued for one
//! memcached in one round leave as one multi-key line, and every client still
//! gets exactly the reply it would have got alone. Checked differentially: the
//! same pipelines through rustcracker combining, rustcracker not combining,
//! and nutcracker 0.5.0, over the same two memcached.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{exchange, hits_and_misses, read_len, show, Memcached, Proxy};

struct Setup {
    backends: [Memcached; 2],
    /// (name, listen port, proxy)
    proxies: Vec<(&'static str, u16, Proxy)>,
}

fn config(port: u16, backends: &[Memcached]) -> String {
    let mut config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  \
         timeout: 5000\n  servers:\n"
    );
    for b in backends {
        config.push_str(&format!("   - 127.0.0.1:{}:1\n", b.port));
    }
    config
}

fn setup() -> Setup {
    let backends = [Memcached::start(), Memcached::start()];
    let proxies = common::combining_proxies(|port| config(port, &backends));
    // The keys every case reads: small values with distinct flags, a few
    // big ones (replies over many reads), and long keys.
    let mut fill = Vec::new();
    for i in 0..40 {
        let value = format!("value-{i}");
        fill.extend_from_slice(format!("set k{i} {i} 0 {}\r\n{value}\r\n", value.len()).as_bytes());
    }
    for i in 0..3 {
        let value = vec![b'a' + i as u8; 100_000];
        fill.extend_from_slice(format!("set big{i} 0 0 {}\r\n", value.len()).as_bytes());
        fill.extend_from_slice(&value);
        fill.extend_from_slice(b"\r\n");
    }
    for i in 0..20 {
        fill.extend_from_slice(format!("set {} 0 0 1\r\n{}\r\n", long_key(i), i % 10).as_bytes());
    }
    let stored = exchange(proxies[0].1, &fill);
    assert_eq!(stored, b"STORED\r\n".repeat(63), "{}", show(&stored));
    Setup { backends, proxies }
}

/// A key of 250 bytes (the longest memcached takes).
fn long_key(i: usize) -> String {
    format!("{i:0>250}")
}

fn gets(keys: impl IntoIterator<Item = String>) -> Vec<u8> {
    keys.into_iter()
        .flat_map(|k| format!("get {k}\r\n").into_bytes())
        .collect()
}

/// Pipelines sent in one write: (name, request, nutcracker answers the same).
fn cases() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        (
            "single gets, hits and misses",
            gets(["k1", "k2", "nokey", "k3", "k4"].map(String::from)),
            true,
        ),
        (
            "get and gets do not mix",
            b"gets k1\r\ngets k2\r\nget k3\r\nget k5\r\ngets k4\r\ngets nokey\r\n".to_vec(),
            true,
        ),
        (
            "multi-gets split over servers, then joined",
            b"get k1 k2 k3 k4 k5\r\nget k6\r\nget k7 nokey k8\r\nget k9\r\n".to_vec(),
            true,
        ),
        (
            "the same key twice",
            b"get k1\r\nget k1\r\nget k1 k1\r\nget k2 k1\r\nget k1\r\n".to_vec(),
            true,
        ),
        (
            "other commands break a line",
            b"get k1\r\ndelete nokey\r\nget k2\r\nincr nokey 1\r\nget k3\r\n".to_vec(),
            true,
        ),
        ("more than 100 keys", gets(hits_and_misses(150)), true),
        ("lines over 2 KiB", gets((0..20).map(long_key)), true),
        (
            "big values among small ones",
            gets(["k1", "big0", "k2", "big1", "nokey", "big2", "k3"].map(String::from)),
            true,
        ),
        (
            "gat is sent as it came",
            b"get k1\r\ngat 0 k2\r\nget k3\r\n".to_vec(),
            false,
        ),
        (
            // Lines not as the proxy writes them are rewritten before they join (extra and
            // trailing spaces); the usual ones go as they came.
            "irregular spacing joins too",
            b"get  k1\r\nget k2 \r\nget   k4  k5\r\nget k6\r\ngets  k7\r\ngets k8\r\n".to_vec(),
            true,
        ),
        (
            // nutcracker answers nothing to a line ending in a bare `\n` (memcached does).
            "a bare newline joins too",
            b"get k1\r\nget k3\nget k2\r\n".to_vec(),
            false,
        ),
        (
            "every key missing",
            gets((0..30).map(|i| format!("miss{i}"))),
            true,
        ),
    ]
}

#[test]
fn combined_gets_answer_each_client_as_if_alone() {
    let setup = setup();
    common::assert_same_replies(&setup.proxies, 1, cases(), |reply| {
        reply.ends_with(b"END\r\n")
    });
}

/// memcached's counters this test reads, in this order.
const STATS: [&str; 4] = ["bytes_read", "cmd_get", "get_hits", "get_misses"];

fn stats(backend: &Memcached) -> [u64; 4] {
    let reply = backend.direct(b"stats\r\n", b"END\r\n");
    let reply = String::from_utf8_lossy(&reply);
    STATS.map(|name| {
        let prefix = format!("STAT {name} ");
        let line = reply.lines().find(|l| l.starts_with(&prefix)).expect(name);
        line[prefix.len()..].trim().parse().unwrap()
    })
}

#[test]
fn gets_queued_together_reach_memcached_as_one_line() {
    let setup = setup();
    // 30 distinct single-key gets (25 hits, 5 misses) in one write. Not
    // combined, each server reads `get k\r\n` per key; combined, one
    // `get k1 k2 …\r\n` line for its share, 5 bytes fewer per key after its
    // first ("get " and "\r\n" once, a space instead). (Each `stats` read
    // adds its own 7 bytes.) memcached counts the same gets, hits and misses.
    let keys = (0..30).map(|i| {
        if i < 25 {
            format!("k{i}")
        } else {
            format!("miss{i}")
        }
    });
    let request = gets(keys);
    let mut per_run = Vec::new();
    for (_, port, _) in setup.proxies[..2].iter().rev() {
        let before: Vec<[u64; 4]> = setup.backends.iter().map(stats).collect();
        let reply = exchange(*port, &request);
        assert_eq!(reply.windows(5).filter(|w| w == b"END\r\n").count(), 30);
        let after: Vec<[u64; 4]> = setup.backends.iter().map(stats).collect();
        let delta: Vec<[u64; 4]> = after
            .iter()
            .zip(&before)
            .map(|(a, b)| [a[0] - b[0] - 7, a[1] - b[1], a[2] - b[2], a[3] - b[3]])
            .collect();
        per_run.push(delta);
    }
    let (separate, combined) = (&per_run[0], &per_run[1]);
    let read = |run: &[[u64; 4]]| run.iter().map(|s| s[0]).sum::<u64>();
    assert_eq!(read(separate), request.len() as u64);
    let servers_used = separate.iter().filter(|s| s[0] > 0).count() as u64;
    assert!(servers_used > 0);
    assert_eq!(
        read(combined),
        request.len() as u64 - 5 * (30 - servers_used),
        "one line per server: separate {separate:?}, combined {combined:?}"
    );
    let counts = |run: &[[u64; 4]]| run.iter().map(|s| s[1..].to_vec()).collect::<Vec<_>>();
    assert_eq!(
        counts(combined),
        counts(separate),
        "cmd_get, get_hits, get_misses"
    );
    assert_eq!(counts(separate).iter().map(|c| c[2]).sum::<u64>(), 5);
}

/// A combined line whose server does not answer fails every request on it,
/// each with its own error reply, in order; the next ones are served.
#[test]
fn a_combined_line_that_times_out_fails_each_request() {
    let backend = Memcached::start();
    let (_proxy, port) = common::single_server_proxy(backend.port, 300);
    assert_eq!(exchange(port, b"set a 0 0 1\r\n1\r\n"), b"STORED\r\n");
    backend.signal("STOP");
    let error = "SERVER_ERROR Connection timed out\r\n";
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"get a\r\nget b\r\nget c k1 k2\r\ndelete x\r\n")
        .unwrap();
    let reply = read_len(&mut s, error.len() * 4);
    backend.signal("CONT");
    assert_eq!(String::from_utf8_lossy(&reply), error.repeat(4));
    let reply = exchange(port, b"get a\r\nget b\r\n");
    assert_eq!(reply, b"VALUE a 0 1\r\n1\r\nEND\r\nEND\r\n");
}
