//! Random pipelines, differentially: seeded random mixes of the commands
//! both proxies support (keys on either server, multi-key requests, binary
//! values, `noreply`, big values) go in one write through nutcracker 0.5.0
//! and through rustcracker, over the same backends, flushed before each, and
//! the replies must be the same bytes. Then eight such pipelines at once
//! through rustcracker, each in a key namespace of its own, against each
//! alone through nutcracker: their requests share the server connections
//! (combined gets, split multi-key requests) and every client must still get
//! exactly its own replies. The tables of `memcache_wire.rs` and
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

/// splitmix64 (the same sequence for a seed everywhere, no dependency),
/// and the key namespace of the pipeline it makes.
struct Rng {
    state: u64,
    /// Put in front of every key (inside a hash tag's braces).
    ns: String,
}

impl Rng {
    fn new(seed: u64, ns: &str) -> Rng {
        Rng {
            state: seed,
            ns: ns.to_string(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
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
    let key = rng.pick(&choices).to_vec();
    match key.strip_prefix(b"{") {
        Some(tagged) => [b"{", rng.ns.as_bytes(), tagged].concat(),
        None => [rng.ns.as_bytes(), &key].concat(),
    }
}

/// A value with `\r`, `\n`, NUL and 0xff in it, from empty to 20 KB.
fn value(rng: &mut Rng) -> Vec<u8> {
    let len = *rng.pick(&[0, 1, 3, 10, 100, 5000, 20_000]);
    // Never whitespace alone: memcached's `incr` of such a value parses
    // on past its end, into whatever its memory holds there (a number
    // that differs from run to run).
    (0..len)
        .map(|i| {
            if i == 0 {
                b'v'
            } else {
                *rng.pick(b"abc\r\n\x00\xff")
            }
        })
        .collect()
}

fn keys(rng: &mut Rng, lo: u64, hi: u64) -> Vec<Vec<u8>> {
    (0..rng.range(lo, hi)).map(|_| key(rng)).collect()
}

/// A command line: `words` joined by spaces, `noreply` last when asked for.
fn line(words: &[&[u8]], noreply: bool) -> Vec<u8> {
    let mut line = words.join(&b' ');
    if noreply {
        line.extend_from_slice(b" noreply");
    }
    line.extend_from_slice(b"\r\n");
    line
}

fn memcache_request(rng: &mut Rng) -> Vec<u8> {
    let k = key(rng);
    let k = k.as_slice();
    let noreply = rng.chance(15);
    let n = |x: u64| x.to_string().into_bytes();
    let storage = |rng: &mut Rng, cmd: &[u8], flags: u64| {
        let v = value(rng);
        let mut r = line(&[cmd, k, &n(flags), b"0", &n(v.len() as u64)], noreply);
        r.extend_from_slice(&v);
        r.extend_from_slice(b"\r\n");
        r
    };
    let retrieval = |rng: &mut Rng, cmd: &[u8], lo: u64, hi: u64| {
        let keys = keys(rng, lo, hi);
        let mut words: Vec<&[u8]> = vec![cmd];
        words.extend(keys.iter().map(Vec::as_slice));
        line(&words, false)
    };
    match rng.range(0, 17) {
        0 => {
            let flags = rng.range(0, 9);
            storage(rng, b"set", flags)
        }
        1 => storage(rng, b"add", 1),
        2 => storage(rng, b"replace", 2),
        3 => storage(rng, b"append", 0),
        4 => storage(rng, b"prepend", 0),
        5 => retrieval(rng, b"get", 1, 12),
        6 => retrieval(rng, b"get", 40, 120),
        7 => retrieval(rng, b"gets", 1, 5),
        8 => line(&[b"get", k, k], false),
        9 => line(&[b"incr", k, &n(rng.range(0, 9))], noreply),
        10 => line(&[b"decr", k, &n(rng.range(0, 9))], noreply),
        11 => line(&[b"incr", k, b"18446744073709551615"], false),
        12 => line(&[b"delete", k], noreply),
        13 => line(&[b"touch", k, b"100"], noreply),
        14 => [
            line(&[b"set", k, b"0", b"0", b"1"], false),
            b"7\r\n".to_vec(),
        ]
        .concat(),
        // A cas unique no item has: EXISTS or NOT_FOUND, whatever the counter.
        15 => {
            let cas = line(&[b"cas", k, b"0", b"0", b"1", b"999999999999"], noreply);
            [cas, b"z\r\n".to_vec()].concat()
        }
        16 => {
            let long = format!("{}{}", rng.ns, "k".repeat(250 - rng.ns.len()));
            let long = long.as_bytes();
            let set = line(&[b"set", long, b"0", b"0", b"2"], false);
            [set, b"hi\r\n".to_vec(), line(&[b"get", long], false)].concat()
        }
        _ => {
            let incr = line(&[b"incr", k, b"1"], true);
            [incr, line(&[b"get", k], false)].concat()
        }
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
        28 | 29 => {
            let a = format!("{{{}t}}a", rng.ns);
            let b = format!("{{{}t}}b", rng.ns);
            let cmd: &[u8] = if rng.chance(50) {
                b"SINTER"
            } else {
                b"RPOPLPUSH"
            };
            resp(&[cmd, a.as_bytes(), b.as_bytes()])
        }
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
        _ => resp(&[b"GET", format!("{}a\r\nb", rng.ns).as_bytes()]),
    }
}

/// Sends `request` over a new connection (from a thread of its own: the
/// replies can outgrow the socket buffers before the request is all sent)
/// and reads until the reply ends with `until`.
fn exchange_until(port: u16, request: Vec<u8>, until: &[u8]) -> Vec<u8> {
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

/// nutcracker and rustcracker: (flavor, listen port, process).
type Proxies = [(Flavor, u16, Proxy); 2];

/// Both proxies over the same backends, `config(listen port)` each.
fn proxies(config: impl Fn(u16) -> String) -> Option<Proxies> {
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

/// A pipeline and the end of its reply: it stores a sentinel value first
/// and reads it last, so the reply is known to be whole without waiting.
struct Pipeline {
    request: Vec<u8>,
    sentinel: Vec<u8>,
}

fn memcache_pipeline(seed: u64, ns: &str) -> Pipeline {
    let mut rng = Rng::new(seed, ns);
    let token = format!("fin-{seed:05}");
    let len = token.len();
    let mut request = format!("set {ns}__end__ 0 0 {len}\r\n{token}\r\n").into_bytes();
    for _ in 0..rng.range(1, 25) {
        request.extend(memcache_request(&mut rng));
    }
    request.extend(format!("get {ns}__end__\r\n").into_bytes());
    let sentinel = format!("VALUE {ns}__end__ 0 {len}\r\n{token}\r\nEND\r\n").into_bytes();
    Pipeline { request, sentinel }
}

fn redis_pipeline(seed: u64, ns: &str) -> Pipeline {
    let mut rng = Rng::new(1 << 32 | seed, ns);
    let token = format!("fin-{seed:05}");
    let end = format!("{ns}__end__");
    let mut request = resp(&[b"SET", end.as_bytes(), token.as_bytes()]);
    for _ in 0..rng.range(1, 25) {
        request.extend(redis_request(&mut rng));
    }
    request.extend(resp(&[b"GET", end.as_bytes()]));
    let sentinel = format!("${}\r\n{token}\r\n", token.len()).into_bytes();
    Pipeline { request, sentinel }
}

/// The backends of one protocol, and how to empty them.
trait Backends {
    fn flush(&self);
}

impl Backends for [Memcached; 2] {
    fn flush(&self) {
        for b in self {
            assert_eq!(b.direct(b"flush_all\r\n", b"\r\n"), b"OK\r\n");
        }
    }
}

impl Backends for [Redis; 2] {
    fn flush(&self) {
        for b in self {
            let flushed = redis_direct(b.port, &resp(&[b"FLUSHALL"]), b"\r\n");
            assert_eq!(flushed, b"+OK\r\n");
        }
    }
}

/// Runs `pipeline` on a new connection to `port`; its whole reply.
fn run(flavor: Flavor, port: u16, pipeline: &Pipeline) -> Vec<u8> {
    let reply = exchange_until(port, pipeline.request.clone(), &pipeline.sentinel);
    assert!(
        reply.ends_with(&pipeline.sentinel),
        "{flavor:?}: no sentinel\nrequest {}\nreply {}",
        show(&pipeline.request),
        show(&reply)
    );
    reply
}

/// Each pipeline alone through nutcracker and through rustcracker, the
/// backends flushed before each: the same replies.
fn one_at_a_time(
    proxies: &Proxies,
    backends: &impl Backends,
    make: fn(u64, &str) -> Pipeline,
    same: fn(&[u8], &[u8]) -> bool,
) {
    for trial in 0..TRIALS {
        let pipeline = make(trial, "");
        let replies: Vec<Vec<u8>> = proxies
            .iter()
            .map(|(flavor, port, _)| {
                backends.flush();
                run(*flavor, *port, &pipeline)
            })
            .collect();
        assert!(
            same(&replies[0], &replies[1]),
            "trial {trial}\nrequest     {}\nnutcracker  {}\nrustcracker {}",
            show(&pipeline.request),
            show(&replies[0]),
            show(&replies[1])
        );
    }
}

/// Clients of one round, each in a key namespace of its own.
const CLIENTS: u64 = 8;
/// Rounds of [`CLIENTS`] pipelines.
const ROUNDS: u64 = 40;

/// Rounds of pipelines in disjoint key namespaces: each pipeline alone
/// through nutcracker, then all of a round at once through rustcracker
/// (its requests meet in the same server connections, combined gets and
/// split multi-key requests interleaved): every client gets what it got
/// alone.
fn all_at_once(
    proxies: &Proxies,
    backends: &impl Backends,
    make: fn(u64, &str) -> Pipeline,
    same: fn(&[u8], &[u8]) -> bool,
) {
    let [(nutcracker, nc_port, _), (rustcracker, rc_port, _)] = proxies;
    for round in 0..ROUNDS {
        let pipelines: Vec<Pipeline> = (0..CLIENTS)
            .map(|c| make(1000 + round * CLIENTS + c, &format!("c{c}:")))
            .collect();
        backends.flush();
        let alone: Vec<Vec<u8>> = pipelines
            .iter()
            .map(|p| run(*nutcracker, *nc_port, p))
            .collect();
        backends.flush();
        let together: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let clients: Vec<_> = pipelines
                .iter()
                .map(|p| scope.spawn(|| run(*rustcracker, *rc_port, p)))
                .collect();
            clients.into_iter().map(|c| c.join().unwrap()).collect()
        });
        for (c, pipeline) in pipelines.iter().enumerate() {
            assert!(
                same(&alone[c], &together[c]),
                "round {round}, client {c}\nrequest               {}\nnutcracker, alone     {}\nrustcracker, together {}",
                show(&pipeline.request),
                show(&alone[c]),
                show(&together[c])
            );
        }
    }
}

fn memcache_setup() -> Option<([Memcached; 2], Proxies)> {
    let backends = [Memcached::start(), Memcached::start()];
    let ports = [backends[0].port, backends[1].port];
    let proxies = proxies(|port| {
        format!(
            "p:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
             timeout: 5000\n  servers:\n{}",
            servers(&ports)
        )
    })?;
    Some((backends, proxies))
}

fn redis_setup() -> Option<([Redis; 2], Proxies)> {
    let backends = [Redis::start(), Redis::start()];
    let ports = [backends[0].port, backends[1].port];
    let proxies = proxies(|port| {
        format!(
            "p:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  hash_tag: \"{{}}\"\n  \
             distribution: ketama\n  redis: true\n  timeout: 5000\n  servers:\n{}",
            servers(&ports)
        )
    })?;
    Some((backends, proxies))
}

fn same_memcache(a: &[u8], b: &[u8]) -> bool {
    normalize_memcache(a) == normalize_memcache(b)
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a == b
}

#[test]
fn memcache_random_pipelines_match_nutcracker() {
    if let Some((backends, proxies)) = memcache_setup() {
        one_at_a_time(&proxies, &backends, memcache_pipeline, same_memcache);
    }
}

#[test]
fn redis_random_pipelines_match_nutcracker() {
    if let Some((backends, proxies)) = redis_setup() {
        one_at_a_time(&proxies, &backends, redis_pipeline, same_bytes);
    }
}

#[test]
fn memcache_concurrent_random_pipelines_each_get_their_own_replies() {
    if let Some((backends, proxies)) = memcache_setup() {
        all_at_once(&proxies, &backends, memcache_pipeline, same_memcache);
    }
}

#[test]
fn redis_concurrent_random_pipelines_each_get_their_own_replies() {
    if let Some((backends, proxies)) = redis_setup() {
        all_at_once(&proxies, &backends, redis_pipeline, same_bytes);
    }
}
