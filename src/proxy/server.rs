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
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::Notify;

use rustcracker_config::Server;
use rustcracker_memcache::ValueSpan;

use crate::stats::histogram::LatencyHistogram;
use crate::stats::{LiveServerStats, WorkerStats};

use super::client::{self, Client};
use super::clock::Micros;
use super::combine::{self, Cut};
use super::errno::Failure;
use super::pool::PoolRuntime;
use super::stream::Socket;
use super::timer::Timer;
use super::{Framed, ResponseParse, ResponseReader};

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
    /// Bytes of the connection's `keys` that are this request's keys: set
    /// for the members of a combined retrieval, else 0.
    keys: u32,
    /// Joined the retrieval line of the request before it: its reply is
    /// part of that one's.
    joined: bool,
}

/// The members of a combined line while its reply is shared out: their
/// keys, and where each one's part of the reply is (kept by the connection's
/// task, so that nothing is allocated per reply).
#[derive(Default)]
struct Group {
    members: Vec<Waiting>,
    keys: Vec<u8>,
    bodies: Vec<std::ops::Range<usize>>,
    /// Per member, in turn: its blocks' spans within its body.
    spans: Vec<ValueSpan>,
}

/// The `get` / `gets` line at the end of a connection's output, not yet
/// written, that later retrievals may join (see [`combine`]).
#[derive(Clone, Copy)]
struct OpenLine {
    gets: bool,
    /// Where the line starts and ends in `out` (it is joinable only while
    /// it still ends `out`).
    start: usize,
    end: usize,
    keys: usize,
    /// Another request joined it (the first one's keys were recorded then).
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

/// A connection's replies as they are read and parsed.
struct Input {
    bytes: Vec<u8>,
    /// Room to read into: doubles while reads fill it, so a burst of replies
    /// is read in one call rather than one per 16 KiB.
    chunk: usize,
    /// Where the next reply starts in `bytes`.
    start: usize,
    /// The length `bytes` must reach before the reply at `start` can be whole.
    need: usize,
    reader: ResponseReader,
    group: Group,
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
    /// Closed after a failure; the server opens a new connection for the next request.
    broken: bool,
    /// Requests (and their bytes) queued but not yet fully written: all, and
    /// those awaiting a reply (the rest are `noreply`).
    unwritten: Queued,
    unwritten_replied: Queued,
    /// Requests written and awaiting their reply.
    outstanding: Queued,
    /// A write outside the connection's task failed: the task ends the
    /// connection with it.
    write_error: Option<io::Error>,
    /// Reading found the connection failed: the task ends it with this.
    ended: Option<Failure>,
    /// The kernel did not take the last write whole: the rest goes when the
    /// socket is writable again (not at every event: a readable socket is
    /// writable too, and requests gathering for the write batch must wait
    /// for its end).
    write_blocked: bool,
}

/// The keys of a retrieval line `get k1 k2\r\n` (`gets …` when `gets`): `k1 k2`.
fn keys_on(line: &[u8], gets: bool) -> &[u8] {
    // The proxy writes these lines itself: the command, one space, the keys, `\r\n`.
    let start = if gets { 5 } else { 4 };
    line.get(start..line.len().saturating_sub(2))
        .unwrap_or_default()
}

/// How many keys a line's `keys` (from [`keys_on`]) hold, counted up to one
/// more than [`combine::MEMBER_KEYS_MAX`]: a line with more never joins
/// another, so a multi-get's fragment of 50 keys is not scanned to its end.
fn key_count(keys: &[u8]) -> usize {
    keys.iter()
        .filter(|&&b| b == b' ')
        .take(combine::MEMBER_KEYS_MAX)
        .count()
        + 1
}

impl ConnectionState {
    /// A new connection's state, combining up to `combine_max` keys per line (0: none).
    fn new(combine_max: usize) -> ConnectionState {
        ConnectionState {
            out: Vec::new(),
            fifo: VecDeque::new(),
            open: None,
            open_keys: Default::default(),
            keys: Vec::new(),
            keys_head: 0,
            combine_max,
            broken: false,
            unwritten: Queued::default(),
            unwritten_replied: Queued::default(),
            outstanding: Queued::default(),
            write_error: None,
            ended: None,
            write_blocked: false,
        }
    }

    /// Puts retrieval `line` in `out`: joined to the open line when it may
    /// be (returning the bytes its keys take in `keys`), else as the new open line.
    fn put_retrieval(&mut self, line: &[u8]) -> Option<u32> {
        let gets = line.starts_with(b"gets ");
        let new_keys = keys_on(line, gets);
        let keys = key_count(new_keys);
        let combinable = self.combine_max > 0 && keys <= combine::MEMBER_KEYS_MAX;
        let joined = if combinable {
            self.join(new_keys, gets, keys)
        } else {
            None
        };
        if joined.is_none() {
            let start = self.out.len();
            self.out.extend_from_slice(line);
            self.open = None;
            if combinable {
                self.open_keys.clear();
                for key in new_keys.split(|&b| b == b' ') {
                    self.open_keys.insert(key);
                }
                self.open = Some(OpenLine {
                    gets,
                    start,
                    end: self.out.len(),
                    keys,
                    joined: false,
                });
            }
        }
        joined
    }

    /// Joins a retrieval of `new_keys` (`count` of them) to the open line if
    /// it may: same command, the open line still unwritten and last in `out`,
    /// within the line bounds, and none of the keys already on it. Returns the
    /// bytes its keys take in `keys`.
    fn join(&mut self, new_keys: &[u8], gets: bool, count: usize) -> Option<u32> {
        let mut open = self.open?;
        if open.end != self.out.len()
            || open.gets != gets
            || new_keys.is_empty()
            || open.keys + count > self.combine_max
            || open.end - open.start + new_keys.len() + 1 > combine::LINE_MAX
        {
            return None;
        }
        // None of the new keys may be on the line already (a repeat within
        // them is theirs to keep); they go into the line's key set once
        // they join.
        let open_keys = keys_on(&self.out[open.start..open.end], gets);
        let mut bits = [[0; 2]; combine::MEMBER_KEYS_MAX];
        for (slot, key) in bits.iter_mut().zip(new_keys.split(|&b| b == b' ')) {
            *slot = combine::KeySet::bits(key);
            if self.open_keys.may_hold(*slot) && combine::has_key(open_keys, key) {
                return None;
            }
        }
        for &key_bits in &bits[..count] {
            self.open_keys.insert_bits(key_bits);
        }
        if !open.joined {
            // The line's first request has company now: record its keys too
            // (its FIFO entry is the last one: nothing was queued after it).
            let first = self.fifo.back_mut()?;
            first.keys = open_keys.len() as u32 + 1;
            self.keys.extend_from_slice(open_keys);
            self.keys.push(b' ');
            open.joined = true;
        }
        self.out.truncate(open.end - 2);
        self.out.push(b' ');
        self.out.extend_from_slice(new_keys);
        self.out.extend_from_slice(b"\r\n");
        self.keys.extend_from_slice(new_keys);
        self.keys.push(b' ');
        open.keys += count;
        open.end = self.out.len();
        self.open = Some(open);
        Some(new_keys.len() as u32 + 1)
    }

    /// Takes the requests a reply is for: the FIFO's head, or when it heads
    /// a combined line, every member (into `group`, with their keys).
    fn take_reply(&mut self, group: &mut Group) -> Option<Waiting> {
        let head = self.fifo.pop_front()?;
        if head.keys == 0 {
            return Some(head);
        }
        let mut total = head.keys as usize;
        group.members.push(head);
        while let Some(member) = self.fifo.pop_front() {
            if !member.joined {
                self.fifo.push_front(member);
                break;
            }
            total += member.keys as usize;
            group.members.push(member);
        }
        let end = (self.keys_head + total).min(self.keys.len());
        group
            .keys
            .extend_from_slice(&self.keys[self.keys_head..end]);
        self.keys_head = end;
        if self.keys_head == self.keys.len() {
            self.keys.clear();
            self.keys_head = 0;
        }
        None
    }
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
        let mut st = self.state.borrow_mut();
        let wake = st.out.is_empty();
        let joined = st.put_retrieval(line);
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
            let mut st = self.state.borrow_mut();
            // Nothing more goes to it: the next request opens a new connection.
            st.broken = true;
            st.write_error = Some(e);
            drop(st);
            self.wake.notify_one();
        }
    }

    /// The hub found the socket ready: reads and hands out the replies there
    /// are, and writes what the kernel did not take before. `closed`: the
    /// event also said the server closed (or the socket has an error).
    pub fn on_event(&self, server: &ServerRuntime, readable: bool, writable: bool, closed: bool) {
        let (broken, blocked) = {
            let st = self.state.borrow();
            (st.broken, st.write_blocked)
        };
        if broken {
            return;
        }
        if writable && blocked {
            self.flush();
        }
        if readable {
            if let Err(failure) = self.read_replies(server, closed) {
                let mut st = self.state.borrow_mut();
                st.broken = true;
                st.ended = Some(failure);
                drop(st);
                self.wake.notify_one();
            }
        }
    }

    /// Reads until the socket is drained, handing out each whole reply;
    /// `closed`: until the end of the stream shows (the edge that said so
    /// does not come again).
    fn read_replies(&self, server: &ServerRuntime, closed: bool) -> Result<(), Failure> {
        let socket = self.socket.borrow();
        let Some(socket) = socket.as_ref() else {
            return Ok(());
        };
        let mut input = self.input.borrow_mut();
        let input = &mut *input;
        loop {
            // Room for the rest of a reply of known size at once (up to a
            // bound: the size comes from the server's bytes), and for `chunk`.
            let rest = input.need.saturating_sub(input.bytes.len()).min(INPUT_KEEP);
            let wanted = input.chunk.max(rest);
            if input.bytes.capacity() - input.bytes.len() < wanted / 2 {
                input.bytes.reserve(wanted);
            }
            let room = input.bytes.capacity() - input.bytes.len();
            // A read that comes back short drained the socket: the next bytes
            // bring a new event (edge-triggered), so no read to see EAGAIN;
            // unless the server closed, which no later event would tell.
            let drained = match socket.read_into(&mut input.bytes) {
                Ok(0) => {
                    let outstanding = self.state.borrow().fifo.len();
                    crate::log_info!(
                        "s to '{}' closed by server, {outstanding} outstanding",
                        server.config.pname
                    );
                    return Err(Failure::Unknown);
                }
                Ok(n) if n == room => {
                    input.chunk = (input.chunk * 2).min(READ_MAX);
                    false
                }
                Ok(_) => !closed,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    crate::log_error!("recv on s to '{}' failed: {e}", server.config.pname);
                    return Err(Failure::from_io(&e));
                }
            };
            if input.bytes.len() >= input.need {
                self.hand_out(input, server)?;
            }
            if drained {
                return Ok(());
            }
        }
    }

    /// Hands out every whole reply in `input`, keeping the unparsed tail.
    fn hand_out(&self, input: &mut Input, server: &ServerRuntime) -> Result<(), Failure> {
        // One clock read per batch of replies, for the latency histogram.
        let arrived = super::clock::tick();
        // Clients answered in this batch are written to when it ends.
        let _batch = client::open_reply_batch();
        let Input {
            bytes,
            chunk,
            start,
            need,
            reader,
            group,
        } = input;
        loop {
            let buf = &bytes[*start..];
            match reader.parse(buf) {
                ResponseParse::Incomplete(needed) => {
                    *need = *start + needed;
                    break;
                }
                ResponseParse::Invalid => {
                    crate::log_error!("parsed bad response from '{}'", server.config.pname);
                    return Err(Failure::INVALID);
                }
                ResponseParse::Response {
                    len,
                    server_failure,
                } => {
                    if server_failure {
                        return Err(Failure::INVALID);
                    }
                    let reply = &buf[..len];
                    let head = self.state.borrow_mut().take_reply(group);
                    server.failures.set(0);
                    let framed = reader.framed();
                    if let Some(head) = head {
                        let waited = self.replied(&head, len, arrived);
                        head.pending.deliver(Ok(reply), framed, waited);
                    } else if group.members.is_empty() {
                        crate::log_error!("stray response from '{}'", server.config.pname);
                        return Err(Failure::INVALID);
                    } else if let Err(failure) =
                        self.reply_group(group, reply, framed.values(), arrived)
                    {
                        crate::log_error!("parsed bad response from '{}'", server.config.pname);
                        return Err(failure);
                    }
                    *start += len;
                }
            }
        }
        // Keep the unparsed tail at the front; let big buffers go when idle.
        if *start == bytes.len() {
            *need = 0;
            bytes.clear();
            if bytes.capacity() > INPUT_KEEP {
                *bytes = Vec::new();
                *chunk = READ_CHUNK;
            }
            let mut st = self.state.borrow_mut();
            if st.fifo.is_empty() && st.fifo.capacity() > FIFO_KEEP {
                st.fifo = VecDeque::new();
            }
            if st.fifo.is_empty() && st.keys.capacity() > KEYS_KEEP {
                st.keys = Vec::new();
            }
        } else if *start > 0 {
            bytes.drain(..*start);
            *need = need.saturating_sub(*start);
        }
        *start = 0;
        Ok(())
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

    /// Counts the reply (`len` bytes) to request `waiting`, which leaves the
    /// FIFO; returns how long the server took on it.
    fn replied(&self, waiting: &Waiting, len: usize, arrived: Micros) -> Micros {
        super::coalesce::count_event();
        let waited = arrived.saturating_sub(waiting.queued);
        if waiting.pending.client.is_none() {
            return waited;
        }
        let stats = self.stats.get();
        stats.responses.inc();
        stats.response_bytes.add(len as i64);
        stats.out_queue.add(-1);
        stats.out_queue_bytes.add(-i64::from(waiting.len));
        self.stats.latency().record_us(waited);
        let mut st = self.state.borrow_mut();
        st.outstanding.requests -= 1;
        st.outstanding.bytes -= i64::from(waiting.len);
        waited
    }

    /// Shares the reply to a combined line out among its members (each gets
    /// its `VALUE` blocks then `END`, or the whole reply when it is an error).
    /// A reply that does not fit the line fails them all: the connection is
    /// out of step.
    fn reply_group(
        &self,
        group: &mut Group,
        reply: &[u8],
        reply_spans: &[ValueSpan],
        arrived: Micros,
    ) -> Result<(), Failure> {
        let Group {
            members,
            keys,
            bodies,
            spans,
        } = group;
        let cut = combine::cut(
            reply,
            reply_spans,
            keys,
            members.iter().map(|w| w.keys as usize),
            bodies,
        );
        keys.clear();
        // The blocks are in member order: each member's spans follow the last one's.
        let mut next_span = 0;
        for (i, member) in members.drain(..).enumerate() {
            match (&cut, bodies.get(i)) {
                (Cut::Values, Some(body)) => {
                    let first = next_span;
                    while reply_spans
                        .get(next_span)
                        .is_some_and(|s| s.end <= body.end)
                    {
                        next_span += 1;
                    }
                    spans.clear();
                    // Only a member that is a fragment of a split request uses
                    // them (in its merge).
                    if member.pending.fragment != WHOLE {
                        let mine = reply_spans.get(first..next_span).unwrap_or_default();
                        spans.extend(mine.iter().filter_map(|s| s.relative_to(body.start)));
                    }
                    let waited = self.replied(&member, body.len() + b"END\r\n".len(), arrived);
                    member
                        .pending
                        .deliver_values(&reply[body.clone()], spans, waited);
                }
                (Cut::Invalid, _) => member
                    .pending
                    .deliver(Err(Failure::INVALID), Framed::NONE, 0),
                // `Cut::Same`: an error reply, the same for every member.
                _ => {
                    let waited = self.replied(&member, reply.len(), arrived);
                    member.pending.deliver(Ok(reply), Framed::NONE, waited);
                }
            }
        }
        match cut {
            Cut::Invalid => Err(Failure::INVALID),
            Cut::Values | Cut::Same => Ok(()),
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
            state: RefCell::new(ConnectionState::new(pool.combine_keys)),
            stats: ServerStatsRef {
                worker,
                pool: pool.index,
                server: self.index,
            },
            wake: Notify::new(),
            socket: RefCell::new(None),
            input: RefCell::new(Input {
                bytes: Vec::new(),
                chunk: READ_CHUNK,
                start: 0,
                need: 0,
                reader: ResponseReader::new(pool.protocol),
                group: Group::default(),
            }),
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

/// The least room a read gets, and the most it grows to while reads fill it.
const READ_CHUNK: usize = 16 * 1024;
const READ_MAX: usize = 256 * 1024;
/// The biggest read buffer a server connection keeps once it is drained:
/// big replies (a multi-get of big values) reuse it rather than map fresh
/// pages each time, and there are only a few server connections.
const INPUT_KEEP: usize = 1 << 20;
/// The biggest output buffer a server connection keeps once it is empty.
const OUT_KEEP: usize = 256 * 1024;
/// The most requests whose room a server connection keeps in its FIFO once
/// every reply is in (a burst of thousands of clients grows it).
const FIFO_KEEP: usize = 4096;
/// The most room for combined lines' keys a connection keeps once every reply is in.
const KEYS_KEEP: usize = 64 * 1024;

/// The task behind one server connection: connect, hand the socket to the
/// worker's hub, then keep the deadlines until the connection fails or the
/// server closes it.
async fn run(
    conn: Rc<ServerConnection>,
    server: Rc<ServerRuntime>,
    pool: Rc<PoolRuntime>,
    preconnect: bool,
) {
    let keepalive = pool.config.tcpkeepalive;
    let socket = match Socket::connect(&server.config.address, keepalive).await {
        Ok(socket) => socket,
        Err(e) => {
            let failure = Failure::from_io(&e);
            if preconnect {
                crate::log_warn!(
                    "connect to server '{}' failed, ignored: {}",
                    server.config.pname,
                    failure.message()
                );
            } else {
                crate::log_warn!(
                    "connect to server '{}' failed: {}",
                    server.config.pname,
                    failure.message()
                );
            }
            conn.stats.get().server_err.inc();
            conn.stats.worker.curr_connections.add(-1);
            conn.fail_all(failure);
            pool.server_failed(&server);
            return;
        }
    };
    conn.stats.get().server_connections.inc();
    pool.on_connect(&conn);
    let fd = socket.as_raw_fd();
    *conn.socket.borrow_mut() = Some(socket);
    let failure = match pool.server_watch.add(fd, &conn, &server) {
        Ok(slot) => {
            let failure = serve(&conn, &server, &pool).await;
            pool.server_watch.remove(slot, fd);
            failure
        }
        Err(e) => {
            crate::log_error!("watching s to '{}' failed: {e}", server.config.pname);
            Some(Failure::from_io(&e))
        }
    };
    // The socket closes now, whoever still holds the connection.
    conn.socket.borrow_mut().take();
    let stats = conn.stats.get();
    stats.server_connections.add(-1);
    conn.stats.worker.curr_connections.add(-1);
    match failure {
        Some(failure) => {
            match failure {
                Failure::Unknown => stats.server_eof.inc(),
                Failure::TIMED_OUT => stats.server_timedout.inc(),
                _ => stats.server_err.inc(),
            }
            conn.fail_all(failure);
            pool.server_failed(&server);
        }
        None => conn.fail_all(Failure::Unknown),
    }
}

/// Keeps a connected server connection's deadlines, and writes what was
/// queued outside a write batch, until the connection ends; returns the
/// failure that ended it (`None` for an orderly close at shutdown).
async fn serve(
    conn: &ServerConnection,
    server: &ServerRuntime,
    pool: &PoolRuntime,
) -> Option<Failure> {
    let timer = Timer::new(&pool.timers);
    let mut armed: Option<Micros> = None;
    loop {
        let (ended, write_error) = {
            let mut st = conn.state.borrow_mut();
            (st.ended.take(), st.write_error.take())
        };
        if ended.is_some() {
            return ended;
        }
        if let Some(e) = write_error {
            crate::log_error!("sendv on s to '{}' failed: {e}", server.config.pname);
            return Some(Failure::from_io(&e));
        }
        if conn.is_broken() {
            return None;
        }
        // Requests queued when no write batch was open (and those queued
        // before the connect): what the kernel does not take now the hub
        // writes once the socket is writable.
        let written = match conn.socket.borrow().as_ref() {
            Some(socket) => conn.write_out(socket),
            None => Ok(false),
        };
        if let Err(e) = written {
            crate::log_error!("sendv on s to '{}' failed: {e}", server.config.pname);
            return Some(Failure::from_io(&e));
        }
        // The timer is re-armed lazily: it stays set for an older deadline and,
        // when it fires, moves on to the current head. Deadlines only grow along
        // the FIFO, so it never fires late; and it is not reset per reply.
        // With nothing in the FIFO it is set one timeout ahead: no request
        // queued from now on has an earlier deadline, so requests need not
        // wake this task to arm it (the write batch writes them).
        if armed.is_none() {
            let head = conn.state.borrow().fifo.front().map(|w| w.pending.deadline);
            let next = match head {
                Some(deadline) => deadline,
                None => pool.timeout.map(|t| super::clock::now() + t),
            };
            if let Some(d) = next {
                timer.set(d);
                armed = Some(d);
            }
        }
        tokio::select! {
            biased;
            _ = conn.wake.notified() => {}
            _ = timer.fired(), if armed.is_some() => {
                armed = None;
                // Fresh time: the timer is re-armed from it when the FIFO is empty.
                let now = super::clock::tick();
                let head = conn.state.borrow().fifo.front().and_then(|w| w.pending.deadline);
                if head.is_some_and(|d| d <= now) {
                    crate::log_warn!("req on s to '{}' timed out", server.config.pname);
                    return Some(Failure::TIMED_OUT);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(combine_max: usize) -> ConnectionState {
        ConnectionState::new(combine_max)
    }

    /// Queues retrieval lines as `enqueue_retrieval` does (without the stats).
    fn put(st: &mut ConnectionState, lines: &[&str]) {
        for line in lines {
            let joined = st.put_retrieval(format!("{line}\r\n").as_bytes());
            st.fifo.push_back(Waiting {
                pending: Pending {
                    client: None,
                    seq: 0,
                    fragment: WHOLE,
                    deadline: None,
                },
                len: 0,
                queued: 0,
                keys: joined.unwrap_or(0),
                joined: joined.is_some(),
            });
        }
    }

    fn out(st: &ConnectionState) -> String {
        String::from_utf8_lossy(&st.out).into_owned()
    }

    #[test]
    fn retrievals_join_the_open_line() {
        let mut st = state(100);
        put(&mut st, &["get a", "get b c", "get d"]);
        assert_eq!(out(&st), "get a b c d\r\n");
        assert_eq!(st.keys, b"a b c d ");
        let entries: Vec<_> = st.fifo.iter().map(|w| (w.keys, w.joined)).collect();
        assert_eq!(entries, [(2, false), (4, true), (2, true)]);
        // The reply is for all three, with their keys.
        let mut group = Group::default();
        assert!(st.take_reply(&mut group).is_none());
        assert_eq!(
            (group.members.len(), &group.keys[..]),
            (3, &b"a b c d "[..])
        );
        assert!(st.fifo.is_empty() && st.keys.is_empty());
    }

    #[test]
    fn what_does_not_join() {
        // get and gets do not mix; a key already on the line starts a new one.
        let mut st = state(100);
        put(
            &mut st,
            &["get a", "gets b", "gets c", "get d", "get d", "get e"],
        );
        assert_eq!(out(&st), "get a\r\ngets b c\r\nget d\r\nget d e\r\n");
        // A single line keeps no keys: its reply goes to it whole.
        let mut group = Group::default();
        assert!(st.take_reply(&mut group).is_some());
        assert!(st.take_reply(&mut group).is_none());
        assert_eq!((group.members.len(), &group.keys[..]), (2, &b"b c "[..]));
    }

    #[test]
    fn lines_are_bounded_and_other_bytes_close_them() {
        let mut st = state(2);
        put(&mut st, &["get a", "get b", "get c", "get d e", "get f"]);
        assert_eq!(out(&st), "get a b\r\nget c\r\nget d e\r\nget f\r\n");
        // Anything queued after the open line (a write, another command) closes it.
        st.out.extend_from_slice(b"delete x\r\n");
        put(&mut st, &["get g"]);
        assert!(out(&st).ends_with("delete x\r\nget g\r\n"));
        // 2 KiB at most.
        let mut st = state(100);
        let long = format!("get {}", "k".repeat(250));
        let longs: Vec<String> = (0..9).map(|i| format!("{long}{i}")).collect();
        let lines: Vec<&str> = longs.iter().map(String::as_str).collect();
        put(&mut st, &lines);
        assert!(st
            .out
            .split(|&b| b == b'\n')
            .all(|l| l.len() <= combine::LINE_MAX));
        assert_eq!(st.out.iter().filter(|&&b| b == b'\n').count(), 2);
        // A request of many keys goes alone, and nothing joins it.
        let mut st = state(100);
        let wide = format!(
            "get {}",
            (0..17)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        put(&mut st, &["get a", &wide, "get b", "get c"]);
        assert_eq!(out(&st), format!("get a\r\n{wide}\r\nget b c\r\n"));
        // Not combining: every line as it came.
        let mut st = state(0);
        put(&mut st, &["get a", "get b"]);
        assert_eq!(out(&st), "get a\r\nget b\r\n");
    }
}
