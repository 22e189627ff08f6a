//! Connection tasks: the closed loop.
//!
//! Each connection repeatedly writes one batch (`pipeline` requests, one
//! `write` of a slice of the pre-built [`Cycle`]) and reads until every reply
//! of the batch has been parsed, then sends the next batch. Latency of a reply
//! is the time from the batch's write to the read that completed it.
//!
//! Failures never stop the run: a malformed reply, a disconnect or a batch
//! that outlives `--timeout-ms` counts the batch's missing replies as failed,
//! and the connection is re-opened after a short pause.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::reply::{self, Expect, Parsed};
use crate::workload::{Cycle, KeyFmt, Protocol, Rng};

/// Run phase: connections are opening or warming up; nothing is counted.
pub const WARMUP: u8 = 0;
/// Run phase: batches started now are measured.
pub const MEASURE: u8 = 1;
/// Run phase: connections finish their batch and exit.
pub const STOP: u8 = 2;

/// Pause before re-opening a failed connection.
const RETRY: Duration = Duration::from_millis(50);

/// Largest receive buffer before a reply is declared malformed.
const MAX_RECV: usize = 256 << 20;

/// Concurrent connection attempts per worker thread.
pub const CONNECT_CONCURRENCY: usize = 128;

/// Per-request counters, summed over connections and threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Replies received for batches started while measuring.
    pub requests: u64,
    /// Replies received in every phase (for CPU-per-request figures).
    pub total: u64,
    /// Keys asked for by measured gets.
    pub keys: u64,
    /// Values returned to measured gets.
    pub hits: u64,
    /// Error replies (`SERVER_ERROR`, `-ERR`, …).
    pub error_replies: u64,
    /// Well-formed replies with the wrong content.
    pub mismatches: u64,
    /// Requests whose reply never came or could not be parsed.
    pub failed: u64,
    /// Batches that timed out.
    pub timeouts: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Connections dropped after a failed batch (their lost requests are
    /// counted in `failed`, so these are not added to [`Counters::errors`]).
    pub disconnects: u64,
}

impl Counters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Counters) {
        self.requests += o.requests;
        self.total += o.total;
        self.keys += o.keys;
        self.hits += o.hits;
        self.error_replies += o.error_replies;
        self.mismatches += o.mismatches;
        self.failed += o.failed;
        self.timeouts += o.timeouts;
        self.connect_failures += o.connect_failures;
        self.disconnects += o.disconnects;
    }

    /// All errors: every request without a correct reply, plus failed
    /// connection attempts.
    pub fn errors(&self) -> u64 {
        self.error_replies + self.mismatches + self.failed + self.connect_failures
    }
}

/// What reply parsing needs to know about the workload.
#[derive(Debug, Clone)]
pub struct Wire {
    /// Protocol.
    pub proto: Protocol,
    /// Size of stored values.
    pub value_len: usize,
    /// Key format.
    pub keyfmt: KeyFmt,
}

/// State shared by all connections of a run.
#[derive(Debug)]
pub struct Shared {
    /// Where to connect.
    pub target: SocketAddr,
    /// The request stream.
    pub cycle: Cycle,
    /// Reply expectations.
    pub wire: Wire,
    /// Per-batch timeout.
    pub timeout: Duration,
    /// Seed for starting positions in the cycle.
    pub seed: u64,
    /// Current phase ([`WARMUP`], [`MEASURE`], [`STOP`]).
    pub phase: AtomicU8,
    /// Measured requests still to do (`--requests`), or `i64::MAX`.
    pub remaining: AtomicI64,
    /// When `remaining` reached zero.
    pub end: Mutex<Option<Instant>>,
    /// Connections that made their first connection attempt.
    pub ready: AtomicUsize,
    /// Hold mode: connections open.
    pub connected: AtomicUsize,
    /// Hold mode: connections that finished their traffic batch.
    pub hold_done: AtomicUsize,
    /// Hold mode: errors of the traffic batch.
    pub hold_errors: AtomicU64,
    /// `--rate`: the time between two batches of one connection.
    pub batch_interval: Option<Duration>,
    /// `--rate`: connections, to stagger their first batches.
    pub connections: usize,
}

impl Shared {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }
}

/// Receive buffer: bytes `start..end` of `buf` are unparsed.
#[derive(Debug, Default)]
pub struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl RecvBuf {
    /// Unparsed bytes.
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops `n` parsed bytes.
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Forgets everything (after a connection failure).
    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads once from `s`; grows or compacts the buffer only when full.
    async fn fill(&mut self, s: &mut TcpStream) -> Result<(), Fail> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() >= MAX_RECV {
                return Err(Fail::Malformed);
            } else {
                let len = (self.buf.len() * 2).max(16 << 10);
                self.buf.resize(len, 0);
            }
        }
        match s.read(&mut self.buf[self.end..]).await {
            Ok(0) | Err(_) => Err(Fail::Io),
            Ok(n) => {
                self.end += n;
                Ok(())
            }
        }
    }
}

/// Why a batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// Write or read error, or the peer closed.
    Io,
    /// A reply could not be parsed, or bytes arrived that nothing asked for.
    Malformed,
    /// The batch did not complete within the timeout.
    Timeout,
}

/// Sends batch `b` of `cycle` (at `t0`) and reads all its replies.
///
/// `done` counts replies parsed so far, so a caller whose timeout fired
/// knows how many were lost. Latencies are recorded in `hist` (nanoseconds)
/// when it is given, i.e. when the batch is measured.
#[allow(clippy::too_many_arguments)]
pub async fn run_batch(
    stream: &mut TcpStream,
    rbuf: &mut RecvBuf,
    cycle: &Cycle,
    b: usize,
    wire: &Wire,
    hist: Option<&RefCell<Histogram<u64>>>,
    c: &mut Counters,
    done: &mut usize,
    t0: Instant,
) -> Result<(), Fail> {
    let entries = cycle.batch_entries(b);
    if stream.write_all(cycle.batch_bytes(b)).await.is_err() {
        return Err(Fail::Io);
    }
    let mut now = t0;
    loop {
        let mut k = 0u64;
        while let Some(e) = entries.get(*done) {
            let exp = Expect {
                proto: wire.proto,
                kind: e.kind,
                keys: cycle.keys_of(e),
                value_len: wire.value_len,
                keyfmt: &wire.keyfmt,
            };
            match reply::parse(rbuf.data(), &exp) {
                Ok(Parsed::Done { len, outcome }) => {
                    rbuf.consume(len);
                    *done += 1;
                    k += 1;
                    c.error_replies += u64::from(outcome.error_reply);
                    c.mismatches += u64::from(outcome.mismatch);
                    if hist.is_some() && e.kind != crate::workload::Kind::Set {
                        c.keys += u64::from(e.keys_len);
                        c.hits += u64::from(outcome.hits);
                    }
                }
                Ok(Parsed::Incomplete) => break,
                Err(_) => return Err(Fail::Malformed),
            }
        }
        if let (Some(h), true) = (hist, k > 0) {
            let ns = now.duration_since(t0).as_nanos().max(1) as u64;
            h.borrow_mut().saturating_record_n(ns, k);
        }
        if *done == entries.len() {
            // Anything left over answers nothing that was sent.
            return if rbuf.data().is_empty() {
                Ok(())
            } else {
                Err(Fail::Malformed)
            };
        }
        rbuf.fill(stream).await?;
        now = Instant::now();
    }
}

/// Opens one connection with the run's timeout.
async fn connect(sh: &Shared) -> std::io::Result<TcpStream> {
    let s = tokio::time::timeout(sh.timeout, TcpStream::connect(sh.target))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    s.set_nodelay(true)?;
    Ok(s)
}

/// First batch for connection `id`: spread connections over the cycle.
fn first_batch(sh: &Shared, id: usize) -> usize {
    let mut rng = Rng::new(sh.seed ^ (id as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    rng.below(sh.cycle.batches() as u64) as usize
}

/// Runs one batch under the timeout; books the result into `c`.
///
/// `timer` is the connection's one timer. It is only re-armed when its
/// deadline is less than half a timeout away, and when it fires early for a
/// young batch, so a batch costs no timer operation in the common case.
///
/// Returns `false` when the connection must be dropped.
async fn timed_batch(
    stream: &mut TcpStream,
    rbuf: &mut RecvBuf,
    sh: &Shared,
    b: usize,
    hist: Option<&RefCell<Histogram<u64>>>,
    c: &mut Counters,
    mut timer: Pin<&mut Sleep>,
) -> bool {
    let t0 = Instant::now();
    let deadline = t0 + sh.timeout;
    if timer.deadline() < t0 + sh.timeout / 2 {
        timer.as_mut().reset(deadline);
    }
    let mut done = 0usize;
    let r = {
        let fut = run_batch(stream, rbuf, &sh.cycle, b, &sh.wire, hist, c, &mut done, t0);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                r = &mut fut => break r,
                () = timer.as_mut() => {
                    if Instant::now() >= deadline {
                        break Err(Fail::Timeout);
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    };
    let done = done as u64;
    c.total += done;
    if hist.is_some() {
        c.requests += done;
        // `--requests`: the batch that crosses zero ends the run.
        let before = sh.remaining.fetch_sub(done as i64, Ordering::Relaxed);
        if before > 0 && before <= done as i64 {
            if let Ok(mut end) = sh.end.lock() {
                *end = Some(Instant::now());
            }
            sh.phase.store(STOP, Ordering::Relaxed);
        }
    }
    match r {
        Ok(()) => true,
        Err(f) => {
            let lost = sh.cycle.batch_entries(b).len() as u64 - done;
            c.failed += lost;
            // All replies arrived but more bytes followed: count that too.
            c.mismatches += u64::from(lost == 0);
            c.timeouts += u64::from(f == Fail::Timeout);
            c.disconnects += 1;
            false
        }
    }
}

/// One closed-loop connection, until the phase is [`STOP`].
pub async fn connection(
    sh: Arc<Shared>,
    hist: Rc<RefCell<Histogram<u64>>>,
    sem: Rc<Semaphore>,
    id: usize,
) -> Counters {
    let mut c = Counters::default();
    let nb = sh.cycle.batches();
    let mut b = first_batch(&sh, id);
    let mut rbuf = RecvBuf::default();
    let mut first = true;
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    while sh.phase() != STOP {
        let conn = {
            let _permit = sem.acquire().await;
            connect(&sh).await
        };
        if first {
            sh.ready.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        let Ok(mut stream) = conn else {
            c.connect_failures += 1;
            tokio::time::sleep(RETRY).await;
            continue;
        };
        rbuf.clear();
        // `--rate`: batches at fixed times, connections staggered evenly.
        let mut next = sh.batch_interval.map(|iv| {
            tokio::time::Instant::now() + iv.mul_f64(id as f64 / sh.connections.max(1) as f64)
        });
        loop {
            if let (Some(at), Some(iv)) = (next.as_mut(), sh.batch_interval) {
                let now = tokio::time::Instant::now();
                if *at > now {
                    tokio::time::sleep_until(*at).await;
                }
                // Behind schedule (slow replies): do not burst to catch up.
                *at = (*at).max(now.checked_sub(iv).unwrap_or(now)) + iv;
            }
            let phase = sh.phase();
            if phase == STOP {
                return c;
            }
            let h = (phase == MEASURE).then_some(&*hist);
            let ok = timed_batch(&mut stream, &mut rbuf, &sh, b, h, &mut c, timer.as_mut()).await;
            b = (b + 1) % nb;
            if !ok {
                tokio::time::sleep(RETRY).await;
                break;
            }
        }
    }
    c
}

/// Hold mode: open, wait for stage 1, send one batch, wait for stage 2.
pub async fn hold_connection(
    sh: Arc<Shared>,
    sem: Rc<Semaphore>,
    mut stage: watch::Receiver<u8>,
    id: usize,
) -> Counters {
    let mut c = Counters::default();
    let conn = {
        let _permit = sem.acquire().await;
        connect(&sh).await
    };
    sh.ready.fetch_add(1, Ordering::Relaxed);
    let mut stream = match conn {
        Ok(s) => {
            sh.connected.fetch_add(1, Ordering::Relaxed);
            Some(s)
        }
        Err(_) => {
            c.connect_failures += 1;
            None
        }
    };
    let _ = stage.wait_for(|s| *s >= 1).await;
    if let Some(s) = stream.as_mut() {
        let mut rbuf = RecvBuf::default();
        let b = first_batch(&sh, id);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        timed_batch(s, &mut rbuf, &sh, b, None, &mut c, timer).await;
    }
    sh.hold_errors.fetch_add(c.errors(), Ordering::Relaxed);
    sh.hold_done.fetch_add(1, Ordering::Relaxed);
    let _ = stage.wait_for(|s| *s >= 2).await;
    c
}
