//! The stats table: one declaration of every pool and server counter.
//!
//! `stats_table!` (below) is the single source of truth. It generates
//! [`PoolStats`] and [`ServerStats`] (one `i64` field per metric, in
//! nutcracker's order), [`POOL_FIELDS`] and [`SERVER_FIELDS`] (name, kind,
//! description), and everything derived from them: the `-D` text here, and
//! later the stats JSON and Prometheus output.
//!
//! Values are `i64` like nutcracker's `int64_t`: gauges are kept as deltas
//! per worker and may be negative before they are summed.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// What a metric measures; decides how copies are merged and how it is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Monotonic count; merged by adding.
    Counter,
    /// Current level (connections, queue length); merged by adding deltas.
    Gauge,
    /// Wall-clock microseconds since the epoch, 0 if never set; merged by
    /// taking the latest (largest) value.
    Timestamp,
}

/// Which object a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One value per pool.
    Pool,
    /// One value per server of a pool.
    Server,
}

/// One row of the stats table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The name in the JSON document and in `-D`.
    pub name: &'static str,
    /// How the value behaves.
    pub kind: Kind,
    /// The description `-D` prints.
    pub description: &'static str,
    /// Pool or server.
    pub scope: Scope,
}

pub mod histogram;
pub mod json;
pub mod prometheus;
mod registry;
pub mod server;

pub use registry::{command_names, now_micros, Registry, Totals, WorkerStats};

/// One metric's live value. Each worker owns its copy and is its only writer,
/// so an update is a plain load and store (no locked instruction); the stats
/// thread reads it whenever it likes.
#[derive(Debug, Default)]
pub struct Counter(AtomicI64);

impl Counter {
    /// Adds `n` (negative for gauges going down).
    #[inline]
    pub fn add(&self, n: i64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Sets the value (timestamps).
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Merges one value of `kind` into `into`.
#[inline]
fn merge_value(kind: Kind, into: &mut i64, from: i64) {
    match kind {
        Kind::Counter | Kind::Gauge => *into = into.wrapping_add(from),
        Kind::Timestamp => {
            if from > *into {
                *into = from;
            }
        }
    }
}

/// Declares the stats of one scope: a struct with one `i64` per metric, its
/// field table, and helpers to visit and merge values.
macro_rules! stats_table {
    (
        $(#[$meta:meta])*
        $scope:ident struct $name:ident, $live:ident, $fields:ident {
            $( $field:ident : $kind:ident, $desc:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $(
                #[doc = $desc]
                pub $field: i64,
            )*
        }

        #[doc = concat!("The rows of [`", stringify!($name), "`], in output order.")]
        pub const $fields: &[Field] = &[
            $( Field {
                name: stringify!($field),
                kind: Kind::$kind,
                description: $desc,
                scope: Scope::$scope,
            }, )*
        ];

        impl $name {
            /// The values in the order of the field table.
            pub fn values(&self) -> [i64; $fields.len()] {
                [ $( self.$field, )* ]
            }

            /// Calls `f` with every field and its value, in output order.
            pub fn for_each(&self, mut f: impl FnMut(&'static Field, i64)) {
                for (field, value) in $fields.iter().zip(self.values()) {
                    f(field, value);
                }
            }

            /// Adds `other` into `self`: counters and gauges add, timestamps
            /// keep the latest.
            pub fn merge(&mut self, other: &Self) {
                $( merge_value(Kind::$kind, &mut self.$field, other.$field); )*
            }
        }

        #[doc = concat!("The live values of [`", stringify!($name), "`] inside one worker: ")]
        /// written by that worker only, read by the stats thread at any time.
        #[derive(Debug, Default)]
        pub struct $live {
            $(
                #[doc = $desc]
                pub $field: Counter,
            )*
        }

        impl $live {
            /// The values now.
            pub fn snapshot(&self) -> $name {
                $name { $( $field: self.$field.get(), )* }
            }
        }
    };
}

stats_table! {
    /// Per-pool metrics (nutcracker's `pool stats`).
    Pool struct PoolStats, LivePoolStats, POOL_FIELDS {
        client_eof: Counter, "# eof on client connections";
        client_err: Counter, "# errors on client connections";
        client_connections: Gauge, "# active client connections";
        server_ejects: Counter, "# times backend server was ejected";
        forward_error: Counter, "# times we encountered a forwarding error";
        fragments: Counter, "# fragments created from a multi-vector request";
    }
}

stats_table! {
    /// Per-server metrics (nutcracker's `server stats`).
    Server struct ServerStats, LiveServerStats, SERVER_FIELDS {
        server_eof: Counter, "# eof on server connections";
        server_err: Counter, "# errors on server connections";
        server_timedout: Counter, "# timeouts on server connections";
        server_connections: Gauge, "# active server connections";
        server_ejected_at: Timestamp, "timestamp when server was ejected in usec since epoch";
        requests: Counter, "# requests";
        request_bytes: Counter, "total request bytes";
        responses: Counter, "# responses";
        response_bytes: Counter, "total response bytes";
        in_queue: Gauge, "# requests in incoming queue";
        in_queue_bytes: Gauge, "current request bytes in incoming queue";
        out_queue: Gauge, "# requests in outgoing queue";
        out_queue_bytes: Gauge, "current request bytes in outgoing queue";
    }
}

/// The stats description `-D` prints after the version block, identical to
/// nutcracker 0.5.0's.
pub fn describe() -> String {
    let mut out = String::new();
    out.push_str("pool stats:\n");
    for field in POOL_FIELDS {
        let _ = writeln!(out, "  {:<20}\"{}\"", field.name, field.description);
    }
    out.push_str("\nserver stats:\n");
    for field in SERVER_FIELDS {
        let _ = writeln!(out, "  {:<20}\"{}\"", field.name, field.description);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_structs() {
        assert_eq!(POOL_FIELDS.len(), 6);
        assert_eq!(SERVER_FIELDS.len(), 13);
        let s = ServerStats {
            requests: 7,
            server_ejected_at: 9,
            ..Default::default()
        };
        let mut seen = Vec::new();
        s.for_each(|f, v| seen.push((f.name, v)));
        assert_eq!(seen[5], ("requests", 7));
        assert_eq!(seen[4], ("server_ejected_at", 9));
    }

    #[test]
    fn merge_adds_and_keeps_latest_timestamp() {
        let mut a = ServerStats {
            requests: 1,
            in_queue: 2,
            server_ejected_at: 50,
            ..Default::default()
        };
        let b = ServerStats {
            requests: 2,
            in_queue: -1,
            server_ejected_at: 40,
            ..Default::default()
        };
        a.merge(&b);
        assert_eq!((a.requests, a.in_queue, a.server_ejected_at), (3, 1, 50));
    }

    #[test]
    fn describe_layout() {
        let d = describe();
        assert!(
            d.starts_with("pool stats:\n  client_eof          \"# eof on client connections\"\n")
        );
        assert!(d.ends_with("  out_queue_bytes     \"current request bytes in outgoing queue\"\n"));
    }
}
