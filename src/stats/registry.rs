//! Where every worker's live counters are registered, so the stats thread can
//! add them up: per pool, per server, and the process-wide connection counts.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustcracker_config::Config;

use super::histogram::{HistogramSnapshot, LatencyHistogram};
use super::{Counter, LivePoolStats, LiveServerStats, PoolStats, ServerStats};

/// One worker's live counters, in the config's pool and server order.
#[derive(Debug)]
pub struct WorkerStats {
    /// Per pool: the pool's counters and its servers'.
    pub pools: Vec<(LivePoolStats, Vec<LiveServerStats>)>,
    /// Connections ever created by this worker (listeners, clients, servers).
    pub total_connections: Counter,
    /// Connections open now.
    pub curr_connections: Counter,
    /// Idle client connections parked in the worker's hub (part of
    /// `curr_connections`).
    pub parked_clients: Counter,
    /// Per pool, per server: time from queueing a request on a server
    /// connection to its reply (backend latency, including the connection's queue).
    pub server_latency: Vec<Vec<LatencyHistogram>>,
    /// Per pool, per command (see [`command_names`]): time from parsing a
    /// request to its reply being complete in the proxy.
    pub request_latency: Vec<Vec<LatencyHistogram>>,
    /// Per pool: the part of each request's time not spent waiting for
    /// servers (request latency minus the slowest server's time).
    pub proxy_latency: Vec<LatencyHistogram>,
}

/// The command names of a pool's protocol, indexed by command number.
pub fn command_names(pool: &rustcracker_config::Pool) -> Vec<&'static str> {
    if pool.redis {
        rustcracker_redis::ALL_COMMANDS
            .iter()
            .map(|c| c.name())
            .collect()
    } else {
        rustcracker_memcache::Command::ALL
            .iter()
            .map(|c| c.name())
            .collect()
    }
}

impl WorkerStats {
    /// Zeroed counters shaped like `config`.
    pub fn new(config: &Config) -> WorkerStats {
        WorkerStats {
            pools: config
                .pools
                .iter()
                .map(|p| {
                    (
                        LivePoolStats::default(),
                        p.servers
                            .iter()
                            .map(|_| LiveServerStats::default())
                            .collect(),
                    )
                })
                .collect(),
            total_connections: Counter::default(),
            curr_connections: Counter::default(),
            parked_clients: Counter::default(),
            request_latency: config
                .pools
                .iter()
                .map(|p| {
                    command_names(p)
                        .iter()
                        .map(|_| LatencyHistogram::default())
                        .collect()
                })
                .collect(),
            proxy_latency: config
                .pools
                .iter()
                .map(|_| LatencyHistogram::default())
                .collect(),
            server_latency: config
                .pools
                .iter()
                .map(|p| {
                    p.servers
                        .iter()
                        .map(|_| LatencyHistogram::default())
                        .collect()
                })
                .collect(),
        }
    }
}

/// The sum over all workers at one moment.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Per pool (config order): the pool's stats and its servers'.
    pub pools: Vec<(PoolStats, Vec<ServerStats>)>,
    pub total_connections: i64,
    pub curr_connections: i64,
    pub parked_clients: i64,
}

/// Every worker's counters, plus what the stats document needs besides them.
#[derive(Debug)]
pub struct Registry {
    /// The configuration the counters are shaped after (names, order).
    pub config: Config,
    workers: Mutex<Vec<Arc<WorkerStats>>>,
    /// When the stats module started (for `uptime`).
    pub started: Instant,
}

impl Registry {
    /// An empty registry for `config`.
    pub fn new(config: Config) -> Registry {
        Registry {
            config,
            workers: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }

    /// Counters for one more worker.
    pub fn add_worker(&self) -> Arc<WorkerStats> {
        let stats = Arc::new(WorkerStats::new(&self.config));
        if let Ok(mut workers) = self.workers.lock() {
            workers.push(stats.clone());
        }
        stats
    }

    /// Adds up every worker's counters (counters and gauges add; timestamps keep the latest).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            pools: self
                .config
                .pools
                .iter()
                .map(|p| {
                    (
                        PoolStats::default(),
                        vec![ServerStats::default(); p.servers.len()],
                    )
                })
                .collect(),
            ..Totals::default()
        };
        for worker in self.workers() {
            totals.total_connections += worker.total_connections.get();
            totals.curr_connections += worker.curr_connections.get();
            totals.parked_clients += worker.parked_clients.get();
            for ((pool, servers), (live_pool, live_servers)) in
                totals.pools.iter_mut().zip(&worker.pools)
            {
                pool.merge(&live_pool.snapshot());
                for (server, live) in servers.iter_mut().zip(live_servers) {
                    server.merge(&live.snapshot());
                }
            }
        }
        totals
    }

    /// Per pool, per command: request latency summed over workers.
    pub fn request_latency(&self) -> Vec<Vec<HistogramSnapshot>> {
        self.sum_latency(|w| &w.request_latency)
    }

    /// Per pool: proxy-added latency summed over workers.
    pub fn proxy_latency(&self) -> Vec<HistogramSnapshot> {
        let mut sums = vec![HistogramSnapshot::default(); self.config.pools.len()];
        for worker in self.workers() {
            for (sum, live) in sums.iter_mut().zip(&worker.proxy_latency) {
                sum.merge(&live.snapshot());
            }
        }
        sums
    }

    fn workers(&self) -> Vec<Arc<WorkerStats>> {
        match self.workers.lock() {
            Ok(w) => w.clone(),
            Err(_) => Vec::new(),
        }
    }

    fn sum_latency(
        &self,
        pick: impl Fn(&WorkerStats) -> &Vec<Vec<LatencyHistogram>>,
    ) -> Vec<Vec<HistogramSnapshot>> {
        let workers = self.workers();
        let mut sums: Vec<Vec<HistogramSnapshot>> = Vec::new();
        for worker in &workers {
            let live = pick(worker);
            if sums.is_empty() {
                sums = live
                    .iter()
                    .map(|p| vec![HistogramSnapshot::default(); p.len()])
                    .collect();
            }
            for (sum, live) in sums.iter_mut().zip(live) {
                for (s, l) in sum.iter_mut().zip(live) {
                    s.merge(&l.snapshot());
                }
            }
        }
        sums
    }

    /// Per pool, per server: the backend latency histograms summed over workers.
    pub fn server_latency(&self) -> Vec<Vec<HistogramSnapshot>> {
        self.sum_latency(|w| &w.server_latency)
    }
}

/// Wall-clock microseconds since the epoch (for `server_ejected_at`).
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
