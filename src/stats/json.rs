//! nutcracker 0.5.0's stats document, byte for byte (spec §4.3).
//!
//! Layout: `{"key":value, ...` pairs separated by `", "`, one nested object
//! per pool (`"pool": {` ... ) holding its six metrics and one nested object
//! per server with its thirteen, each closed by `}` and followed directly by
//! `,` when another object follows; the document ends with `}}` + `\n`.
//! Names are written as they are, without JSON escaping, exactly like
//! nutcracker (a name containing `"` yields invalid JSON there too).

use std::fmt::Write as _;

use rustcracker_config::Config;

use super::Totals;

/// The top-level fields that precede the pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// `service`: kept as `"nutcracker"`, which exporters match on.
    pub service: &'a str,
    /// `source`: the host name.
    pub source: &'a str,
    /// `version`: kept as nutcracker's `"0.5.0"`, the stats format version
    /// that tools know.
    pub version: &'a str,
    /// `uptime`: seconds since the stats module started.
    pub uptime: i64,
    /// `timestamp`: Unix seconds now.
    pub timestamp: i64,
}

/// What `service` says: nutcracker's value, which exporters and dashboards
/// match on (the Datadog, telegraf, collectd, Diamond … integrations).
pub const SERVICE: &str = "nutcracker";

/// What `version` says: the nutcracker release whose document this is, so
/// tools that look at it see a version they know. rustcracker's own version
/// is in `-V` and in Prometheus' `nutcracker_build_info`.
pub const VERSION: &str = "0.5.0";

/// Writes the whole document for `totals` (shaped like `config`) into `out`.
pub fn render(out: &mut String, header: &Header<'_>, config: &Config, totals: &Totals) {
    let _ = write!(
        out,
        "{{\"service\":\"{}\", \"source\":\"{}\", \"version\":\"{}\", \"uptime\":{}, \"timestamp\":{}, \"total_connections\":{}, \"curr_connections\":{}",
        header.service,
        header.source,
        header.version,
        header.uptime,
        header.timestamp,
        totals.total_connections,
        totals.curr_connections,
    );
    for (pool, (pool_stats, servers)) in config.pools.iter().zip(&totals.pools) {
        // nutcracker: ", " before the first pool (after a plain pair), then
        // "," after each closed pool object.
        if out.ends_with('}') {
            out.push(',');
        } else {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{}\": {{", pool.name);
        let mut first = true;
        pool_stats.for_each(|field, value| {
            if !first {
                out.push_str(", ");
            }
            first = false;
            let _ = write!(out, "\"{}\":{}", field.name, value);
        });
        for (server, server_stats) in pool.servers.iter().zip(servers) {
            if out.ends_with('}') {
                out.push(',');
            } else {
                out.push_str(", ");
            }
            let _ = write!(out, "\"{}\": {{", server.name);
            let mut first = true;
            server_stats.for_each(|field, value| {
                if !first {
                    out.push_str(", ");
                }
                first = false;
                let _ = write!(out, "\"{}\":{}", field.name, value);
            });
            out.push('}');
        }
        out.push('}');
    }
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{PoolStats, ServerStats};

    fn config(yaml: &str) -> Config {
        rustcracker_config::parse(std::path::Path::new("n.yml"), yaml).unwrap()
    }

    #[test]
    fn layout_matches_nutcracker() {
        let config = config(
            "mc:\n  listen: 127.0.0.1:23111\n  servers:\n   - 127.0.0.1:23112:1\n   - 127.0.0.1:23113:1 foo\n",
        );
        let totals = Totals {
            pools: vec![(
                PoolStats::default(),
                vec![
                    ServerStats {
                        requests: 3,
                        ..Default::default()
                    },
                    ServerStats::default(),
                ],
            )],
            total_connections: 1,
            curr_connections: 1,
            parked_clients: 0,
        };
        let header = Header {
            service: SERVICE,
            source: "vm",
            version: VERSION,
            uptime: 0,
            timestamp: 1795617931,
        };
        let mut out = String::new();
        render(&mut out, &header, &config, &totals);
        // Captured from nutcracker 0.5.0 with the same config (requests edited).
        let expected = concat!(
            r#"{"service":"nutcracker", "source":"vm", "version":"0.5.0", "uptime":0, "timestamp":1795617931, "total_connections":1, "curr_connections":1, "#,
            r#""mc": {"client_eof":0, "client_err":0, "client_connections":0, "server_ejects":0, "forward_error":0, "fragments":0, "#,
            r#""foo": {"server_eof":0, "server_err":0, "server_timedout":0, "server_connections":0, "server_ejected_at":0, "requests":3, "request_bytes":0, "responses":0, "response_bytes":0, "in_queue":0, "in_queue_bytes":0, "out_queue":0, "out_queue_bytes":0},"#,
            r#""127.0.0.1:23112": {"server_eof":0, "server_err":0, "server_timedout":0, "server_connections":0, "server_ejected_at":0, "requests":0, "request_bytes":0, "responses":0, "response_bytes":0, "in_queue":0, "in_queue_bytes":0, "out_queue":0, "out_queue_bytes":0}}}"#,
            "\n"
        );
        assert_eq!(out, expected);
    }
}
