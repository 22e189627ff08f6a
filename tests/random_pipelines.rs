//! Random pipelines, differentially: seeded random mixes of the commands
//! both proxies support (keys on either server, multi-key requests, binary
//! values, `noreply`, big values) go in one write through nutcracker 0.5.0
//! and through rustcracker, over the same backends, flushed before each, and
//! the replies must be the same bytes. The tables of `memcache_wire.rs` and
//! `redis_wire.rs` fix each reply; this finds what the tables do not list:
//! interleavings. Known, deliberate differences (COMPATIBILITY.md) are left
//! out of the mix: unknown commands, malformed lines, multi-key `EXISTS`.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{
    nutcracker_bin, read_until_suffix, redis_direct, resp, show, Flavor, Memcached, Proxy, Redis,
};

/// Pipelines tried per protocol.
const TRIALS: u64 = 300;

/// splitmix64: the same sequence for a seed everywhere, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A key: short and long ones, bytes ≥ 0x80, hash tags; a dozen or so
/// distinct ones so that requests meet each other's keys.
fn key(rng: &mut Rng) -> Vec<u8> {
    let long = "x".repeat(rng.range(1, 40) as usize);
    let choices: [&[u8]; 12] = [
        b"a",
        b"b",
        b"c",
        b"k1",
        b"k2",
        b"key:{x}",
        b"foo",
        b"bar",
        b"\xe9t\xe9",
        long.as_bytes(),
        b"{t}a",
        b"{t}b",
    ];
    rng.pick(&choices).to_vec()
}

/// A value with `\r`, `\n`, NUL and 0xff in it, from empty to 20 KB.
fn value(rng: &mut Rng) -> Vec<u8> {
    let len = *rng.pick(&[0, 1, 3, 10, 100, 5000, 20_000]);
    (0..len).map(|_| *rng.pick(b"abc\r\n\x00\xff")).collect()
}

fn keys(rng: &mut Rng, lo: u64, hi: u64) -> Vec<Vec<u8>> {
    (0..rng.range(lo, hi)).map(|_| key(rng)).collect()
}

fn memcache_request(rng: &mut Rng) -> Vec<u8> {
    let k = key(rng);
    let k = String::from_utf8_lossy(&k).into_owned();
    let noreply = if rng.chance(15) { " noreply" } else { "" };
    let storage = |rng: &mut Rng, cmd: &str, flags: u64| {
        let v = value(rng);
        let mut r = format!("{cmd} {k} {flags} 0 {}{noreply}\r\n", v.len()).into_bytes();
        r.extend_from_slice(&v);
        r.extend_from_slice(b"\r\n");
        r
    };
    let get = |cmd: &str, keys: Vec<Vec<u8>>| {
        let mut r = cmd.as_bytes().to_vec();
        for k in keys {
            r.push(b' ');
            r.extend_from_slice(&k);
        }
        r.extend_from_slice(b"\r\n");
        r
    };
    match rng.range(0, 17) {
        0 => {
            let flags = rng.range(0, 9);
            storage(rng, "set", flags)
        }
        1 => storage(rng, "add", 1),
        2 => storage(rng, "replace", 2),
        3 => storage(rng, "append", 0),
        4 => storage(rng, "prepend", 0),
        5 => {
            let keys = keys(rng, 1, 12);
            get("get", keys)
        }
        6 => {
            let keys = keys(rng, 40, 120);
            get("get", keys)
        }
        7 => {
            let keys = keys(rng, 1, 5);
            get("gets", keys)
        }
        8 => format!("get {k} {k}\r\n").into_bytes(),
        9 => format!("incr {k} {}{noreply}\r\n", rng.range(0, 9)).into_bytes(),
        10 => format!("decr {k} {}{noreply}\r\n", rng.range(0, 9)).into_bytes(),
        11 => format!("incr {k} 18446744073709551615\r\n").into_bytes(),
        12 => format!("delete {k}{noreply}\r\n").into_bytes(),
        13 => format!("touch {k} 100{noreply}\r\n").into_bytes(),
        14 => format!("set {k} 0 0 1\r\n7\r\n").into_bytes(),
        // A cas unique no item has: EXISTS or NOT_FOUND, whatever the counter.
        15 => format!("cas {k} 0 0 1 999999999999{noreply}\r\nz\r\n").into_bytes(),
        16 => {
            let long = "k".repeat(250);
            format!("set {long} 0 0 2\r\nhi\r\nget {long}\r\n").into_bytes()
        }
        _ => format!("incr {k} 1 noreply\r\nget {k}\r\n").into_bytes(),
    }
}

fn redis_request(rng: &mut Rng) -> Vec<u8> {
    let k = key(rng);
    let k2 = key(rng);
    let (k, k2) = (k.as_slice(), k2.as_slice());
    let n = |x: u64| x.to_string().into_bytes();
    let v = value(rng);
    let v = v.as_slice();
    match rng.range(0, 41) {
        0 => resp(&[b"SET", k, v]),
        1 => resp(&[b"GET", k]),
        2 | 3 => {
            let most = if rng.chance(20) { 120 } else { 12 };
            let keys = keys(rng, 1, most);
            let mut args: Vec<&[u8]> = vec![b"MGET"];
            args.extend(keys.iter().map(Vec::as_slice));
            resp(&args)
        }
        4 => {
            let keys = keys(rng, 1, 40);
            let mut args: Vec<&[u8]> = vec![b"DEL"];
            args.extend(keys.iter().map(Vec::as_slice));
            resp(&args)
        }
        5 => {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..rng.range(1, 4))
                .map(|_| (key(rng), value(rng)))
                .collect();
            let mut args: Vec<&[u8]> = vec![b"MSET"];
            for (k, v) in &pairs {
                args.push(k);
                args.push(v);
            }
            resp(&args)
        }
        6 => resp(&[b"INCR", k]),
        7 => resp(&[b"INCRBY", k, &n(rng.range(0, 9))]),
        8 => resp(&[b"DECR", k]),
        9 => resp(&[b"APPEND", k, v]),
        10 => resp(&[b"STRLEN", k]),
        11 => resp(&[b"EXISTS", k]),
        12 => resp(&[b"HSET", k, k2, v]),
        13 => resp(&[b"HGET", k, k2]),
        14 => resp(&[b"HGETALL", k]),
        15 => resp(&[b"HMGET", k, k2, k2]),
        16 => resp(&[b"HINCRBY", k, k2, b"2"]),
        17 => resp(&[b"LPUSH", k, v, v]),
        18 => resp(&[b"LRANGE", k, b"0", b"-1"]),
        19 => resp(&[b"LINDEX", k, &n(rng.range(0, 3))]),
        20 => resp(&[b"LLEN", k]),
        21 => resp(&[b"ZADD", k, &n(rng.range(0, 9)), k2]),
        22 => resp(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]),
        23 => resp(&[b"ZINCRBY", k, b"1.5", k2]),
        24 => resp(&[b"ZSCORE", k, k2]),
        25 => resp(&[b"ZCOUNT", k, b"-inf", b"+inf"]),
        26 => resp(&[b"SADD", k, k2]),
        27 => resp(&[b"SCARD", k]),
        28 => resp(&[b"SINTER", b"{t}a", b"{t}b"]),
        29 => resp(&[b"RPOPLPUSH", b"{t}a", b"{t}b"]),
        30 => resp(&[b"EXPIRE", k, b"100"]),
        31 => resp(&[b"TYPE", k]),
        32 => resp(&[b"GETRANGE", k, b"0", &n(rng.range(0, 10))]),
        33 => resp(&[b"SETRANGE", k, &n(rng.range(0, 5)), v]),
        34 => resp(&[b"SETNX", k, v]),
        35 => resp(&[b"GETSET", k, v]),
        36 => resp(&[b"PFADD", k, k2]),
        37 => resp(&[b"BITCOUNT", k]),
        38 => resp(&[b"INCRBYFLOAT", k, b"0.5"]),
        39 => resp(&[b"EVAL", b"return {KEYS[1], ARGV[1], 3}", b"1", k, v]),
        40 => resp(&[b"PING"]),
        _ => resp(&[b"GET", b"a\r\nb"]),
    }
}

/// Sends `request` over a new connection (from a thread of its own: the
/// replies can outgrow the socket buffers before the request is all sent)
/// and reads until the reply ends with `until`.
fn exchange(port: u16, request: Vec<u8>, until: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut writer = s.try_clone().unwrap();
    let sent = std::thread::spawn(move || writer.write_all(&request));
    let reply = read_until_suffix(&mut s, until, Duration::from_secs(20));
    sent.join().unwrap().unwrap();
    reply
}

/// Memcache replies with each retrieval's `VALUE` blocks sorted: nutcracker
/// may return them out of request order when keys miss (COMPATIBILITY.md),
/// and `gets`' cas uniques differ from one run to the next.
fn normalize_memcache(reply: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut at = 0;
    while at < reply.len() {
        let Some(end) = reply[at..].windows(2).position(|w| w == b"\r\n") else {
            out.push(reply[at..].to_vec());
            break;
        };
        let line = &reply[at..at + end + 2];
        if line.starts_with(b"VALUE ") {
            let text = String::from_utf8_lossy(line);
            let fields: Vec<&str> = text.split(' ').collect();
            let len: usize = fields[3].trim_end().parse().unwrap();
            let header = fields[..4].join(" ");
            let header = header.trim_end();
            let data = &reply[at + line.len()..at + line.len() + len + 2];
            blocks.push([format!("{header}\r\n").as_bytes(), data].concat());
            at += line.len() + len + 2;
            continue;
        }
        blocks.sort();
        out.append(&mut blocks);
        out.push(line.to_vec());
        at += line.len();
    }
    out.append(&mut blocks);
    out
}

/// Both proxies over the same backends, `config(listen port)` each.
fn proxies(config: impl Fn(u16) -> String) -> Option<[(Flavor, u16, Proxy); 2]> {
    if !nutcracker_bin().exists() {
        eprintln!("nutcracker is not installed: skipped");
        return None;
    }
    let start = |flavor| {
        let port = common::free_port();
        (flavor, port, Proxy::start(flavor, &config(port), port, &[]))
    };
    Some([start(Flavor::Nutcracker), start(Flavor::Rustcracker)])
}

fn servers(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("   - 127.0.0.1:{p}:1\n"))
        .collect()
}

#[test]
fn memcache_random_pipelines_match_nutcracker() {
    let backends = [Memcached::start(), Memcached::start()];
    let ports = [backends[0].port, backends[1].port];
    let Some(proxies) = proxies(|port| {
        format!(
            "p:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
             timeout: 5000\n  servers:\n{}",
            servers(&ports)
        )
    }) else {
        return;
    };
    for trial in 0..TRIALS {
        // Each pipeline starts by storing a sentinel and ends reading it.
        let sentinel = format!("VALUE __end__ 0 9\r\nfin-{trial:05}\r\nEND\r\n");
        let mut rng = Rng(trial);
        let mut request = format!("set __end__ 0 0 9\r\nfin-{trial:05}\r\n").into_bytes();
        let count = rng.range(1, 25);
        for _ in 0..count {
            request.extend(memcache_request(&mut rng));
        }
        request.extend_from_slice(b"get __end__\r\n");
        let mut replies = Vec::new();
        for (flavor, port, _) in &proxies {
            for b in &backends {
                assert_eq!(b.direct(b"flush_all\r\n", b"\r\n"), b"OK\r\n");
            }
            let reply = exchange(*port, request.clone(), sentinel.as_bytes());
            assert!(
                reply.ends_with(sentinel.as_bytes()),
                "trial {trial}, {flavor:?}: no sentinel\nrequest {}\nreply {}",
                show(&request),
                show(&reply)
            );
            replies.push(reply);
        }
        assert!(
            normalize_memcache(&replies[0]) == normalize_memcache(&replies[1]),
            "trial {trial}\nrequest     {}\nnutcracker  {}\nrustcracker {}",
            show(&request),
            show(&replies[0]),
            show(&replies[1])
        );
    }
}

#[test]
fn redis_random_pipelines_match_nutcracker() {
    let backends = [Redis::start(), Redis::start()];
    let ports = [backends[0].port, backends[1].port];
    let Some(proxies) = proxies(|port| {
        format!(
            "p:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  hash_tag: \"{{}}\"\n  \
             distribution: ketama\n  redis: true\n  timeout: 5000\n  servers:\n{}",
            servers(&ports)
        )
    }) else {
        return;
    };
    for trial in 0..TRIALS {
        let token = format!("fin-{trial:05}");
        let sentinel = format!("$9\r\n{token}\r\n");
        let mut rng = Rng(1 << 32 | trial);
        let mut request = resp(&[b"SET", b"__end__", token.as_bytes()]);
        for _ in 0..rng.range(1, 25) {
            request.extend(redis_request(&mut rng));
        }
        request.extend(resp(&[b"GET", b"__end__"]));
        let mut replies = Vec::new();
        for (flavor, port, _) in &proxies {
            for b in &backends {
                let flushed = redis_direct(b.port, &resp(&[b"FLUSHALL"]), b"\r\n");
                assert_eq!(flushed, b"+OK\r\n");
            }
            let reply = exchange(*port, request.clone(), sentinel.as_bytes());
            assert!(
                reply.ends_with(sentinel.as_bytes()),
                "trial {trial}, {flavor:?}: no sentinel\nrequest {}\nreply {}",
                show(&request),
                show(&reply)
            );
            replies.push(reply);
        }
        assert!(
            replies[0] == replies[1],
            "trial {trial}\nrequest     {}\nnutcracker  {}\nrustcracker {}",
            show(&request),
            show(&replies[0]),
            show(&replies[1])
        );
    }
}
