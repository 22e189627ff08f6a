//! The worker's write batch: server connections given requests while the
//! hub runs a round are written to when the round ends, straight
//! from the hub, instead of waking each connection's task to do it.
//!
//! Why: at light load every request woke its server connection's task (a
//! `Notify`, a task poll, a `select!` over fresh readiness futures) and
//! that task then yielded for one more turn of the runtime's driver before
//! its write: ~1,500 instructions a request (callgrind at 1,000 requests/s),
//! against ~3,300 for the whole request at pipeline 1. (Since then the
//! hub also reads the connections' replies and finishes their blocked
//! writes; the task connects, keeps the deadline and ends the connection.)

use std::cell::RefCell;
use std::rc::Rc;

use super::batch::{self, Batch};
use super::server::ServerConnection;

thread_local! {
    /// The server connections given their first request during the running round.
    static WRITE_BATCH: RefCell<Batch<Rc<ServerConnection>>> = const { RefCell::new(Batch::new()) };
}

/// Opens the worker's write batch (`None`: one is open already); the
/// connections it gathers are written to when it drops, in the order they
/// got their first request.
pub fn open() -> Option<batch::Guard<Rc<ServerConnection>>> {
    batch::Guard::open(&WRITE_BATCH, |connection| connection.flush())
}

/// Has `connection`, whose output just went from empty to not, written to
/// when the open batch ends; `false` when no batch is open (its task must
/// be woken instead).
pub fn defer(connection: &Rc<ServerConnection>) -> bool {
    batch::add(&WRITE_BATCH, || connection.clone())
}

/// Whether the open batch has connections to write to.
pub fn pending() -> bool {
    batch::any(&WRITE_BATCH)
}
