//! A pool as one worker sees it: its router and its servers, with
//! auto-ejection and lazy re-admission (nutcracker §2.6, §7.4).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use rustcracker_config::Pool;
use rustcracker_hash::Router;

use crate::stats::{LivePoolStats, WorkerStats};

use super::client::Client;
use super::clock::{self, Micros};
use super::hub::ServerWatch;
use super::server::{Pending, ServerConnection, ServerRuntime};
use super::timer::Timers;
use super::Protocol;

/// One pool's routing and servers inside one worker.
pub struct PoolRuntime {
    pub config: Arc<Pool>,
    pub protocol: Protocol,
    pub servers: Vec<Rc<ServerRuntime>>,
    router: RefCell<Router>,
    /// Per server: ejected until this instant.
    ejected_until: RefCell<Vec<Option<Micros>>>,
    /// The earliest re-admission time, when any server is ejected.
    next_rebuild: Cell<Option<Micros>>,
    /// Request deadline offset (`timeout:`), in microseconds.
    pub timeout: Option<Micros>,
    /// Clients of this pool across all workers (for `client_connections`).
    pub clients: Arc<AtomicUsize>,
    /// The longest redis routing key (nutcracker's mbuf-derived limit, from `-m`).
    pub max_key_len: usize,
    /// This pool's position in the config (and in the stats).
    pub index: usize,
    /// The most keys per combined `get` line or redis `MGET` (0: not combined).
    pub combine_keys: usize,
    /// This worker's counters.
    pub stats: Arc<WorkerStats>,
    /// This worker's timers (request deadlines).
    pub timers: Rc<Timers>,
    /// Where this worker's server connections are served once connected.
    pub server_watch: Rc<ServerWatch>,
}

/// What every pool of a worker shares with the worker.
pub struct WorkerParts {
    pub stats: Arc<WorkerStats>,
    pub timers: Rc<Timers>,
    pub server_watch: Rc<ServerWatch>,
}

impl PoolRuntime {
    /// The runtime state of `config` for one worker.
    pub fn new(
        index: usize,
        config: Arc<Pool>,
        clients: Arc<AtomicUsize>,
        mbuf_size: usize,
        combine_gets: usize,
        worker: WorkerParts,
    ) -> PoolRuntime {
        let WorkerParts {
            stats,
            timers,
            server_watch,
        } = worker;
        let router = config.router();
        let servers = config
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| Rc::new(ServerRuntime::new(i, s.clone())))
            .collect();
        PoolRuntime {
            protocol: if config.redis {
                Protocol::Redis
            } else {
                Protocol::Memcache
            },
            timeout: config.timeout_ms.map(|ms| ms.saturating_mul(1000)),
            servers,
            router: RefCell::new(router),
            ejected_until: RefCell::new(vec![None; config.servers.len()]),
            next_rebuild: Cell::new(None),
            clients,
            index,
            combine_keys: combine_gets,
            stats,
            timers,
            server_watch,
            max_key_len: rustcracker_redis::max_key_len_for_mbuf(mbuf_size),
            config,
        }
    }

    /// The server for `key`, or `None` when every server is ejected.
    pub fn route(&self, key: &[u8]) -> Option<&Rc<ServerRuntime>> {
        if let Some(at) = self.next_rebuild.get() {
            if clock::now() > at {
                self.readmit();
            }
        }
        let index = self.router.borrow().route(key)?;
        self.servers.get(index)
    }

    /// This pool's counters in this worker.
    pub fn pool_stats(&self) -> &LivePoolStats {
        &self.stats.pools[self.index].0
    }

    /// The entry a server connection keeps for request `seq` of `client`
    /// (`fragment` of a split request, or [`WHOLE`]), with its deadline.
    pub fn pending(&self, client: &Rc<Client>, seq: u64, fragment: u32) -> Pending {
        Pending {
            client: Some(client.clone()),
            seq,
            fragment,
            deadline: self.deadline(),
        }
    }

    /// The deadline of a request queued now.
    pub fn deadline(&self) -> Option<Micros> {
        self.timeout.map(|t| clock::now() + t)
    }

    /// A server connection closed on a failure: count it, and eject the
    /// server at `server_failure_limit` when `auto_eject_hosts` is on.
    pub fn server_failed(&self, server: &ServerRuntime) {
        if !self.config.auto_eject_hosts {
            return;
        }
        let failures = server.failures.get() + 1;
        if failures < self.config.server_failure_limit.max(1) {
            server.failures.set(failures);
            return;
        }
        server.failures.set(0);
        let until = clock::read() + self.config.server_retry_timeout_ms.saturating_mul(1000);
        crate::log_warn!(
            "server '{}' of pool '{}' ejected for {} ms after {failures} failures",
            server.config.pname,
            self.config.name,
            self.config.server_retry_timeout_ms
        );
        self.ejected_until.borrow_mut()[server.index] = Some(until);
        self.pool_stats().server_ejects.inc();
        self.stats.pools[self.index].1[server.index]
            .server_ejected_at
            .set(crate::stats::now_micros());
        self.rebuild(clock::read());
    }

    /// A server connection is up: a redis pool sends AUTH / SELECT first.
    pub fn on_connect(&self, conn: &ServerConnection) {
        if self.protocol != Protocol::Redis {
            return;
        }
        // A connect completes outside any batch: fresh time for the AUTH/SELECT deadline.
        clock::tick();
        let count =
            usize::from(self.config.redis_auth.is_some()) + usize::from(self.config.redis_db > 0);
        if count > 0 {
            conn.prepend(
                &super::redis::connection_preamble(self),
                count,
                self.deadline(),
            );
        }
    }

    fn readmit(&self) {
        self.rebuild(clock::read());
    }

    /// Rebuilds the router with every server whose retry time has passed.
    fn rebuild(&self, now: Micros) {
        let mut ejected = self.ejected_until.borrow_mut();
        let mut next = None::<Micros>;
        let live: Vec<bool> = ejected
            .iter_mut()
            .enumerate()
            .map(|(i, slot)| match *slot {
                Some(until) if until > now => {
                    next = Some(next.map_or(until, |n| n.min(until)));
                    false
                }
                Some(_) => {
                    *slot = None;
                    if let Some(server) = self.servers.get(i) {
                        crate::log_warn!(
                            "server '{}' of pool '{}' re-admitted after its retry timeout",
                            server.config.pname,
                            self.config.name
                        );
                    }
                    true
                }
                None => true,
            })
            .collect();
        self.next_rebuild.set(next);
        self.router.borrow_mut().set_live(&live);
    }
}
