//! The parking lot: idle client connections held as bare sockets.
//!
//! A client with nothing to say costs nutcracker ~0.27 KiB (its `struct
//! conn`). A tokio task per client costs several times that, so a client
//! that has been idle for a whole sweep period (and every client that was
//! just accepted) gives up its task, buffers and registration and waits here
//! as one small slot: its socket, its pool and, for redis, whether it has
//! authenticated. The lot is a second epoll instance, itself registered in
//! the runtime's, so one wake-up tells which parked clients spoke; those get
//! a fresh session task. Parking happens once per idle period, never per
//! request.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

/// A socket without a runtime registration.
pub enum ParkedSocket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl ParkedSocket {
    fn fd(&self) -> RawFd {
        match self {
            ParkedSocket::Tcp(s) => s.as_raw_fd(),
            ParkedSocket::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// A parked client: everything its next session needs.
pub struct Parked {
    pub socket: ParkedSocket,
    /// The pool's index in the worker.
    pub pool: u32,
    /// Redis pools with `redis_auth`: the client has authenticated.
    pub authenticated: bool,
}

/// The lot's epoll instance; it owns the descriptor the runtime watches.
pub struct LotPoll {
    poll: RefCell<Poll>,
    fd: RawFd,
}

impl AsRawFd for LotPoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

/// One worker's parked clients.
pub struct ParkingLot {
    /// The lot's epoll instance registered in the runtime: readable when a
    /// parked client has data, an EOF or an error.
    ready: AsyncFd<LotPoll>,
    /// Parked clients by token; `None` slots are free (listed in `free`).
    slots: RefCell<Slots>,
}

#[derive(Default)]
struct Slots {
    parked: Vec<Option<Parked>>,
    free: Vec<u32>,
}

/// Events taken from the lot per `epoll_wait`.
const EVENTS: usize = 256;

impl ParkingLot {
    /// An empty lot; must be called inside the worker's runtime.
    pub fn new() -> io::Result<ParkingLot> {
        let poll = Poll::new()?;
        let fd = poll.as_raw_fd();
        let poll = LotPoll {
            poll: RefCell::new(poll),
            fd,
        };
        // tokio deprecates its safe constructor in favour of an `unsafe` one
        // whose contract is that the descriptor stays open and the same while
        // registered: `LotPoll` owns it and never changes it.
        #[allow(deprecated)]
        let ready = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE)?;
        Ok(ParkingLot {
            ready,
            slots: RefCell::new(Slots::default()),
        })
    }

    fn poll(&self) -> &RefCell<Poll> {
        &self.ready.get_ref().poll
    }

    /// Parks a client until its socket becomes readable. On failure the
    /// client comes back, for the caller to serve some other way.
    pub fn park(&self, client: Parked) -> Result<(), (Parked, io::Error)> {
        let mut slots = self.slots.borrow_mut();
        let index = match slots.free.pop() {
            Some(i) => i as usize,
            None => {
                slots.parked.push(None);
                slots.parked.len() - 1
            }
        };
        let fd = client.socket.fd();
        // Registering checks readiness at once: bytes that came in while the
        // client was being parked wake the lot right away.
        let registered = self.poll().borrow().registry().register(
            &mut SourceFd(&fd),
            Token(index),
            Interest::READABLE,
        );
        match registered {
            Ok(()) => {
                slots.parked[index] = Some(client);
                Ok(())
            }
            Err(e) => {
                slots.free.push(index as u32);
                Err((client, e))
            }
        }
    }

    /// Waits until some parked client is readable.
    pub async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, LotPoll>> {
        self.ready.readable().await
    }

    /// Takes every parked client whose socket became readable (deregistered,
    /// ready to be served) and hands each to `serve`.
    pub fn take_ready(&self, events: &mut Events, mut serve: impl FnMut(Parked)) -> io::Result<()> {
        loop {
            self.poll()
                .borrow_mut()
                .poll(events, Some(std::time::Duration::ZERO))?;
            for event in events.iter() {
                let client = {
                    let mut slots = self.slots.borrow_mut();
                    let index = event.token().0;
                    let Some(client) = slots.parked.get_mut(index).and_then(Option::take) else {
                        continue;
                    };
                    slots.free.push(index as u32);
                    client
                };
                let fd = client.socket.fd();
                // The socket goes to the runtime next; a failure here only
                // means the lot may report it once more, which finds an empty slot.
                let _ = self
                    .poll()
                    .borrow()
                    .registry()
                    .deregister(&mut SourceFd(&fd));
                serve(client);
            }
            if events.iter().count() < events.capacity() {
                return Ok(());
            }
        }
    }

    /// Closes every parked client (shutdown); returns them for the books.
    pub fn drain(&self) -> Vec<Parked> {
        let mut slots = self.slots.borrow_mut();
        slots.free.clear();
        let parked: Vec<Parked> = std::mem::take(&mut slots.parked)
            .into_iter()
            .flatten()
            .collect();
        parked
    }

    /// A fresh event buffer for [`ParkingLot::take_ready`].
    pub fn events() -> Events {
        Events::with_capacity(EVENTS)
    }
}
