//! nutcracker.yml: loading, validation with nutcracker 0.5.0's acceptance
//! rules, and errors that name the file, line, column and problem.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod listen;
mod pool;
mod server;
mod structure;
mod suggest;
mod value;
mod yaml;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use rustcracker_hash::{Distribution, HashFunction, Router};

/// A whole configuration file: the pools in nutcracker's sorted order
/// (shorter names first, then bytewise).
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, as given on the command line.
    pub path: PathBuf,
    /// The pools, sorted by name (nutcracker's order: shorter first, then bytewise).
    pub pools: Vec<Pool>,
}

/// One pool ("server pool"): a listener and the servers behind it.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The pool's name (its key at the root of the file).
    pub name: String,
    /// `listen:` (required).
    pub listen: Listen,
    /// `hash:`; default `fnv1a_64`.
    pub hash: HashFunction,
    /// `hash_tag:`, exactly two bytes (e.g. `{}`); `None` when unset.
    pub hash_tag: Option<[u8; 2]>,
    /// `distribution:`; default `ketama`.
    pub distribution: Distribution,
    /// `timeout:` in milliseconds; `None` when unset or 0 (wait forever).
    pub timeout_ms: Option<u64>,
    /// `backlog:` for listen(2); default 512.
    pub backlog: u32,
    /// `client_connections:`; 0 = unlimited (the default). nutcracker parses
    /// and ignores it; rustcracker enforces it.
    pub client_connections: u32,
    /// `redis:`: the pool speaks redis (else memcache ASCII); default false.
    pub redis: bool,
    /// `redis_auth:` (redis pools only).
    pub redis_auth: Option<String>,
    /// `redis_db:`; default 0.
    pub redis_db: u32,
    /// `preconnect:`; default false.
    pub preconnect: bool,
    /// `auto_eject_hosts:`; default false.
    pub auto_eject_hosts: bool,
    /// `server_connections:` per backend server; default 1, never 0.
    pub server_connections: u32,
    /// `server_retry_timeout:` in milliseconds; default 30000.
    pub server_retry_timeout_ms: u64,
    /// `server_failure_limit:`; default 2.
    pub server_failure_limit: u32,
    /// `tcpkeepalive:`; default false.
    pub tcpkeepalive: bool,
    /// `reuseport:` (twemproxy master; not in 0.5.0); default false.
    pub reuseport: bool,
    /// In nutcracker's sorted order (by `name`); the index is the server's
    /// identity for routing.
    pub servers: Vec<Server>,
}

/// Where a pool listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `host:port`, resolved once at load time (first getaddrinfo result).
    Tcp {
        /// The text left of the last `:` (IPv6 literals unbracketed).
        host: String,
        /// 1..=65535.
        port: u16,
        /// The first getaddrinfo result for (host, port).
        addr: SocketAddr,
    },
    /// `/path [octal permissions]`; `permissions` is `None` when absent or 0.
    Unix {
        /// The socket path (text before the last space, if any).
        path: PathBuf,
        /// The mode to chmod the socket to, at most 0o777.
        permissions: Option<u32>,
    },
}

impl Pool {
    /// The pool's key placement: its servers by continuum name and weight, in the pool's order
    /// (a server's index is its identity), every one live.
    pub fn router(&self) -> Router {
        let servers: Vec<(&[u8], u32)> = self
            .servers
            .iter()
            .map(|s| (s.name.as_bytes(), s.weight))
            .collect();
        Router::new(self.hash, self.hash_tag, self.distribution, &servers)
    }
}

/// One `servers:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The entry without its name: `host:port:weight` (used in log lines).
    pub pname: String,
    /// The name on the continuum and in the stats JSON: the explicit name,
    /// else `host:port` (`host` alone for port 11211), `path:` for unix.
    pub name: String,
    /// Where to connect.
    pub address: ServerAddress,
    /// Weight, at least 1 (used by ketama and modula).
    pub weight: u32,
}

/// A backend address; hostnames are resolved on every new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    /// `host:port`; `host` may be a name, IPv4 or unbracketed IPv6.
    Tcp {
        /// The host text (resolved lazily).
        host: String,
        /// 1..=65535.
        port: u16,
    },
    /// A unix socket path.
    Unix(PathBuf),
}

/// A configuration error, with the position it was found at: shown as
/// `file:line:column: message`, or `file: message` when it concerns the whole
/// file (it could not be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", position(*.line, *.column))]
pub struct ConfigError {
    /// The file, as given.
    pub file: String,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based; 0 when the problem concerns the whole file.
    pub column: usize,
    /// The problem, with a suggestion where one fits.
    pub message: String,
}

/// `:line:column`, or nothing for a problem with the whole file (line 0).
fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

impl ConfigError {
    fn at(path: &Path, mark: Option<yaml::Mark>, message: impl Into<String>) -> ConfigError {
        let mark = mark.unwrap_or_default();
        ConfigError {
            file: path.display().to_string(),
            line: mark.line,
            column: mark.column,
            message: one_line(message.into()),
        }
    }
}

/// The message with control characters escaped (`\n`, `\t`, `\u{7f}`): a
/// value quoted from the file (a plain scalar spanning lines, a quoted one
/// with `\n`) must not break the reason's one line.
fn one_line(message: String) -> String {
    if !message.chars().any(char::is_control) {
        return message;
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Every directive name rustcracker accepts in a pool (nutcracker 0.5.0's
/// list plus `reuseport` from twemproxy master).
pub const DIRECTIVES: [&str; 18] = pool::DIRECTIVES;

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::at(
            path,
            None,
            format!(
                "failed to open configuration '{}': {}",
                path.display(),
                io_reason(&e)
            ),
        )
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(path, text),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            Err(ConfigError::at(
                path,
                Some(yaml::Mark { line, column }),
                "invalid UTF-8 byte sequence (the file must be UTF-8 text)",
            ))
        }
    }
}

/// The OS error text without Rust's " (os error N)" suffix, like strerror.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Validates configuration text; `path` is only used in messages and `Config::path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let err = |mark: Option<yaml::Mark>, msg: String| ConfigError::at(path, mark, msg);
    let events = yaml::read(text).map_err(|e| err(e.mark, e.message))?;
    structure::check(&events).map_err(|(m, msg)| err(Some(m), msg))?;

    // Walk the events like nutcracker's parser: a stack of scalars (pool
    // name, directive name, value) and a flag for being inside the list.
    let mut args: Vec<pool::Located> = Vec::new();
    let mut depth = 0usize;
    let mut seq = false;
    let mut pools: Vec<pool::PoolBuilder> = Vec::new();
    for ev in &events {
        match &ev.kind {
            yaml::EventKind::MappingStart => depth += 1,
            yaml::EventKind::MappingEnd => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    args.pop();
                } else if depth == 0 {
                    break;
                }
            }
            yaml::EventKind::SequenceStart => seq = true,
            yaml::EventKind::SequenceEnd => {
                args.pop();
                seq = false;
            }
            yaml::EventKind::Scalar(v) => {
                if v.is_empty() {
                    let msg = if depth <= 1 {
                        "pool name is empty".to_string()
                    } else if !seq && args.len() == 1 {
                        "directive name is empty".to_string()
                    } else {
                        let key = args.last().map(|k| k.0.as_str()).unwrap_or_default();
                        format!("directive \"{key}\" has an empty value (nutcracker rejects empty values)")
                    };
                    return Err(err(Some(ev.mark), msg));
                }
                args.push((v.clone(), ev.mark));
                let leaf = seq || (depth != 1 && args.len() == depth + 1);
                if leaf {
                    let n = args.len();
                    if let (Some(p), true) = (pools.last_mut(), n >= 2) {
                        p.set(&args[n - 2], &args[n - 1])
                            .map_err(|(m, msg)| err(Some(m), msg))?;
                    }
                    args.pop();
                    if !seq {
                        args.pop();
                    }
                } else if depth == 1 {
                    pools.push(pool::PoolBuilder::new(&(v.clone(), ev.mark)));
                }
            }
        }
    }

    if pools.is_empty() {
        return Err(err(None, "the file has no pools".to_string()));
    }
    let mut built = Vec::with_capacity(pools.len());
    for p in pools {
        built.push(p.build().map_err(|(m, msg)| err(Some(m), msg))?);
    }
    let later = |a: yaml::Mark, b: yaml::Mark| {
        if (a.line, a.column) > (b.line, b.column) {
            a
        } else {
            b
        }
    };

    // Pools with the same listen string (byte-identical text).
    let mut by_listen: Vec<&pool::Built> = built.iter().collect();
    by_listen.sort_by(|a, b| value::nc_cmp(&a.listen_text, &b.listen_text));
    if let Some(w) = by_listen
        .windows(2)
        .find(|w| w[0].listen_text == w[1].listen_text)
    {
        return Err(err(
            Some(later(w[0].listen_mark, w[1].listen_mark)),
            format!(
                "pools '{}' and '{}' have the same listen address '{}'",
                w[0].pool.name, w[1].pool.name, w[0].listen_text
            ),
        ));
    }

    // Pools with the same name; then nutcracker's order.
    built.sort_by(|a, b| value::nc_cmp(&a.pool.name, &b.pool.name));
    if let Some(w) = built.windows(2).find(|w| w[0].pool.name == w[1].pool.name) {
        return Err(err(
            Some(later(w[0].name_mark, w[1].name_mark)),
            format!("the file has pools with same name '{}'", w[0].pool.name),
        ));
    }
    Ok(Config {
        path: path.to_path_buf(),
        pools: built.into_iter().map(|b| b.pool).collect(),
    })
}

#[cfg(test)]
mod tests;
