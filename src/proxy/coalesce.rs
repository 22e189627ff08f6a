//! Event coalescing: under load, a worker lets events gather for a moment
//! before it looks for them, as a network card moderates its interrupts.
//!
//! Why: without it, a worker that keeps up with its clients wakes for every
//! event or two. Each wake-up costs an `epoll_wait`, a sleep and a cross-CPU
//! wake-up (paid by the process that sent the event), and the requests read
//! in it leave for their server in a write of their own, which wakes the
//! server for one or two requests as well. Measured on memcache at pipeline 1
//! (bench/HISTORY.md), that made the proxy's CPU per request and the backends'
//! equal to nutcracker's, whose slower loop batches by accident.
//!
//! The rule. A worker starts *coalescing* once it is loaded by many
//! clients: over a 10 ms period it was busy (running tasks, neither waiting
//! nor sleeping) at least 15% of the time, and at least 16 clients sent it
//! requests. (At 30% the bench's 20,000 requests/s from 50 clients, busy
//! 16–25% of its periods, coalesced only when a burst pushed one period over
//! the bar, by luck; once server replies were read in the hub it never did,
//! and woke ~3 times as often: 1.2 `epoll_wait`s a request against 0.4, and
//! ~12% more CPU a request. At 10,000 requests/s a worker is busy ~10%.)
//! While coalescing, each time the runtime is about to wait for events, it
//! first sleeps for one *window* if events arrive back to back (the last
//! wait ended within one window). It stops coalescing when sleeping no
//! longer pays: when, over a 10 ms period, the rounds after its sleeps
//! served fewer than 2 events (requests sent to servers and replies read)
//! on average. A sleep takes the place of a wake-up; it pays once the round
//! after it serves what would otherwise have woken the worker more than
//! once. (A shorter horizon ends it too early: a closed loop of clients
//! takes a few dozen sleeps to fall into step with them. A bar of 8 events
//! kept the memcache multi-get of 100 keys from coalescing, its rounds
//! serving a few events of ~50 keys each; at 2 its CPU per request fell and
//! its throughput rose ~15% on the rig, the single-key rows unchanged: see
//! bench/HISTORY.md.) After a period that did not pay it waits 1, 2, 4 … up
//! to 64 periods before it tries again. So:
//! - A worker with spare time never sleeps, and neither does one serving a
//!   handful of clients, however busy: their requests are served at once.
//!   (Sleeping there only adds latency: a client with one request in flight
//!   has nothing more to send while it waits. Measured without this gate,
//!   4 such clients on loopback lost a third of their throughput. A gate on
//!   the busy share alone, at 60%, let many clients at 50–60% load wake the
//!   worker for each event or two.)
//! - A loaded worker gives up idle time it would have spent waking up for
//!   each event: each hop through it waits at most one window more, and a
//!   round serves everything that came meanwhile (one `epoll_wait`, one write
//!   per server). Throughput does not suffer: the sleep takes the place of
//!   idle time, events pile up during it as they would during a round of
//!   work, and batching makes each event cheaper. Coalescing lowers the
//!   worker's busy share, which is why it is left on what the sleeps yield,
//!   not on that share.
//!
//! The sleep is a timer on the worker's own CPU (its timer slack set to
//! 1 µs so that it lasts what it asks for), not a wake-up from another CPU.
//!
//! The logic is a plain state machine over instants, so it is tested without
//! clocks; [`install`] hooks it into a tokio runtime.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use super::clock::{self, Micros};

/// Default `--coalesce`, in microseconds.
pub const DEFAULT_WINDOW_US: u64 = 50;

/// How long a period the load is measured over.
const PERIOD: Micros = 10_000;
/// Busy share of a period, and clients that sent requests in it, from
/// which a worker starts coalescing.
const START_LOAD: f64 = 0.15;
const START_CLIENTS: u32 = 16;
/// Events a round after a sleep must serve, on average over a period, for sleeping to go on.
const PAYING_EVENTS: u64 = 2;
/// The most periods a worker waits before trying again after sleeps that did not pay.
const MAX_COOLDOWN: u32 = 64;

/// Whether to sleep before each wait for events.
#[derive(Debug, Clone)]
pub struct Coalescer {
    /// The window, in microseconds.
    window: Micros,
    /// When the last wait for events began (after any sleep).
    wait_began: Option<Micros>,
    /// When the last wait ended: the current round of work began.
    round_began: Option<Micros>,
    /// The event count when the current round began.
    round_events: u64,
    /// The last wait ended within one window.
    back_to_back: bool,
    /// The last wait followed a sleep.
    slept: bool,
    /// Sleeping before waits (the worker was loaded and sleeping pays).
    coalescing: bool,
    /// The current period: when it began, how long the worker was busy in
    /// it (while not coalescing), its sleeps and the events served in the
    /// rounds after them.
    period_began: Option<Micros>,
    period_busy: Micros,
    period_sleeps: u64,
    period_paid: u64,
    /// Periods left before coalescing may start again, and the wait after
    /// the next period that does not pay.
    cooldown: u32,
    next_cooldown: u32,
    /// Periods begun so far (the clients are counted per period).
    periods: u32,
}

impl Coalescer {
    /// A coalescer with the given window; a zero window never sleeps.
    pub fn new(window: Duration) -> Coalescer {
        Coalescer {
            window: u64::try_from(window.as_micros()).unwrap_or(u64::MAX),
            wait_began: None,
            round_began: None,
            round_events: 0,
            back_to_back: false,
            slept: false,
            coalescing: false,
            period_began: None,
            period_busy: 0,
            period_sleeps: 0,
            period_paid: 0,
            cooldown: 0,
            next_cooldown: 1,
            periods: 0,
        }
    }

    /// The number of the current period (see [`count_client`]).
    pub fn period(&self) -> u32 {
        self.periods
    }

    /// The worker is about to wait for events at `now`, having counted
    /// `events` so far and `clients` clients that sent requests in the
    /// current period: how long to sleep first.
    pub fn before_wait(&mut self, now: Micros, events: u64, clients: u32) -> Option<Duration> {
        if self.window == 0 {
            return None;
        }
        if self.slept {
            self.period_paid += events.wrapping_sub(self.round_events);
        }
        if !self.coalescing {
            if let Some(began) = self.round_began {
                self.period_busy += now.saturating_sub(began);
            }
        }
        let period_began = *self.period_began.get_or_insert(now);
        let elapsed = now.saturating_sub(period_began);
        if elapsed >= PERIOD {
            if self.coalescing {
                // No sleeps at all (events came apart): nothing to judge.
                if self.period_sleeps > 0 {
                    if self.period_paid < PAYING_EVENTS * self.period_sleeps {
                        self.coalescing = false;
                        self.cooldown = self.next_cooldown;
                        self.next_cooldown = (self.next_cooldown * 2).min(MAX_COOLDOWN);
                    } else {
                        self.next_cooldown = 1;
                    }
                }
            } else if self.cooldown > 0 {
                self.cooldown -= 1;
            } else {
                let load = self.period_busy as f64 / elapsed as f64;
                self.coalescing = load >= START_LOAD && clients >= START_CLIENTS;
            }
            self.periods = self.periods.wrapping_add(1);
            self.period_began = Some(now);
            self.period_busy = 0;
            self.period_sleeps = 0;
            self.period_paid = 0;
        }
        self.slept = self.coalescing && self.back_to_back;
        self.period_sleeps += u64::from(self.slept);
        let nap = if self.slept { self.window } else { 0 };
        self.wait_began = Some(now.saturating_add(nap));
        self.slept.then(|| Duration::from_micros(nap))
    }

    /// The wait for events ended at `now`, with `events` counted so far.
    pub fn after_wait(&mut self, now: Micros, events: u64) {
        if let Some(began) = self.wait_began.take() {
            self.back_to_back = now.saturating_sub(began) < self.window;
        }
        self.round_began = Some(now);
        self.round_events = events;
    }
}

thread_local! {
    static WORKER: RefCell<Coalescer> = RefCell::new(Coalescer::new(Duration::ZERO));
    /// Events this worker served: requests queued to servers, replies read.
    static EVENTS: Cell<u64> = const { Cell::new(0) };
    /// The current period's number, and the clients counted in it.
    static CLIENTS: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// The mark of a client not counted yet (see [`count_client`]).
pub const NOT_COUNTED: u32 = u32::MAX;

/// Counts a client of this worker that sent requests, once per period;
/// `counted` is the client's own mark, [`NOT_COUNTED`] at first.
pub fn count_client(counted: &mut u32) {
    CLIENTS.with(|c| {
        let (period, clients) = c.get();
        if *counted != period {
            *counted = period;
            c.set((period, clients + 1));
        }
    });
}

/// Counts one event of this worker: a request queued to a server, or a reply read.
pub fn count_event() {
    EVENTS.with(|c| c.set(c.get().wrapping_add(1)));
}

/// Sets up coalescing with `window` on a current-thread runtime that will
/// run on the calling thread (a zero window turns it off).
pub fn install(
    builder: &mut tokio::runtime::Builder,
    window: Duration,
) -> &mut tokio::runtime::Builder {
    WORKER.with(|c| *c.borrow_mut() = Coalescer::new(window));
    if window.is_zero() {
        return builder;
    }
    // The kernel may fire a timer up to 50 µs late by default: ask for a
    // sleep that lasts what it asks for.
    crate::daemon::set_timer_slack(Duration::from_micros(1));
    builder
        .on_thread_park(|| {
            let events = EVENTS.with(Cell::get);
            let (period, clients) = CLIENTS.with(Cell::get);
            let (nap, next) = WORKER.with(|c| {
                let mut c = c.borrow_mut();
                (c.before_wait(clock::read(), events, clients), c.period())
            });
            if next != period {
                CLIENTS.with(|c| c.set((next, 0)));
            }
            if let Some(nap) = nap {
                std::thread::sleep(nap);
            }
        })
        .on_thread_unpark(|| {
            let events = EVENTS.with(Cell::get);
            WORKER.with(|c| c.borrow_mut().after_wait(clock::read(), events));
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_micros(50);

    fn us(n: u64) -> Micros {
        n
    }

    /// A worker loop in virtual time: each round takes `busy_us` and serves
    /// `events` events, then the worker waits `wait_us` (after any sleep).
    struct Loop {
        c: Coalescer,
        t: Micros,
        events: u64,
        /// Clients that send requests in each period.
        clients: u32,
    }

    impl Loop {
        fn new() -> Loop {
            Loop {
                c: Coalescer::new(W),
                t: 1_000_000,
                events: 0,
                clients: 50,
            }
        }

        /// A worker that has been 90% busy for 50 ms, every round serving 20 events: coalescing.
        fn loaded() -> Loop {
            let mut l = Loop::new();
            l.run(1000, 45, 20, 5);
            l
        }

        /// Runs `rounds` rounds; returns how many began with a sleep.
        fn run(&mut self, rounds: usize, busy_us: u64, events: u64, wait_us: u64) -> usize {
            let mut naps = 0;
            for _ in 0..rounds {
                self.t += us(busy_us);
                self.events += events;
                if let Some(nap) = self.c.before_wait(self.t, self.events, self.clients) {
                    assert_eq!(nap, W);
                    naps += 1;
                    self.t += nap.as_micros() as u64;
                }
                self.t += us(wait_us);
                self.c.after_wait(self.t, self.events);
            }
            naps
        }
    }

    #[test]
    fn an_idle_worker_waits_at_once() {
        // Long waits between rounds, however much each serves.
        assert_eq!(Loop::new().run(1000, 10, 50, 500), 0);
    }

    #[test]
    fn a_lightly_loaded_worker_waits_at_once() {
        // Back to back, a tenth busy.
        assert_eq!(Loop::new().run(10_000, 5, 2, 45), 0);
    }

    #[test]
    fn a_worker_serving_a_few_clients_waits_at_once() {
        // 4 clients, each waiting for its reply: back to back and 90% busy.
        let mut l = Loop::new();
        l.clients = 4;
        assert_eq!(l.run(10_000, 45, 20, 5), 0);
        // Many clients at a third of the time busy: sleeps.
        let mut l = Loop::new();
        assert!(l.run(10_000, 20, 20, 40) > 9_000);
    }

    #[test]
    fn a_loaded_worker_sleeps_before_each_wait() {
        // 90% busy, events back to back, each round serving plenty.
        let mut l = Loop::loaded();
        assert_eq!(l.run(1000, 45, 20, 5), 1000);
        // Its rounds get shorter as batching pays, and it goes on sleeping.
        assert_eq!(l.run(1000, 15, 20, 5), 1000);
    }

    #[test]
    fn sleeping_stops_where_it_does_not_pay() {
        let mut l = Loop::loaded();
        // Busy and back to back, but rounds serve one event: it stops at
        // the end of a period (10 ms: 100 rounds of 45 + 50 + 5 µs), and
        // tries again ever more rarely (the periods in between are 200
        // rounds of 45 + 5 µs): 7 tries up to the longest wait, then one per
        // 65 periods.
        let naps = l.run(100_000, 45, 1, 5);
        assert!(
            naps > 0 && naps <= 100 * (7 + 100_000 / (65 * 200) + 1),
            "{naps} sleeps"
        );
        // It starts again once the worker is loaded and sleeping pays.
        assert!(l.run(100_000, 45, 20, 5) > 85_000);
    }

    #[test]
    fn events_coming_apart_skip_the_sleep() {
        let mut l = Loop::loaded();
        // After the next sleep, the next event took 60 µs: wait at once after that round.
        assert_eq!(l.run(1, 45, 20, 60), 1);
        assert_eq!(l.run(1, 45, 20, 5), 0);
        // A wait of exactly one window is not back to back either.
        assert_eq!(l.run(1, 45, 20, 50), 1);
        assert_eq!(l.run(1, 45, 20, 5), 0);
        assert_eq!(l.run(1, 45, 20, 5), 1);
    }

    #[test]
    fn a_zero_window_never_sleeps() {
        let mut l = Loop::new();
        l.c = Coalescer::new(Duration::ZERO);
        assert_eq!(l.run(1000, 30, 20, 0), 0);
    }

    #[test]
    fn events_are_counted_per_worker() {
        let before = EVENTS.with(Cell::get);
        count_event();
        count_event();
        assert_eq!(EVENTS.with(Cell::get), before + 2);
    }

    #[test]
    fn a_client_is_counted_once_per_period() {
        let (mut a, mut b) = (NOT_COUNTED, NOT_COUNTED);
        let period = CLIENTS.with(Cell::get).0;
        count_client(&mut a);
        count_client(&mut a);
        count_client(&mut b);
        assert_eq!(CLIENTS.with(Cell::get), (period, 2));
        // The next period counts afresh.
        CLIENTS.with(|c| c.set((period + 1, 0)));
        count_client(&mut a);
        assert_eq!(CLIENTS.with(Cell::get), (period + 1, 1));
    }

    #[test]
    fn periods_are_numbered() {
        let mut l = Loop::new();
        let first = l.c.period();
        // 10 ms of rounds of 100 µs.
        l.run(101, 50, 1, 50);
        assert_eq!(l.c.period(), first + 1);
    }
}
