//! Key placement against the real nutcracker 0.5.0: for every hash ×
//! {ketama, modula} × {equal weights, unequal weights, named servers} ×
//! {no hash_tag, "{}"}, keys written through nutcracker must sit on the
//! backend that `rustcracker --route` names.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Flavor, Memcached, Proxy};

const HASHES: [&str; 12] = [
    "one_at_a_time",
    "md5",
    "crc16",
    "crc32",
    "crc32a",
    "fnv1_64",
    "fnv1a_64",
    "fnv1_32",
    "fnv1a_32",
    "hsieh",
    "murmur",
    "jenkins",
];

const KEYS_PER_CONFIG: usize = 2000;

/// Bytes memcached accepts in keys: no controls, no space, no DEL.
fn key_byte(r: u64) -> u8 {
    // 94 printable ASCII + 128 high bytes.
    let i = (r % 222) as u8;
    if i < 94 {
        0x21 + i
    } else {
        0x80 + (i - 94)
    }
}

/// xorshift64*: deterministic keys without an extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize, exclude: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let b = key_byte(self.next());
            if !exclude.contains(&b) {
                out.push(b);
            }
        }
        out
    }
}

/// ≥ `n` distinct keys: short and long (1–250 bytes), ASCII and high
/// bytes, and hash-tagged shapes (`a{tag}b`, empty tags, unclosed tags).
fn make_keys(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut seen = std::collections::HashSet::new();
    let mut keys = Vec::with_capacity(n);
    // Every length once, so every tail length of every block size occurs.
    for len in 1..=250 {
        let k = rng.bytes(len, &[]);
        if seen.insert(k.clone()) {
            keys.push(k);
        }
    }
    while keys.len() < n {
        let k = match rng.below(10) {
            0..=4 => {
                let len = 1 + rng.below(40) as usize;
                rng.bytes(len, &[])
            }
            5 => {
                let len = 41 + rng.below(210) as usize;
                rng.bytes(len, &[])
            }
            6..=8 => {
                let pre = 1 + rng.below(8) as usize;
                let tag = rng.below(12) as usize;
                let suf = rng.below(8) as usize;
                let mut k = rng.bytes(pre, b"{}");
                k.push(b'{');
                k.extend(rng.bytes(tag, b"{}"));
                k.push(b'}');
                k.extend(rng.bytes(suf, &[]));
                k
            }
            _ => {
                // An opening brace without a closing one.
                let (pre, rest) = (1 + rng.below(10) as usize, rng.below(10) as usize);
                let mut k = rng.bytes(pre, b"{}");
                k.push(b'{');
                k.extend(rng.bytes(rest, b"}"));
                k
            }
        };
        if k.len() <= 250 && seen.insert(k.clone()) {
            keys.push(k);
        }
    }
    keys
}

/// Reads from `s` until `marker` was seen `count` times.
fn read_count(s: &mut TcpStream, marker: &[u8], count: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut seen = 0;
    let mut scanned = 0;
    while seen < count {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out: {seen} of {count} replies");
        s.set_read_timeout(Some(left)).expect("set timeout");
        let n = s.read(&mut buf).expect("read reply");
        assert!(n > 0, "connection closed after {seen} of {count} replies");
        out.extend_from_slice(&buf[..n]);
        // Count complete markers not counted yet.
        while let Some(pos) = find(&out[scanned..], marker) {
            seen += 1;
            scanned += pos + marker.len();
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `get` commands covering `keys`, each line under ~1.5 KB.
fn get_commands(keys: &[Vec<u8>]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut count = 0;
    let mut line_len = 0;
    for k in keys {
        if line_len > 0 && line_len + k.len() > 1500 {
            out.extend_from_slice(b"\r\n");
            line_len = 0;
        }
        if line_len == 0 {
            out.extend_from_slice(b"get");
            count += 1;
        }
        out.push(b' ');
        out.extend_from_slice(k);
        line_len += k.len() + 1;
    }
    if line_len > 0 {
        out.extend_from_slice(b"\r\n");
    }
    (out, count)
}

/// The keys of a `get` reply.
fn value_keys(reply: &[u8]) -> Vec<Vec<u8>> {
    reply
        .split(|&b| b == b'\n')
        .filter_map(|line| line.strip_prefix(b"VALUE "))
        .filter_map(|rest| rest.split(|&b| b == b' ').next())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Four memcached backends, started once per test.
struct Backends(Vec<Memcached>);

impl Backends {
    fn start() -> Backends {
        Backends((0..4).map(|_| Memcached::start()).collect())
    }

    fn flush(&self) {
        for m in &self.0 {
            let reply = m.direct(b"flush_all\r\n", b"\r\n");
            assert_eq!(reply, b"OK\r\n", "flush_all on {}", m.addr());
        }
    }

    /// Which backend (by port) holds each key.
    fn locate(&self, keys: &[Vec<u8>]) -> HashMap<Vec<u8>, u16> {
        let (cmds, count) = get_commands(keys);
        let mut at = HashMap::new();
        for m in &self.0 {
            let mut s = TcpStream::connect(("127.0.0.1", m.port)).expect("connect memcached");
            s.write_all(&cmds).expect("write gets");
            let reply = read_count(&mut s, b"END\r\n", count);
            for k in value_keys(&reply) {
                if let Some(other) = at.insert(k.clone(), m.port) {
                    panic!("key {k:02x?} on both :{other} and :{}", m.port);
                }
            }
        }
        at
    }
}

/// Servers of a scenario: (`servers:` entry, name nutcracker gives it, port).
fn scenario(kind: &str, ports: &[u16]) -> Vec<(String, String, u16)> {
    let (weights, names): ([u32; 4], [Option<&str>; 4]) = match kind {
        "equal" => ([1; 4], [None; 4]),
        "unequal" => ([5, 1, 2, 3], [None; 4]),
        "named" => (
            [1, 2, 1, 3],
            [Some("cache-03"), Some("b"), Some("alpha"), Some("z9")],
        ),
        other => panic!("unknown scenario {other}"),
    };
    ports
        .iter()
        .zip(weights)
        .zip(names)
        .map(|((&port, w), name)| {
            let addr = format!("127.0.0.1:{port}");
            match name {
                Some(n) => (format!("{addr}:{w} {n}"), n.to_string(), port),
                None => (format!("{addr}:{w}"), addr, port),
            }
        })
        .collect()
}

fn pool_yaml(
    pool: &str,
    listen: u16,
    hash: &str,
    dist: &str,
    tag: bool,
    servers: &[(String, String, u16)],
) -> String {
    let mut y =
        format!("{pool}:\n  listen: 127.0.0.1:{listen}\n  hash: {hash}\n  distribution: {dist}\n");
    if tag {
        y.push_str("  hash_tag: \"{}\"\n");
    }
    y.push_str("  servers:\n");
    for (entry, _, _) in servers {
        y.push_str(&format!("   - {entry}\n"));
    }
    y
}

/// Runs `rustcracker --route [--pool P] -c conf` with keys on stdin;
/// returns the (pool, key, server) lines.
fn route(conf: &Path, pool: Option<&str>, keys: &[Vec<u8>]) -> Vec<(String, Vec<u8>, String)> {
    let mut cmd = Command::new(common::rustcracker_bin());
    cmd.arg("--route").arg("-c").arg(conf);
    if let Some(p) = pool {
        cmd.arg("--pool").arg(p);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rustcracker --route");
    let mut input = Vec::new();
    for k in keys {
        input.extend_from_slice(k);
        input.push(b'\n');
    }
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child
        .wait_with_output()
        .expect("rustcracker --route finishes");
    writer.join().expect("writer thread").expect("write keys");
    assert!(
        out.status.success(),
        "rustcracker --route failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
            assert_eq!(
                f.len(),
                3,
                "bad --route line {:?}",
                String::from_utf8_lossy(line)
            );
            (
                String::from_utf8_lossy(f[0]).into_owned(),
                f[1].to_vec(),
                String::from_utf8_lossy(f[2]).into_owned(),
            )
        })
        .collect()
}

/// Writes `keys` through nutcracker (one write of `noreply` sets), then
/// reads them all back through it: the multi-get is queued behind the sets
/// on every server connection, so once it answers every set is done.
fn write_through(listen: u16, keys: &[Vec<u8>]) {
    let mut s = TcpStream::connect(("127.0.0.1", listen)).expect("connect nutcracker");
    let mut sets = Vec::with_capacity(keys.len() * 64);
    for k in keys {
        sets.extend_from_slice(b"set ");
        sets.extend_from_slice(k);
        sets.extend_from_slice(b" 0 0 1 noreply\r\nx\r\n");
    }
    let (gets, count) = get_commands(keys);
    sets.extend_from_slice(&gets);
    s.write_all(&sets).expect("write sets");
    let reply = read_count(&mut s, b"END\r\n", count);
    let found = value_keys(&reply).len();
    assert_eq!(found, keys.len(), "keys readable through nutcracker");
}

#[test]
fn route_matches_nutcracker_for_every_hash() {
    let started = Instant::now();
    let backends = Backends::start();
    let ports: Vec<u16> = backends.0.iter().map(|m| m.port).collect();
    let mut configs = 0u64;
    let mut failures = Vec::new();
    for hash in HASHES {
        for dist in ["ketama", "modula"] {
            for kind in ["equal", "unequal", "named"] {
                for tag in [false, true] {
                    configs += 1;
                    backends.flush();
                    let servers = scenario(kind, &ports);
                    let listen = common::free_port();
                    let pool = "placement";
                    let yaml = pool_yaml(pool, listen, hash, dist, tag, &servers);
                    let keys = make_keys(configs, KEYS_PER_CONFIG);
                    let proxy = Proxy::start(Flavor::Nutcracker, &yaml, listen, &[]);
                    write_through(listen, &keys);
                    drop(proxy);
                    let at = backends.locate(&keys);
                    let conf = tempfile::NamedTempFile::new().expect("temp config");
                    std::fs::write(conf.path(), &yaml).expect("write config");
                    let routes = route(conf.path(), Some(pool), &keys);
                    assert_eq!(
                        routes.len(),
                        keys.len(),
                        "{hash}/{dist}/{kind}/{tag}: one line per key"
                    );
                    let name_of: HashMap<u16, &str> =
                        servers.iter().map(|(_, n, p)| (*p, n.as_str())).collect();
                    let mut bad = 0;
                    for (key, (p, k, server)) in keys.iter().zip(&routes) {
                        assert_eq!(p, pool);
                        assert_eq!(k, key, "--route echoes keys in order");
                        let want = at
                            .get(key)
                            .and_then(|port| name_of.get(port))
                            .unwrap_or_else(|| panic!("key {key:02x?} on no backend"));
                        if server != want {
                            bad += 1;
                            if bad <= 3 {
                                failures.push(format!(
                                    "{hash}/{dist}/{kind}/tag={tag}: key {key:02x?}: --route {server}, nutcracker {want}"
                                ));
                            }
                        }
                    }
                    if bad > 3 {
                        failures.push(format!(
                            "{hash}/{dist}/{kind}/tag={tag}: {bad} keys misplaced in all"
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(configs, 144);
    assert!(
        failures.is_empty(),
        "placement differs from nutcracker:\n{}",
        failures.join("\n")
    );
    eprintln!(
        "{configs} configs × {KEYS_PER_CONFIG} keys matched nutcracker in {:?}",
        started.elapsed()
    );
}

/// `random`: every key routes to some configured server; without `--pool`
/// every pool is printed, in nutcracker's pool order.
#[test]
fn route_random_and_all_pools() {
    let ports = [21001u16, 21002, 21003];
    let servers = scenario("named", &[ports[0], ports[1], ports[2], 21004]);
    let mut yaml = pool_yaml("rand", 22001, "fnv1a_64", "random", false, &servers);
    yaml.push_str(&pool_yaml("k", 22002, "md5", "ketama", true, &servers));
    let conf = tempfile::NamedTempFile::new().expect("temp config");
    std::fs::write(conf.path(), &yaml).expect("write config");
    let keys = make_keys(7, 500);

    let routes = route(conf.path(), Some("rand"), &keys);
    assert_eq!(routes.len(), keys.len());
    let names: Vec<&str> = servers.iter().map(|(_, n, _)| n.as_str()).collect();
    let mut used = std::collections::HashSet::new();
    for ((pool, key, server), want) in routes.iter().zip(&keys) {
        assert_eq!(pool, "rand");
        assert_eq!(key, want);
        assert!(names.contains(&server.as_str()), "unknown server {server}");
        used.insert(server.clone());
    }
    assert_eq!(used.len(), names.len(), "random spreads over every server");

    // No --pool: "k" sorts before "rand" (shorter first).
    let all = route(conf.path(), None, &keys[..10]);
    let pools: Vec<&str> = all.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(pools, [vec!["k"; 10], vec!["rand"; 10]].concat());
}

#[test]
fn route_unknown_pool_fails() {
    let servers = scenario("equal", &[21001, 21002, 21003, 21004]);
    let yaml = pool_yaml("only", 22001, "fnv1a_64", "ketama", false, &servers);
    let conf = tempfile::NamedTempFile::new().expect("temp config");
    std::fs::write(conf.path(), &yaml).expect("write config");
    let out = Command::new(common::rustcracker_bin())
        .args(["--route", "--pool", "nope", "-c"])
        .arg(conf.path())
        .arg("k1")
        .output()
        .expect("run rustcracker");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no pool named 'nope'"), "stderr: {err}");
}
