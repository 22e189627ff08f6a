//! Server connections: persistent, pipelined, replies matched FIFO.
//!
//! Clients append request bytes to a connection's output buffer and a
//! [`Pending`] entry to its FIFO; the worker's write batch writes everything
//! accumulated in one go when the hub's round ends. Once connected, the
//! socket is in the worker's hub ([`super::hub::ServerWatch`]): the hub
//! reads replies in big chunks and hands each to the request at the head of
//! the FIFO ([`ServerConnection::on_event`]), and writes what the kernel did
//! not take once the socket is writable. The connection's task connects,
//! keeps one timer for the oldest request's deadline (the FIFO is in
//! deadline order because every request of a pool has the same timeout),
//! and ends the connection when the hub or a write finds it failed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::Notify;

use rustcracker_config::Server;
use rustcracker_memcache::ValueSpan;

use crate::stats::histogram::LatencyHistogram;
use crate::stats::{LiveServerStats, WorkerStats};

use super::client::{self, Client};
use super::clock::Micros;
use super::combine;
use super::errno::Failure;
use super::pool::PoolRuntime;
use super::stream::Socket;
use super::Framed;

mod line;
mod replies;
mod task;

use line::OpenLine;
use replies::Input;
use task::run;

/// Sentinel fragment index for requests that were not split.
pub const WHOLE: u32 = u32::MAX;

/// A request written (or about to be written) to a server, awaiting its reply.
pub struct Pending {
    /// Who gets the reply; `None` for the proxy's own requests, whose replies are swallowed.
    pub client: Option<Rc<Client>>,
    pub seq: u64,
    /// Fragment index within a split request, or [`WHOLE`].
    pub fragment: u32,
    pub deadline: Option<Micros>,
}

impl Pending {
    /// Hands the reply (or the failure) to the client; `framed`: where its
    /// parts are, as framing it found them (for a merge); `backend`: the
    /// time the server took.
    fn deliver(self, outcome: Result<&[u8], Failure>, framed: Framed<'_>, backend: Micros) {
        let Some(client) = self.client else { return };
        if self.fragment == WHOLE {
            match outcome {
                Ok(reply) => client.complete(self.seq, reply, backend),
                Err(failure) => client.fail(self.seq, failure),
            }
        } else {
            client.complete_fragment(self.seq, self.fragment, outcome, framed, backend);
        }
    }

    /// Hands a member of a combined redis `MGET` its `count` elements,
    /// `body` (the client's reply is `*<count>` then `body`), which end at
    /// `ends` in `body`.
    fn deliver_elements(self, count: u32, body: &[u8], ends: &[usize], backend: Micros) {
        let Some(client) = self.client else { return };
        if self.fragment == WHOLE {
            client.complete_elements(self.seq, count, body, backend);
        } else {
            client.complete_fragment_elements(self.seq, self.fragment, count, body, ends, backend);
        }
    }

    /// Hands a member of a combined retrieval its `VALUE` blocks (the
    /// client's reply is `body` then `END`), which are at `spans` in `body`.
    fn deliver_values(self, body: &[u8], spans: &[ValueSpan], backend: Micros) {
        let Some(client) = self.client else { return };
        if self.fragment == WHOLE {
            client.complete_values(self.seq, body, backend);
        } else {
            let framed = Framed::Values(spans);
            client.complete_fragment(self.seq, self.fragment, Ok(body), framed, backend);
        }
    }
}

/// A request in a connection's FIFO.
struct Waiting {
    pending: Pending,
    /// Its length in bytes (as the client sent it), for the queue gauges.
    len: u32,
    queued: Micros,
    /// Set for the members of a combined retrieval, else 0: memcache, the
    /// bytes of the connection's `keys` that are this request's keys; redis,
    /// how many keys of the combined `MGET` are its.
    keys: u32,
    /// Joined the retrieval line of the request before it: its reply is
    /// part of that one's.
    joined: bool,
}

/// One connection to one server.
pub struct ServerConnection {
    state: RefCell<ConnectionState>,
    stats: ServerStatsRef,
    /// Wakes the connection's task: bytes to write that no write batch took
    /// (see [`super::write_batch`]), a failure, or shutdown.
    wake: Notify,
    /// The socket, once connected (taken out when the connection ends).
    socket: RefCell<Option<Socket>>,
    /// Replies read and not yet handed out.
    input: RefCell<Input>,
}

struct ConnectionState {
    out: Vec<u8>,
    /// Requests awaiting replies, oldest first.
    fifo: VecDeque<Waiting>,
    /// The retrieval line later ones may join, and its keys.
    open: Option<OpenLine>,
    open_keys: combine::KeySet,
    /// The keys of the members of combined lines, in FIFO order, each
    /// followed by a space; consumed from `keys_head` as replies come in.
    keys: Vec<u8>,
    keys_head: usize,
    /// The most keys a combined line carries; 0: retrievals are not combined.
    combine_max: usize,
    /// Combined lines' members keep their keys in `keys` (memcache: the
    /// reply is matched to them); redis members record only a key count,
    /// their reply being cut by position.
    keyed: bool,
    /// Closed after a failure; the server opens a new connection for the next request.
    broken: bool,
    /// Requests (and their bytes) queued but not yet fully written: all, and
    /// those awaiting a reply (the rest are `noreply`).
    unwritten: Queued,
    unwritten_replied: Queued,
    /// Requests written and awaiting their reply.
    outstanding: Queued,
    /// A read or a write found the connection failed: the task ends it.
    ending: Option<Ending>,
    /// The kernel did not take the last write whole: the rest goes when the
    /// socket is writable again (not at every event: a readable socket is
    /// writable too, and requests gathering for the write batch must wait
    /// for its end).
    write_blocked: bool,
}

impl ConnectionState {
    /// A new connection's state, combining up to `combine_max` keys per line
    /// (0: none); `keyed`: its members' keys are kept (memcache).
    fn new(combine_max: usize, keyed: bool) -> ConnectionState {
        ConnectionState {
            out: Vec::new(),
            fifo: VecDeque::new(),
            open: None,
            open_keys: Default::default(),
            keys: Vec::new(),
            keys_head: 0,
            combine_max,
            keyed,
            broken: false,
            unwritten: Queued::default(),
            unwritten_replied: Queued::default(),
            outstanding: Queued::default(),
            ending: None,
            write_blocked: false,
        }
    }
}

/// Why a connection is ending, as a read or a write found it.
enum Ending {
    Read(Failure),
    Write(io::Error),
}

/// A count of requests and their bytes.
#[derive(Default, Clone, Copy)]
struct Queued {
    requests: i64,
    bytes: i64,
}

/// The live counters of one server in one worker.
#[derive(Clone)]
pub struct ServerStatsRef {
    pub worker: Arc<WorkerStats>,
    pub pool: usize,
    pub server: usize,
}

impl ServerStatsRef {
    /// The server's counters.
    pub fn get(&self) -> &LiveServerStats {
        &self.worker.pools[self.pool].1[self.server]
    }

    /// The server's latency histogram.
    pub fn latency(&self) -> &LatencyHistogram {
        &self.worker.server_latency[self.pool][self.server]
    }
}

impl ServerConnection {
    /// Queues request bytes, with the entry that receives the reply (none for `noreply`).
    pub fn enqueue(self: &Rc<Self>, request: &[u8], pending: Option<Pending>) {
        let mut st = self.state.borrow_mut();
        let wake = st.out.is_empty();
        st.out.extend_from_slice(request);
        st.open = None;
        drop(st);
        self.queued(wake, request.len(), pending, 0, false);
    }

    /// Queues a memcache retrieval: `line` is `get k1 k2 …\r\n` (or `gets`),
    /// keys separated by one space. It joins the retrieval line queued just
    /// before when it can (see [`combine`]). `request_len` is what the client
    /// sent, for the stats.
    pub fn enqueue_retrieval(self: &Rc<Self>, line: &[u8], request_len: usize, pending: Pending) {
        self.enqueue_joining(request_len, pending, |st| st.put_retrieval(line));
    }

    /// Queues a redis request that may be an `MGET` others join (see
    /// [`combine`]); anything else is queued as [`ServerConnection::enqueue`] does.
    pub fn enqueue_mget(self: &Rc<Self>, request: &[u8], pending: Pending) {
        self.enqueue_joining(request.len(), pending, |st| st.put_mget(request));
    }

    /// Queues a request with `put`, which may join it to the open line
    /// (returning what [`Waiting::keys`] records for it).
    fn enqueue_joining(
        self: &Rc<Self>,
        request_len: usize,
        pending: Pending,
        put: impl FnOnce(&mut ConnectionState) -> Option<u32>,
    ) {
        let mut st = self.state.borrow_mut();
        let wake = st.out.is_empty();
        let joined = put(&mut st);
        drop(st);
        self.queued(
            wake,
            request_len,
            Some(pending),
            joined.unwrap_or(0),
            joined.is_some(),
        );
    }

    /// Counts a request just queued and enters it in the FIFO.
    fn queued(
        self: &Rc<Self>,
        wake: bool,
        len: usize,
        pending: Option<Pending>,
        keys: u32,
        joined: bool,
    ) {
        let mut st = self.state.borrow_mut();
        let bytes = len as i64;
        let stats = self.stats.get();
        stats.requests.inc();
        stats.request_bytes.add(bytes);
        stats.in_queue.inc();
        stats.in_queue_bytes.add(bytes);
        st.unwritten.requests += 1;
        st.unwritten.bytes += bytes;
        if let Some(p) = pending {
            st.unwritten_replied.requests += 1;
            st.unwritten_replied.bytes += bytes;
            super::coalesce::count_event();
            st.fifo.push_back(Waiting {
                pending: p,
                len: len as u32,
                queued: super::clock::now(),
                keys,
                joined,
            });
        }
        drop(st);
        if wake && !super::write_batch::defer(self) {
            self.wake.notify_one();
        }
    }

    /// Writes what is queued (the write batch's end, or the socket became
    /// writable): what the kernel does not take now waits for the socket to
    /// be writable again (the hub calls this then); a failure is left to the
    /// connection's task.
    pub fn flush(&self) {
        let socket = self.socket.borrow();
        // Not connected yet: the task writes once it is.
        let Some(socket) = socket.as_ref() else {
            return;
        };
        if let Err(e) = self.write_out(socket) {
            self.end_soon(Ending::Write(e));
        }
    }

    /// Marks the connection failed (nothing more is queued to it: the next
    /// request opens a new connection) and has its task end it.
    fn end_soon(&self, why: Ending) {
        let mut st = self.state.borrow_mut();
        st.broken = true;
        st.ending.get_or_insert(why);
        drop(st);
        self.wake.notify_one();
    }

    /// Writes what is queued, as much as the kernel takes now; `Ok(true)`:
    /// some is left (the socket is not writable now).
    fn write_out(&self, stream: &Socket) -> io::Result<bool> {
        let mut st = self.state.borrow_mut();
        if st.broken || st.out.is_empty() {
            return Ok(false);
        }
        let mut written = 0;
        let mut result = Ok(());
        while written < st.out.len() {
            match stream.write(&st.out[written..]) {
                Ok(0) => {
                    result = Err(io::Error::from_raw_os_error(libc::EPIPE));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if written > 0 {
            // The open line, or part of it, is on the wire: nothing joins it now.
            st.open = None;
        }
        if written == st.out.len() {
            st.out.clear();
            // A burst (thousands of clients storing big values at once)
            // can grow the buffer to megabytes: let that go once it is
            // all on the wire.
            if st.out.capacity() > OUT_KEEP {
                st.out = Vec::new();
            }
            // Everything queued is on the wire: from the in-queue to the out-queue.
            if st.unwritten.requests > 0 {
                let (all, replied) = (st.unwritten, st.unwritten_replied);
                let stats = self.stats.get();
                stats.in_queue.add(-all.requests);
                stats.in_queue_bytes.add(-all.bytes);
                stats.out_queue.add(replied.requests);
                stats.out_queue_bytes.add(replied.bytes);
                st.outstanding.requests += replied.requests;
                st.outstanding.bytes += replied.bytes;
                st.unwritten = Queued::default();
                st.unwritten_replied = Queued::default();
            }
        } else {
            st.out.drain(..written);
        }
        st.write_blocked = result.is_ok() && !st.out.is_empty();
        result.map(|()| st.write_blocked)
    }

    /// Puts the proxy's own requests (redis AUTH / SELECT) ahead of everything
    /// queued; their `count` replies are swallowed.
    pub fn prepend(&self, request: &[u8], count: usize, deadline: Option<Micros>) {
        let mut st = self.state.borrow_mut();
        st.out.splice(0..0, request.iter().copied());
        st.open = None;
        for _ in 0..count {
            let internal = Pending {
                client: None,
                seq: 0,
                fragment: WHOLE,
                deadline,
            };
            st.fifo.push_front(Waiting {
                pending: internal,
                len: 0,
                queued: super::clock::now(),
                keys: 0,
                joined: false,
            });
        }
    }

    /// Whether the connection failed and must not take more requests.
    pub fn is_broken(&self) -> bool {
        self.state.borrow().broken
    }

    /// Fails every request on the connection and marks it broken.
    fn fail_all(&self, failure: Failure) {
        // Failures come outside a read batch (timers, connects): fresh time for the latencies.
        super::clock::tick();
        let fifo = {
            let mut st = self.state.borrow_mut();
            st.broken = true;
            st.out = Vec::new();
            st.open = None;
            st.keys = Vec::new();
            st.keys_head = 0;
            let stats = self.stats.get();
            stats.in_queue.add(-st.unwritten.requests);
            stats.in_queue_bytes.add(-st.unwritten.bytes);
            stats.out_queue.add(-st.outstanding.requests);
            stats.out_queue_bytes.add(-st.outstanding.bytes);
            st.unwritten = Queued::default();
            st.unwritten_replied = Queued::default();
            st.outstanding = Queued::default();
            std::mem::take(&mut st.fifo)
        };
        let _batch = client::open_reply_batch();
        for waiting in fifo {
            waiting.pending.deliver(Err(failure), Framed::NONE, 0);
        }
    }
}

/// The least room a read gets, and the most it grows to while reads fill it.
pub(super) const READ_CHUNK: usize = 16 * 1024;
pub(super) const READ_MAX: usize = 256 * 1024;
/// The biggest read buffer a server connection keeps once it is drained:
/// big replies (a multi-get of big values) reuse it rather than map fresh
/// pages each time, and there are only a few server connections.
pub(super) const INPUT_KEEP: usize = 1 << 20;
/// The biggest output buffer a server connection keeps once it is empty.
const OUT_KEEP: usize = 256 * 1024;
/// The most requests whose room a server connection keeps in its FIFO once
/// every reply is in (a burst of thousands of clients grows it).
pub(super) const FIFO_KEEP: usize = 4096;
/// The most room for combined lines' keys a connection keeps once every reply is in.
pub(super) const KEYS_KEEP: usize = 64 * 1024;

/// One server of a pool, as one worker sees it: its connections and its
/// failure count.
pub struct ServerRuntime {
    pub index: usize,
    pub config: Server,
    connections: RefCell<Vec<Rc<ServerConnection>>>,
    next: Cell<usize>,
    /// Consecutive failures (for auto-ejection).
    pub failures: Cell<u32>,
}

impl ServerRuntime {
    /// A server with no connections yet.
    pub fn new(index: usize, config: Server) -> ServerRuntime {
        ServerRuntime {
            index,
            config,
            connections: RefCell::new(Vec::new()),
            next: Cell::new(0),
            failures: Cell::new(0),
        }
    }

    /// A connection for the next request: a new one while fewer than
    /// `server_connections` are open, else round robin over the open ones.
    pub fn connection(self: &Rc<Self>, pool: &Rc<PoolRuntime>) -> Rc<ServerConnection> {
        let mut conns = self.connections.borrow_mut();
        conns.retain(|c| !c.is_broken());
        if conns.len() < pool.config.server_connections as usize {
            let conn = self.new_connection(pool);
            conns.push(conn.clone());
            tokio::task::spawn_local(run(conn.clone(), self.clone(), pool.clone(), false));
            return conn;
        }
        let i = self.next.get() % conns.len();
        self.next.set(i + 1);
        conns[i].clone()
    }

    fn new_connection(&self, pool: &PoolRuntime) -> Rc<ServerConnection> {
        let worker = pool.stats.clone();
        worker.total_connections.inc();
        worker.curr_connections.inc();
        Rc::new(ServerConnection {
            state: RefCell::new(ConnectionState::new(
                pool.combine_keys,
                pool.protocol == super::Protocol::Memcache,
            )),
            stats: ServerStatsRef {
                worker,
                pool: pool.index,
                server: self.index,
            },
            wake: Notify::new(),
            socket: RefCell::new(None),
            input: RefCell::new(Input::new(pool.protocol)),
        })
    }

    /// Opens one connection ahead of traffic (`preconnect`); failures are only logged.
    pub fn preconnect(self: &Rc<Self>, pool: &Rc<PoolRuntime>) {
        let mut conns = self.connections.borrow_mut();
        if !conns.is_empty() {
            return;
        }
        let conn = self.new_connection(pool);
        conns.push(conn.clone());
        tokio::task::spawn_local(run(conn, self.clone(), pool.clone(), true));
    }

    /// Closes every connection (shutdown).
    pub fn close_all(&self) {
        for conn in self.connections.borrow_mut().drain(..) {
            conn.state.borrow_mut().broken = true;
            conn.wake.notify_one();
        }
    }
}
