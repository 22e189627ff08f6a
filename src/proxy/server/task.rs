//! A server connection's task: connects, hands the socket to the worker's
//! hub, keeps the deadline of the oldest request, and ends the connection.

use std::os::fd::AsRawFd;
use std::rc::Rc;

use super::{Ending, ServerConnection, ServerRuntime};
use crate::proxy::clock::Micros;
use crate::proxy::errno::Failure;
use crate::proxy::pool::PoolRuntime;
use crate::proxy::stream::Socket;
use crate::proxy::timer::Timer;

/// The task behind one server connection: connect, hand the socket to the
/// worker's hub, then keep the deadlines until the connection fails or the
/// server closes it.
pub(super) async fn run(
    conn: Rc<ServerConnection>,
    server: Rc<ServerRuntime>,
    pool: Rc<PoolRuntime>,
    preconnect: bool,
) {
    let keepalive = pool.config.tcpkeepalive;
    let socket = match Socket::connect(&server.config.address, keepalive).await {
        Ok(socket) => socket,
        Err(e) => {
            let failure = Failure::from_io(&e);
            if preconnect {
                crate::log_warn!(
                    "connect to server '{}' failed, ignored: {}",
                    server.config.pname,
                    failure.message()
                );
            } else {
                crate::log_warn!(
                    "connect to server '{}' failed: {}",
                    server.config.pname,
                    failure.message()
                );
            }
            conn.stats.get().server_err.inc();
            conn.stats.worker.curr_connections.add(-1);
            conn.fail_all(failure);
            pool.server_failed(&server);
            return;
        }
    };
    conn.stats.get().server_connections.inc();
    pool.on_connect(&conn);
    let fd = socket.as_raw_fd();
    *conn.socket.borrow_mut() = Some(socket);
    let failure = match pool.server_watch.add(fd, &conn, &server) {
        Ok(slot) => {
            let failure = serve(&conn, &server, &pool).await;
            pool.server_watch.remove(slot, fd);
            failure
        }
        Err(e) => {
            crate::log_error!("watching s to '{}' failed: {e}", server.config.pname);
            Some(Failure::from_io(&e))
        }
    };
    // The socket closes now, whoever still holds the connection.
    conn.socket.borrow_mut().take();
    let stats = conn.stats.get();
    stats.server_connections.add(-1);
    conn.stats.worker.curr_connections.add(-1);
    match failure {
        Some(failure) => {
            match failure {
                Failure::Unknown => stats.server_eof.inc(),
                Failure::TIMED_OUT => stats.server_timedout.inc(),
                _ => stats.server_err.inc(),
            }
            conn.fail_all(failure);
            pool.server_failed(&server);
        }
        None => conn.fail_all(Failure::Unknown),
    }
}

/// Keeps a connected server connection's deadlines, and writes what was
/// queued outside a write batch, until the connection ends; returns the
/// failure that ended it (`None` for an orderly close at shutdown).
async fn serve(
    conn: &ServerConnection,
    server: &ServerRuntime,
    pool: &PoolRuntime,
) -> Option<Failure> {
    let timer = Timer::new(&pool.timers);
    let mut armed: Option<Micros> = None;
    loop {
        // Requests queued when no write batch was open (and those queued
        // before the connect): what the kernel does not take now the hub
        // writes once the socket is writable.
        conn.flush();
        let ending = conn.state.borrow_mut().ending.take();
        match ending {
            Some(Ending::Read(failure)) => return Some(failure),
            Some(Ending::Write(e)) => {
                crate::log_error!("sendv on s to '{}' failed: {e}", server.config.pname);
                return Some(Failure::from_io(&e));
            }
            None if conn.is_broken() => return None,
            None => {}
        }
        // The timer is re-armed lazily: it stays set for an older deadline and,
        // when it fires, moves on to the current head. Deadlines only grow along
        // the FIFO, so it never fires late; and it is not reset per reply.
        // With nothing in the FIFO it is set one timeout ahead: no request
        // queued from now on has an earlier deadline, so requests need not
        // wake this task to arm it (the write batch writes them).
        if armed.is_none() {
            let head = conn.state.borrow().fifo.front().map(|w| w.pending.deadline);
            let next = match head {
                Some(deadline) => deadline,
                None => pool.timeout.map(|t| crate::proxy::clock::now() + t),
            };
            if let Some(d) = next {
                timer.set(d);
                armed = Some(d);
            }
        }
        tokio::select! {
            biased;
            _ = conn.wake.notified() => {}
            _ = timer.fired(), if armed.is_some() => {
                armed = None;
                // Fresh time: the timer is re-armed from it when the FIFO is empty.
                let now = crate::proxy::clock::tick();
                let head = conn.state.borrow().fifo.front().and_then(|w| w.pending.deadline);
                if head.is_some_and(|d| d <= now) {
                    crate::log_warn!("req on s to '{}' timed out", server.config.pname);
                    return Some(Failure::TIMED_OUT);
                }
            }
        }
    }
}
