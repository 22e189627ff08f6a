//! The task behind one client connection: read big, parse every complete
//! request, route it, and write replies back in request order.

use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::client::Client;
use super::pool::PoolRuntime;
use super::redis::RedisSession;
use super::stream::Stream;
use super::{memcache, Protocol};

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Stop reading a client while this many replies are owed to it (backpressure).
const MAX_OUTSTANDING: usize = 64 * 1024;
/// Stop reading a client while this many reply bytes wait for it to read them.
const MAX_READY_BYTES: usize = 4 * 1024 * 1024;

/// What parsing a client's buffer did.
pub struct Dispatched {
    /// Bytes of the buffer used up.
    pub consumed: usize,
    /// The buffer length needed before parsing can make progress (0: unknown).
    pub need: usize,
    /// Stop reading, and why.
    pub stop: Option<Stop>,
}

/// Why a client session stops reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `quit` / `QUIT`: counted as the client's EOF.
    Quit,
    /// A request the connection cannot survive (framing lost): a client error.
    Error,
}

impl Dispatched {
    /// Parsing goes on with the next read.
    pub fn more(consumed: usize, need: usize) -> Dispatched {
        Dispatched {
            consumed,
            need,
            stop: None,
        }
    }

    /// No more requests are read from this client.
    pub fn stop(consumed: usize, stop: Stop) -> Dispatched {
        Dispatched {
            consumed,
            need: 0,
            stop: Some(stop),
        }
    }
}

/// Serves one client until it leaves (or the proxy shuts down).
pub async fn run(stream: Stream, pool: Rc<PoolRuntime>, mut shutdown: watch::Receiver<bool>) {
    let stats = pool.pool_stats();
    stats.client_connections.inc();
    pool.stats.total_connections.inc();
    pool.stats.curr_connections.inc();
    let client = Rc::new(Client::new(pool.protocol, pool.stats.clone(), pool.index));
    let mut ended = Stop::Quit;
    let result = serve(&stream, &client, &pool, &mut shutdown, &mut ended).await;
    if let Err(e) = result {
        crate::log_info!("client of pool '{}' closed: {e}", pool.config.name);
        ended = Stop::Error;
    }
    let stats = pool.pool_stats();
    match ended {
        Stop::Quit => stats.client_eof.inc(),
        Stop::Error => stats.client_err.inc(),
    }
    stats.client_connections.add(-1);
    pool.stats.curr_connections.add(-1);
    client.close();
    pool.clients.fetch_sub(1, Ordering::Relaxed);
}

async fn serve(
    stream: &Stream,
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    shutdown: &mut watch::Receiver<bool>,
    ended: &mut Stop,
) -> io::Result<()> {
    let mut input: Vec<u8> = Vec::new();
    let mut need = 0usize;
    let mut reading = !*shutdown.borrow();
    let mut redis = RedisSession::default();
    loop {
        let flushed = client.flush_to(stream)?;
        if !reading && flushed && client.outstanding() == 0 {
            return Ok(());
        }
        if flushed && client.outstanding() == 0 && input.is_empty() {
            // Idle: give the buffers back (nutcracker never does).
            input = Vec::new();
            client.shrink();
        }
        let room = client.outstanding() < MAX_OUTSTANDING && client.ready_bytes() < MAX_READY_BYTES;
        tokio::select! {
            biased;
            ready = stream.readable(), if reading && room => {
                ready?;
                if input.capacity() - input.len() < READ_CHUNK / 2 {
                    input.reserve(READ_CHUNK);
                }
                match stream.try_read_buf(&mut input) {
                    Ok(0) => {
                        // EOF or half-close: answer the complete requests, drop a partial one.
                        reading = false;
                        input = Vec::new();
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                if input.len() < need {
                    continue;
                }
                let done = match pool.protocol {
                    Protocol::Memcache => memcache::dispatch(client, pool, &input),
                    Protocol::Redis => super::redis::dispatch(client, pool, &input, &mut redis),
                };
                if let Some(stop) = done.stop {
                    *ended = stop;
                    reading = false;
                    input = Vec::new();
                    need = 0;
                } else if done.consumed == input.len() {
                    input.clear();
                    need = 0;
                } else {
                    input.drain(..done.consumed);
                    need = done.need.saturating_sub(done.consumed);
                }
            }
            ready = stream.writable(), if !flushed => { ready?; }
            _ = client.wake.notified(), if flushed => {}
            _ = shutdown.changed(), if reading => {
                // Shutdown: stop taking requests, finish the ones in flight.
                reading = false;
            }
        }
    }
}
