//! `loadgen`: a closed-loop load generator for memcached ASCII and RESP.
//!
//! N connections each send batches of P pre-built requests (a random get:set
//! mix over a fixed key space, gets optionally multi-key) and wait for every
//! reply before sending the next batch. Replies are parsed and checked (see
//! [`reply`]); latencies go into an HDR histogram. The run prints one JSON
//! line with throughput, percentiles and error counts.
//!
//! Work is spread over `--threads` OS threads (default 1), each running a
//! current-thread tokio runtime, so the generator's CPU use stays small and
//! predictable next to the proxy and backends it measures. See
//! `bench/README.md` for how `bench/run` uses it.

mod args;
mod conn;
mod reply;
mod workload;

use std::cell::RefCell;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use args::{Args, Command};
use conn::{Counters, RecvBuf, Shared, Wire, CONNECT_CONCURRENCY, MEASURE, STOP};
use workload::{Cycle, KeyFmt, Spec};

/// Exit status when the run completed but saw errors.
const EXIT_ERRORS: u8 = 3;

/// Requests per batch when prefilling.
const PREFILL_PIPELINE: usize = 64;

/// Keys per prefill chunk (bounds the prefill buffer).
const PREFILL_CHUNK: u32 = 4096;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Command::Run(a)) => a,
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_ERRORS),
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(1)
        }
    }
}

/// Raises the open-file soft limit to the hard limit (thousands of sockets).
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// An empty latency histogram: 1 ns to 60 s, 3 significant digits.
fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Runs the whole command; `Ok(false)` when the run saw errors.
fn run(a: &Args) -> Result<bool, String> {
    raise_nofile();
    let target: SocketAddr = a
        .target
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", a.target))?
        .next()
        .ok_or_else(|| format!("{}: no address", a.target))?;
    let spec = Spec {
        proto: a.proto,
        pipeline: a.pipeline,
        keys: a.keys,
        value_len: a.value,
        gets: a.gets,
        sets: a.sets,
        mget: a.mget,
        seed: a.seed,
    };
    let keyfmt = KeyFmt::new(&a.prefix);
    let wire = Wire {
        proto: a.proto,
        value_len: a.value,
        keyfmt: keyfmt.clone(),
    };
    let prefill = if a.prefill {
        prefill(target, &spec, &wire, a.timeout)?
    } else {
        Counters::default()
    };
    let sh = Arc::new(Shared {
        target,
        cycle: Cycle::random(&spec, &keyfmt),
        wire,
        timeout: a.timeout,
        seed: a.seed,
        phase: AtomicU8::new(conn::WARMUP),
        remaining: AtomicI64::new(a.requests.map_or(i64::MAX, |n| n as i64)),
        end: Mutex::new(None),
        ready: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        hold_done: AtomicUsize::new(0),
        hold_errors: AtomicU64::new(0),
        batch_interval: a.rate.map(|rate| {
            Duration::from_secs_f64(a.connections as f64 * a.pipeline as f64 / rate as f64)
        }),
        connections: a.connections,
    });
    let (stage_tx, stage_rx) = watch::channel(0u8);
    let mut workers = Vec::with_capacity(a.threads);
    for t in 0..a.threads {
        let (sh, stage, a) = (sh.clone(), stage_rx.clone(), a.clone());
        let w = std::thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || worker(t, &a, sh, stage))
            .map_err(|e| format!("spawn thread: {e}"))?;
        workers.push(w);
    }
    let n = a.connections;
    wait_until(
        || sh.ready.load(Ordering::Relaxed) >= n,
        Duration::from_secs(60),
    );
    let (t1, t2) = if a.hold {
        hold(&sh, n, &stage_tx);
        (Instant::now(), Instant::now())
    } else {
        std::thread::sleep(a.warmup);
        sh.phase.store(MEASURE, Ordering::Relaxed);
        let t1 = Instant::now();
        loop {
            let left = a.duration.saturating_sub(t1.elapsed());
            if sh.phase.load(Ordering::Relaxed) == STOP || left.is_zero() {
                break;
            }
            let nap = if a.requests.is_some() {
                left.min(Duration::from_millis(1))
            } else {
                left
            };
            std::thread::sleep(nap);
        }
        sh.phase.store(STOP, Ordering::Relaxed);
        let end = sh.end.lock().ok().and_then(|e| *e);
        (t1, end.unwrap_or_else(Instant::now))
    };
    let mut c = Counters::default();
    let mut h = new_hist();
    for w in workers {
        let (wc, wh) = w.join().map_err(|_| "worker thread panicked")??;
        c.add(&wc);
        h.add(&wh).map_err(|e| format!("merge histograms: {e}"))?;
    }
    let secs = t2.duration_since(t1).as_secs_f64();
    let line = report(a, &c, &prefill, &h, secs);
    println!("{line}");
    let errors = c.errors() + prefill.errors();
    if errors > 0 {
        eprintln!("loadgen: run had {errors} errors (see the JSON fields)");
    }
    Ok(errors == 0)
}

/// Polls `cond` every millisecond for at most `cap`.
fn wait_until(cond: impl Fn() -> bool, cap: Duration) {
    let t = Instant::now();
    while !cond() && t.elapsed() < cap {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Hold mode, driven from stdin (see `--hold` in the usage).
fn hold(sh: &Shared, n: usize, stage: &watch::Sender<u8>) {
    let mut line = String::new();
    let stdin = std::io::stdin();
    let connected = sh.connected.load(Ordering::Relaxed);
    println!(
        "{{\"stage\":\"connected\",\"connections\":{n},\"connected\":{connected},\"errors\":{}}}",
        n - connected
    );
    let _ = std::io::stdout().flush();
    let _ = stdin.lock().read_line(&mut line);
    let _ = stage.send(1);
    wait_until(
        || sh.hold_done.load(Ordering::Relaxed) >= n,
        Duration::from_secs(120),
    );
    let errors = sh.hold_errors.load(Ordering::Relaxed) + (n - connected) as u64;
    println!("{{\"stage\":\"traffic\",\"connections\":{n},\"errors\":{errors}}}");
    let _ = std::io::stdout().flush();
    line.clear();
    let _ = stdin.lock().read_line(&mut line);
    let _ = stage.send(2);
}

/// One worker thread: a current-thread runtime running its share of the
/// connections (every `threads`-th, starting at `t`).
fn worker(
    t: usize,
    a: &Args,
    sh: Arc<Shared>,
    stage: watch::Receiver<u8>,
) -> Result<(Counters, Histogram<u64>), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    let hold = a.hold;
    let (n, step) = (a.connections, a.threads);
    local.block_on(&rt, async move {
        let hist = Rc::new(RefCell::new(new_hist()));
        let sem = Rc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let mut tasks = Vec::new();
        for id in (t..n).step_by(step) {
            let (sh, sem) = (sh.clone(), sem.clone());
            tasks.push(if hold {
                tokio::task::spawn_local(conn::hold_connection(sh, sem, stage.clone(), id))
            } else {
                tokio::task::spawn_local(conn::connection(sh, hist.clone(), sem, id))
            });
        }
        let mut c = Counters::default();
        for task in tasks {
            let tc = task.await.map_err(|e| format!("connection task: {e}"))?;
            c.add(&tc);
        }
        let h = hist.borrow().clone();
        Ok((c, h))
    })
}

/// Sets every key once through one pipelined connection.
fn prefill(
    target: SocketAddr,
    spec: &Spec,
    wire: &Wire,
    timeout: Duration,
) -> Result<Counters, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let spec = Spec {
        pipeline: PREFILL_PIPELINE,
        ..spec.clone()
    };
    let c = rt.block_on(async {
        let mut c = Counters::default();
        let mut stream = None;
        let mut rbuf = RecvBuf::default();
        let mut from = 0u32;
        while from < spec.keys {
            let to = spec.keys.min(from.saturating_add(PREFILL_CHUNK));
            let cycle = Cycle::sets(&spec, &wire.keyfmt, from..to);
            for b in 0..cycle.batches() {
                if stream.is_none() {
                    match tokio::net::TcpStream::connect(target).await {
                        Ok(s) => stream = Some(s),
                        Err(e) => {
                            c.connect_failures += 1;
                            eprintln!("loadgen: prefill: connect {target}: {e}");
                            return c;
                        }
                    }
                }
                let Some(s) = stream.as_mut() else { break };
                let mut done = 0;
                let fut = conn::run_batch(
                    s,
                    &mut rbuf,
                    &cycle,
                    b,
                    wire,
                    None,
                    &mut c,
                    &mut done,
                    Instant::now(),
                );
                if !matches!(tokio::time::timeout(timeout, fut).await, Ok(Ok(()))) {
                    c.failed += (cycle.batch_entries(b).len() - done).max(1) as u64;
                    c.disconnects += 1;
                    stream = None;
                    rbuf = RecvBuf::default();
                }
            }
            from = to;
        }
        c
    });
    Ok(c)
}

/// Formats `µs` with one decimal.
fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// The JSON result line.
fn report(a: &Args, c: &Counters, pre: &Counters, h: &Histogram<u64>, secs: f64) -> String {
    let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let hit_ratio = if c.keys > 0 {
        c.hits as f64 / c.keys as f64
    } else {
        0.0
    };
    let q = |p: f64| {
        if h.is_empty() {
            "null".to_string()
        } else {
            us(h.value_at_quantile(p))
        }
    };
    let errors = c.errors() + pre.errors();
    format!(
        concat!(
            "{{\"proto\":\"{}\",\"target\":\"{}\",\"connections\":{},\"pipeline\":{},",
            "\"mget\":{},\"value\":{},\"keys\":{},\"ratio\":\"{}:{}\",\"threads\":{},",
            "\"hold\":{},\"rate\":{},\"duration_s\":{:.3},\"requests\":{},\"total_requests\":{},",
            "\"rps\":{:.0},\"keys_per_s\":{:.0},\"hit_ratio\":{:.4},",
            "\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"mean_us\":{:.1},",
            "\"errors\":{},\"error_replies\":{},\"mismatches\":{},\"failed\":{},\"timeouts\":{},",
            "\"connect_failures\":{},\"disconnects\":{},\"prefill_errors\":{},\"ok\":{}}}"
        ),
        a.proto.name(),
        a.target,
        a.connections,
        a.pipeline,
        a.mget,
        a.value,
        a.keys,
        a.gets,
        a.sets,
        a.threads,
        a.hold,
        a.rate.unwrap_or(0),
        secs,
        c.requests,
        c.total,
        rate(c.requests),
        rate(c.keys),
        hit_ratio,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        if h.is_empty() { "null".to_string() } else { us(h.max()) },
        if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        errors,
        c.error_replies,
        c.mismatches,
        c.failed,
        c.timeouts,
        c.connect_failures,
        c.disconnects,
        pre.errors(),
        errors == 0,
    )
}
