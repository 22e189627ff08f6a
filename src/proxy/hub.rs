//! The hub: every client connection and every server connection of a
//! worker in one epoll set of its own, served by one driver task that runs
//! the ready clients' sessions and reads the ready server connections'
//! replies inline.
//!
//! Why not a tokio task per client: at pipeline depth 1 every request then
//! paid the runtime's readiness bookkeeping (a `ScheduledIo` update and a
//! wake under its lock), a task schedule and poll with their atomic state
//! changes, and a session future's poll: ~1,100 of ~4,800 instructions a
//! request (callgrind), and at 1,000 clients cache misses over as many task
//! headers and registrations. Here the hub's epoll set is itself registered
//! in the runtime's, so one runtime wake-up tells which clients are ready,
//! and each is a slot lookup and a call (see `bench/HISTORY.md`).
//!
//! A client is *active* (a [`Session`]: its reply queue and buffers) or
//! *parked* (its socket, pool and redis AUTH state only: ~0.02 KiB, against
//! nutcracker's 0.27 KiB per idle connection). A new client starts parked
//! and becomes active at its first byte; an active one parks again after a
//! whole sweep period of silence. Its socket stays in the epoll set
//! throughout, so neither costs a system call. Parking happens once per idle
//! period, never per request.
//!
//! Server connections join the set once connected ([`ServerWatch`]): the
//! hub reads their replies and finishes writes the kernel did not take
//! whole. Their tasks remain for the connect, the request deadlines and the
//! end of the connection. Until session 16 each connection's task waited
//! for its socket in the runtime: a readiness update and a wake under the
//! runtime's lock, a task poll and a `select!` per batch of replies (~19%
//! of the user-space instructions a request at light load, callgrind). The
//! move saved ~5% of them: the hub's own wake-up (the runtime reports the
//! hub's descriptor, then the hub asks its set) costs much of the rest.
//!
//! Besides socket events, a session is stepped when something outside it
//! needs it to act ([`SessionWake`]: replies its socket did not take, replies
//! while it waits for them before closing), and at every worker signal (idle
//! sweeps, shutdown).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use tokio::io::unix::AsyncFd;

use super::server::{ServerConnection, ServerRuntime};
use super::session::{self, Outcome, Session, Stop, Why};
use super::stream::Socket;
use super::worker::WorkerRuntime;

/// A parked client: everything its next session needs.
pub struct Parked {
    pub socket: Socket,
    /// The pool's index in the worker.
    pub pool: u32,
    /// Redis pools with `redis_auth`: the client has authenticated.
    pub authenticated: bool,
}

/// The hub's epoll instance; it owns the descriptor the runtime watches.
struct HubPoll {
    poll: RefCell<mio::Poll>,
    fd: RawFd,
}

impl AsRawFd for HubPoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

/// One worker's clients and server connections.
pub struct Hub {
    /// The epoll set of every client socket, registered in the runtime:
    /// readable when some client has an event.
    ready: AsyncFd<HubPoll>,
    /// Clients by token; free slots are listed in `free`.
    slots: RefCell<Vec<Entry>>,
    free: RefCell<Vec<u32>>,
    /// Sessions to step, and the driver's waker.
    wakes: Rc<Wakes>,
    events: RefCell<Events>,
    /// The server connections in the epoll set.
    pub servers: Rc<ServerWatch>,
}

enum Entry {
    Free,
    Parked(Parked),
    Active(Box<Session>),
    /// Taken out while its session runs.
    Stepping,
}

/// Tokens from this one on are server connections' (the slot is the token
/// less this); below it, clients' (the token is the slot).
const SERVER_TOKENS: usize = 1 << 30;

/// Events taken from the epoll set per `epoll_wait`.
const EVENTS: usize = 256;
/// Wake-ups and steps a driver round serves before it lets the runtime's
/// other tasks (listeners, server connections' deadlines) run.
const DUE_PER_ROUND: usize = 4096;

impl Hub {
    /// An empty hub; must be called inside the worker's runtime.
    pub fn new() -> io::Result<Hub> {
        let poll = mio::Poll::new()?;
        let fd = poll.as_raw_fd();
        let poll = HubPoll {
            poll: RefCell::new(poll),
            fd,
        };
        let servers = Rc::new(ServerWatch {
            registry: poll.poll.borrow().registry().try_clone()?,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        });
        // `HubPoll` owns the descriptor and never changes it.
        let ready = super::watch(poll, tokio::io::Interest::READABLE)?;
        Ok(Hub {
            servers,
            ready,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            wakes: Rc::new(Wakes::default()),
            events: RefCell::new(Events::with_capacity(EVENTS)),
        })
    }

    /// Takes a client just accepted: it waits parked until it speaks. On
    /// failure the socket comes back with the error.
    pub fn admit(&self, parked: Parked) -> Result<(), (Parked, io::Error)> {
        let index = match self.free.borrow_mut().pop() {
            Some(i) => i as usize,
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Entry::Free);
                slots.len() - 1
            }
        };
        let fd = parked.socket.as_raw_fd();
        // Edge-triggered, both ways, for the socket's whole life: registering
        // checks readiness at once, so bytes already there wake the hub.
        let registered = self.ready.get_ref().poll.borrow().registry().register(
            &mut SourceFd(&fd),
            Token(index),
            Interest::READABLE | Interest::WRITABLE,
        );
        match registered {
            Ok(()) => {
                self.slots.borrow_mut()[index] = Entry::Parked(parked);
                Ok(())
            }
            Err(e) => {
                self.free.borrow_mut().push(index as u32);
                Err((parked, e))
            }
        }
    }

    /// Steps every live session and parked client: a worker signal (idle
    /// sweep or shutdown) reaches them all.
    pub fn signal(&self) {
        self.wakes.signalled.set(true);
        self.wakes.wake_driver();
    }

    fn take(&self, slot: u32) -> Option<Entry> {
        let mut slots = self.slots.borrow_mut();
        let entry = slots.get_mut(slot as usize)?;
        match entry {
            Entry::Free | Entry::Stepping => None,
            _ => Some(std::mem::replace(entry, Entry::Stepping)),
        }
    }

    fn put(&self, slot: u32, entry: Entry) {
        if let Entry::Free = entry {
            self.free.borrow_mut().push(slot);
        }
        self.slots.borrow_mut()[slot as usize] = entry;
    }
}

/// The server connections whose sockets are in the hub's epoll set.
pub struct ServerWatch {
    /// The hub's epoll set (a handle of its own).
    registry: mio::Registry,
    /// Connections by slot; free slots are listed in `free`.
    slots: RefCell<Vec<Option<Watched>>>,
    free: RefCell<Vec<u32>>,
}

/// A server connection the hub serves, and its server.
#[derive(Clone)]
struct Watched {
    connection: Rc<ServerConnection>,
    server: Rc<ServerRuntime>,
}

impl ServerWatch {
    /// Adds the socket `fd` of `connection` (just connected) to the set,
    /// edge-triggered both ways; returns its slot, for [`ServerWatch::remove`].
    pub fn add(
        &self,
        fd: RawFd,
        connection: &Rc<ServerConnection>,
        server: &Rc<ServerRuntime>,
    ) -> io::Result<u32> {
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(None);
                (slots.len() - 1) as u32
            }
        };
        let token = Token(SERVER_TOKENS + slot as usize);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.registry.register(&mut SourceFd(&fd), token, interest) {
            self.free.borrow_mut().push(slot);
            return Err(e);
        }
        self.slots.borrow_mut()[slot as usize] = Some(Watched {
            connection: connection.clone(),
            server: server.clone(),
        });
        Ok(slot)
    }

    /// Takes the socket `fd` in `slot` out of the set (before it closes).
    pub fn remove(&self, slot: u32, fd: RawFd) {
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        if let Some(entry) = self.slots.borrow_mut().get_mut(slot as usize) {
            if entry.take().is_some() {
                self.free.borrow_mut().push(slot);
            }
        }
    }

    fn get(&self, slot: usize) -> Option<Watched> {
        self.slots.borrow().get(slot)?.clone()
    }
}

/// Sessions due a step for a reason other than a socket event.
#[derive(Default)]
pub struct Wakes {
    due: RefCell<Vec<u32>>,
    /// A worker signal came.
    signalled: Cell<bool>,
    /// The driver task, while it waits.
    waker: Cell<Option<Waker>>,
}

impl Wakes {
    fn wake_driver(&self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn pending(&self) -> bool {
        self.signalled.get() || !self.due.borrow().is_empty()
    }
}

/// How something outside a session (a server connection's reply batch, a
/// reply the proxy makes) asks for it to be stepped.
pub struct SessionWake {
    wakes: Rc<Wakes>,
    slot: u32,
    /// Already due (or running): one step serves any number of wake-ups.
    queued: Cell<bool>,
}

impl SessionWake {
    /// The wake-up for the session in `slot` of `hub`.
    pub fn new(hub: &Hub, slot: u32) -> SessionWake {
        SessionWake {
            wakes: hub.wakes.clone(),
            slot,
            queued: Cell::new(false),
        }
    }

    /// Has the session stepped soon (once, however often this is called before).
    pub fn notify(&self) {
        if !self.queued.replace(true) {
            self.wakes.due.borrow_mut().push(self.slot);
            self.wakes.wake_driver();
        }
    }

    /// The session is stepping: what it would be woken for now, it sees.
    fn stepping(&self) {
        self.queued.set(true);
    }

    /// The step is over: the next wake-up counts again.
    fn stepped(&self) {
        self.queued.set(false);
    }
}

/// The worker's driver of client sessions: waits for client events,
/// wake-ups and signals, and runs the sessions they concern.
pub async fn drive(worker: Rc<WorkerRuntime>) {
    let hub = &worker.hub;
    let mut due: Vec<u32> = Vec::new();
    // Sessions with more to read: stepped again in the next round, after
    // the server connections' replies have been read and the runtime's
    // other tasks have run (a client pipelining without pause must not keep
    // them from draining what it sent).
    let mut later: Vec<u32> = Vec::new();
    loop {
        let ready = poll_fn(|cx| {
            if let Poll::Ready(ready) = hub.ready.poll_read_ready(cx) {
                return Poll::Ready(Some(ready));
            }
            if hub.wakes.pending() {
                return Poll::Ready(None);
            }
            let waker = match hub.wakes.waker.take() {
                Some(waker) if waker.will_wake(cx.waker()) => waker,
                _ => cx.waker().clone(),
            };
            hub.wakes.waker.set(Some(waker));
            Poll::Pending
        })
        .await;
        // Requests the round queues leave in one write per server
        // connection when it ends (before the yield below).
        let batch = super::write_batch::open();
        match ready {
            Some(Ok(mut guard)) => {
                if let Err(e) = take_events(&worker, &mut later) {
                    crate::log_error!("client events failed: {e}");
                }
                guard.clear_ready();
            }
            Some(Err(e)) => {
                crate::log_error!("client events failed: {e}");
                return;
            }
            None => {}
        }
        if hub.wakes.signalled.replace(false) {
            let live = hub.slots.borrow().len() as u32;
            for slot in 0..live {
                step(&worker, slot, Why::Signal, &mut later);
            }
        }
        step_due(&worker, &mut due, &mut later);
        // One more look for client events before the writes: requests that
        // came while the round ran join them (a write to a backend, with its
        // wake-up there, costs several times an empty look).
        if super::write_batch::pending() {
            if let Err(e) = take_events(&worker, &mut later) {
                crate::log_error!("client events failed: {e}");
            }
            step_due(&worker, &mut due, &mut later);
        }
        drop(batch);
        if !later.is_empty() || hub.wakes.pending() {
            hub.wakes.due.borrow_mut().append(&mut later);
            tokio::task::yield_now().await;
        }
    }
}

/// Steps the sessions due a wake-up, including those the steps make (a
/// reply the proxy answers itself for another client, say), up to
/// [`DUE_PER_ROUND`].
fn step_due(worker: &Rc<WorkerRuntime>, due: &mut Vec<u32>, later: &mut Vec<u32>) {
    let mut served = 0;
    while served < DUE_PER_ROUND {
        std::mem::swap(due, &mut *worker.hub.wakes.due.borrow_mut());
        if due.is_empty() {
            break;
        }
        served += due.len();
        for &slot in due.iter() {
            step(worker, slot, Why::Wake, later);
        }
        due.clear();
    }
}

/// Steps every client with an event and serves every server connection
/// with one, until the epoll set has no more.
fn take_events(worker: &Rc<WorkerRuntime>, later: &mut Vec<u32>) -> io::Result<()> {
    let hub = &worker.hub;
    let mut events = hub.events.borrow_mut();
    loop {
        let polled = hub
            .ready
            .get_ref()
            .poll
            .borrow_mut()
            .poll(&mut events, Some(Duration::ZERO));
        match polled {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let mut count = 0;
        for event in events.iter() {
            count += 1;
            // An error or a hang-up is for a read to find out.
            let closed = event.is_read_closed() || event.is_error();
            let readable = event.is_readable() || closed;
            let token = event.token().0;
            if let Some(slot) = token.checked_sub(SERVER_TOKENS) {
                if let Some(watched) = hub.servers.get(slot) {
                    let writable = event.is_writable();
                    watched
                        .connection
                        .on_event(&watched.server, readable, writable, closed);
                }
                continue;
            }
            let why = Why::Event { readable, closed };
            step(worker, token as u32, why, later);
        }
        if count < EVENTS {
            return Ok(());
        }
    }
}

/// Runs the client in `slot` for `why`: a parked one that spoke becomes a
/// session; a session that ends closes or parks; one with more to read is
/// put on `later`.
fn step(worker: &Rc<WorkerRuntime>, slot: u32, why: Why, later: &mut Vec<u32>) {
    let hub = &worker.hub;
    let Some(entry) = hub.take(slot) else {
        return;
    };
    let mut session = match entry {
        Entry::Active(session) => session,
        Entry::Parked(parked) => {
            let speaks = matches!(why, Why::Event { readable: true, .. });
            if worker.shutting_down() {
                // Shutdown: parked clients have nothing in flight.
                worker.stats.parked_clients.add(-1);
                client_gone(worker, parked.pool, Stop::Quit);
                hub.put(slot, Entry::Free);
                return;
            }
            if !speaks {
                hub.put(slot, Entry::Parked(parked));
                return;
            }
            worker.stats.parked_clients.add(-1);
            let pool = parked.pool;
            match Session::resume(parked, slot, worker) {
                Some(session) => {
                    worker.active.set(worker.active.get() + 1);
                    session
                }
                None => {
                    client_gone(worker, pool, Stop::Error);
                    hub.put(slot, Entry::Free);
                    return;
                }
            }
        }
        Entry::Free | Entry::Stepping => return,
    };
    session.client().wake.stepping();
    let outcome = session.step(worker, why);
    session.client().wake.stepped();
    match outcome {
        Outcome::Wait => hub.put(slot, Entry::Active(session)),
        Outcome::Again => {
            later.push(slot);
            hub.put(slot, Entry::Active(session));
        }
        Outcome::Closed(stop) => {
            let pool = session.pool_index();
            session.close();
            worker.active.set(worker.active.get() - 1);
            client_gone(worker, pool, stop);
            hub.put(slot, Entry::Free);
        }
        Outcome::Idle => {
            worker.active.set(worker.active.get() - 1);
            let pool = session.pool_index();
            match session.park() {
                Some(parked) => {
                    worker.stats.parked_clients.inc();
                    worker.parked_idle();
                    hub.put(slot, Entry::Parked(parked));
                }
                None => {
                    crate::log_error!("client closed: still referenced when parked");
                    client_gone(worker, pool, Stop::Error);
                    hub.put(slot, Entry::Free);
                }
            }
        }
    }
}

fn client_gone(worker: &WorkerRuntime, pool: u32, stop: Stop) {
    if let Some(pool) = worker.pools.get(pool as usize) {
        session::client_closed(pool, stop);
    }
}
