//! Event coalescing: under load, a worker lets events gather for a moment
//! before it looks for them, as a network card moderates its interrupts.
//!
//! Why: without it, a worker that keeps up with its clients wakes for every
//! event or two. Each wake-up costs a `epoll_wait`, a sleep and a cross-CPU
//! wake-up (paid by the process that sent the event), and the requests read
//! in it leave for their server in a write of their own, which wakes the
//! server for one or two requests as well. Measured on memcache at pipeline 1
//! (bench/README.md), that made the proxy's CPU per request and the backends'
//! equal to nutcracker's, whose slower loop batches by accident.
//!
//! The rule, checked each time the runtime is about to wait for events: if
//! the last wait ended within one *window* (events arrive back to back: the
//! worker is busy), sleep for a window first; otherwise wait at once.
//!
//! - At light load a request finds the worker idle and is served at once.
//! - Under load each hop through the worker waits up to one window more, and
//!   a round of work serves everything that came meanwhile: one `epoll_wait`,
//!   one write per server, one wake-up of each server.
//! - Throughput does not suffer: the sleep only takes the place of idle
//!   time. Events pile up during a sleep as during a round of work, and the
//!   busier the worker, the longer its rounds and the smaller the share of
//!   time asleep; batching makes each event cheaper besides.
//!
//! The sleep is a timer on the worker's own CPU (its timer slack set to
//! 1 µs so that it lasts what it asks for), not a wake-up from another CPU.
//!
//! The logic is a plain state machine over instants, so it is tested without
//! clocks; [`install`] hooks it into a tokio runtime.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Default `--coalesce`, in microseconds.
pub const DEFAULT_WINDOW_US: u64 = 50;

/// Whether to sleep before each wait for events.
#[derive(Debug, Clone)]
pub struct Coalescer {
    window: Duration,
    /// When the last wait for events began (after any sleep).
    wait_began: Option<Instant>,
    /// The last wait ended within one window.
    busy: bool,
}

impl Coalescer {
    /// A coalescer with the given window; a zero window never sleeps.
    pub fn new(window: Duration) -> Coalescer {
        Coalescer {
            window,
            wait_began: None,
            busy: false,
        }
    }

    /// The worker is about to wait for events at `now`: how long to sleep first.
    pub fn before_wait(&mut self, now: Instant) -> Option<Duration> {
        let nap = (self.busy && !self.window.is_zero()).then_some(self.window);
        self.wait_began = Some(now + nap.unwrap_or_default());
        nap
    }

    /// The wait for events ended at `now`.
    pub fn after_wait(&mut self, now: Instant) {
        if let Some(began) = self.wait_began.take() {
            self.busy = now.saturating_duration_since(began) < self.window;
        }
    }
}

thread_local! {
    static WORKER: RefCell<Coalescer> = RefCell::new(Coalescer::new(Duration::ZERO));
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
            let nap = WORKER.with(|c| c.borrow_mut().before_wait(Instant::now()));
            if let Some(nap) = nap {
                std::thread::sleep(nap);
            }
        })
        .on_thread_unpark(|| WORKER.with(|c| c.borrow_mut().after_wait(Instant::now())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_micros(50);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn an_idle_worker_waits_at_once() {
        let t = Instant::now();
        let mut c = Coalescer::new(W);
        assert_eq!(c.before_wait(t), None);
        // The event came after a long wait: still idle.
        c.after_wait(t + us(500));
        assert_eq!(c.before_wait(t + us(510)), None);
    }

    #[test]
    fn a_busy_worker_sleeps_a_window_before_each_wait() {
        let t = Instant::now();
        let mut c = Coalescer::new(W);
        c.before_wait(t);
        // The next event came within a window: busy.
        c.after_wait(t + us(30));
        assert_eq!(c.before_wait(t + us(40)), Some(W));
        // After the sleep (40 → 90 µs) events were waiting: the wait ended at once.
        c.after_wait(t + us(90));
        // However long the round took, the worker is still busy.
        assert_eq!(c.before_wait(t + us(400)), Some(W));
    }

    #[test]
    fn load_falling_off_stops_the_sleeps() {
        let t = Instant::now();
        let mut c = Coalescer::new(W);
        c.before_wait(t);
        c.after_wait(t + us(1));
        assert_eq!(c.before_wait(t + us(11)), Some(W));
        // The wait began after the sleep, at 61 µs, and lasted 300 µs.
        c.after_wait(t + us(361));
        assert_eq!(c.before_wait(t + us(370)), None);
        // A wait of exactly one window is not busy either.
        c.after_wait(t + us(420));
        assert_eq!(c.before_wait(t + us(425)), None);
    }

    #[test]
    fn a_zero_window_never_sleeps() {
        let t = Instant::now();
        let mut c = Coalescer::new(Duration::ZERO);
        for i in 0..5 {
            c.after_wait(t + us(i));
            assert_eq!(c.before_wait(t + us(i)), None);
        }
    }
}
