//! `floor`: the least a proxy must do, as a measuring instrument for `bench/run`.
//!
//! It serves the pools of a nutcracker.yml (the same file the proxies under test get) with a bare
//! edge-triggered `epoll` loop (mio) and rustcracker's own parsers and key placement, and nothing
//! else: one connection per server, opened at start; no stats, timeouts, ejection, multi-key
//! splitting or combining, and no coalescing but for `--coalesce` below; one read per ready
//! socket (a short read means drained), one write per server and per client per wake-up. Its
//! CPU per request is what the kernel work of proxying (a client receive and send per request,
//! the server traffic batched) costs on this machine with close to no user-space work on top:
//! the floor the proxies are measured against.
//!
//! Not a proxy to deploy: a request it cannot forward as one (a multi-key get, a keyless command)
//! gets an error reply, and a server that fails ends the process.
//!
//! With `--coalesce=N` it also naps N µs before each wait that follows a round with events, as
//! rustcracker's coalescing does under load (there only while the worker is loaded; here
//! always), so that the least work is measured at about rustcracker's batching.
//!
//! With `--combine-gets` the single-key memcache `get`s a round queues on one server leave as one
//! `get k1 k2 …` line and its reply is cut back per request, as rustcracker's combining does
//! (memcached answers each `get` of a pipeline with a `sendmsg` of its own, a multi-key one with
//! one).
//!
//! ```text
//! floor CONFIG.yml [--coalesce=N] [--combine-gets]
//! ```

#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rustcracker_config::{Listen, Router, ServerAddress};
use rustcracker_memcache::Command;

/// The most keys, and bytes, a combined `get` line carries (memcached reads lines of up to 2 KiB
/// in its ordinary path).
const LINE_KEYS_MAX: usize = 100;
const LINE_MAX: usize = 2048;
/// Bytes asked for per read.
const READ_CHUNK: usize = 16 * 1024;
/// redis keys longer than this are refused (nutcracker's limit for a 16 KiB mbuf).
const REDIS_MAX_KEY: usize = 16 * 1024;

/// Received bytes not yet parsed: `buf[start..end]`. The buffer is zeroed once and reused, so a
/// read costs no fill.
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// What one read found.
enum Received {
    /// Bytes arrived (or none, on a spurious wake-up); the socket is still open.
    Open,
    /// The peer closed (or the connection failed).
    Closed,
}

impl Input {
    fn new() -> Input {
        Input {
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads until a read comes back short: with edge-triggered readiness a short read means the
    /// socket was drained, and more data brings a new event.
    fn read_from(&mut self, stream: &mut TcpStream) -> Received {
        loop {
            if self.end == self.buf.len() {
                if self.start > 0 {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                } else {
                    self.buf.resize(self.buf.len() * 2, 0);
                }
            }
            let room = self.buf.len() - self.end;
            match stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Received::Closed,
                Ok(n) => {
                    self.end += n;
                    if n < room {
                        return Received::Open;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Received::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Received::Closed,
            }
        }
    }
}

/// One pool: its listener's protocol, key placement and servers (indexes into `Floor::servers`).
struct Pool {
    redis: bool,
    router: Router,
    servers: Vec<usize>,
}

/// A reply due to a client: which client (slot and generation, so a reply to a client that has
/// gone is dropped, not given to the next one in its slot) and the request's sequence number.
#[derive(Clone, Copy)]
struct Due {
    client: usize,
    generation: u64,
    seq: u64,
}

/// Reply framing state for one server connection.
enum ReplyParser {
    Memcache(rustcracker_memcache::ResponseParser),
    Redis(rustcracker_redis::ResponseParser),
}

impl ReplyParser {
    /// The length of the complete reply at the front of `buf`, if there is one.
    fn next(&mut self, buf: &[u8]) -> Result<Option<usize>> {
        use rustcracker_memcache::ResponseParse as M;
        use rustcracker_redis::ResponseParse as R;
        Ok(match self {
            ReplyParser::Memcache(p) => match p.parse(buf) {
                M::Response(r) => Some(r.len),
                M::Incomplete { .. } => None,
                M::Invalid => bail!("server sent an invalid memcache reply"),
            },
            ReplyParser::Redis(p) => match p.parse(buf) {
                R::Response(r) => Some(r.len),
                R::Incomplete { .. } => None,
                R::Invalid => bail!("server sent an invalid redis reply"),
            },
        })
    }
}

/// A combined `get` line: its members, one key each, in line order.
#[derive(Default)]
struct Line {
    members: Vec<Due>,
    /// The members' keys, back to back; `ends[i]` is where member i's ends.
    keys: Vec<u8>,
    ends: Vec<usize>,
}

impl Line {
    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.keys[start..self.ends[i]]
    }

    /// Bytes of the line once written: `get`, a space and the key per member, `\r\n`.
    fn written_len(&self) -> usize {
        3 + self.keys.len() + self.members.len() + 2
    }
}

/// What a server connection owes replies for, in order.
enum Owed {
    /// One request's reply.
    One(Due),
    /// A combined line's reply, to be cut per member.
    Line(Line),
}

/// One server connection: requests out in order, replies matched first in, first out.
struct Server {
    stream: TcpStream,
    input: Input,
    output: Vec<u8>,
    due: VecDeque<Owed>,
    replies: ReplyParser,
    /// The `get` line gathering keys this round (`--combine-gets`), not yet in `output`.
    open: Option<Line>,
    /// Finished lines, kept for their buffers.
    spare: Vec<Line>,
}

impl Server {
    /// Writes the open line, if any, to `output`.
    fn close_line(&mut self) {
        if let Some(line) = self.open.take() {
            self.output.extend_from_slice(b"get");
            for i in 0..line.members.len() {
                self.output.push(b' ');
                self.output.extend_from_slice(line.key(i));
            }
            self.output.extend_from_slice(b"\r\n");
            self.due.push_back(Owed::Line(line));
        }
    }

    /// Adds a single-key `get` to the open line (opening one, or closing a full one first).
    fn combine(&mut self, key: &[u8], due: Due) {
        if let Some(line) = &self.open {
            if line.members.len() == LINE_KEYS_MAX || line.written_len() + 1 + key.len() > LINE_MAX
            {
                self.close_line();
            }
        }
        let line = self.open.get_or_insert_with(|| {
            let mut line = self.spare.pop().unwrap_or_default();
            line.members.clear();
            line.keys.clear();
            line.ends.clear();
            line
        });
        line.members.push(due);
        line.keys.extend_from_slice(key);
        line.ends.push(line.keys.len());
    }
}

/// One client connection.
struct Client {
    stream: TcpStream,
    pool: usize,
    generation: u64,
    input: Input,
    output: Vec<u8>,
    /// Sequence number of the next request parsed.
    next_seq: u64,
    /// Sequence number of the next reply to append to `output`.
    head_seq: u64,
    /// Replies that came back ahead of an earlier request's (index 0: `head_seq`).
    early: VecDeque<Option<Vec<u8>>>,
    memcache: rustcracker_memcache::RequestParser,
    redis: rustcracker_redis::RequestParser,
}

impl Client {
    /// Puts the reply to request `seq` in order.
    fn deliver(&mut self, seq: u64, reply: &[u8]) {
        let Ok(at) = usize::try_from(seq.wrapping_sub(self.head_seq)) else {
            return;
        };
        if at == 0 {
            self.output.extend_from_slice(reply);
            self.head_seq += 1;
            self.early.pop_front();
            while let Some(Some(_)) = self.early.front() {
                if let Some(Some(next)) = self.early.pop_front() {
                    self.output.extend_from_slice(&next);
                    self.head_seq += 1;
                }
            }
        } else {
            if self.early.len() <= at {
                self.early.resize(at + 1, None);
            }
            self.early[at] = Some(reply.to_vec());
        }
    }

    /// An error reply of the floor's own, in order (one sequence number).
    fn refuse(&mut self, redis: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let reply: &[u8] = if redis {
            b"-ERR not supported by floor\r\n"
        } else {
            b"SERVER_ERROR not supported by floor\r\n"
        };
        self.deliver(seq, reply);
    }
}

/// The event loop's state.
struct Floor {
    poll: Poll,
    listeners: Vec<(TcpListener, usize)>,
    pools: Vec<Pool>,
    servers: Vec<Server>,
    clients: Vec<Option<Client>>,
    free: Vec<usize>,
    generation: u64,
    dirty_servers: Vec<usize>,
    dirty_clients: Vec<usize>,
    /// `--combine-gets`.
    combine: bool,
    /// A member's cut of a combined reply, reused.
    cut: Vec<u8>,
}

impl Floor {
    /// Token of listener `i`, server `i` and client slot `i`.
    fn listener_token(&self, i: usize) -> Token {
        Token(i)
    }
    fn server_token(&self, i: usize) -> Token {
        Token(self.listeners.len() + i)
    }
    fn client_token(&self, i: usize) -> Token {
        Token(self.listeners.len() + self.servers.len() + i)
    }

    fn new(config: &Path, combine: bool) -> Result<Floor> {
        let config = rustcracker_config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let poll = Poll::new()?;
        let mut floor = Floor {
            poll,
            listeners: Vec::new(),
            pools: Vec::new(),
            servers: Vec::new(),
            clients: Vec::new(),
            free: Vec::new(),
            generation: 0,
            dirty_servers: Vec::new(),
            dirty_clients: Vec::new(),
            combine,
            cut: Vec::new(),
        };
        for pool in &config.pools {
            let Listen::Tcp { addr, .. } = pool.listen else {
                bail!("pool {}: floor listens on TCP only", pool.name);
            };
            let router = pool.router();
            let mut indexes = Vec::new();
            for server in &pool.servers {
                let ServerAddress::Tcp { host, port } = &server.address else {
                    bail!("pool {}: floor connects over TCP only", pool.name);
                };
                let addr: SocketAddr = (host.as_str(), *port)
                    .to_socket_addrs()?
                    .next()
                    .context("server address does not resolve")?;
                let stream = std::net::TcpStream::connect(addr)
                    .with_context(|| format!("pool {}: connect to {addr}", pool.name))?;
                stream.set_nodelay(true)?;
                stream.set_nonblocking(true)?;
                let replies = if pool.redis {
                    ReplyParser::Redis(Default::default())
                } else {
                    ReplyParser::Memcache(Default::default())
                };
                indexes.push(floor.servers.len());
                floor.servers.push(Server {
                    stream: TcpStream::from_std(stream),
                    input: Input::new(),
                    output: Vec::new(),
                    due: VecDeque::new(),
                    replies,
                    open: None,
                    spare: Vec::new(),
                });
            }
            floor.pools.push(Pool {
                redis: pool.redis,
                router,
                servers: indexes,
            });
            let listener = TcpListener::bind(addr).with_context(|| format!("listen on {addr}"))?;
            floor.listeners.push((listener, floor.pools.len() - 1));
        }
        for i in 0..floor.listeners.len() {
            let token = floor.listener_token(i);
            let registry = floor.poll.registry();
            registry.register(&mut floor.listeners[i].0, token, Interest::READABLE)?;
        }
        for i in 0..floor.servers.len() {
            let token = floor.server_token(i);
            let registry = floor.poll.registry();
            let interest = Interest::READABLE | Interest::WRITABLE;
            registry.register(&mut floor.servers[i].stream, token, interest)?;
        }
        Ok(floor)
    }

    fn run(&mut self, nap: Option<Duration>) -> Result<()> {
        let mut events = Events::with_capacity(1024);
        let servers_from = self.listeners.len();
        let clients_from = servers_from + self.servers.len();
        let mut served = false;
        loop {
            if let Some(nap) = nap.filter(|_| served) {
                std::thread::sleep(nap);
            }
            match self.poll.poll(&mut events, None) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            }
            served = !events.is_empty();
            for event in &events {
                let t = event.token().0;
                if t < servers_from {
                    self.accept(t)?;
                } else if t < clients_from {
                    let s = t - servers_from;
                    if event.is_readable() {
                        self.read_server(s)?;
                    }
                    if event.is_writable() {
                        self.dirty_servers.push(s);
                    }
                } else {
                    let c = t - clients_from;
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.read_client(c);
                    }
                    if event.is_writable() {
                        self.dirty_clients.push(c);
                    }
                }
            }
            // One write per server, then per client, for everything this wake-up gathered.
            while let Some(s) = self.dirty_servers.pop() {
                let server = &mut self.servers[s];
                server.close_line();
                if flush(&mut server.stream, &mut server.output).is_err() {
                    bail!("server connection {s} failed");
                }
            }
            while let Some(c) = self.dirty_clients.pop() {
                if let Some(client) = self.clients.get_mut(c).and_then(Option::as_mut) {
                    if flush(&mut client.stream, &mut client.output).is_err() {
                        self.close(c);
                    }
                }
            }
        }
    }

    fn accept(&mut self, listener: usize) -> Result<()> {
        loop {
            let (mut stream, _) = match self.listeners[listener].0.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            stream.set_nodelay(true)?;
            let slot = match self.free.pop() {
                Some(slot) => slot,
                None => {
                    self.clients.push(None);
                    self.clients.len() - 1
                }
            };
            let token = self.client_token(slot);
            let interest = Interest::READABLE | Interest::WRITABLE;
            self.poll
                .registry()
                .register(&mut stream, token, interest)?;
            self.generation += 1;
            self.clients[slot] = Some(Client {
                stream,
                pool: self.listeners[listener].1,
                generation: self.generation,
                input: Input::new(),
                output: Vec::new(),
                next_seq: 0,
                head_seq: 0,
                early: VecDeque::new(),
                memcache: Default::default(),
                redis: Default::default(),
            });
        }
    }

    fn close(&mut self, c: usize) {
        if let Some(mut client) = self.clients.get_mut(c).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut client.stream);
            self.free.push(c);
        }
    }

    /// Reads what a client sent and queues each complete request on its server.
    fn read_client(&mut self, c: usize) {
        let Some(client) = self.clients.get_mut(c).and_then(Option::as_mut) else {
            return;
        };
        if let Received::Closed = client.input.read_from(&mut client.stream) {
            return self.close(c);
        }
        let pool = &self.pools[client.pool];
        loop {
            let buf = client.input.pending();
            if buf.is_empty() {
                break;
            }
            // The request's length, its server (`None`: one the floor does not forward) and, for
            // a single-key `get` that may join a combined line, its key.
            let (len, server, get_key) = if pool.redis {
                use rustcracker_redis::RequestParse as P;
                match client.redis.parse(buf, REDIS_MAX_KEY) {
                    P::Incomplete { .. } => break,
                    P::Invalid(_) => return self.close(c),
                    P::Request(r) => {
                        let server = match r.keys.len() {
                            1 => r.routing_key(buf).and_then(|k| pool.router.route(&k)),
                            _ => None,
                        };
                        let len = r.len;
                        client.redis.recycle(r);
                        (len, server, None)
                    }
                }
            } else {
                use rustcracker_memcache::RequestParse as P;
                match client.memcache.parse(buf) {
                    P::Incomplete { .. } => break,
                    P::Invalid(_) => return self.close(c),
                    P::Request(r) => {
                        let key = match (r.keys.len(), r.noreply) {
                            (1, false) => r.keys.first().map(|k| k.range()),
                            _ => None,
                        };
                        let server = key.clone().and_then(|k| pool.router.route(&buf[k]));
                        let get_key = key.filter(|_| self.combine && r.command == Command::Get);
                        let len = r.len;
                        client.memcache.recycle(r);
                        (len, server, get_key)
                    }
                }
            };
            match server {
                Some(s) => {
                    let s = pool.servers[s];
                    let server = &mut self.servers[s];
                    if server.output.is_empty() && server.open.is_none() {
                        self.dirty_servers.push(s);
                    }
                    let due = Due {
                        client: c,
                        generation: client.generation,
                        seq: client.next_seq,
                    };
                    match get_key {
                        Some(key) => server.combine(&buf[key], due),
                        None => {
                            server.close_line();
                            server.output.extend_from_slice(&buf[..len]);
                            server.due.push_back(Owed::One(due));
                        }
                    }
                    client.next_seq += 1;
                }
                None => {
                    client.refuse(pool.redis);
                    self.dirty_clients.push(c);
                }
            }
            client.input.consume(len);
        }
    }

    /// Reads a server's replies and hands each to the client it is due to.
    fn read_server(&mut self, s: usize) -> Result<()> {
        let server = &mut self.servers[s];
        if let Received::Closed = server.input.read_from(&mut server.stream) {
            bail!("server connection {s} closed");
        }
        while let Some(len) = server.replies.next(server.input.pending())? {
            let owed = server.due.pop_front().context("a reply nobody asked for")?;
            let reply = &server.input.pending()[..len];
            match owed {
                Owed::One(due) => {
                    deliver(&mut self.clients, &mut self.dirty_clients, due, reply);
                }
                Owed::Line(line) => {
                    // memcached answers a line's keys in order and leaves misses out; anything
                    // but VALUE blocks and END (an error) goes to every member as it is.
                    let values = reply.starts_with(b"VALUE ") || reply == b"END\r\n";
                    let mut blocks = rustcracker_memcache::value_blocks(reply).peekable();
                    for (i, &due) in line.members.iter().enumerate() {
                        self.cut.clear();
                        if values {
                            if let Some(block) = blocks.next_if(|b| b.key == line.key(i)) {
                                self.cut.extend_from_slice(&reply[block.range]);
                            }
                            self.cut.extend_from_slice(b"END\r\n");
                        } else {
                            self.cut.extend_from_slice(reply);
                        }
                        deliver(&mut self.clients, &mut self.dirty_clients, due, &self.cut);
                    }
                    server.spare.push(line);
                }
            }
            server.input.consume(len);
        }
        Ok(())
    }
}

/// Hands `reply` to the client it is due to, if that client is still there.
fn deliver(clients: &mut [Option<Client>], dirty: &mut Vec<usize>, due: Due, reply: &[u8]) {
    if let Some(client) = clients.get_mut(due.client).and_then(Option::as_mut) {
        if client.generation == due.generation {
            if client.output.is_empty() {
                dirty.push(due.client);
            }
            client.deliver(due.seq, reply);
        }
    }
}

/// Writes as much of `out` as the socket takes; the rest waits for the next writable event.
fn flush(stream: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    let mut written = 0;
    while written < out.len() {
        match stream.write(&out[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.drain(..written);
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: floor CONFIG.yml [--coalesce=N] [--combine-gets]";
    let config = args.next().context(usage)?;
    let (mut nap, mut combine) = (None, false);
    for arg in args {
        if arg == "--combine-gets" {
            combine = true;
            continue;
        }
        let us: u64 = arg
            .strip_prefix("--coalesce=")
            .and_then(|n| n.parse().ok())
            .context(usage)?;
        // Naps as short as asked: the default timer slack (50 µs) would double them.
        // (floor runs on its main thread, whose slack this is.)
        std::fs::write("/proc/self/timerslack_ns", "1000").context("setting the timer slack")?;
        nap = (us > 0).then(|| Duration::from_micros(us));
    }
    Floor::new(Path::new(&config), combine)?.run(nap)
}
