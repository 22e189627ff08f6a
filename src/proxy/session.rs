//! The task behind one client connection: read big, parse every complete
//! request, route it, and write replies back in request order.

use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::client::Client;
use super::pool::PoolRuntime;
use super::redis::RedisSession;
use super::stream::Stream;
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

/// Serves one client until it leaves (or the proxy shuts down).
pub async fn run(stream: Stream, pool: Rc<PoolRuntime>, mut shutdown: watch::Receiver<bool>) {
    let stats = pool.pool_stats();
    stats.client_connections.inc();
    pool.stats.total_connections.inc();
    pool.stats.curr_connections.inc();
    let client = Rc::new(Client::new(pool.protocol, pool.stats.clone(), pool.index));
    let mut ended = Stop::Quit;
    let result = serve(&stream, &client, &pool, &mut shutdown, &mut ended).await;
    if let Err(e) = result {
        crate::log_info!("client of pool '{}' closed: {e}", pool.config.name);
        ended = Stop::Error;
    }
    let stats = pool.pool_stats();
    match ended {
        Stop::Quit => stats.client_eof.inc(),
        Stop::Error => stats.client_err.inc(),
    }
    stats.client_connections.add(-1);
    pool.stats.curr_connections.add(-1);
    client.close();
    pool.clients.fetch_sub(1, Ordering::Relaxed);
}

async fn serve(
    stream: &Stream,
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    shutdown: &mut watch::Receiver<bool>,
    ended: &mut Stop,
) -> io::Result<()> {
    let mut input: Vec<u8> = Vec::new();
    let mut need = 0usize;
    let mut reading = !*shutdown.borrow();
    let mut redis = RedisSession::default();
    loop {
        let flushed = client.flush_to(stream)?;
        if !reading && flushed && client.outstanding() == 0 {
            return Ok(());
        }
        if flushed && client.outstanding() == 0 && input.is_empty() {
            // Idle: give big buffers back (nutcracker never does).
            input = Vec::new();
            client.shrink();
        }
        let room = client.outstanding() < MAX_OUTSTANDING && client.ready_bytes() < MAX_READY_BYTES;
        tokio::select! {
            biased;
            ready = stream.readable(), if reading && room => {
                ready?;
                let mut requests = Requests { input: &mut input, need: &mut need, redis: &mut redis };
                match requests.read_and_dispatch(stream, client, pool) {
                    Ok(Some(Some(stop))) => {
                        *ended = stop;
                        reading = false;
                    }
                    Ok(Some(None)) => {}
                    // EOF or half-close: answer the complete requests, drop a partial one.
                    Ok(None) => reading = false,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                if !reading {
                    input = Vec::new();
                    need = 0;
                }
            }
            ready = stream.writable(), if !flushed => { ready?; }
            _ = client.wake.notified(), if flushed => {}
            _ = shutdown.changed(), if reading => {
                // Shutdown: stop taking requests, finish the ones in flight.
                reading = false;
            }
        }
    }
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
        match pool.protocol {
            Protocol::Memcache => memcache::dispatch(client, pool, input),
            Protocol::Redis => super::redis::dispatch(client, pool, input, self.redis),
        }
    }
}
