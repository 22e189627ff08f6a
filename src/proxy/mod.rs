//! The data plane: workers, listeners, client sessions and server connections.
//!
//! Thread per core: each worker thread runs one current-thread tokio runtime
//! with its own listeners (`SO_REUSEPORT`), client sessions and server
//! connections, so nothing on the request path is shared between threads: no
//! locks, no atomics per request. `server_connections` therefore counts per
//! worker.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batch;
mod client;
mod clock;
mod coalesce;
mod combine;
mod errno;
mod hub;
mod listener;
mod memcache;
mod merge;
mod pool;
mod redis;
mod server;
mod session;
mod split;
mod stream;
mod timer;
mod worker;
mod write_batch;

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::watch;

use rustcracker_config::{Config, Pool};

use crate::stats::{Registry, WorkerStats};

pub use coalesce::DEFAULT_WINDOW_US as DEFAULT_COALESCE_US;
pub use combine::KEYS_MAX as MAX_COMBINED_KEYS;
pub use errno::Failure;
pub use listener::ListenError;

use listener::BoundListener;
use pool::PoolRuntime;
use stream::Socket;
use worker::WorkerRuntime;

/// How long a shutdown waits for in-flight requests before closing anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Run-time settings from the command line.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Worker threads (`--threads`), each with its own listeners and server connections.
    pub threads: usize,
    /// `-m`: read buffer chunk size in bytes.
    pub mbuf_size: usize,
    /// `-a`: stats listen address.
    pub stats_addr: String,
    /// `-s`: stats port.
    pub stats_port: u16,
    /// `-i`: stats aggregation interval in milliseconds.
    pub stats_interval_ms: u64,
    /// `--coalesce`: how long a busy worker lets events gather (zero: never).
    pub coalesce: Duration,
    /// `--combine-gets`: the most keys per combined memcache `get` line (0: off).
    pub combine_gets: usize,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The stats port could not be set up (nutcracker's wording: `bind on m …`).
    #[error("{0}")]
    Stats(#[source] io::Error),
    #[error("cannot start worker {worker}: {source}")]
    Worker {
        worker: usize,
        #[source]
        source: io::Error,
    },
}

/// The wire protocol of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Memcache,
    Redis,
}

/// One server reply, as the connection needs to know it.
pub enum ResponseParse {
    /// More bytes needed; the buffer must reach this length first (0: unknown).
    Incomplete(usize),
    /// Unparseable: the connection is out of sync and must close.
    Invalid,
    /// A complete reply of `len` bytes; `server_failure` for replies that mean
    /// the server is failing (redis `-OOM`, `-BUSY`, `-LOADING`).
    Response { len: usize, server_failure: bool },
}

impl Protocol {
    /// The proxy's own error reply: `SERVER_ERROR <reason>` / `-ERR <reason>`.
    pub fn error_reply(self, reason: &str, out: &mut Vec<u8>) {
        match self {
            Protocol::Memcache => rustcracker_memcache::server_error(reason, out),
            Protocol::Redis => rustcracker_redis::error_reply(reason, out),
        }
    }
}

/// Reads the replies of one server connection; remembers how far a partly
/// parsed reply got (a redis array, a memcache retrieval's `VALUE` blocks), so
/// that a huge one arriving in many reads is scanned once.
pub enum ResponseReader {
    Memcache(rustcracker_memcache::ResponseParser),
    Redis(rustcracker_redis::ResponseParser),
}

impl ResponseReader {
    /// A reader for `protocol`.
    pub fn new(protocol: Protocol) -> ResponseReader {
        match protocol {
            Protocol::Memcache => ResponseReader::Memcache(Default::default()),
            Protocol::Redis => ResponseReader::Redis(Default::default()),
        }
    }

    /// Where the parts of the reply last parsed are in it, as parsing found
    /// them: a memcache retrieval reply's `VALUE` blocks, a redis array's
    /// element ends.
    pub fn framed(&self) -> Framed<'_> {
        match self {
            ResponseReader::Memcache(parser) => Framed::Values(parser.value_spans()),
            ResponseReader::Redis(parser) => {
                Framed::Elements(parser.element_ends().unwrap_or_default())
            }
        }
    }

    /// Parses the reply at the start of `buf` (the same buffer, grown, after `Incomplete`).
    pub fn parse(&mut self, buf: &[u8]) -> ResponseParse {
        match self {
            ResponseReader::Memcache(parser) => match parser.parse(buf) {
                rustcracker_memcache::ResponseParse::Incomplete { needed } => {
                    ResponseParse::Incomplete(needed.unwrap_or(0))
                }
                rustcracker_memcache::ResponseParse::Invalid => ResponseParse::Invalid,
                rustcracker_memcache::ResponseParse::Response(r) => ResponseParse::Response {
                    len: r.len,
                    server_failure: false,
                },
            },
            ResponseReader::Redis(parser) => match parser.parse(buf) {
                rustcracker_redis::ResponseParse::Incomplete { needed } => {
                    ResponseParse::Incomplete(needed.unwrap_or(0))
                }
                rustcracker_redis::ResponseParse::Invalid => ResponseParse::Invalid,
                rustcracker_redis::ResponseParse::Response(r) => ResponseParse::Response {
                    len: r.len,
                    server_failure: r.kind.is_server_failure(),
                },
            },
        }
    }
}

/// Where the parts of a server's reply are, as framing it found them, so
/// that a merge reads each part once: a memcache retrieval reply's `VALUE`
/// blocks, or a redis array's element ends (offsets in the reply).
#[derive(Debug, Clone, Copy)]
pub enum Framed<'a> {
    /// memcache: the `VALUE` blocks.
    Values(&'a [rustcracker_memcache::ValueSpan]),
    /// redis: where each element of an array ends (empty: not recorded).
    Elements(&'a [usize]),
}

impl<'a> Framed<'a> {
    /// Nothing recorded: a failure, or a reply the merge frames itself.
    pub const NONE: Framed<'static> = Framed::Values(&[]);

    /// The `VALUE` blocks (none for a redis reply).
    pub fn values(self) -> &'a [rustcracker_memcache::ValueSpan] {
        match self {
            Framed::Values(spans) => spans,
            Framed::Elements(_) => &[],
        }
    }

    /// The element ends (none for a memcache reply).
    pub fn elements(self) -> &'a [usize] {
        match self {
            Framed::Elements(ends) => ends,
            Framed::Values(_) => &[],
        }
    }
}

/// A running proxy: its worker threads.
pub struct Proxy {
    shutdown: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    _stats: crate::stats::server::StatsServer,
}

/// What one worker thread starts with.
struct Worker {
    pools: Vec<Arc<Pool>>,
    clients: Vec<Arc<AtomicUsize>>,
    listeners: Vec<BoundListener>,
    shutdown: watch::Receiver<bool>,
    mbuf_size: usize,
    /// `--coalesce`.
    coalesce_window: Duration,
    /// `--combine-gets`.
    combine_gets: usize,
    stats: Arc<WorkerStats>,
}

impl Proxy {
    /// Binds every listener (in pool order; the first failure aborts) and
    /// starts the workers. Returns once every worker serves.
    pub fn start(config: Config, options: ProxyOptions) -> Result<Proxy, ProxyError> {
        let threads = options.threads.max(1);
        let registry = Arc::new(Registry::new(config.clone()));
        // As nutcracker: the stats port is bound before the pool listeners.
        let stats = crate::stats::server::start(
            registry.clone(),
            &crate::stats::server::StatsOptions {
                addr: options.stats_addr.clone(),
                port: options.stats_port,
                interval_ms: options.stats_interval_ms,
            },
        )
        .map_err(ProxyError::Stats)?;

        let pools: Vec<Arc<Pool>> = config.pools.into_iter().map(Arc::new).collect();
        let mut listeners: Vec<Vec<BoundListener>> = (0..threads).map(|_| Vec::new()).collect();
        for pool in &pools {
            let first = listener::bind(pool, pool.reuseport || threads > 1)?;
            for worker in listeners.iter_mut().skip(1) {
                worker.push(first.for_worker(pool)?);
            }
            listeners[0].push(first);
        }
        let clients: Vec<Arc<AtomicUsize>> = pools
            .iter()
            .map(|_| Arc::new(AtomicUsize::new(0)))
            .collect();
        let (shutdown, watcher) = watch::channel(false);
        let mbuf_size = options.mbuf_size;
        let coalesce_window = options.coalesce;
        let combine_gets = options.combine_gets;
        let mut workers = Vec::with_capacity(threads);
        for (index, bound) in listeners.into_iter().enumerate() {
            let pools = pools.clone();
            let clients = clients.clone();
            let watcher = watcher.clone();
            let stats = registry.add_worker();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let handle = std::thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || {
                    let worker = Worker {
                        pools,
                        clients,
                        listeners: bound,
                        shutdown: watcher,
                        mbuf_size,
                        coalesce_window,
                        combine_gets,
                        stats,
                    };
                    worker_main(worker, ready_tx)
                })
                .map_err(|source| ProxyError::Worker {
                    worker: index,
                    source,
                })?;
            match ready_rx.recv() {
                Ok(Ok(())) => workers.push(handle),
                Ok(Err(source)) => {
                    return Err(ProxyError::Worker {
                        worker: index,
                        source,
                    })
                }
                Err(_) => {
                    return Err(ProxyError::Worker {
                        worker: index,
                        source: io::Error::other("worker exited"),
                    })
                }
            }
        }
        Ok(Proxy {
            shutdown,
            workers,
            _stats: stats,
        })
    }

    /// Stops accepting, lets in-flight requests finish (at most a few
    /// seconds), and joins the workers.
    pub fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// One worker thread: a current-thread runtime serving every pool.
fn worker_main(worker: Worker, ready: std::sync::mpsc::Sender<io::Result<()>>) {
    let Worker {
        pools,
        clients,
        listeners,
        shutdown,
        mbuf_size,
        coalesce_window,
        combine_gets,
        stats,
    } = worker;
    let mut builder = tokio::runtime::Builder::new_current_thread();
    // I/O only: the worker's timers are its own (see `timer.rs`).
    builder.enable_io();
    let runtime =
        match coalesce::install(&mut builder, coalesce_window).build_local(Default::default()) {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
    runtime.block_on(async move {
        let timers = match timer::Timers::new() {
            Ok(timers) => timers,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        tokio::task::spawn_local(timer::run(timers.clone()));
        let hub = match hub::Hub::new() {
            Ok(hub) => hub,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut runtimes = Vec::with_capacity(pools.len());
        let mut attached = Vec::with_capacity(pools.len());
        for (index, ((pool, clients), bound)) in
            pools.into_iter().zip(clients).zip(listeners).enumerate()
        {
            let pool = Rc::new(PoolRuntime::new(
                index,
                pool,
                clients,
                mbuf_size,
                combine_gets,
                pool::WorkerParts {
                    stats: stats.clone(),
                    timers: timers.clone(),
                    server_watch: hub.servers.clone(),
                },
            ));
            stats.total_connections.inc();
            stats.curr_connections.inc();
            match Listener::attach(bound) {
                Ok(l) => attached.push(l),
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            }
            if pool.config.preconnect {
                for server in &pool.servers {
                    server.preconnect(&pool);
                }
            }
            runtimes.push(pool);
        }
        let worker = Rc::new(WorkerRuntime::new(runtimes, stats, timers, hub));
        for (index, listener) in attached.into_iter().enumerate() {
            tokio::task::spawn_local(accept_loop(listener, index, worker.clone()));
        }
        tokio::task::spawn_local(worker.clone().housekeeping());
        tokio::task::spawn_local(hub::drive(worker.clone()));
        let _ = ready.send(Ok(()));
        let mut watch = shutdown.clone();
        while !*watch.borrow_and_update() {
            if watch.changed().await.is_err() {
                break;
            }
        }
        worker.shut_down();
        let deadline = clock::after(DRAIN_LIMIT);
        while worker.active.get() > 0 && clock::read() < deadline {
            timer::sleep(&worker.timers, Duration::from_millis(10)).await;
        }
        for pool in &worker.pools {
            for server in &pool.servers {
                server.close_all();
            }
        }
    });
}

/// A listener attached to the worker's runtime. Accepted sockets go
/// straight to the worker's hub, parked until they speak; they never
/// get a runtime registration of their own.
enum Listener {
    Tcp(AsyncFd<mio::net::TcpListener>),
    Unix(AsyncFd<mio::net::UnixListener>),
}

/// Registers `owner`'s descriptor in the worker's runtime for `interest`.
/// `owner` must own the descriptor and never change it while registered:
/// tokio deprecates its safe constructor for an `unsafe` one whose contract
/// is exactly that, and every owner here (a mio listener, the hub's
/// epoll set, the timers' timerfd) keeps it.
fn watch<T: AsRawFd>(owner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    #[allow(deprecated)]
    AsyncFd::with_interest(owner, interest)
}

impl Listener {
    fn attach(bound: BoundListener) -> io::Result<Listener> {
        // Both ways, as `AsyncFd::new` registered them.
        let interest = Interest::READABLE | Interest::WRITABLE;
        Ok(match bound {
            BoundListener::Tcp(l) => {
                Listener::Tcp(watch(mio::net::TcpListener::from_std(l), interest)?)
            }
            BoundListener::Unix(l) => {
                Listener::Unix(watch(mio::net::UnixListener::from_std(l), interest)?)
            }
        })
    }

    /// The next client (non-blocking, close-on-exec).
    async fn accept(&self, keepalive: bool) -> io::Result<Socket> {
        match self {
            Listener::Tcp(l) => {
                let (stream, _) = l.async_io(Interest::READABLE, |l| l.accept()).await?;
                stream.set_nodelay(true)?;
                if keepalive {
                    socket2::SockRef::from(&stream).set_keepalive(true)?;
                }
                Ok(Socket::Tcp(stream.into()))
            }
            Listener::Unix(l) => {
                let (stream, _) = l.async_io(Interest::READABLE, |l| l.accept()).await?;
                Ok(Socket::Unix(stream.into()))
            }
        }
    }
}

async fn accept_loop(listener: Listener, index: usize, worker: Rc<WorkerRuntime>) {
    let Some(pool) = worker.pools.get(index).cloned() else {
        return;
    };
    let limit = pool.config.client_connections as usize;
    loop {
        if worker.shutting_down() {
            return;
        }
        let accepted = tokio::select! {
            accepted = listener.accept(pool.config.tcpkeepalive) => accepted,
            _ = worker.signalled() => continue,
        };
        let socket = match accepted {
            Ok(socket) => socket,
            Err(e) => {
                crate::log_error!("accept on pool '{}' failed: {e}", pool.config.name);
                // Out of descriptors: pause instead of spinning.
                timer::sleep(&worker.timers, Duration::from_millis(10)).await;
                continue;
            }
        };
        let before = pool.clients.fetch_add(1, Ordering::Relaxed);
        if limit > 0 && before >= limit {
            // `client_connections`: accept, then close beyond the limit (as documented upstream).
            pool.clients.fetch_sub(1, Ordering::Relaxed);
            crate::log_warn!(
                "client connections of pool '{}' at limit {limit}, closing new client",
                pool.config.name
            );
            continue;
        }
        session::client_opened(&pool);
        // A new client waits parked until its first request arrives.
        worker.admit(socket, index);
    }
}
