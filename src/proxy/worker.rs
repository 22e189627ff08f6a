//! What one worker's tasks share: its pools, its parking lot, the count of
//! live sessions, and the signals that reach every session (shutdown, idle
//! sweeps).

use std::cell::Cell;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use crate::stats::WorkerStats;

use super::park::{Parked, ParkedSocket, ParkingLot};
use super::pool::PoolRuntime;
use super::session::{self, Stop};
use super::stream::Stream;

/// How often idle clients are swept into the parking lot. A client is
/// parked by the first sweep that finds it quiet for a whole period (so
/// after 1 to 2 periods of silence): rarely enough that a client talking
/// every few hundred milliseconds never pays for parking.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// Idle sessions parked after which free heap memory is returned to the system
/// ([`TRIM_DELAY`] after the sweep that parked them).
const TRIM_AFTER_PARKED: usize = 64;
/// How long after a sweep the heap is trimmed: time for every session the
/// sweep signalled to run and park (8,000 take well under 0.1 s).
const TRIM_DELAY: Duration = Duration::from_millis(250);

/// One worker's shared state (lives on the worker's thread only).
pub struct WorkerRuntime {
    pub pools: Vec<Rc<PoolRuntime>>,
    pub stats: Arc<WorkerStats>,
    /// Client sessions running now (a shutdown waits for them).
    pub active: Cell<usize>,
    lot: ParkingLot,
    shutdown: Cell<bool>,
    /// Wakes sessions for a shutdown or a sweep.
    signal: Notify,
    /// Counts the signals, so a session tells one happened without polling `signal`.
    signals: Cell<u64>,
    /// Idle sessions parked (and freed) since the heap was last trimmed.
    idle_parked: Cell<usize>,
}

impl WorkerRuntime {
    /// A worker with an empty parking lot; call inside the worker's runtime.
    pub fn new(
        pools: Vec<Rc<PoolRuntime>>,
        stats: Arc<WorkerStats>,
    ) -> std::io::Result<WorkerRuntime> {
        Ok(WorkerRuntime {
            pools,
            stats,
            active: Cell::new(0),
            lot: ParkingLot::new()?,
            shutdown: Cell::new(false),
            signal: Notify::new(),
            signals: Cell::new(0),
            idle_parked: Cell::new(0),
        })
    }

    /// Whether the proxy is shutting down.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.get()
    }

    /// Resolves at the next shutdown or sweep signal.
    pub fn signalled(&self) -> Notified<'_> {
        self.signal.notified()
    }

    /// How many shutdown and sweep signals there have been.
    pub fn signals(&self) -> u64 {
        self.signals.get()
    }

    /// Signals every session (and whatever waits in [`WorkerRuntime::signalled`]).
    fn signal_all(&self) {
        self.signals.set(self.signals.get() + 1);
        self.signal.notify_waiters();
    }

    /// Tells every session and listener of the worker to wind down.
    pub fn shut_down(&self) {
        self.shutdown.set(true);
        self.signal_all();
    }

    /// Serves a client with a new session task.
    pub fn serve(self: &Rc<Self>, stream: Stream, pool: usize, authenticated: bool) {
        let Some(pool) = self.pools.get(pool).cloned() else {
            return;
        };
        self.active.set(self.active.get() + 1);
        let worker = self.clone();
        tokio::task::spawn_local(async move {
            session::run(stream, pool, worker.clone(), authenticated).await;
            worker.active.set(worker.active.get() - 1);
        });
    }

    /// Parks a client just accepted: it waits in the lot until it speaks.
    pub fn park_new(self: &Rc<Self>, socket: ParkedSocket, pool: usize) {
        self.park(socket, pool, false, false);
    }

    /// Parks a client whose session went idle; the memory the session freed
    /// counts towards the next heap trim.
    pub fn park_idle(self: &Rc<Self>, socket: ParkedSocket, pool: usize, authenticated: bool) {
        self.park(socket, pool, authenticated, true);
    }

    /// Parks a client; if the lot cannot take it, it is served by a session
    /// right away.
    fn park(self: &Rc<Self>, socket: ParkedSocket, pool: usize, authenticated: bool, freed: bool) {
        let client = Parked {
            socket,
            pool: pool as u32,
            authenticated,
        };
        match self.lot.park(client) {
            Ok(()) => {
                self.stats.parked_clients.inc();
                if freed {
                    self.idle_parked.set(self.idle_parked.get() + 1);
                }
            }
            Err((client, e)) => {
                crate::log_debug!("parking a client failed, serving it: {e}");
                self.unpark(client);
            }
        }
    }

    /// Gives a parked client that spoke a session again.
    fn unpark(self: &Rc<Self>, client: Parked) {
        let pool = client.pool as usize;
        match Stream::from_parked(client.socket) {
            Ok(stream) => self.serve(stream, pool, client.authenticated),
            Err(e) => {
                crate::log_info!("client closed: {e}");
                if let Some(pool) = self.pools.get(pool) {
                    session::client_closed(pool, Stop::Error);
                }
            }
        }
    }

    /// The worker's housekeeping task: wakes parked clients that spoke, runs
    /// the idle sweeps, and closes parked clients at shutdown.
    pub async fn housekeeping(self: Rc<Self>) {
        let mut events = ParkingLot::events();
        let mut sweep = pin!(sleep_until(Instant::now() + SWEEP_PERIOD));
        let mut trim = pin!(sleep_until(Instant::now() + SWEEP_PERIOD));
        let mut trim_armed = false;
        loop {
            if self.shutting_down() {
                for client in self.lot.drain() {
                    self.stats.parked_clients.add(-1);
                    if let Some(pool) = self.pools.get(client.pool as usize) {
                        session::client_closed(pool, Stop::Quit);
                    }
                }
                return;
            }
            tokio::select! {
                biased;
                guard = self.lot.readable() => {
                    let mut guard = match guard {
                        Ok(guard) => guard,
                        Err(e) => {
                            crate::log_error!("parking lot failed: {e}");
                            return;
                        }
                    };
                    let taken = self.lot.take_ready(&mut events, |client| {
                        self.stats.parked_clients.add(-1);
                        self.unpark(client);
                    });
                    if let Err(e) = taken {
                        crate::log_error!("parking lot failed: {e}");
                    }
                    guard.clear_ready();
                }
                _ = &mut sweep => {
                    sweep.as_mut().reset(Instant::now() + SWEEP_PERIOD);
                    super::merge::Merge::sweep();
                    // Fresh time for the sessions' idle checks.
                    super::clock::tick();
                    self.signal_all();
                    // The sessions just signalled park as they run, a few
                    // microseconds each; the memory they free is given back
                    // once they all have (a yield here would resume after
                    // only a few dozen of them: the runtime polls for events
                    // between batches of tasks).
                    if !trim_armed {
                        trim.as_mut().reset(Instant::now() + TRIM_DELAY);
                        trim_armed = true;
                    }
                }
                _ = &mut trim, if trim_armed => {
                    trim_armed = false;
                    if self.idle_parked.get() >= TRIM_AFTER_PARKED {
                        self.idle_parked.set(0);
                        crate::daemon::trim_heap();
                    }
                }
                _ = self.signalled() => {}
            }
        }
    }
}
