//! The worker's clock: read once per batch of work (a client's read, a
//! server's batch of replies), not once per request. Deadlines and latencies
//! are as precise as a batch, and a request costs no clock read.
//!
//! Times are [`Micros`], a plain count of microseconds of the monotonic
//! clock: a request's timestamp, deadline and latency are then an addition
//! or a subtraction, not `Instant` arithmetic (normalised seconds and
//! nanoseconds) and `u128` conversions. Reading the clock is one
//! `clock_gettime` (vDSO) and one multiply-add. The worker's timers count
//! on the same clock (see `timer.rs`).

use std::cell::Cell;
use std::time::Duration;

/// A time on the monotonic clock (`CLOCK_MONOTONIC`, as `Instant` reads it), in microseconds.
pub type Micros = u64;

thread_local! {
    static NOW: Cell<Option<Micros>> = const { Cell::new(None) };
}

/// Reads the monotonic clock, not remembering it.
pub fn read() -> Micros {
    // Reading the monotonic clock does not fail on Linux (glibc answers from the vDSO).
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        // Both fields are non-negative for the monotonic clock.
        Ok(t) => (t.tv_sec() as u64) * 1_000_000 + (t.tv_nsec() as u64) / 1_000,
        Err(_) => 0,
    }
}

/// Reads the clock and remembers the time for [`now`].
pub fn tick() -> Micros {
    let now = read();
    NOW.with(|c| c.set(Some(now)));
    now
}

/// The time `duration` from now (read afresh), as a deadline.
pub fn after(duration: Duration) -> Micros {
    read().saturating_add(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
}

/// The time of the last [`tick`] on this thread (reads the clock if there was none).
pub fn now() -> Micros {
    NOW.with(|c| c.get()).unwrap_or_else(tick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remembered_time_moves_only_with_ticks() {
        let first = tick();
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(now(), first, "no tick, no new time");
        let second = tick();
        assert_eq!(now(), second);
        assert!(second >= first + 3_000, "{first} then {second}");
        assert!(second < first + 3_000_000);
    }

    #[test]
    fn a_deadline_after_a_duration_is_that_far_ahead_and_never_wraps() {
        let before = read();
        let deadline = after(Duration::from_secs(2));
        let after_read = read();
        assert!(deadline >= before + 2_000_000 && deadline <= after_read + 2_000_000);
        assert_eq!(after(Duration::MAX), u64::MAX);
    }
}
