//! Texts the CLI prints: the version block and the usage.

use super::parse::{
    DEFAULT_COALESCE_US, DEFAULT_CONF_FILE, DEFAULT_LOG_LEVEL, DEFAULT_MBUF_SIZE,
    DEFAULT_STATS_ADDR, DEFAULT_STATS_INTERVAL_MS, DEFAULT_STATS_PORT, DEFAULT_THREADS,
    MAX_COMBINE_GETS,
};
use crate::logging::{LOG_EMERG, LOG_PVERB};

/// The event backend named by `-V` (tokio uses epoll on Linux, kqueue on the BSDs).
const EVENT_BACKEND: &str = if cfg!(any(target_os = "linux", target_os = "android")) {
    "epoll"
} else if cfg!(any(target_os = "illumos", target_os = "solaris")) {
    "event_ports"
} else {
    "kqueue"
};

/// `This is rustcracker-<v>`, the event backend and an empty line: what
/// `-V` prints and what precedes `-h` and `-D` output.
pub fn version_block() -> String {
    format!(
        "This is rustcracker-{}\nasync event backend: {EVENT_BACKEND}\n\n",
        crate::VERSION
    )
}

/// The usage text `-h` and every option error print. It mirrors
/// nutcracker's (with rustcracker's name and upstream defaults; nutcracker's
/// stray carriage returns are not copied) followed by the long-only
/// additions.
pub fn usage() -> String {
    format!(
        "Usage: rustcracker [-?hVdDt] [-v verbosity level] [-o output file]
                   [-c conf file] [-s stats port] [-a stats addr]
                   [-i stats interval] [-p pid file] [-m mbuf size]
                   [--threads=N] [--coalesce=N] [--combine-gets=N]
                   [--route [KEY...]] [--pool=S]

Options:
  -h, --help             : this help
  -V, --version          : show version and exit
  -t, --test-conf        : test configuration for syntax errors and exit
  -d, --daemonize        : run as a daemon
  -D, --describe-stats   : print stats description and exit
  -v, --verbose=N        : set logging level (default: {DEFAULT_LOG_LEVEL}, min: {LOG_EMERG}, max: {LOG_PVERB})
  -o, --output=S         : set logging file (default: stderr)
  -c, --conf-file=S      : set configuration file (default: {DEFAULT_CONF_FILE})
  -s, --stats-port=N     : set stats monitoring port (default: {DEFAULT_STATS_PORT})
  -a, --stats-addr=S     : set stats monitoring ip (default: {DEFAULT_STATS_ADDR})
  -i, --stats-interval=N : set stats aggregation interval in msec (default: {DEFAULT_STATS_INTERVAL_MS} msec)
  -p, --pid-file=S       : set pid file (default: off)
  -m, --mbuf-size=N      : set size of mbuf chunk in bytes (default: {DEFAULT_MBUF_SIZE} bytes)
      --threads=N        : set number of worker threads (default: {DEFAULT_THREADS})
      --coalesce=N       : under load, let events gather for up to N usec per
                           wake-up of a worker (default: {DEFAULT_COALESCE_US}, 0: off)
      --combine-gets=N   : send the memcache gets (redis MGETs) queued for a
                           server in one round as one of up to N keys (default: {MAX_COMBINE_GETS}, 0: off)
      --route [KEY...]   : print the server each key maps to and exit
                           (keys from the arguments, else one per line from stdin)
      --pool=S           : limit --route to one pool

"
    )
}
