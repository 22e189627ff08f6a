//! One client's session: read big, parse every complete request, route it,
//! and write replies back in request order. The worker's hub (see
//! `hub.rs`) steps it when its socket has an event or something is due.

use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::client::Client;
use super::hub::{Parked, SessionWake};
use super::pool::PoolRuntime;
use super::redis::RedisSession;
use super::stream::Socket;
use super::worker::{WorkerRuntime, SWEEP_PERIOD};
use super::{memcache, Protocol};

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Stop reading a client while this many replies are owed to it (backpressure).
const MAX_OUTSTANDING: usize = 64 * 1024;
/// Stop reading a client while this many reply bytes wait for it to read them.
const MAX_READY_BYTES: usize = 4 * 1024 * 1024;
/// Reads a step makes from a client that keeps sending before the others
/// get their turn.
const READS_PER_STEP: usize = 8;

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

/// Why a session is stepped.
#[derive(Clone, Copy)]
pub enum Why {
    /// Its socket had an event: `readable` when there may be bytes, an EOF
    /// or an error to read; `closed` when the peer closed its side or the
    /// socket failed (which stays so: a read will tell).
    Event { readable: bool, closed: bool },
    /// A [`SessionWake`]: replies to send, or to wait for.
    Wake,
    /// A worker signal: an idle sweep or the shutdown.
    Signal,
}

/// How a step ended.
pub enum Outcome {
    /// The session waits for an event, a wake-up or a signal.
    Wait,
    /// It has more to read: it goes on after the other clients' turn.
    Again,
    /// The client left (or must be dropped).
    Closed(Stop),
    /// The client has been idle for a whole sweep period: park it.
    Idle,
}

/// A client being served.
pub struct Session {
    socket: Rc<Socket>,
    client: Rc<Client>,
    pool: Rc<PoolRuntime>,
    redis: RedisSession,
    /// Bytes of a request not complete yet.
    input: Input,
    /// The length `input` must reach before parsing is worth trying again.
    need: usize,
    /// Still taking requests (not after quit, EOF or shutdown).
    reading: bool,
    /// How the client ends once it stops reading.
    ended: Stop,
    /// A sweep came: buffers a burst grew are kept while the client is
    /// active (a run of big replies reuses them instead of mapping fresh
    /// pages for each) and given back at the first sweep that finds it idle.
    swept: bool,
    /// This client's mark for the coalescer's count of clients per period.
    counted: u32,
    /// The socket may have bytes: it had an event since a read last drained it.
    readable: bool,
    /// The peer closed its side, or the socket failed: reads go on until
    /// they say so (an edge that will not come again).
    read_closed: bool,
}

impl Session {
    /// A session for a parked client that spoke (`None`: its pool is gone).
    pub fn resume(parked: Parked, slot: u32, worker: &WorkerRuntime) -> Option<Box<Session>> {
        let pool = worker.pools.get(parked.pool as usize)?.clone();
        let socket = Rc::new(parked.socket);
        let client = Rc::new(Client::new(
            pool.protocol,
            pool.stats.clone(),
            pool.index,
            socket.clone(),
            SessionWake::new(&worker.hub, slot),
        ));
        Some(Box::new(Session {
            socket,
            client,
            pool,
            redis: RedisSession::resume(parked.authenticated),
            input: Input::default(),
            need: 0,
            reading: true,
            ended: Stop::Quit,
            swept: false,
            counted: super::coalesce::NOT_COUNTED,
            readable: true,
            read_closed: false,
        }))
    }

    /// The session's reply queue.
    pub fn client(&self) -> &Rc<Client> {
        &self.client
    }

    /// The index of the client's pool in the worker.
    pub fn pool_index(&self) -> u32 {
        self.pool.index as u32
    }

    /// The client is gone: replies still on their way are dropped on arrival.
    pub fn close(self: Box<Self>) {
        self.client.close();
    }

    /// Gives up everything but the socket (`None`: something else still
    /// holds it; [`Outcome::Idle`] comes only when nothing does).
    pub fn park(self: Box<Self>) -> Option<Parked> {
        let Session {
            socket,
            client,
            pool,
            redis,
            ..
        } = *self;
        client.close();
        drop(client);
        Some(Parked {
            socket: Rc::try_unwrap(socket).ok()?,
            pool: pool.index as u32,
            authenticated: redis.authenticated(),
        })
    }

    /// Does what `why` asks and whatever follows from it without waiting.
    pub fn step(&mut self, worker: &WorkerRuntime, why: Why) -> Outcome {
        match why {
            Why::Event { readable, closed } => {
                self.readable |= readable;
                self.read_closed |= closed;
            }
            Why::Wake => {}
            Why::Signal => self.swept = true,
        }
        match self.serve(worker) {
            Ok(outcome) => outcome,
            Err(e) => {
                crate::log_info!("client of pool '{}' closed: {e}", self.pool.config.name);
                Outcome::Closed(Stop::Error)
            }
        }
    }

    fn serve(&mut self, worker: &WorkerRuntime) -> io::Result<Outcome> {
        let mut reads = 0;
        loop {
            if self.reading && worker.shutting_down() {
                // Shutdown: stop taking requests, finish the ones in flight.
                self.reading = false;
            }
            let client = &self.client;
            let flushed = client.flush()?;
            if !self.reading && flushed && client.outstanding() == 0 {
                return Ok(Outcome::Closed(self.ended));
            }
            // Only a sweep's step asks whether the client is idle: the
            // question costs a clock subtraction, and a step for a request
            // would ask it every time.
            if self.swept && flushed && client.outstanding() == 0 && self.input.is_empty() {
                // Quiet for a whole sweep period, and no reply batch still
                // holds the client: park.
                if client.quiet_for() >= SWEEP_PERIOD && Rc::strong_count(client) == 1 {
                    return Ok(Outcome::Idle);
                }
                // Idle at a sweep: give big buffers back (nutcracker never does).
                self.input = Input::default();
                client.shrink();
            }
            self.swept = false;
            let room =
                client.outstanding() < MAX_OUTSTANDING && client.ready_bytes() < MAX_READY_BYTES;
            // Not reading: the session moves on only as replies go out, so it
            // must be woken for those a server connection writes itself.
            client.await_replies(!(self.reading && room));
            if !(self.reading && room && (self.readable || self.read_closed)) {
                return Ok(Outcome::Wait);
            }
            if reads == READS_PER_STEP {
                return Ok(Outcome::Again);
            }
            reads += 1;
            super::coalesce::count_client(&mut self.counted);
            match self.read_and_dispatch()? {
                Some(Some(stop)) => {
                    self.ended = stop;
                    self.reading = false;
                }
                Some(None) => {}
                // EOF or half-close: answer the complete requests, drop a partial one.
                None => self.reading = false,
            }
            if !self.reading {
                self.input = Input::default();
                self.need = 0;
            }
        }
    }

    /// Reads what is available and routes every complete request.
    /// `Ok(None)`: end of input; `Ok(Some(stop))`: whether to stop reading.
    fn read_and_dispatch(&mut self) -> io::Result<Option<Option<Stop>>> {
        if self.input.is_empty() {
            return SCRATCH.with(|scratch| {
                let mut buf = scratch.borrow_mut();
                if buf.len() < SCRATCH_SIZE {
                    buf.resize(SCRATCH_SIZE, 0);
                }
                let n = match read(&self.socket, &mut self.readable, &mut buf)? {
                    Some(0) => return Ok(None),
                    Some(n) => n,
                    None => return Ok(Some(None)),
                };
                let done = dispatch(&self.client, &self.pool, &mut self.redis, &buf[..n]);
                if done.stop.is_none() && done.consumed < n {
                    self.input.extend(&buf[done.consumed..n]);
                    self.need = done.need.saturating_sub(done.consumed);
                }
                Ok(Some(done.stop))
            });
        }
        let n = match read(&self.socket, &mut self.readable, self.input.room())? {
            Some(0) => return Ok(None),
            Some(n) => n,
            None => return Ok(Some(None)),
        };
        self.input.filled += n;
        if self.input.filled < self.need {
            return Ok(Some(None));
        }
        let done = dispatch(
            &self.client,
            &self.pool,
            &mut self.redis,
            self.input.bytes(),
        );
        if done.stop.is_some() || done.consumed == self.input.filled {
            self.input.filled = 0;
            self.need = 0;
        } else {
            self.input.consume(done.consumed);
            self.need = done.need.saturating_sub(done.consumed);
        }
        Ok(Some(done.stop))
    }
}

/// Reads into `buf` what `socket` has. `Ok(None)`: nothing now. A short read
/// drained the socket, so `readable` is cleared: the next bytes bring an
/// event (an EOF, once seen closed, does not: see `Session::read_closed`).
fn read(socket: &Socket, readable: &mut bool, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match socket.read(buf) {
        Ok(n) => {
            if n < buf.len() {
                *readable = false;
            }
            Ok(Some(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            *readable = false;
            Ok(None)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
        Err(e) => Err(e),
    }
}

/// Routes every complete request in `input` (one clock read for the batch).
fn dispatch(
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    redis: &mut RedisSession,
    input: &[u8],
) -> Dispatched {
    super::clock::tick();
    client.touch();
    match pool.protocol {
        Protocol::Memcache => memcache::dispatch(client, pool, input),
        Protocol::Redis => super::redis::dispatch(client, pool, input, redis),
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

/// The bytes of a request not complete yet: `bytes[..filled]`. The rest of
/// `bytes` is room for reads, initialized once when it grows (reads take
/// initialized memory, and zeroing only at growth keeps them from paying it
/// again for every read).
#[derive(Default)]
struct Input {
    bytes: Vec<u8>,
    filled: usize,
}

impl Input {
    fn is_empty(&self) -> bool {
        self.filled == 0
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.filled]
    }

    /// Appends `more` (the start of a request a read left incomplete).
    fn extend(&mut self, more: &[u8]) {
        let end = self.filled + more.len();
        if self.bytes.len() < end {
            self.bytes.resize(end.max(READ_CHUNK), 0);
        }
        self.bytes[self.filled..end].copy_from_slice(more);
        self.filled = end;
    }

    /// Room for the next read: at least half a [`READ_CHUNK`], and growing
    /// with what is held (so a huge request takes few reads).
    fn room(&mut self) -> &mut [u8] {
        if self.bytes.len() - self.filled < READ_CHUNK / 2 {
            let grown = self.filled + READ_CHUNK.max(self.filled);
            self.bytes.resize(grown, 0);
        }
        &mut self.bytes[self.filled..]
    }

    /// Drops the first `n` bytes (requests dispatched).
    fn consume(&mut self, n: usize) {
        self.bytes.copy_within(n..self.filled, 0);
        self.filled -= n;
    }
}
