//! The worker's clock: read once per batch of work (a client's read, a
//! server's batch of replies), not once per request. Deadlines and latencies
//! are as precise as a batch, and a request costs no clock read.
//!
//! Latencies are kept as [`Micros`], a plain count of microseconds: a request
//! then costs a subtraction, not `Instant` arithmetic and a `u128` conversion
//! (~150 instructions a request at pipeline 1, callgrind).

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

/// A time on the worker's clock: microseconds since the process first read it.
pub type Micros = u64;

/// The clock's zero: the first [`tick`] of any thread.
static EPOCH: OnceLock<Instant> = OnceLock::new();

thread_local! {
    static NOW: Cell<Option<(Instant, Micros)>> = const { Cell::new(None) };
}

/// Reads the clock and remembers the time for [`now`] and [`now_us`].
pub fn tick() -> Instant {
    let now = Instant::now();
    let epoch = *EPOCH.get_or_init(|| now);
    // Saturating: another thread may have set the epoch a moment after this read.
    let us = now.saturating_duration_since(epoch).as_micros() as Micros;
    NOW.with(|c| c.set(Some((now, us))));
    now
}

/// The time of the last [`tick`] on this thread (reads the clock if there was none).
pub fn now() -> Instant {
    NOW.with(|c| c.get()).map_or_else(tick, |(now, _)| now)
}

/// [`now`] in [`Micros`].
pub fn now_us() -> Micros {
    match NOW.with(|c| c.get()) {
        Some((_, us)) => us,
        None => {
            tick();
            NOW.with(|c| c.get()).map_or(0, |(_, us)| us)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_follow_the_ticks() {
        let first = {
            tick();
            now_us()
        };
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert_eq!(now_us(), first, "no tick, no new time");
        tick();
        let second = now_us();
        assert!(second >= first + 3_000, "{first} then {second}");
        assert!(second < first + 3_000_000);
    }
}
