//! The redis data plane under many clients and real client software: reply
//! ownership under concurrency, the `redis` crate, redis-cli,
//! redis-benchmark, very large requests, clients that leave mid-flight, and
//! backends that answer `-OOM`.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{read_len, resp, Flavor, Proxy, Redis};

struct Setup {
    backends: Vec<Redis>,
    proxy: Proxy,
    port: u16,
}

fn setup_with(backends: Vec<Redis>, args: &[&str]) -> Setup {
    let port = common::free_port();
    let mut config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  redis: true\n  timeout: 10000\n  hash_tag: \"{{}}\"\n  servers:\n"
    );
    for b in &backends {
        config.push_str(&format!("   - 127.0.0.1:{}:1\n", b.port));
    }
    let proxy = Proxy::start(Flavor::Rustcracker, &config, port, args);
    Setup {
        backends,
        proxy,
        port,
    }
}

/// `per_server` keys on each of the given servers (`host:port` names), by
/// asking the proxy binary where keys go (`--route`).
fn keys_on(config: &std::path::Path, servers: &[String], per_server: usize) -> Vec<String> {
    // Varying first bytes: fnv1a_64 (the default hash) maps keys that differ only in their
    // last bytes to nearby points of the ketama ring.
    let candidates: Vec<String> = (0..400).map(|i| format!("{i}:key")).collect();
    let out = Command::new(common::rustcracker_bin())
        .arg("-c")
        .arg(config)
        .arg("--route")
        .args(&candidates)
        .output()
        .unwrap();
    let routes = String::from_utf8(out.stdout).unwrap();
    let mut keys = Vec::new();
    for server in servers {
        let mine = routes
            .lines()
            .filter_map(|l| {
                l.split('\t')
                    .collect::<Vec<_>>()
                    .get(1..3)
                    .map(<[_]>::to_vec)
            })
            .filter(|kv| kv[1] == server)
            .map(|kv| kv[0].to_string())
            .take(per_server)
            .collect::<Vec<_>>();
        assert_eq!(mine.len(), per_server, "keys on {server}: {routes}");
        keys.extend(mine);
    }
    keys
}

fn setup(servers: usize, args: &[&str]) -> Setup {
    setup_with((0..servers).map(|_| Redis::start()).collect(), args)
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

/// 50 clients pipeline 200 requests each (10,000 in all): SETs and MGETs
/// split across 4 servers. Values encode client and sequence number, so
/// every client checks each reply is its own and in its order.
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
                        request.extend_from_slice(&resp(&[
                            b"SET",
                            key.as_bytes(),
                            value.as_bytes(),
                        ]));
                        expected.extend_from_slice(b"+OK\r\n");
                        let missing = format!("c{client}missing{seq}");
                        let other = format!("c{client}k{}", (seq + 1) % 7);
                        request.extend_from_slice(&resp(&[
                            b"MGET",
                            key.as_bytes(),
                            missing.as_bytes(),
                            other.as_bytes(),
                        ]));
                        expected.extend_from_slice(b"*3\r\n");
                        expected.extend_from_slice(&bulk(value.as_bytes()));
                        expected.extend_from_slice(b"$-1\r\n");
                        if seq >= 6 {
                            let v = format!("client{client}seq{}", seq - 6);
                            expected.extend_from_slice(&bulk(v.as_bytes()));
                        } else {
                            expected.extend_from_slice(b"$-1\r\n");
                        }
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

/// A real client library (the `redis` crate): single commands, a pipeline,
/// MSET and MGET of 1,000 keys, DEL of 1,000 keys.
#[test]
fn redis_crate_pipelines_and_thousand_key_mset_mget() {
    let setup = setup(4, &[]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", setup.port)).unwrap();
    let mut con = client.get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg("one")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let one: String = redis::cmd("GET").arg("one").query(&mut con).unwrap();
    assert_eq!(one, "1");
    let n: i64 = redis::cmd("INCRBY")
        .arg("n")
        .arg(5)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 5);

    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.cmd("SET").arg(format!("p{i}")).arg(i).ignore();
    }
    pipe.cmd("GET")
        .arg("p7")
        .cmd("PING")
        .cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v");
    pipe.cmd("HGETALL").arg("h");
    let (p7, pong, added, h): (i64, String, i64, Vec<String>) = pipe.query(&mut con).unwrap();
    assert_eq!((p7, pong.as_str(), added), (7, "PONG", 1));
    assert_eq!(h, ["f", "v"]);

    let keys: Vec<String> = (0..1000).map(|i| format!("lib-key-{i}")).collect();
    let mut mset = redis::cmd("MSET");
    for (i, k) in keys.iter().enumerate() {
        mset.arg(k).arg(format!("value-{i}"));
    }
    let _: () = mset.query(&mut con).unwrap();
    let mut mget = redis::cmd("MGET");
    for k in &keys {
        mget.arg(k);
    }
    mget.arg("lib-key-missing");
    let got: Vec<Option<String>> = mget.query(&mut con).unwrap();
    assert_eq!(got.len(), 1001);
    for (i, v) in got[..1000].iter().enumerate() {
        assert_eq!(v.as_deref(), Some(format!("value-{i}").as_str()));
    }
    assert_eq!(got[1000], None);
    let mut del = redis::cmd("DEL");
    for k in &keys[..500] {
        del.arg(k);
    }
    let deleted: i64 = del.query(&mut con).unwrap();
    assert_eq!(deleted, 500);
    let exists: i64 = redis::cmd("EXISTS").arg(&keys[..]).query(&mut con).unwrap();
    assert_eq!(exists, 500);
    // The same through a pipeline of split commands.
    let (a, b): (Vec<Option<String>>, i64) = redis::pipe()
        .cmd("MGET")
        .arg(&keys[499])
        .arg(&keys[500])
        .cmd("UNLINK")
        .arg(&keys[500..])
        .query(&mut con)
        .unwrap();
    assert_eq!(a, [None, Some("value-500".to_string())]);
    assert_eq!(b, 500);
}

/// redis-cli through the proxy, arguments and a piped script.
#[test]
fn redis_cli_through_the_proxy() {
    let setup = setup(2, &[]);
    let port = setup.port.to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .expect("redis-cli is installed");
        assert!(out.status.success(), "redis-cli {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["PING"]), "PONG\n");
    assert_eq!(cli(&["SET", "cli", "hello world"]), "OK\n");
    assert_eq!(cli(&["GET", "cli"]), "hello world\n");
    assert_eq!(cli(&["MSET", "a", "1", "b", "2", "c", "3"]), "OK\n");
    assert_eq!(cli(&["MGET", "a", "b", "nokey", "c"]), "1\n2\n\n3\n");
    assert_eq!(cli(&["DEL", "a", "b", "nokey"]), "2\n");
    assert_eq!(cli(&["--no-raw", "MGET", "a", "c"]), "1) (nil)\n2) \"3\"\n");
    assert_eq!(
        cli(&["SELECT", "1"]),
        // redis-cli's own layout of an error reply (as with redis itself).
        "ERR unknown command 'SELECT', with args beginning with: '1' \n\n"
    );
    // Many commands through one connection (redis-cli reading stdin).
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut script = String::new();
    for i in 0..100 {
        script.push_str(&format!("SET s{i} v{i}\nGET s{i}\n"));
    }
    script.push_str("MGET s0 s50 s99\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut want = String::new();
    for i in 0..100 {
        want.push_str(&format!("OK\nv{i}\n"));
    }
    want.push_str("v0\nv50\nv99\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    assert_eq!(cli(&["GET", "s99"]), "v99\n");
    // Mass insertion: `redis-cli --pipe` ends its stream with `ECHO <random>` and waits for the
    // echo, which the proxy answers itself (nutcracker closed the connection on ECHO).
    let mut raw = Vec::new();
    for i in 0..1000 {
        raw.extend_from_slice(&resp(&[b"SET", format!("pipe{i}").as_bytes(), b"x"]));
    }
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port, "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&raw).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("errors: 0, replies: 1000"), "{text}");
    assert_eq!(cli(&["GET", "pipe999"]), "x\n");
}

/// redis-benchmark through the proxy: every test runs, no error lines (a
/// smoke test, not a timing).
#[test]
fn redis_benchmark_through_the_proxy() {
    let setup = setup(4, &[]);
    let port = setup.port.to_string();
    let bench = |args: &[&str]| {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &port, "-n", "2000", "-q"])
            .args(args)
            .output()
            .expect("redis-benchmark is installed");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stdout}\n{stderr}");
        for line in stdout.lines().chain(stderr.lines()) {
            let lower = line.to_ascii_lowercase();
            // A warning that CONFIG GET is unavailable is not an error reply.
            if lower.contains("could not fetch server config") {
                continue;
            }
            assert!(
                !lower.contains("err") && !lower.contains("closed"),
                "redis-benchmark: {line}\n{stdout}\n{stderr}"
            );
        }
        // -q prints one "<TEST>: <n> requests per second" line per test
        // (after \r-separated progress updates).
        stdout
            .split(['\r', '\n'])
            .filter(|l| l.contains("requests per second"))
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
    };
    // redis-benchmark 7.0 has no built-in mget test (it skips the name); the
    // second run below benchmarks MGET as a custom command.
    let results = bench(&["-t", "set,get,incr,lpush,rpop,sadd,hset,mset,mget"]);
    for test in [
        "SET:",
        "GET:",
        "INCR:",
        "LPUSH:",
        "RPOP:",
        "SADD:",
        "HSET:",
        "MSET (10 keys):",
    ] {
        assert!(
            results.iter().any(|l| l.starts_with(test)),
            "no {test} line in {results:?}"
        );
    }
    let mut mget = vec!["-r", "1000", "MGET"];
    mget.extend(["key:__rand_int__"; 10]);
    let results = bench(&mget);
    assert!(
        results.iter().any(|l| l.starts_with("MGET")),
        "no MGET line in {results:?}"
    );
}

/// An MGET of 10,000 keys over 4 servers: every value, in request order.
#[test]
fn mget_of_ten_thousand_keys_over_four_servers() {
    let setup = setup(4, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    let keys: Vec<String> = (0..10_000).map(|i| format!("key:{i}")).collect();
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    let values: Vec<String> = (0..10_000).map(|i| format!("value:{i}")).collect();
    for (k, v) in keys.iter().zip(&values) {
        if k.ends_with('7') {
            continue; // a miss every ten keys
        }
        mset.push(k.as_bytes());
        mset.push(v.as_bytes());
    }
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(|k| k.as_bytes()));
    let mut request = resp(&mset);
    request.extend_from_slice(&resp(&mget));
    let mut want = b"+OK\r\n*10000\r\n".to_vec();
    for (k, v) in keys.iter().zip(&values) {
        if k.ends_with('7') {
            want.extend_from_slice(b"$-1\r\n");
        } else {
            want.extend_from_slice(&bulk(v.as_bytes()));
        }
    }
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&request).unwrap());
    let got = read_len(&mut s, want.len());
    writer.join().unwrap();
    assert!(got == want, "MGET of 10,000 keys differs");
    // Every server got its share.
    for b in &setup.backends {
        let n = common::redis_direct(b.port, &resp(&[b"DBSIZE"]), b"\r\n");
        let n: usize = std::str::from_utf8(&n[1..n.len() - 2])
            .unwrap()
            .parse()
            .unwrap();
        assert!(n > 1000, "a backend holds {n} keys");
    }
}

/// A 64 MiB value round-trips through SET and GET.
#[test]
fn sixty_four_mib_set_get() {
    let setup = setup(2, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    let value: Vec<u8> = (0..64 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let mut request = resp(&[b"SET", b"huge", &value]);
    request.extend_from_slice(&resp(&[b"GET", b"huge"]));
    request.extend_from_slice(&resp(&[b"STRLEN", b"huge"]));
    let mut want = b"+OK\r\n".to_vec();
    want.extend_from_slice(&bulk(&value));
    want.extend_from_slice(format!(":{}\r\n", 64 << 20).as_bytes());
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&request).unwrap());
    let got = read_len(&mut s, want.len());
    writer.join().unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "64 MiB round trip differs");
}

/// A client that leaves with 1,000 requests in flight does not desynchronise
/// the server connection other clients share.
#[test]
fn client_leaving_mid_flight_leaves_others_in_sync() {
    let setup = setup(2, &[]);
    let mut a = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    a.write_all(&resp(&[b"MSET", b"shared", b"hello", b"other", b"world"]))
        .unwrap();
    assert_eq!(read_len(&mut a, 5), b"+OK\r\n");
    let want = b"*3\r\n$5\r\nhello\r\n$-1\r\n$5\r\nworld\r\n";
    for round in 0..5 {
        let mut b = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
        let mut burst = Vec::new();
        for i in 0..1000 {
            burst.extend_from_slice(&resp(&[b"GET", b"shared"]));
            burst.extend_from_slice(&resp(&[b"MGET", b"shared", format!("x{i}").as_bytes()]));
            burst.extend_from_slice(&resp(&[b"SET", format!("x{round}:{i}").as_bytes(), b"v"]));
        }
        // Leave mid-request: the last SET has no value yet.
        burst.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$100\r\nabc");
        b.write_all(&burst).unwrap();
        drop(b);
        a.write_all(&resp(&[b"MGET", b"shared", b"nokey", b"other"]))
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&read_len(&mut a, want.len())),
            String::from_utf8_lossy(want),
            "round {round}"
        );
    }
    // And a new client is served as well.
    let mut c = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    c.write_all(&resp(&[b"GET", b"other"])).unwrap();
    assert_eq!(read_len(&mut c, 11), b"$5\r\nworld\r\n");
}

/// A backend answering `-OOM` (redis with `maxmemory 1mb`, `noeviction`):
/// the proxy closes that server connection and the request gets
/// `-ERR Invalid argument` (spec §6.5); the client connection stays usable
/// and reads still work on a fresh server connection.
#[test]
fn oom_reply_closes_the_server_connection() {
    let backend = Redis::start();
    make_out_of_memory(backend.port);
    let setup = setup_with(vec![backend], &[]);
    let mut s = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    // The backend itself answers -OOM to a big SET.
    let value = vec![b'x'; 2 << 20];
    let direct = common::redis_direct(
        setup.backends[0].port,
        &resp(&[b"SET", b"direct", &value]),
        b"\r\n",
    );
    assert!(
        direct.starts_with(b"-OOM "),
        "{}",
        String::from_utf8_lossy(&direct)
    );
    s.write_all(&resp(&[b"GET", b"before"])).unwrap();
    assert_eq!(read_len(&mut s, 5), b"$-1\r\n");
    s.write_all(&resp(&[b"SET", b"big", &value])).unwrap();
    let want = b"-ERR Invalid argument\r\n";
    assert_eq!(
        String::from_utf8_lossy(&read_len(&mut s, want.len())),
        String::from_utf8_lossy(want)
    );
    s.write_all(&resp(&[b"GET", b"after"])).unwrap();
    s.write_all(&resp(&[b"PING"])).unwrap();
    assert_eq!(read_len(&mut s, 12), b"$-1\r\n+PONG\r\n");
    drop(setup.proxy);
}

/// A fragment failing with `-OOM` fails the whole split command with
/// `-ERR Invalid argument`; the other server's fragment is not rolled back
/// (spec §6.3), and the client connection stays usable.
#[test]
fn oom_on_one_fragment_fails_the_split_command() {
    let backends = vec![Redis::start(), Redis::start()];
    make_out_of_memory(backends[1].port);
    let setup = setup_with(backends, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    // That server is over its memory limit: every write fragment to it gets -OOM.
    let value = vec![b'y'; 1 << 20];
    let names: Vec<String> = setup.backends.iter().map(Redis::addr).collect();
    let config = setup.proxy.dir.path().join("nutcracker.yml");
    // 10 keys on each server, interleaved.
    let by_server = keys_on(&config, &names, 10);
    let keys: Vec<String> = (0..20)
        .map(|i| by_server[(i % 2) * 10 + i / 2].clone())
        .collect();
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for k in &keys {
        mset.push(k.as_bytes());
        mset.push(&value);
    }
    s.write_all(&resp(&mset)).unwrap();
    let want = b"-ERR Invalid argument\r\n";
    assert_eq!(
        String::from_utf8_lossy(&read_len(&mut s, want.len())),
        String::from_utf8_lossy(want)
    );
    // The healthy server's keys were written: MGET answers them, misses the rest.
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(|k| k.as_bytes()));
    s.write_all(&resp(&mget)).unwrap();
    s.write_all(&resp(&[b"PING"])).unwrap();
    let got = common::read_until_suffix(&mut s, b"+PONG\r\n", Duration::from_secs(30));
    assert!(got.starts_with(b"*20\r\n") && got.ends_with(b"+PONG\r\n"));
    let misses = got.windows(5).filter(|w| w == b"$-1\r\n").count();
    assert_eq!(misses, 10);
    // `*20`, then a `$1048576` bulk and a `$-1` in turn, `+PONG`.
    assert_eq!(got.len(), 5 + 10 * (value.len() + 12) + 10 * 5 + 7);
    assert!(got[5..].starts_with(b"$1048576\r\nyyy"));
}

/// A fragment whose server is down: one `-ERR Connection refused` for the
/// whole command, and the client connection stays open (nutcracker closed it
/// after an MGET).
#[test]
fn refused_fragment_keeps_the_client_connection() {
    let live = Redis::start();
    let dead_guard = common::dead_port();
    let dead = dead_guard.port;
    let port = common::free_port();
    let config = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  redis: true\n  timeout: 2000\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{dead}:1\n",
        live.port
    );
    let proxy = Proxy::start(Flavor::Rustcracker, &config, port, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let servers = [live.addr(), format!("127.0.0.1:{dead}")];
    let keys = keys_on(&proxy.dir.path().join("nutcracker.yml"), &servers, 10);
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(|k| k.as_bytes()));
    let mut del: Vec<&[u8]> = vec![b"DEL"];
    del.extend(keys.iter().map(|k| k.as_bytes()));
    let mut request = resp(&mget);
    request.extend_from_slice(&resp(&del));
    request.extend_from_slice(&resp(&[b"PING"]));
    s.write_all(&request).unwrap();
    let want = b"-ERR Connection refused\r\n-ERR Connection refused\r\n+PONG\r\n";
    assert_eq!(
        String::from_utf8_lossy(&read_len(&mut s, want.len())),
        String::from_utf8_lossy(want)
    );
    s.write_all(&resp(&[b"PING"])).unwrap();
    assert_eq!(read_len(&mut s, 7), b"+PONG\r\n");
}

/// A backend busy in a script answers `-BUSY`: the proxy closes that server
/// connection and the request gets `-ERR Invalid argument` (spec §6.5); once
/// the script is killed the server is used again.
#[test]
fn busy_reply_closes_the_server_connection() {
    let backend = Redis::start_with(&["--busy-reply-threshold", "50"]);
    let setup = setup_with(vec![backend], &[]);
    let backend_port = setup.backends[0].port;
    let mut s = TcpStream::connect(("127.0.0.1", setup.port)).unwrap();
    s.write_all(&resp(&[b"SET", b"k", b"v"])).unwrap();
    assert_eq!(String::from_utf8_lossy(&read_len(&mut s, 5)), "+OK\r\n");
    // A script that never ends, sent straight to the backend.
    let mut script = TcpStream::connect(("127.0.0.1", backend_port)).unwrap();
    script
        .write_all(&resp(&[b"EVAL", b"while true do end", b"0"]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&resp(&[b"GET", b"k"])).unwrap();
    s.write_all(&resp(&[b"PING"])).unwrap();
    let want = b"-ERR Invalid argument\r\n+PONG\r\n";
    assert_eq!(
        String::from_utf8_lossy(&read_len(&mut s, want.len())),
        String::from_utf8_lossy(want)
    );
    let killed = common::redis_direct(backend_port, &resp(&[b"SCRIPT", b"KILL"]), b"\r\n");
    assert_eq!(killed, b"+OK\r\n");
    // The script has ended once its caller got its error.
    let ended = common::read_until_suffix(&mut script, b"\r\n", Duration::from_secs(10));
    assert!(
        ended.starts_with(b"-"),
        "{}",
        String::from_utf8_lossy(&ended)
    );
    s.write_all(&resp(&[b"GET", b"k"])).unwrap();
    assert_eq!(read_len(&mut s, 7), b"$1\r\nv\r\n");
}

/// Puts a redis over its memory limit for certain: 2 MiB stored first, then
/// `maxmemory 1mb` with `noeviction`, so every write gets `-OOM` whatever the
/// size of the request (a limit set at start leaves that to timing).
fn make_out_of_memory(port: u16) {
    let filler = vec![b'f'; 2 << 20];
    for command in [
        resp(&[b"SET", b"filler", &filler]),
        resp(&[b"CONFIG", b"SET", b"maxmemory-policy", b"noeviction"]),
        resp(&[b"CONFIG", b"SET", b"maxmemory", b"1mb"]),
    ] {
        assert_eq!(common::redis_direct(port, &command, b"\r\n"), b"+OK\r\n");
    }
}

/// Big MGET replies merged from two servers are written straight from the
/// fragment replies while the socket takes them, and the rest is kept: a
/// client that does not read for a while gets every byte, in order.
#[test]
fn big_merged_mget_replies_reach_a_slow_reader_whole_and_in_order() {
    let setup = setup(2, &[]);
    let mut s = common::connect_slow_reader(setup.port);
    // 20 keys on each server: every MGET is split and merged.
    let servers: Vec<String> = setup.backends.iter().map(Redis::addr).collect();
    let keys = keys_on(&setup.proxy.dir.path().join("nutcracker.yml"), &servers, 20);
    let values: Vec<Vec<u8>> = (0..40)
        .map(|i| (0..20_000).map(|j| b'a' + ((i + j) % 26) as u8).collect())
        .collect();
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for (k, v) in keys.iter().zip(&values) {
        mset.push(k.as_bytes());
        mset.push(v);
    }
    s.write_all(&resp(&mset)).unwrap();
    assert_eq!(read_len(&mut s, 5), b"+OK\r\n");
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(|k| k.as_bytes()));
    mget.push(b"missing");
    let rounds = 16;
    let mut request = resp(&mget).repeat(rounds);
    request.extend_from_slice(&resp(&[b"GET", b"missing"]));
    s.write_all(&request).unwrap();
    // ~800 KB per reply, 13 MB in all: the socket buffers (4 MiB at most for the proxy's
    // side, 64 KiB for the client's) fill long before the client reads.
    std::thread::sleep(Duration::from_millis(500));
    let mut one = b"*41\r\n".to_vec();
    for v in &values {
        one.extend_from_slice(&bulk(v));
    }
    one.extend_from_slice(b"$-1\r\n");
    let mut want = one.repeat(rounds);
    want.extend_from_slice(b"$-1\r\n");
    let got = read_len(&mut s, want.len());
    assert!(got == want, "got {} bytes, want {}", got.len(), want.len());
}
