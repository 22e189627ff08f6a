//! The stats port's `GET /metrics`: the same counters as the JSON document in
//! Prometheus' text exposition format (version 0.0.4), plus process metrics
//! read from `/proc/self`.
//!
//! Names are generated from the stats table so the two outputs never drift:
//!
//! * pool metrics: `nutcracker_pool_<field>` with label `pool`;
//! * server metrics: `nutcracker_server_<field>` (a leading `server_` of the
//!   field name dropped) with labels `pool` and `server`;
//! * counters get the conventional `_total` suffix; gauges keep the bare
//!   name; `server_ejected_at` becomes `nutcracker_server_ejected_at_seconds`
//!   (Unix seconds with microsecond fraction, 0 if never ejected);
//! * `total_connections` is `nutcracker_connections_created_total`,
//!   `curr_connections` is `nutcracker_connections_open`, `uptime` is
//!   `nutcracker_uptime_seconds`, and `nutcracker_build_info` (value 1)
//!   carries `version` (rustcracker's), `compat` ("0.5.0") and `source`;
//! * process metrics use the standard client-library names
//!   (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …).

use super::histogram::{bucket_bound_us, HistogramSnapshot, BUCKETS};
use std::fmt::Write as _;

use rustcracker_config::Config;

use super::{Field, Kind, Totals, POOL_FIELDS, SERVER_FIELDS};

/// The `Content-Type` of a `/metrics` answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Process-wide facts besides the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info<'a> {
    /// rustcracker's version.
    pub version: &'a str,
    /// The stats document's `version` (nutcracker's).
    pub compat: &'a str,
    /// The host name (the document's `source`).
    pub source: &'a str,
    /// Seconds since the stats module started.
    pub uptime: i64,
}

/// The Prometheus name of a table field.
pub fn metric_name(field: &Field) -> String {
    let (prefix, base) = match field.scope {
        super::Scope::Pool => ("nutcracker_pool_", field.name),
        super::Scope::Server => (
            "nutcracker_server_",
            field.name.strip_prefix("server_").unwrap_or(field.name),
        ),
    };
    let suffix = match field.kind {
        Kind::Counter => "_total",
        Kind::Gauge => "",
        Kind::Timestamp => "_seconds",
    };
    format!("{prefix}{base}{suffix}")
}

/// The `# HELP` text of a table field, from its `-D` description.
fn help(field: &Field) -> String {
    if field.kind == Kind::Timestamp {
        return "Unix time in seconds when the server was last ejected, 0 if never".to_owned();
    }
    match field.description.strip_prefix("# ") {
        Some(rest) => format!("Number of {rest}"),
        None => {
            let mut chars = field.description.chars();
            match chars.next() {
                Some(c) => c.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        }
    }
}

/// The Prometheus type of a table field.
fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge | Kind::Timestamp => "gauge",
    }
}

/// Writes `value` as a label value: backslash, double quote and newline
/// escaped as the text format requires.
fn push_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes a metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one table value: integers as they are, timestamps (microseconds)
/// as seconds with six decimals.
fn push_value(out: &mut String, kind: Kind, value: i64) {
    if kind == Kind::Timestamp && value != 0 {
        let _ = write!(
            out,
            "{}.{:06}",
            value.div_euclid(1_000_000),
            value.rem_euclid(1_000_000)
        );
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Writes every counter of `totals` (shaped like `config`), then the process
/// metrics, into `out`.
pub fn render(out: &mut String, info: &Info<'_>, config: &Config, totals: &Totals) {
    family(
        out,
        "nutcracker_build_info",
        "gauge",
        "Always 1; labels: rustcracker's version, the nutcracker stats version it serves, the host name",
    );
    out.push_str("nutcracker_build_info{version=\"");
    push_label(out, info.version);
    out.push_str("\",compat=\"");
    push_label(out, info.compat);
    out.push_str("\",source=\"");
    push_label(out, info.source);
    out.push_str("\"} 1\n");

    family(
        out,
        "nutcracker_uptime_seconds",
        "gauge",
        "Seconds since the proxy started",
    );
    let _ = writeln!(out, "nutcracker_uptime_seconds {}", info.uptime);
    family(
        out,
        "nutcracker_connections_created_total",
        "counter",
        "Connections ever created: listeners, clients and servers (total_connections)",
    );
    let _ = writeln!(
        out,
        "nutcracker_connections_created_total {}",
        totals.total_connections
    );
    family(
        out,
        "nutcracker_connections_open",
        "gauge",
        "Connections open now: listeners, clients and servers (curr_connections)",
    );
    let _ = writeln!(
        out,
        "nutcracker_connections_open {}",
        totals.curr_connections
    );

    family(
        out,
        "rustcracker_parked_clients",
        "gauge",
        "Idle client connections parked without a task or buffers (part of connections_open)",
    );
    let _ = writeln!(out, "rustcracker_parked_clients {}", totals.parked_clients);

    for (index, field) in POOL_FIELDS.iter().enumerate() {
        let name = metric_name(field);
        family(out, &name, type_name(field.kind), &help(field));
        for (pool, (stats, _)) in config.pools.iter().zip(&totals.pools) {
            out.push_str(&name);
            out.push_str("{pool=\"");
            push_label(out, &pool.name);
            out.push_str("\"} ");
            push_value(out, field.kind, stats.values()[index]);
            out.push('\n');
        }
    }
    for (index, field) in SERVER_FIELDS.iter().enumerate() {
        let name = metric_name(field);
        family(out, &name, type_name(field.kind), &help(field));
        for (pool, (_, servers)) in config.pools.iter().zip(&totals.pools) {
            for (server, stats) in pool.servers.iter().zip(servers) {
                out.push_str(&name);
                out.push_str("{pool=\"");
                push_label(out, &pool.name);
                out.push_str("\",server=\"");
                push_label(out, &server.name);
                out.push_str("\"} ");
                push_value(out, field.kind, stats.values()[index]);
                out.push('\n');
            }
        }
    }
    process::render(out);
}

/// Writes the latency histograms, in seconds with power-of-two microsecond
/// buckets (p50 / p99 / p999 follow from `histogram_quantile`):
/// per server, the backend latency (queueing a request on a server connection
/// to its reply); per pool and command, the request latency (parsing a request
/// to its reply being complete in the proxy; commands never seen are left
/// out); per pool, the proxy-added latency (request latency minus the slowest
/// server's time).
pub fn render_latency(
    out: &mut String,
    config: &Config,
    server: &[Vec<HistogramSnapshot>],
    request: &[Vec<HistogramSnapshot>],
    proxy: &[HistogramSnapshot],
) {
    let name = "nutcracker_server_latency_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from queueing a request on a server connection to its reply",
    );
    for (pool, servers) in config.pools.iter().zip(server) {
        for (srv, h) in pool.servers.iter().zip(servers) {
            let labels = labels(&[("pool", &pool.name), ("server", &srv.name)]);
            histogram(out, name, &labels, h);
        }
    }
    let name = "nutcracker_request_latency_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from parsing a request to its reply being complete in the proxy, per command",
    );
    for (pool, commands) in config.pools.iter().zip(request) {
        let names = super::command_names(pool);
        for (command, h) in names.iter().zip(commands) {
            if h.count() > 0 {
                let labels = labels(&[("pool", &pool.name), ("command", command)]);
                histogram(out, name, &labels, h);
            }
        }
    }
    let name = "nutcracker_proxy_latency_seconds";
    family(
        out,
        name,
        "histogram",
        "Time the proxy adds to a request: request latency minus the slowest server's time",
    );
    for (pool, h) in config.pools.iter().zip(proxy) {
        let labels = labels(&[("pool", &pool.name)]);
        histogram(out, name, &labels, h);
    }
}

/// `k1="v1",k2="v2"` with escaped values.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        push_label(&mut out, v);
        out.push('"');
    }
    out
}

/// One histogram's `_bucket` (cumulative), `_sum` and `_count` samples.
fn histogram(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    let mut cumulative = 0i64;
    for (i, n) in h.buckets.iter().enumerate().take(BUCKETS) {
        cumulative += n;
        let le = bucket_bound_us(i) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count());
}

/// Process metrics from `/proc/self`, under the names Prometheus client
/// libraries use. A file that cannot be read leaves its metrics out.
mod process {
    use std::fmt::Write as _;

    use super::family;

    /// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux).
    const USER_HZ: f64 = 100.0;

    /// The fields of `/proc/self/stat` after the command name, so that
    /// `fields[n - 3]` is field `n` of proc(5).
    fn stat_fields(text: &str) -> Vec<&str> {
        match text.rfind(')') {
            Some(end) => text[end + 1..].split_whitespace().collect(),
            None => Vec::new(),
        }
    }

    /// Field `n` (1-based, as proc(5) numbers them) of `/proc/self/stat`.
    fn stat_field(fields: &[&str], n: usize) -> Option<u64> {
        fields.get(n.checked_sub(3)?)?.parse().ok()
    }

    /// A `kB` line of `/proc/self/status`, in bytes.
    fn status_kb(status: &str, key: &str) -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let kb: u64 = line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    }

    /// The soft `Max open files` limit from `/proc/self/limits`.
    fn max_fds() -> Option<u64> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line["Max open files".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// System boot time in Unix seconds (`btime` of `/proc/stat`).
    fn boot_time() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    }

    /// Writes one single-sample family.
    fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }

    /// Writes the process metrics that can be read.
    pub(super) fn render(out: &mut String) {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields = stat_fields(&stat);
        if let (Some(utime), Some(stime)) = (stat_field(&fields, 14), stat_field(&fields, 15)) {
            metric(
                out,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds",
                (utime + stime) as f64 / USER_HZ,
            );
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of the entries.
            let open = dir.count().saturating_sub(1);
            metric(
                out,
                "process_open_fds",
                "gauge",
                "Number of open file descriptors",
                open,
            );
        }
        if let Some(max) = max_fds() {
            metric(
                out,
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors",
                max,
            );
        }
        if let Some(vsize) = stat_field(&fields, 23) {
            metric(
                out,
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes",
                vsize,
            );
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(rss) = status_kb(&status, "VmRSS:") {
            metric(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes",
                rss,
            );
        }
        if let (Some(start), Some(boot)) = (stat_field(&fields, 22), boot_time()) {
            metric(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds",
                boot as f64 + start as f64 / USER_HZ,
            );
        }
        if let Some(threads) = stat_field(&fields, 20) {
            metric(
                out,
                "process_threads",
                "gauge",
                "Number of OS threads in the process",
                threads,
            );
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stat_parsing_skips_the_command_name() {
            let text = "42 (a) b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0 77 1000 9";
            let fields = stat_fields(text);
            assert_eq!(stat_field(&fields, 14), Some(250));
            assert_eq!(stat_field(&fields, 15), Some(50));
            assert_eq!(stat_field(&fields, 20), Some(3));
            assert_eq!(stat_field(&fields, 22), Some(77));
            assert_eq!(stat_field(&fields, 23), Some(1000));
        }

        #[test]
        fn reads_this_process() {
            let mut out = String::new();
            render(&mut out);
            for name in [
                "process_cpu_seconds_total ",
                "process_open_fds ",
                "process_max_fds ",
                "process_resident_memory_bytes ",
                "process_start_time_seconds ",
            ] {
                assert!(
                    out.contains(&format!("\n{name}")),
                    "{name} missing in {out}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{PoolStats, ServerStats};

    #[test]
    fn names_follow_the_table() {
        let names: Vec<String> = POOL_FIELDS
            .iter()
            .chain(SERVER_FIELDS)
            .map(metric_name)
            .collect();
        assert_eq!(
            names,
            [
                "nutcracker_pool_client_eof_total",
                "nutcracker_pool_client_err_total",
                "nutcracker_pool_client_connections",
                "nutcracker_pool_server_ejects_total",
                "nutcracker_pool_forward_error_total",
                "nutcracker_pool_fragments_total",
                "nutcracker_server_eof_total",
                "nutcracker_server_err_total",
                "nutcracker_server_timedout_total",
                "nutcracker_server_connections",
                "nutcracker_server_ejected_at_seconds",
                "nutcracker_server_requests_total",
                "nutcracker_server_request_bytes_total",
                "nutcracker_server_responses_total",
                "nutcracker_server_response_bytes_total",
                "nutcracker_server_in_queue",
                "nutcracker_server_in_queue_bytes",
                "nutcracker_server_out_queue",
                "nutcracker_server_out_queue_bytes",
            ]
        );
    }

    #[test]
    fn renders_samples_with_labels() {
        let config = rustcracker_config::parse(
            std::path::Path::new("n.yml"),
            "a\"b:\n  listen: 127.0.0.1:23111\n  servers:\n   - 127.0.0.1:23112:1\n",
        )
        .unwrap();
        let totals = Totals {
            pools: vec![(
                PoolStats {
                    forward_error: 2,
                    ..Default::default()
                },
                vec![ServerStats {
                    requests: 5,
                    server_ejected_at: 1_700_000_000_000_042,
                    ..Default::default()
                }],
            )],
            total_connections: 4,
            curr_connections: 3,
            parked_clients: 1,
        };
        let info = Info {
            version: "0.1.0",
            compat: "0.5.0",
            source: "vm",
            uptime: 7,
        };
        let mut out = String::new();
        render(&mut out, &info, &config, &totals);
        for line in [
            "nutcracker_build_info{version=\"0.1.0\",compat=\"0.5.0\",source=\"vm\"} 1\n",
            "nutcracker_uptime_seconds 7\n",
            "nutcracker_connections_created_total 4\n",
            "nutcracker_connections_open 3\n",
            "rustcracker_parked_clients 1\n",
            "# TYPE nutcracker_pool_forward_error_total counter\n",
            "nutcracker_pool_forward_error_total{pool=\"a\\\"b\"} 2\n",
            "# HELP nutcracker_pool_client_connections Number of active client connections\n",
            "nutcracker_server_requests_total{pool=\"a\\\"b\",server=\"127.0.0.1:23112\"} 5\n",
            "nutcracker_server_ejected_at_seconds{pool=\"a\\\"b\",server=\"127.0.0.1:23112\"} 1700000000.000042\n",
            "# HELP nutcracker_server_request_bytes_total Total request bytes\n",
        ] {
            assert!(out.contains(line), "{line:?} missing in\n{out}");
        }
    }
}
