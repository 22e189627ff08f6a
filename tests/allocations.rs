//! Proof that the proxy's data path allocates nothing per request in steady state (issue 6:
//! "no allocation, lock or timer per request").
//!
//! A counting `#[global_allocator]` tells the allocations of the proxy's worker thread (named
//! `worker-N` by `Proxy::start`) from everyone else's: the test thread itself (the client) and any
//! other thread (the stats server, the test harness). The proxy runs in-process with one worker
//! in front of two real memcached or two real redis-server; after a warm-up, allocations are
//! counted while the client drives each shape the bench measures: get/set 9:1 pipelined and
//! ping-pong, and multi-gets of 10 and of 100 keys spread over both servers.
//!
//! To see where unexpected allocations come from: `ALLOC_BACKTRACES=5 cargo test --test
//! allocations -- --nocapture` prints the stacks of the first 5 counted worker allocations.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rustcracker::proxy::{Proxy, ProxyOptions};

// ---------------------------------------------------------------------------------------------
// The counting allocator.

/// What a thread is, as far as counting goes.
const UNKNOWN: u8 = 0;
/// The test thread (the client) and backtrace capture: never counted.
const EXCLUDED: u8 = 1;
/// A proxy worker thread (`worker-N`).
const WORKER: u8 = 2;

thread_local! {
    static CLASS: Cell<u8> = const { Cell::new(UNKNOWN) };
    /// Set while this thread captures a backtrace inside the allocator.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Counting is on only between `start_measuring` and `stop_measuring`.
static MEASURING: AtomicBool = AtomicBool::new(false);
static WORKER_ALLOCS: AtomicU64 = AtomicU64::new(0);
static WORKER_BYTES: AtomicU64 = AtomicU64::new(0);
static OTHER_ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Backtraces still to capture of counted worker allocations (`ALLOC_BACKTRACES`).
static BACKTRACES_LEFT: AtomicU64 = AtomicU64::new(0);
static BACKTRACES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether the calling thread is named `worker-…`. `prctl(PR_GET_NAME)` reads the kernel's copy
/// of the name into a stack buffer: no allocation, so it is safe inside the allocator.
fn is_worker_thread() -> bool {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes (NUL included) into `name`.
    let rc = unsafe {
        libc::prctl(
            libc::PR_GET_NAME,
            name.as_mut_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    rc == 0 && name.starts_with(b"worker-")
}

fn class() -> u8 {
    CLASS
        .try_with(|class| {
            let current = class.get();
            if current != UNKNOWN {
                return current;
            }
            // Cache only a positive answer: a thread may allocate before std names it.
            if is_worker_thread() {
                class.set(WORKER);
                WORKER
            } else {
                UNKNOWN
            }
        })
        .unwrap_or(UNKNOWN)
}

fn record(size: usize) {
    if !MEASURING.load(Ordering::Relaxed) {
        return;
    }
    match class() {
        EXCLUDED => {}
        WORKER => {
            WORKER_ALLOCS.fetch_add(1, Ordering::Relaxed);
            WORKER_BYTES.fetch_add(size as u64, Ordering::Relaxed);
            if BACKTRACES_LEFT.load(Ordering::Relaxed) > 0 {
                capture_backtrace(size);
            }
        }
        _ => {
            OTHER_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Captures the stack of a counted worker allocation. The capture allocates; the re-entrancy
/// flag keeps those allocations out of the counts and out of this hook.
fn capture_backtrace(size: usize) {
    let entered = IN_HOOK
        .try_with(|flag| !flag.replace(true))
        .unwrap_or(false);
    if !entered {
        return;
    }
    let previous = CLASS.try_with(|c| c.replace(EXCLUDED)).unwrap_or(WORKER);
    if BACKTRACES_LEFT
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        let trace = std::backtrace::Backtrace::force_capture();
        let text = format!("allocation of {size} bytes on the worker:\n{trace}");
        if let Ok(mut list) = BACKTRACES.lock() {
            list.push(text);
        }
    }
    let _ = CLASS.try_with(|c| c.set(previous));
    let _ = IN_HOOK.try_with(|flag| flag.set(false));
}

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping around it only touches
// atomics and const-initialised thread locals (and, for the opt-in backtraces, allocates through
// this same allocator with counting switched off for the thread).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocation counts over one measured phase.
#[derive(Debug, Clone, Copy)]
struct Counts {
    worker: u64,
    worker_bytes: u64,
    other: u64,
}

fn start_measuring() {
    WORKER_ALLOCS.store(0, Ordering::SeqCst);
    WORKER_BYTES.store(0, Ordering::SeqCst);
    OTHER_ALLOCS.store(0, Ordering::SeqCst);
    MEASURING.store(true, Ordering::SeqCst);
}

fn stop_measuring() -> Counts {
    MEASURING.store(false, Ordering::SeqCst);
    Counts {
        worker: WORKER_ALLOCS.load(Ordering::SeqCst),
        worker_bytes: WORKER_BYTES.load(Ordering::SeqCst),
        other: OTHER_ALLOCS.load(Ordering::SeqCst),
    }
}

// ---------------------------------------------------------------------------------------------
// The client: blocking, with buffers built before each measured batch.

/// A key space: keys `PREFIX:NNNNN`, each with a fixed value, so every reply is known in advance.
struct Keyspace {
    prefix: &'static str,
    keys: usize,
    value_len: usize,
}

impl Keyspace {
    fn key(&self, i: usize) -> String {
        format!("{}:{:05}", self.prefix, i % self.keys)
    }

    fn value(&self, i: usize) -> String {
        format!("{:0>width$}", i % self.keys, width = self.value_len)
    }

    /// Appends a set of key `n` to its fixed value.
    fn store(&self, n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
        let (k, v, len) = (self.key(n), self.value(n), self.value_len);
        request.extend_from_slice(format!("set {k} 0 0 {len}\r\n{v}\r\n").as_bytes());
        reply.extend_from_slice(b"STORED\r\n");
    }

    /// Appends a get of `keys`, and its expected reply.
    fn get(&self, keys: impl Iterator<Item = usize>, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
        request.extend_from_slice(b"get");
        for i in keys {
            let (k, v, len) = (self.key(i), self.value(i), self.value_len);
            request.extend_from_slice(format!(" {k}").as_bytes());
            reply.extend_from_slice(format!("VALUE {k} 0 {len}\r\n{v}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        reply.extend_from_slice(b"END\r\n");
    }
}

/// 1,000 keys with 32 B values: the bench's shapes.
const SMALL: Keyspace = Keyspace {
    prefix: "alloc",
    keys: 1000,
    value_len: 32,
};
const KEYS: usize = SMALL.keys;
const VALUE_LEN: usize = SMALL.value_len;

/// Big values: 300 keys with 4 KiB values, so a multi-get of 100 has a 400 KiB reply.
const BIG: Keyspace = Keyspace {
    prefix: "big",
    keys: 300,
    value_len: 4096,
};

fn key(i: usize) -> String {
    SMALL.key(i)
}

fn value(i: usize) -> String {
    SMALL.value(i)
}

/// Builds request `n` into the request buffer and its expected reply into the reply buffer.
type Build = fn(usize, &mut Vec<u8>, &mut Vec<u8>);

/// Appends a set of key `n` to its fixed value.
fn store(n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
    SMALL.store(n, request, reply);
}

/// Appends request `n` of the get/set 9:1 mix, and its expected reply.
fn single_key(n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
    if n.is_multiple_of(10) {
        SMALL.store(n * 7, request, reply);
    } else {
        SMALL.get(std::iter::once(n * 7), request, reply);
    }
}

/// Appends multi-get `n` of `KEYS_PER_GET` keys, and its expected reply.
fn multi_get<const KEYS_PER_GET: usize>(n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
    SMALL.get(
        (0..KEYS_PER_GET).map(|j| n * KEYS_PER_GET + j),
        request,
        reply,
    );
}

/// Appends a set of big key `n`.
fn big_store(n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
    BIG.store(n, request, reply);
}

/// Appends multi-get `n` of 100 big keys (starting at key 7n), and its expected reply.
fn big_multi_get(n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
    BIG.get((0..100).map(|j| n * 7 + j), request, reply);
}

/// Appends a multi-bulk redis command.
fn redis_command(args: &[&[u8]], request: &mut Vec<u8>) {
    request.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg);
        request.extend_from_slice(b"\r\n");
    }
}

/// Appends the bulk string of key `i`'s value.
fn redis_value(i: usize, reply: &mut Vec<u8>) {
    reply.extend_from_slice(format!("${VALUE_LEN}\r\n{}\r\n", value(i)).as_bytes());
}

/// redis: SET of key `n` to its fixed value.
fn redis_store(n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
    redis_command(&[b"SET", key(n).as_bytes(), value(n).as_bytes()], request);
    reply.extend_from_slice(b"+OK\r\n");
}

/// redis: request `n` of the GET/SET 9:1 mix.
fn redis_single_key(n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
    if n.is_multiple_of(10) {
        redis_store(n * 7, request, reply);
    } else {
        redis_command(&[b"GET", key(n * 7).as_bytes()], request);
        redis_value(n * 7, reply);
    }
}

/// redis: MGET `n` of `KEYS_PER_GET` keys.
fn redis_mget<const KEYS_PER_GET: usize>(n: usize, request: &mut Vec<u8>, reply: &mut Vec<u8>) {
    let keys: Vec<String> = (0..KEYS_PER_GET)
        .map(|j| key(n * KEYS_PER_GET + j))
        .collect();
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    redis_command(&args, request);
    reply.extend_from_slice(format!("*{KEYS_PER_GET}\r\n").as_bytes());
    for j in 0..KEYS_PER_GET {
        redis_value(n * KEYS_PER_GET + j, reply);
    }
}

struct Client {
    stream: TcpStream,
    request: Vec<u8>,
    expected: Vec<u8>,
    received: Vec<u8>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the proxy");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        Client {
            stream,
            request: Vec::with_capacity(64 * 1024),
            expected: Vec::with_capacity(64 * 1024),
            received: vec![0; 256 * 1024],
        }
    }

    /// Sends requests `from..from + count` built by `build` in one write and checks the replies.
    fn batch(&mut self, from: usize, count: usize, build: Build) {
        self.request.clear();
        self.expected.clear();
        for n in from..from + count {
            build(n, &mut self.request, &mut self.expected);
        }
        if self.received.len() < self.expected.len() {
            self.received.resize(self.expected.len(), 0);
        }
        self.stream.write_all(&self.request).expect("write");
        let mut got = 0;
        while got < self.expected.len() {
            let n = self
                .stream
                .read(&mut self.received[got..self.expected.len()])
                .expect("read a reply");
            assert!(n > 0, "the proxy closed the connection");
            got += n;
        }
        assert!(
            self.received[..got] == self.expected[..],
            "unexpected replies:\n{}",
            String::from_utf8_lossy(&self.received[..got])
        );
    }

    /// `total` requests in pipelined batches of `depth`, starting at request number `from`.
    fn run(&mut self, from: usize, total: usize, depth: usize, build: Build) {
        let mut n = from;
        while n < from + total {
            let count = depth.min(from + total - n);
            self.batch(n, count, build);
            n += count;
        }
    }
}

fn per_request(counts: Counts, requests: usize) -> f64 {
    counts.worker as f64 / requests as f64
}

fn report(phase: &str, counts: Counts, requests: usize) {
    println!(
        "{phase}: {requests} requests, worker thread {} allocations ({} bytes) = {:.4} per \
         request; other threads {}",
        counts.worker,
        counts.worker_bytes,
        per_request(counts, requests),
        counts.other
    );
}

fn print_backtraces() {
    if let Ok(mut list) = BACKTRACES.lock() {
        for trace in list.drain(..) {
            println!("{trace}");
        }
    }
}

/// The tests share the global counters and each proxy's worker is `worker-0`: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The two backends of a setup (kept alive with it).
enum Backends {
    Memcache([common::Memcached; 2]),
    Redis([common::Redis; 2]),
}

impl Backends {
    fn ports(&self) -> [u16; 2] {
        match self {
            Backends::Memcache([a, b]) => [a.port, b.port],
            Backends::Redis([a, b]) => [a.port, b.port],
        }
    }
}

/// Two memcached or two redis-server, the proxy in-process with one worker in front of them
/// (ketama), and a client whose keys are all stored and whose request shapes are warmed up.
struct Setup {
    client: Client,
    proxy: Proxy,
    _backends: Backends,
}

impl Setup {
    fn start_memcache() -> Setup {
        let backends = Backends::Memcache([common::Memcached::start(), common::Memcached::start()]);
        Setup::start(
            backends,
            &[store, single_key, multi_get::<10>, multi_get::<100>],
        )
    }

    fn start_redis() -> Setup {
        let backends = Backends::Redis([common::Redis::start(), common::Redis::start()]);
        Setup::start(
            backends,
            &[
                redis_store,
                redis_single_key,
                redis_mget::<10>,
                redis_mget::<100>,
            ],
        )
    }

    /// `shapes`: how to store a key, then the request shapes to warm up (single-key mix, two
    /// multi-key widths).
    fn start(backends: Backends, shapes: &[Build; 4]) -> Setup {
        CLASS.with(|c| c.set(EXCLUDED));
        let [first, second] = backends.ports();
        let redis = matches!(backends, Backends::Redis(_));
        let port = common::free_port();
        let yaml = format!(
            "alpha:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
             redis: {redis}\n  timeout: 2000\n  preconnect: true\n  auto_eject_hosts: false\n  \
             server_connections: 1\n  servers:\n   - 127.0.0.1:{first}:1\n   - 127.0.0.1:{second}:1\n",
        );
        let config =
            rustcracker::config::parse(Path::new("allocations.yml"), &yaml).expect("config");
        let proxy = Proxy::start(
            config,
            ProxyOptions {
                threads: 1,
                mbuf_size: 16384,
                stats_addr: "127.0.0.1".to_string(),
                stats_port: common::free_port(),
                stats_interval_ms: 30_000,
                coalesce: Duration::from_micros(rustcracker::proxy::DEFAULT_COALESCE_US),
                combine_gets: rustcracker::proxy::MAX_COMBINED_KEYS,
            },
        )
        .expect("proxy starts");
        let mut client = Client::connect(port);
        // Store every key once (so every get hits), then warm up every request shape: buffers
        // and connection state reach their steady-state sizes.
        let [store, single, narrow, wide] = *shapes;
        client.run(0, KEYS, 100, store);
        client.run(0, 2_000, 100, single);
        client.run(0, 200, 16, single);
        client.run(0, 200, 1, single);
        client.run(0, 200, 10, narrow);
        client.run(0, 100, 10, wide);
        Setup {
            client,
            proxy,
            _backends: backends,
        }
    }

    /// Counts the worker's allocations over `total` requests sent `depth` at a time, prints them
    /// (and, with `ALLOC_BACKTRACES=N`, the stacks of the first N).
    fn measure(
        &mut self,
        phase: &str,
        from: usize,
        total: usize,
        depth: usize,
        build: Build,
    ) -> f64 {
        let backtraces = std::env::var("ALLOC_BACKTRACES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        BACKTRACES_LEFT.store(backtraces, Ordering::SeqCst);
        start_measuring();
        self.client.run(from, total, depth, build);
        let counts = stop_measuring();
        BACKTRACES_LEFT.store(0, Ordering::SeqCst);
        report(phase, counts, total);
        print_backtraces();
        per_request(counts, total)
    }

    fn stop(self) {
        drop(self.client);
        self.proxy.shutdown();
    }
}

fn assert_no_allocation(phase: &str, rate: f64) {
    assert!(
        rate < 0.05,
        "{phase}: the worker allocated {rate:.4} times per request; rerun with \
         ALLOC_BACKTRACES=5 and --nocapture to see where"
    );
}

/// memcache, pipeline 1 (the bench's P=1 scenarios), and multi-gets of 10 and of 100 keys spread
/// over both servers (the bench's multi-get scenarios).
#[test]
fn memcache_ping_pong_and_multi_gets_do_not_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut setup = Setup::start_memcache();
    let ping_pong = setup.measure("get/set 9:1, pipeline 1", 100_000, 1_000, 1, single_key);
    let narrow = setup.measure(
        "multi-get of 10 keys, pipeline 10",
        300_000,
        1_000,
        10,
        multi_get::<10>,
    );
    let wide = setup.measure(
        "multi-get of 100 keys, pipeline 10",
        300_000,
        300,
        10,
        multi_get::<100>,
    );
    setup.stop();
    assert_no_allocation("get/set 9:1, pipeline 1", ping_pong);
    assert_no_allocation("multi-get of 10 keys", narrow);
    assert_no_allocation("multi-get of 100 keys", wide);
}

/// memcache, multi-gets of 100 keys with 4 KiB values (400 KiB replies), one at a time: the
/// buffers they grow (the servers' read buffers, the merge, the client's output) are kept while
/// the client is active rather than mapped afresh for each reply.
#[test]
fn memcache_multi_gets_of_big_values_do_not_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut setup = Setup::start_memcache();
    setup.client.run(0, BIG.keys, 20, big_store);
    // Every key set the measurement asks for (request n starts at key 7n mod 300), so that the
    // buffers reach their steady-state sizes.
    setup.client.run(0, BIG.keys, 1, big_multi_get);
    let big = setup.measure(
        "multi-get of 100 keys of 4 KiB, pipeline 1",
        1_000,
        100,
        1,
        big_multi_get,
    );
    setup.stop();
    assert_no_allocation("multi-get of 100 keys of 4 KiB", big);
}

/// memcache, pipelined batches of 16 (the bench's P=16 scenarios) and of 100, get/set 9:1 over
/// both servers: replies that arrive early share one reusable buffer per client, and buffers are
/// kept up to 16 KiB while a client is idle, so bursts do not regrow them.
#[test]
fn memcache_pipelined_get_set_does_not_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut setup = Setup::start_memcache();
    let pipeline_16 = setup.measure("get/set 9:1, pipeline 16", 200_000, 10_000, 16, single_key);
    let pipeline_100 = setup.measure(
        "get/set 9:1, pipeline 100",
        400_000,
        10_000,
        100,
        single_key,
    );
    setup.stop();
    assert_no_allocation("get/set 9:1, pipeline 16", pipeline_16);
    assert_no_allocation("get/set 9:1, pipeline 100", pipeline_100);
}

/// redis: GET/SET 9:1 at pipeline 1 and 16, MGET of 10 and of 100 keys over both servers.
#[test]
fn redis_requests_and_mgets_do_not_allocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut setup = Setup::start_redis();
    let ping_pong = setup.measure(
        "GET/SET 9:1, pipeline 1",
        100_000,
        1_000,
        1,
        redis_single_key,
    );
    let pipeline_16 = setup.measure(
        "GET/SET 9:1, pipeline 16",
        200_000,
        10_000,
        16,
        redis_single_key,
    );
    let narrow = setup.measure(
        "MGET of 10 keys, pipeline 10",
        300_000,
        1_000,
        10,
        redis_mget::<10>,
    );
    let wide = setup.measure(
        "MGET of 100 keys, pipeline 10",
        300_000,
        300,
        10,
        redis_mget::<100>,
    );
    setup.stop();
    assert_no_allocation("GET/SET 9:1, pipeline 1", ping_pong);
    assert_no_allocation("GET/SET 9:1, pipeline 16", pipeline_16);
    assert_no_allocation("MGET of 10 keys", narrow);
    assert_no_allocation("MGET of 100 keys", wide);
}
