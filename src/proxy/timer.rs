//! The worker's timers: one timerfd in the runtime's epoll set and a short
//! list of deadlines, instead of tokio's time driver.
//!
//! Why: tokio's time driver runs at every park of the worker, timers or
//! not (its lock, a clock read, a look over its wheel, a pass to fire what
//! expired): ~900 instructions a wake-up (callgrind at 1,000 requests/s, a
//! wake-up or two a request). A worker has few timers, and they rarely
//! move: one per server connection (its oldest request's deadline, re-armed
//! only when it fires; see `server.rs`), the housekeeping's sweep and trim,
//! and the shutdown's drain. Here a wake-up costs nothing for them; setting
//! a timer earlier than every other costs one `timerfd_settime`, and a
//! timer firing costs a read of the timerfd and a pass over the list.
//!
//! The timerfd counts on `CLOCK_MONOTONIC`, the clock [`Micros`] reads, and
//! is set to absolute times: no conversion, no drift.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

use super::clock::{self, Micros};

/// The timerfd, owned for as long as it is registered in the runtime.
struct Alarm(TimerFd);

impl AsRawFd for Alarm {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One worker's timers.
pub struct Timers {
    alarm: AsyncFd<Alarm>,
    entries: RefCell<Vec<Entry>>,
    free: RefCell<Vec<usize>>,
    /// When the timerfd goes off next (`None`: not set).
    set_for: Cell<Option<Micros>>,
}

#[derive(Default)]
struct Entry {
    deadline: Option<Micros>,
    fired: bool,
    waker: Option<Waker>,
}

impl Timers {
    /// A worker's timers; call inside the worker's runtime, and spawn
    /// [`run`] on it.
    pub fn new() -> io::Result<Rc<Timers>> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // `Alarm` owns the descriptor and never changes it.
        let alarm = super::watch(Alarm(fd), tokio::io::Interest::READABLE)?;
        let timers = Timers {
            alarm,
            entries: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            set_for: Cell::new(None),
        };
        Ok(Rc::new(timers))
    }

    /// Has the timerfd go off at `at` (an absolute time).
    fn program(&self, at: Micros) {
        // An absolute time of zero would disarm it.
        let at = at.max(1);
        let spec = TimeSpec::from_duration(Duration::from_micros(at));
        match self.alarm.get_ref().0.set(
            Expiration::OneShot(spec),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME,
        ) {
            Ok(()) => self.set_for.set(Some(at)),
            Err(e) => crate::log_error!("setting the worker's timer failed: {e}"),
        }
    }

    /// Fires every timer whose deadline passed, and sets the timerfd for the next.
    fn fire(&self) {
        let now = clock::read();
        let mut next: Option<Micros> = None;
        for entry in self.entries.borrow_mut().iter_mut() {
            match entry.deadline {
                Some(d) if d <= now => {
                    entry.deadline = None;
                    entry.fired = true;
                    // Only schedules the task: nothing runs while the list is borrowed.
                    if let Some(waker) = entry.waker.take() {
                        waker.wake();
                    }
                }
                Some(d) => next = Some(next.map_or(d, |n| n.min(d))),
                None => {}
            }
        }
        self.set_for.set(None);
        if let Some(at) = next {
            self.program(at);
        }
    }
}

/// The worker's timer task: fires the timers when the timerfd goes off.
pub async fn run(timers: Rc<Timers>) {
    loop {
        let mut guard = match timers.alarm.readable().await {
            Ok(guard) => guard,
            Err(e) => {
                crate::log_error!("the worker's timer failed: {e}");
                return;
            }
        };
        // Reads the count of expirations (none: EAGAIN); the fd is drained either way.
        let _ = guard.get_inner().0.wait();
        guard.clear_ready();
        timers.fire();
    }
}

/// One timer: set to a deadline, it fires once, then waits to be set again.
pub struct Timer {
    timers: Rc<Timers>,
    slot: usize,
}

impl Timer {
    /// An unset timer among `timers`.
    pub fn new(timers: &Rc<Timers>) -> Timer {
        let timers = timers.clone();
        let slot = match timers.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                let mut entries = timers.entries.borrow_mut();
                entries.push(Entry::default());
                entries.len() - 1
            }
        };
        Timer { timers, slot }
    }

    /// Sets the timer to fire at `at` (replacing any deadline it had).
    pub fn set(&self, at: Micros) {
        {
            let mut entries = self.timers.entries.borrow_mut();
            let entry = &mut entries[self.slot];
            entry.deadline = Some(at);
            entry.fired = false;
        }
        if self.timers.set_for.get().is_none_or(|s| at < s) {
            self.timers.program(at);
        }
    }

    /// Resolves once the timer fired (at once if it fired and was not set since).
    pub async fn fired(&self) {
        poll_fn(|cx| {
            let mut entries = self.timers.entries.borrow_mut();
            let entry = &mut entries[self.slot];
            if entry.fired {
                return Poll::Ready(());
            }
            if !entry
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                entry.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.timers.entries.borrow_mut()[self.slot] = Entry::default();
        self.timers.free.borrow_mut().push(self.slot);
    }
}

/// Sleeps for `duration` on `timers`.
pub async fn sleep(timers: &Rc<Timers>, duration: Duration) {
    let timer = Timer::new(timers);
    timer.set(clock::after(duration));
    timer.fired().await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed set-up fails the test
mod tests {
    use super::*;

    /// Runs `body` on a current-thread runtime with I/O only (as a worker's) and its timers.
    fn on_worker<F: std::future::Future<Output = ()>>(body: impl FnOnce(Rc<Timers>) -> F) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build_local(Default::default())
            .unwrap();
        runtime.block_on(async {
            let timers = Timers::new().unwrap();
            tokio::task::spawn_local(run(timers.clone()));
            body(timers).await;
        });
    }

    #[test]
    fn timers_fire_in_deadline_order_whatever_order_they_were_set_in() {
        on_worker(|timers| async move {
            let start = clock::read();
            let fired = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            // The later ones first: each earlier one must move the timerfd forward.
            for (name, ms) in [("c", 60u64), ("a", 20), ("b", 40)] {
                let (timers, fired) = (timers.clone(), fired.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let timer = Timer::new(&timers);
                    timer.set(start + ms * 1000);
                    timer.fired().await;
                    let on_time = clock::read() >= start + ms * 1000;
                    fired.borrow_mut().push((name, on_time));
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let fired = fired.borrow();
            let order: Vec<_> = fired.iter().map(|(name, _)| *name).collect();
            assert_eq!(order, ["a", "b", "c"]);
            // None fires before its deadline.
            assert!(fired.iter().all(|&(_, on_time)| on_time), "{fired:?}");
        });
    }

    #[test]
    fn a_timer_set_again_fires_again_and_a_dropped_one_never() {
        on_worker(|timers| async move {
            let timer = Timer::new(&timers);
            for _ in 0..3 {
                let at = clock::read() + 5_000;
                timer.set(at);
                timer.fired().await;
                assert!(clock::read() >= at);
                // Fired and not set since: resolves at once.
                timer.fired().await;
            }
            // A dropped timer's deadline does not linger: its slot is reused unset.
            let dropped = Timer::new(&timers);
            dropped.set(clock::read() + 1_000);
            drop(dropped);
            let reused = Timer::new(&timers);
            sleep(&timers, Duration::from_millis(10)).await;
            let entries = timers.entries.borrow();
            assert!(!entries[reused.slot].fired && entries[reused.slot].deadline.is_none());
        });
    }
}
