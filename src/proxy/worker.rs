//! What one worker's tasks share: its pools, its hub, the count of
//! live sessions, and the signals that reach every session (shutdown, idle
//! sweeps).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::stats::WorkerStats;

use super::clock;
use super::hub::{Hub, Parked};
use super::pool::PoolRuntime;
use super::session::{self, Stop};
use super::stream::Socket;
use super::timer::{Timer, Timers};

/// How often idle clients are swept and parked. A client is
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
    /// Every client of the worker, active or parked, and every server connection.
    pub hub: Hub,
    shutdown: Cell<bool>,
    /// Wakes the listeners and the housekeeping for the shutdown.
    signal: Notify,
    /// Idle sessions parked (and freed) since the heap was last trimmed.
    idle_parked: Cell<usize>,
    /// The worker's timers.
    pub timers: Rc<Timers>,
}

impl WorkerRuntime {
    /// A worker serving `pools` through `hub`.
    pub fn new(
        pools: Vec<Rc<PoolRuntime>>,
        stats: Arc<WorkerStats>,
        timers: Rc<Timers>,
        hub: Hub,
    ) -> WorkerRuntime {
        WorkerRuntime {
            pools,
            stats,
            active: Cell::new(0),
            hub,
            shutdown: Cell::new(false),
            signal: Notify::new(),
            idle_parked: Cell::new(0),
            timers,
        }
    }

    /// Whether the proxy is shutting down.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.get()
    }

    /// Resolves at the shutdown.
    pub fn signalled(&self) -> Notified<'_> {
        self.signal.notified()
    }

    /// Tells every session and listener of the worker to wind down.
    pub fn shut_down(&self) {
        self.shutdown.set(true);
        self.signal.notify_waiters();
        self.hub.signal();
    }

    /// Takes a client just accepted: it waits parked until it speaks.
    pub fn admit(&self, socket: Socket, pool: usize) {
        let client = Parked {
            socket,
            pool: pool as u32,
            authenticated: false,
        };
        match self.hub.admit(client) {
            Ok(()) => self.stats.parked_clients.inc(),
            Err((client, e)) => {
                crate::log_error!("client closed: {e}");
                if let Some(pool) = self.pools.get(client.pool as usize) {
                    session::client_closed(pool, Stop::Error);
                }
            }
        }
    }

    /// A session went idle and parked: the memory it freed counts towards
    /// the next heap trim.
    pub fn parked_idle(&self) {
        self.idle_parked.set(self.idle_parked.get() + 1);
    }

    /// The worker's housekeeping task: runs the idle sweeps and trims the
    /// heap after them.
    pub async fn housekeeping(self: Rc<Self>) {
        let (sweep, trim) = (Timer::new(&self.timers), Timer::new(&self.timers));
        sweep.set(clock::after(SWEEP_PERIOD));
        let mut trim_armed = false;
        loop {
            if self.shutting_down() {
                return;
            }
            tokio::select! {
                biased;
                _ = sweep.fired() => {
                    sweep.set(clock::after(SWEEP_PERIOD));
                    super::merge::Merge::sweep();
                    // Fresh time for the sessions' idle checks.
                    super::clock::tick();
                    self.hub.signal();
                    // The sessions just signalled park as they run, a few
                    // microseconds each; the memory they free is given back
                    // once they all have (a yield here would resume after
                    // only a few dozen of them: the runtime polls for events
                    // between batches of tasks).
                    if !trim_armed {
                        trim.set(clock::after(TRIM_DELAY));
                        trim_armed = true;
                    }
                }
                _ = trim.fired(), if trim_armed => {
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
