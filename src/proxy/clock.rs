//! The worker's clock: read once per batch of work (a client's read, a
//! server's batch of replies), not once per request. Deadlines and latencies
//! are as precise as a batch, and a request costs no clock read.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static NOW: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Reads the clock and remembers the time for [`now`].
pub fn tick() -> Instant {
    let now = Instant::now();
    NOW.with(|c| c.set(Some(now)));
    now
}

/// The time of the last [`tick`] on this thread (reads the clock if there was none).
pub fn now() -> Instant {
    NOW.with(|c| c.get()).unwrap_or_else(tick)
}
