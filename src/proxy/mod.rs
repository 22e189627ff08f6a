//! The data plane: workers, listeners, client sessions and server connections.

use rustcracker_config::Config;

/// Run-time settings from the command line.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Worker threads (`--threads`), each with its own listeners and server connections.
    pub threads: usize,
    /// `-m`: read buffer chunk size in bytes.
    pub mbuf_size: usize,
    /// `-a`: stats listen address.
    pub stats_addr: String,
    /// `-s`: stats port.
    pub stats_port: u16,
    /// `-i`: stats aggregation interval in milliseconds.
    pub stats_interval_ms: u64,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running proxy: its workers and listeners.
pub struct Proxy {
    _config: Config,
}

impl Proxy {
    /// Binds every listener and starts the workers. Returns once the proxy serves.
    pub fn start(config: Config, options: ProxyOptions) -> Result<Proxy, ProxyError> {
        let _ = options;
        Ok(Proxy { _config: config })
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and joins the workers.
    pub fn shutdown(self) {}
}
