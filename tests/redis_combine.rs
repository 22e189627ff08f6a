//! Combined `MGET`s (`--combine-gets`): the redis `MGET`s queued for one
//! server in one round leave as one `MGET` of all their keys, and every client
//! still gets exactly the reply it would have got alone. Checked
//! differentially: the same pipelines through rustcracker combining,
//! rustcracker not combining, and nutcracker 0.5.0, over the same two redis.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{exchange, hits_and_misses, read_len, resp, show, Proxy, Redis};

struct Setup {
    backends: [Redis; 2],
    /// (name, listen port, proxy)
    proxies: Vec<(&'static str, u16, Proxy)>,
}

fn config(port: u16, backends: &[&Redis], timeout_ms: u32) -> String {
    let mut config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  redis: true\n  hash: fnv1a_64\n  \
         distribution: ketama\n  timeout: {timeout_ms}\n  servers:\n"
    );
    for b in backends {
        config.push_str(&format!("   - 127.0.0.1:{}:1\n", b.port));
    }
    config
}

/// A combining and a non-combining rustcracker (and nutcracker when it is
/// installed) over `backends`.
fn proxies(backends: &[&Redis], timeout_ms: u32) -> Vec<(&'static str, u16, Proxy)> {
    common::combining_proxies(|port| config(port, backends, timeout_ms))
}

fn setup() -> Setup {
    let backends = [Redis::start(), Redis::start()];
    let proxies = proxies(&[&backends[0], &backends[1]], 5000);
    // The keys every case reads: small values, a few big ones (replies over
    // many reads), a list (an MGET answers nil for it) and long keys.
    let mut fill = Vec::new();
    let mut replies = 0;
    for i in 0..40 {
        fill.extend(resp(&[
            b"SET",
            format!("k{i}").as_bytes(),
            format!("value-{i}").as_bytes(),
        ]));
        replies += 1;
    }
    for i in 0..3 {
        let value = vec![b'a' + i as u8; 100_000];
        fill.extend(resp(&[b"SET", format!("big{i}").as_bytes(), &value]));
        replies += 1;
    }
    for i in 0..20 {
        fill.extend(resp(&[
            b"SET",
            long_key(i).as_bytes(),
            i.to_string().as_bytes(),
        ]));
        replies += 1;
    }
    fill.extend(resp(&[b"DEL", b"alist"]));
    fill.extend(resp(&[b"RPUSH", b"alist", b"x"]));
    let stored = exchange(proxies[0].1, &fill);
    let expected = [b"+OK\r\n".repeat(replies), b":0\r\n:1\r\n".to_vec()].concat();
    assert_eq!(stored, expected, "{}", show(&stored));
    Setup { backends, proxies }
}

/// A key of 300 bytes.
fn long_key(i: usize) -> String {
    format!("{i:0>300}")
}

/// One `MGET` per list of keys, pipelined.
fn mgets<K: AsRef<[u8]>>(requests: impl IntoIterator<Item = Vec<K>>) -> Vec<u8> {
    requests
        .into_iter()
        .flat_map(|keys| {
            let mut args: Vec<&[u8]> = vec![b"MGET"];
            args.extend(keys.iter().map(AsRef::as_ref));
            resp(&args)
        })
        .collect()
}

/// Single-key `MGET`s of `keys`, pipelined.
fn single_mgets(keys: impl IntoIterator<Item = String>) -> Vec<u8> {
    mgets(keys.into_iter().map(|k| vec![k]))
}

fn strings(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Pipelines sent in one write: (name, request, nutcracker answers the same).
fn cases() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        (
            "single-key MGETs, hits and misses",
            single_mgets(strings(&["k1", "k2", "nokey", "k3", "k4"])),
            true,
        ),
        (
            "MGETs split over servers, then joined",
            mgets([
                strings(&["k1", "k2", "k3", "k4", "k5"]),
                strings(&["k6"]),
                strings(&["k7", "nokey", "k8"]),
                strings(&["k9"]),
            ]),
            true,
        ),
        (
            "the same key twice",
            mgets([
                strings(&["k1"]),
                strings(&["k1"]),
                strings(&["k1", "k1"]),
                strings(&["k2", "k1"]),
                strings(&["k1"]),
            ]),
            true,
        ),
        (
            "other commands break a line",
            [
                single_mgets(strings(&["k1"])),
                resp(&[b"GET", b"k2"]),
                single_mgets(strings(&["k3"])),
                resp(&[b"EXISTS", b"k1", b"k2", b"nokey"]),
                single_mgets(strings(&["k4", "k5"])),
                resp(&[b"SET", b"tmp", b"1"]),
                single_mgets(strings(&["tmp", "k6"])),
            ]
            .concat(),
            true,
        ),
        (
            "more than 100 keys",
            single_mgets(hits_and_misses(150)),
            true,
        ),
        (
            "an MGET of many keys goes alone",
            mgets([
                strings(&["k1"]),
                (0..20).map(|i| format!("k{i}")).collect(),
                strings(&["k2"]),
                strings(&["k3", "k4"]),
            ]),
            true,
        ),
        ("long keys", single_mgets((0..20).map(long_key)), true),
        (
            "big values among small ones",
            single_mgets(strings(&[
                "k1", "big0", "k2", "big1", "nokey", "big2", "k3",
            ])),
            true,
        ),
        (
            "a key of another type is nil",
            mgets([
                strings(&["alist"]),
                strings(&["k1", "alist", "k2"]),
                strings(&["k3"]),
            ]),
            true,
        ),
        (
            // nutcracker takes no inline commands.
            "lowercase and inline MGETs join too",
            [
                &b"mget k1\r\n"[..],
                &resp(&[b"mget", b"k2"]),
                b"MGET k3 k4\r\n",
                &resp(&[b"MGET", b"k5"]),
            ]
            .concat(),
            false,
        ),
        (
            "every key missing",
            single_mgets((0..30).map(|i| format!("miss{i}"))),
            true,
        ),
    ]
}

#[test]
fn combined_mgets_answer_each_client_as_if_alone() {
    let setup = setup();
    common::assert_same_replies(&setup.proxies, 1, cases(), |reply| {
        reply.starts_with(b"*") || reply.starts_with(b"$")
    });
}

/// A redis's `MGET` calls and its keyspace hits and misses.
fn stats(backend: &Redis) -> [u64; 3] {
    let reply = common::redis_direct(backend.port, b"INFO all\r\n", b"\r\n\r\n");
    let reply = String::from_utf8_lossy(&reply);
    let field = |line_prefix: &str, name: &str| -> u64 {
        let Some(line) = reply.lines().find(|l| l.starts_with(line_prefix)) else {
            return 0;
        };
        let rest = &line[line.find(name).map_or(line.len(), |i| i + name.len())..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap_or(0)
    };
    [
        field("cmdstat_mget:", "calls="),
        field("keyspace_hits:", "keyspace_hits:"),
        field("keyspace_misses:", "keyspace_misses:"),
    ]
}

#[test]
fn mgets_queued_together_reach_redis_as_one_command() {
    let setup = setup();
    // 30 single-key MGETs (25 hits, 5 misses) in one write. Not combined,
    // each server runs one MGET per key it holds; combined, one MGET for its
    // share. The keyspace hits and misses are the same.
    let request = single_mgets((0..30).map(|i| {
        if i < 25 {
            format!("k{i}")
        } else {
            format!("miss{i}")
        }
    }));
    let mut per_run = Vec::new();
    for (_, port, _) in setup.proxies[..2].iter().rev() {
        let before: Vec<[u64; 3]> = setup.backends.iter().map(stats).collect();
        let reply = exchange(*port, &request);
        assert_eq!(reply.windows(4).filter(|w| w == b"*1\r\n").count(), 30);
        let after: Vec<[u64; 3]> = setup.backends.iter().map(stats).collect();
        let delta: Vec<[u64; 3]> = after
            .iter()
            .zip(&before)
            .map(|(a, b)| [a[0] - b[0], a[1] - b[1], a[2] - b[2]])
            .collect();
        per_run.push(delta);
    }
    let (separate, combined) = (&per_run[0], &per_run[1]);
    let calls = |run: &[[u64; 3]]| run.iter().map(|s| s[0]).sum::<u64>();
    assert_eq!(calls(separate), 30);
    let servers_used = separate.iter().filter(|s| s[0] > 0).count() as u64;
    assert_eq!(
        calls(combined),
        servers_used,
        "one MGET per server: separate {separate:?}, combined {combined:?}"
    );
    let lookups = |run: &[[u64; 3]]| run.iter().map(|s| s[1..].to_vec()).collect::<Vec<_>>();
    assert_eq!(
        lookups(combined),
        lookups(separate),
        "keyspace hits, misses"
    );
    assert_eq!(lookups(separate).iter().map(|c| c[0]).sum::<u64>(), 25);
}

/// An error reply to a combined MGET answers each of its members, as it
/// would have answered each alone.
#[test]
fn an_error_reply_answers_every_member() {
    let backend = Redis::start_with(&["--requirepass", "secret"]);
    let proxies = proxies(&[&backend], 5000);
    let request = mgets([strings(&["a"]), strings(&["b", "c"]), strings(&["d"])]);
    let reference = exchange(proxies[1].1, &request);
    assert_eq!(
        String::from_utf8_lossy(&reference)
            .matches("-NOAUTH")
            .count(),
        3,
        "{}",
        show(&reference)
    );
    // Not nutcracker: it splits `MGET b c` even over one server, and a split
    // request whose fragment fails answers `-ERR Invalid argument`.
    for (proxy, port, _) in &proxies[..2] {
        let got = exchange(*port, &request);
        assert_eq!(got, reference, "{proxy}: {}", show(&got));
    }
}

/// A combined MGET whose server does not answer fails every request on it,
/// each with its own error reply, in order; the next ones are served.
#[test]
fn a_combined_mget_that_times_out_fails_each_request() {
    let backend = Redis::start();
    let proxies = proxies(&[&backend], 300);
    let port = proxies[0].1;
    assert_eq!(exchange(port, &resp(&[b"SET", b"a", b"1"])), b"+OK\r\n");
    backend.signal("STOP");
    let error = "-ERR Connection timed out\r\n";
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = [
        mgets([
            strings(&["a"]),
            strings(&["b"]),
            strings(&["c", "k1", "k2"]),
        ]),
        resp(&[b"DEL", b"x"]),
    ]
    .concat();
    s.write_all(&request).unwrap();
    let reply = read_len(&mut s, error.len() * 4);
    backend.signal("CONT");
    assert_eq!(String::from_utf8_lossy(&reply), error.repeat(4));
    let reply = exchange(port, &mgets([strings(&["a"]), strings(&["b"])]));
    assert_eq!(reply, b"*1\r\n$1\r\n1\r\n*1\r\n$-1\r\n");
}
