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
    /// Per pool, per server: time from queueing a request on a server
    /// connection to its reply (backend latency, including the connection's queue).
    pub server_latency: Vec<Vec<LatencyHistogram>>,
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
        let workers = match self.workers.lock() {
            Ok(w) => w.clone(),
            Err(_) => return totals,
        };
        for worker in workers {
            totals.total_connections += worker.total_connections.get();
            totals.curr_connections += worker.curr_connections.get();
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
}

impl Registry {
    /// Per pool, per server: the backend latency histograms summed over workers.
    pub fn server_latency(&self) -> Vec<Vec<HistogramSnapshot>> {
        let mut sums: Vec<Vec<HistogramSnapshot>> = self
            .config
            .pools
            .iter()
            .map(|p| vec![HistogramSnapshot::default(); p.servers.len()])
            .collect();
        let workers = match self.workers.lock() {
            Ok(w) => w.clone(),
            Err(_) => return sums,
        };
        for worker in workers {
            for (sum, live) in sums.iter_mut().zip(&worker.server_latency) {
                for (s, l) in sum.iter_mut().zip(live) {
                    s.merge(&l.snapshot());
                }
            }
        }
        sums
    }
}

/// Wall-clock microseconds since the epoch (for `server_ejected_at`).
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
