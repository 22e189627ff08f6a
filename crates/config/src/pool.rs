//! Pool directives: one handler per directive, defaults and per-pool
//! validation, with nutcracker 0.5.0's rules and reason phrases.

use crate::suggest::{bool_hint, hint};
use crate::value::{boolean, nc_cmp, number, NumberError, MAX_NUMBER};
use crate::yaml::Mark;
use crate::{listen, server, Distribution, HashFunction, Listen, Pool, Server};

/// Every directive rustcracker knows, in nutcracker's table order
/// (`reuseport` comes from twemproxy master).
pub const DIRECTIVES: [&str; 18] = [
    "listen",
    "hash",
    "hash_tag",
    "distribution",
    "timeout",
    "backlog",
    "client_connections",
    "redis",
    "redis_auth",
    "redis_db",
    "preconnect",
    "auto_eject_hosts",
    "server_connections",
    "server_retry_timeout",
    "server_failure_limit",
    "tcpkeepalive",
    "reuseport",
    "servers",
];

/// nutcracker's defaults (`nc_conf.h`).
const DEFAULT_BACKLOG: u32 = 512;
const DEFAULT_SERVER_CONNECTIONS: u32 = 1;
const DEFAULT_SERVER_RETRY_TIMEOUT_MS: u32 = 30_000;
const DEFAULT_SERVER_FAILURE_LIMIT: u32 = 2;

/// A scalar with its position.
pub(crate) type Located = (String, Mark);

/// An error: where, and the problem.
pub(crate) type Problem = (Mark, String);

/// A pool while its directives are being read.
#[derive(Debug, Default)]
pub(crate) struct PoolBuilder {
    pub name: String,
    pub name_mark: Mark,
    listen: Option<(Listen, Located)>,
    hash: Option<HashFunction>,
    hash_tag: Option<[u8; 2]>,
    distribution: Option<Distribution>,
    timeout: Option<u32>,
    backlog: Option<u32>,
    client_connections: Option<u32>,
    redis: Option<bool>,
    redis_auth: Option<Located>,
    redis_db: Option<u32>,
    preconnect: Option<bool>,
    auto_eject_hosts: Option<bool>,
    server_connections: Option<(u32, Mark)>,
    server_retry_timeout: Option<u32>,
    server_failure_limit: Option<u32>,
    tcpkeepalive: Option<bool>,
    reuseport: Option<bool>,
    servers: Vec<(Server, Mark)>,
}

/// A validated pool plus what the cross-pool checks need.
pub(crate) struct Built {
    pub pool: Pool,
    pub name_mark: Mark,
    pub listen_text: String,
    pub listen_mark: Mark,
}

fn duplicate(key: &Located) -> Problem {
    (key.1, format!("directive \"{}\" is a duplicate", key.0))
}

fn num(key: &Located, value: &Located) -> Result<u32, Problem> {
    match number(&value.0) {
        Ok(n) => Ok(n),
        Err(NumberError::NotANumber) => Err((
            value.1,
            format!(
                "directive \"{}\" is not a number: \"{}\" (only digits are allowed)",
                key.0, value.0
            ),
        )),
        Err(NumberError::TooLarge) => Err((
            value.1,
            format!(
                "directive \"{}\" is too large: {} is more than {MAX_NUMBER} (nutcracker 0.5.0 would silently wrap it at 32 bits)",
                key.0, value.0
            ),
        )),
    }
}

fn set_num(slot: &mut Option<u32>, key: &Located, value: &Located) -> Result<(), Problem> {
    if slot.is_some() {
        return Err(duplicate(key));
    }
    *slot = Some(num(key, value)?);
    Ok(())
}

fn set_bool(slot: &mut Option<bool>, key: &Located, value: &Located) -> Result<(), Problem> {
    if slot.is_some() {
        return Err(duplicate(key));
    }
    match boolean(&value.0) {
        Some(b) => {
            *slot = Some(b);
            Ok(())
        }
        None => Err((
            value.1,
            format!(
                "directive \"{}\" is not \"true\" or \"false\"{}",
                key.0,
                bool_hint(&value.0)
            ),
        )),
    }
}

impl PoolBuilder {
    pub(crate) fn new(name: &Located) -> PoolBuilder {
        PoolBuilder {
            name: name.0.clone(),
            name_mark: name.1,
            ..PoolBuilder::default()
        }
    }

    /// Applies one `key: value` (or one item of a `key:` list).
    pub(crate) fn set(&mut self, key: &Located, value: &Located) -> Result<(), Problem> {
        let v = value.0.as_str();
        match key.0.as_str() {
            "listen" => {
                if self.listen.is_some() {
                    return Err(duplicate(key));
                }
                let l =
                    listen::parse(v).map_err(|e| (value.1, format!("directive \"listen\" {e}")))?;
                self.listen = Some((l, value.clone()));
            }
            "hash" => {
                if self.hash.is_some() {
                    return Err(duplicate(key));
                }
                let h = HashFunction::from_name(v).ok_or_else(|| {
                    (
                        value.1,
                        format!(
                            "directive \"hash\" is not a valid hash{}",
                            hint(v, HashFunction::ALL.iter().map(|h| h.name()))
                        ),
                    )
                })?;
                self.hash = Some(h);
            }
            "hash_tag" => {
                if self.hash_tag.is_some() {
                    return Err(duplicate(key));
                }
                let b = v.as_bytes();
                if b.len() != 2 {
                    return Err((
                        value.1,
                        format!(
                            "directive \"hash_tag\" is not a valid hash tag string with two characters: \"{v}\" has {} bytes (e.g. \"{{}}\")",
                            b.len()
                        ),
                    ));
                }
                self.hash_tag = Some([b[0], b[1]]);
            }
            "distribution" => {
                if self.distribution.is_some() {
                    return Err(duplicate(key));
                }
                let d = Distribution::from_name(v).ok_or_else(|| {
                    (
                        value.1,
                        format!(
                            "directive \"distribution\" is not a valid distribution{}",
                            hint(v, Distribution::ALL.iter().map(|d| d.name()))
                        ),
                    )
                })?;
                self.distribution = Some(d);
            }
            "timeout" => set_num(&mut self.timeout, key, value)?,
            "backlog" => set_num(&mut self.backlog, key, value)?,
            "client_connections" => set_num(&mut self.client_connections, key, value)?,
            "redis" => set_bool(&mut self.redis, key, value)?,
            "redis_auth" => {
                if self.redis_auth.is_some() {
                    return Err(duplicate(key));
                }
                self.redis_auth = Some(value.clone());
            }
            "redis_db" => set_num(&mut self.redis_db, key, value)?,
            "preconnect" => set_bool(&mut self.preconnect, key, value)?,
            "auto_eject_hosts" => set_bool(&mut self.auto_eject_hosts, key, value)?,
            "server_connections" => {
                if self.server_connections.is_some() {
                    return Err(duplicate(key));
                }
                self.server_connections = Some((num(key, value)?, value.1));
            }
            "server_retry_timeout" => set_num(&mut self.server_retry_timeout, key, value)?,
            "server_failure_limit" => set_num(&mut self.server_failure_limit, key, value)?,
            "tcpkeepalive" => set_bool(&mut self.tcpkeepalive, key, value)?,
            "reuseport" => set_bool(&mut self.reuseport, key, value)?,
            "servers" => {
                let s = server::parse(v)
                    .map_err(|e| (value.1, format!("directive \"servers\" {e}")))?;
                self.servers.push((s, value.1));
            }
            other => {
                return Err((
                    key.1,
                    format!(
                        "directive \"{other}\" is unknown{}",
                        hint(other, DIRECTIVES)
                    ),
                ))
            }
        }
        Ok(())
    }

    /// Applies defaults and the per-pool checks; sorts the servers.
    pub(crate) fn build(self) -> Result<Built, Problem> {
        let Some((listen, (listen_text, listen_mark))) = self.listen else {
            return Err((
                self.name_mark,
                format!("directive \"listen:\" is missing in pool \"{}\"", self.name),
            ));
        };
        let server_connections = match self.server_connections {
            None => DEFAULT_SERVER_CONNECTIONS,
            Some((0, mark)) => {
                return Err((mark, "directive \"server_connections:\" cannot be 0".into()))
            }
            Some((n, _)) => n,
        };
        let redis = self.redis.unwrap_or(false);
        if let (false, Some((_, mark))) = (redis, &self.redis_auth) {
            return Err((
                *mark,
                "directive \"redis_auth:\" is only valid for a redis pool (add \"redis: true\")"
                    .into(),
            ));
        }
        if self.servers.is_empty() {
            return Err((
                self.name_mark,
                format!("pool '{}' has no servers", self.name),
            ));
        }
        let mut servers = self.servers;
        servers.sort_by(|a, b| nc_cmp(&a.0.name, &b.0.name));
        if let Some(w) = servers.windows(2).find(|w| w[0].0.name == w[1].0.name) {
            let later = if (w[0].1.line, w[0].1.column) > (w[1].1.line, w[1].1.column) {
                w[0].1
            } else {
                w[1].1
            };
            return Err((
                later,
                format!(
                    "pool '{}' has servers with same name '{}' (give one of them an explicit name: \"host:port:weight name\")",
                    self.name, w[0].0.name
                ),
            ));
        }
        let pool = Pool {
            name: self.name,
            listen,
            hash: self.hash.unwrap_or(HashFunction::Fnv1a_64),
            hash_tag: self.hash_tag,
            distribution: self.distribution.unwrap_or(Distribution::Ketama),
            timeout_ms: self.timeout.filter(|&t| t > 0).map(u64::from),
            backlog: self.backlog.unwrap_or(DEFAULT_BACKLOG),
            client_connections: self.client_connections.unwrap_or(0),
            redis,
            redis_auth: self.redis_auth.map(|(a, _)| a),
            redis_db: self.redis_db.unwrap_or(0),
            preconnect: self.preconnect.unwrap_or(false),
            auto_eject_hosts: self.auto_eject_hosts.unwrap_or(false),
            server_connections,
            server_retry_timeout_ms: u64::from(
                self.server_retry_timeout
                    .unwrap_or(DEFAULT_SERVER_RETRY_TIMEOUT_MS),
            ),
            server_failure_limit: self
                .server_failure_limit
                .unwrap_or(DEFAULT_SERVER_FAILURE_LIMIT),
            tcpkeepalive: self.tcpkeepalive.unwrap_or(false),
            reuseport: self.reuseport.unwrap_or(false),
            servers: servers.into_iter().map(|(s, _)| s).collect(),
        };
        Ok(Built {
            pool,
            name_mark: self.name_mark,
            listen_text,
            listen_mark,
        })
    }
}
