//! The task behind one client connection: read big, parse every complete
//! request, route it, and write replies back in request order.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use super::client::Client;
use super::pool::PoolRuntime;
use super::redis::RedisSession;
use super::stream::Stream;
use super::worker::{WorkerRuntime, SWEEP_PERIOD};
use super::{memcache, Protocol};

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Stop reading a client while this many replies are owed to it (backpressure).
const MAX_OUTSTANDING: usize = 64 * 1024;
/// Stop reading a client while this many reply bytes wait for it to read them.
const MAX_READY_BYTES: usize = 4 * 1024 * 1024;

/// What parsing a client's buffer did.
pub struct Dispatched {
    /// Bytes of the buffer used up.
    pub consumed: usize,
    /// The buffer length needed before parsing can make progress (0: unknown).
    pub need: usize,
    /// Stop reading, and why.
    pub stop: Option<Stop>,
}

/// Why a client session stops reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `quit` / `QUIT`: counted as the client's EOF.
    Quit,
    /// A request the connection cannot survive (framing lost): a client error.
    Error,
}

impl Dispatched {
    /// Parsing goes on with the next read.
    pub fn more(consumed: usize, need: usize) -> Dispatched {
        Dispatched {
            consumed,
            need,
            stop: None,
        }
    }

    /// No more requests are read from this client.
    pub fn stop(consumed: usize, stop: Stop) -> Dispatched {
        Dispatched {
            consumed,
            need: 0,
            stop: Some(stop),
        }
    }
}

/// How a session ended.
enum Ended {
    /// The client left (or must be dropped).
    Closed(Stop),
    /// The client has been idle for a whole sweep period: park it.
    Idle,
}

/// Serves one client until it leaves, the proxy shuts down, or it goes
/// idle long enough to be parked. `authenticated`: a redis client that
/// passed AUTH before it was parked.
pub async fn run(
    stream: Stream,
    pool: Rc<PoolRuntime>,
    worker: Rc<WorkerRuntime>,
    authenticated: bool,
) {
    let stream = Rc::new(stream);
    let client = Rc::new(Client::new(
        pool.protocol,
        pool.stats.clone(),
        pool.index,
        stream.clone(),
    ));
    let mut redis = RedisSession::resume(authenticated);
    let ended = match serve(&stream, &client, &pool, &worker, &mut redis).await {
        Ok(ended) => ended,
        Err(e) => {
            crate::log_info!("client of pool '{}' closed: {e}", pool.config.name);
            Ended::Closed(Stop::Error)
        }
    };
    client.close();
    drop(client);
    match ended {
        Ended::Closed(stop) => client_closed(&pool, stop),
        // `serve` parks only when nothing but the session holds the client,
        // so the socket is the session's alone again.
        Ended::Idle => match Rc::try_unwrap(stream).map(Stream::into_parked) {
            Ok(Ok(socket)) => worker.park_idle(socket, pool.index, redis.authenticated()),
            Ok(Err(e)) => {
                crate::log_info!("client of pool '{}' closed: {e}", pool.config.name);
                client_closed(&pool, Stop::Error);
            }
            Err(_) => {
                crate::log_error!(
                    "client of pool '{}' closed: still referenced when parked",
                    pool.config.name
                );
                client_closed(&pool, Stop::Error);
            }
        },
    }
}

/// Counts a client as connected (at accept).
pub fn client_opened(pool: &PoolRuntime) {
    pool.pool_stats().client_connections.inc();
    pool.stats.total_connections.inc();
    pool.stats.curr_connections.inc();
}

/// Counts a client as gone: by EOF (`Quit`) or by error.
pub fn client_closed(pool: &PoolRuntime, ended: Stop) {
    let stats = pool.pool_stats();
    match ended {
        Stop::Quit => stats.client_eof.inc(),
        Stop::Error => stats.client_err.inc(),
    }
    stats.client_connections.add(-1);
    pool.stats.curr_connections.add(-1);
    pool.clients.fetch_sub(1, Ordering::Relaxed);
}

async fn serve(
    stream: &Stream,
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    worker: &WorkerRuntime,
    redis: &mut RedisSession,
) -> io::Result<Ended> {
    let mut input: Vec<u8> = Vec::new();
    let mut need = 0usize;
    let mut reading = true;
    let mut ended = Stop::Quit;
    // A sweep woke the session. Buffers a burst grew are kept while the
    // client is active (a run of big replies reuses them instead of mapping
    // fresh pages for each) and given back at the first sweep that finds it idle.
    let mut swept = false;
    // This client's mark for the coalescer's count of clients per period.
    let mut counted = super::coalesce::NOT_COUNTED;
    // The worker's signal: made once and polled only to register (then kept
    // until it fires), rather than made per wait; a signal is told by the
    // worker's count of them, not by polling the future.
    let mut signal = pin!(worker.signalled());
    let mut signal_registered = false;
    let mut signals_seen = worker.signals();
    loop {
        if reading && worker.shutting_down() {
            // Shutdown: stop taking requests, finish the ones in flight.
            reading = false;
        }
        let flushed = client.flush()?;
        if !reading && flushed && client.outstanding() == 0 {
            return Ok(Ended::Closed(ended));
        }
        let idle = flushed && client.outstanding() == 0 && input.is_empty();
        if idle {
            // Quiet for a whole sweep period (checked when a sweep wakes the
            // session), and no reply batch still holds the client: park.
            if client.quiet_for() >= SWEEP_PERIOD && Rc::strong_count(client) == 1 {
                return Ok(Ended::Idle);
            }
            if swept {
                // Idle at a sweep: give big buffers back (nutcracker never does).
                input = Vec::new();
                client.shrink();
            }
        }
        swept = false;
        let room = client.outstanding() < MAX_OUTSTANDING && client.ready_bytes() < MAX_READY_BYTES;
        // Not reading: the session moves on only as replies go out, so it
        // must be woken for those a server connection writes itself.
        client.await_replies(!(reading && room));
        // The first of these that is ready, in this order.
        let woke = poll_fn(|cx| {
            if reading && room {
                if let Poll::Ready(ready) = stream.poll_read_ready(cx) {
                    return Poll::Ready(ready.map(|()| Woke::Readable));
                }
            }
            if !flushed {
                if let Poll::Ready(ready) = stream.poll_write_ready(cx) {
                    return Poll::Ready(ready.map(|()| Woke::Writable));
                }
            }
            if flushed && client.wake.poll(cx).is_ready() {
                return Poll::Ready(Ok(Woke::Replies));
            }
            if reading {
                let fired = worker.signals() != signals_seen
                    || (!signal_registered && signal.as_mut().poll(cx).is_ready());
                signal_registered = true;
                if fired {
                    signals_seen = worker.signals();
                    signal.set(worker.signalled());
                    signal_registered = false;
                    return Poll::Ready(Ok(Woke::Signal));
                }
            }
            Poll::Pending
        })
        .await?;
        match woke {
            Woke::Readable => {
                super::coalesce::count_client(&mut counted);
                let mut requests = Requests {
                    input: &mut input,
                    need: &mut need,
                    redis: &mut *redis,
                };
                match requests.read_and_dispatch(stream, client, pool) {
                    Ok(Some(Some(stop))) => {
                        ended = stop;
                        reading = false;
                    }
                    Ok(Some(None)) => {}
                    // EOF or half-close: answer the complete requests, drop a partial one.
                    Ok(None) => reading = false,
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                if !reading {
                    input = Vec::new();
                    need = 0;
                }
            }
            // Flushed at the top of the loop.
            Woke::Writable | Woke::Replies => {}
            // A shutdown or an idle sweep: both are checked at the top.
            Woke::Signal => swept = true,
        }
    }
}

/// What a session's wait ended with.
enum Woke {
    /// The client sent something (or closed).
    Readable,
    /// The client's socket takes more of the replies waiting for it.
    Writable,
    /// A server connection left replies for the session to write.
    Replies,
    /// A shutdown or an idle sweep.
    Signal,
}

thread_local! {
    /// The worker's read buffer. A client reads into it and keeps bytes of its
    /// own only for a request that is not complete yet, so idle clients hold
    /// no input buffer and busy ones allocate nothing per request.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Size of the worker's shared read buffer.
const SCRATCH_SIZE: usize = 64 * 1024;

/// A client's input state while reading.
struct Requests<'a> {
    /// Bytes of a request not complete yet (empty between requests).
    input: &'a mut Vec<u8>,
    /// The length `input` must reach before parsing is worth trying again.
    need: &'a mut usize,
    redis: &'a mut RedisSession,
}

impl Requests<'_> {
    /// Reads what is available and routes every complete request.
    /// `Ok(None)`: end of input; `Ok(Some(stop))`: whether to stop reading.
    fn read_and_dispatch(
        &mut self,
        stream: &Stream,
        client: &Rc<Client>,
        pool: &Rc<PoolRuntime>,
    ) -> io::Result<Option<Option<Stop>>> {
        if self.input.is_empty() {
            return SCRATCH.with(|scratch| {
                let mut buf = scratch.borrow_mut();
                buf.clear();
                buf.reserve(SCRATCH_SIZE);
                if stream.read_available(&mut buf)? == 0 {
                    return Ok(None);
                }
                let done = self.dispatch(client, pool, &buf);
                if done.stop.is_none() && done.consumed < buf.len() {
                    self.input.extend_from_slice(&buf[done.consumed..]);
                    *self.need = done.need.saturating_sub(done.consumed);
                }
                Ok(Some(done.stop))
            });
        }
        if self.input.capacity() - self.input.len() < READ_CHUNK / 2 {
            self.input.reserve(READ_CHUNK.max(self.input.len()));
        }
        if stream.read_available(self.input)? == 0 {
            return Ok(None);
        }
        if self.input.len() < *self.need {
            return Ok(Some(None));
        }
        let input = std::mem::take(self.input);
        let done = self.dispatch(client, pool, &input);
        *self.input = input;
        if done.stop.is_some() || done.consumed == self.input.len() {
            self.input.clear();
            *self.need = 0;
        } else {
            self.input.drain(..done.consumed);
            *self.need = done.need.saturating_sub(done.consumed);
        }
        Ok(Some(done.stop))
    }

    fn dispatch(
        &mut self,
        client: &Rc<Client>,
        pool: &Rc<PoolRuntime>,
        input: &[u8],
    ) -> Dispatched {
        // One clock read for the whole batch of requests.
        super::clock::tick();
        client.touch();
        match pool.protocol {
            Protocol::Memcache => memcache::dispatch(client, pool, input),
            Protocol::Redis => super::redis::dispatch(client, pool, input, self.redis),
        }
    }
}
