//! `servers:` entries: `host:port:weight [name]` or `/path:weight [name]`,
//! parsed from the right like nutcracker does.

use std::path::PathBuf;

use crate::value::{number, NumberError};
use crate::{Server, ServerAddress};

/// libmemcached's default port: servers on it are named by host alone.
const KETAMA_PORT: u16 = 11211;

const FORMAT: &str =
    "\"hostname:port:weight [name]\"or \"/path/unix_socket:weight [name]\" format string";

/// Parses one entry; the error is nutcracker's reason phrase (after
/// `directive "servers" `), possibly with details.
pub(crate) fn parse(value: &str) -> Result<Server, String> {
    let unix = value.starts_with('/');
    // Optional name after the last space.
    let (rest, name) = match value.rfind(' ') {
        Some(sp) => (&value[..sp], Some(&value[sp + 1..])),
        None => (value, None),
    };
    let bad_format = || format!("has an invalid {FORMAT}: \"{value}\"");
    let (rest, weight_text) = rest.rsplit_once(':').ok_or_else(bad_format)?;
    let (addr, port_text) = match rest.rsplit_once(':') {
        Some((a, p)) if !unix => (a, Some(p)),
        None if unix => (rest, None),
        _ => return Err(bad_format()),
    };
    let weight = match number(weight_text) {
        Ok(0) => return Err("has a zero weight in \"hostname:port:weight [name]\" format string".into()),
        Ok(w) => w,
        Err(NumberError::TooLarge) => {
            return Err(format!(
                "has an invalid weight in \"hostname:port:weight [name]\" format string: {weight_text} is larger than 2147483647 (nutcracker 0.5.0 would wrap it at 32 bits)"
            ))
        }
        Err(NumberError::NotANumber) => {
            return Err(format!(
                "has an invalid weight in \"hostname:port:weight [name]\" format string: \"{weight_text}\" is not a number"
            ))
        }
    };
    // nutcracker keeps the whole entry as pname when the name is empty.
    let pname = match name {
        Some(n) if !n.is_empty() => rest_with_weight(value),
        _ => value,
    };
    let (address, default_name) = match port_text {
        None => (ServerAddress::Unix(PathBuf::from(addr)), format!("{addr}:")),
        Some(p) => {
            let port = match number(p) {
                Ok(n) if (1..=65535).contains(&n) => n as u16,
                _ => {
                    return Err(format!(
                        "has an invalid port in \"hostname:port:weight [name]\" format string: \"{p}\" is not a port between 1 and 65535"
                    ))
                }
            };
            let default_name = if port == KETAMA_PORT {
                addr.to_string()
            } else {
                format!("{addr}:{p}")
            };
            (
                ServerAddress::Tcp {
                    host: addr.to_string(),
                    port,
                },
                default_name,
            )
        }
    };
    Ok(Server {
        pname: pname.to_string(),
        name: name.map_or(default_name, str::to_string),
        address,
        weight,
    })
}

/// The entry without its ` name` suffix.
fn rest_with_weight(value: &str) -> &str {
    match value.rfind(' ') {
        Some(sp) => &value[..sp],
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> ServerAddress {
        ServerAddress::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn forms() {
        let s = parse("127.0.0.1:11211:1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.pname.as_str(), s.name.as_str(), s.weight),
            ("127.0.0.1:11211:1", "127.0.0.1", 1)
        );
        assert_eq!(s.address, tcp("127.0.0.1", 11211));
        let s = parse("127.0.0.1:11212:2 server1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.pname.as_str(), s.name.as_str(), s.weight),
            ("127.0.0.1:11212:2", "server1", 2)
        );
        let s = parse("127.0.0.1:11212:2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "127.0.0.1:11212");
        let s = parse("::1:11212:1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.address, tcp("::1", 11212));
        assert_eq!(s.name, "::1:11212");
        let s = parse("/tmp/mc.sock:1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "/tmp/mc.sock:");
        assert_eq!(s.address, ServerAddress::Unix("/tmp/mc.sock".into()));
        let s = parse("/tmp/mc.sock:3 named").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.name.as_str(), s.pname.as_str(), s.weight),
            ("named", "/tmp/mc.sock:3", 3)
        );
        let s = parse("127.0.0.1:022121:1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "127.0.0.1:022121");
        let s = parse("127.0.0.1:11211:1 ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.name.as_str(), s.pname.as_str()),
            ("", "127.0.0.1:11211:1 ")
        );
    }

    #[test]
    fn errors() {
        assert!(parse("127.0.0.1:11211")
            .unwrap_err()
            .contains("format string"));
        assert!(parse("/tmp/a:b.sock:1")
            .unwrap_err()
            .contains("format string"));
        assert!(parse("127.0.0.1:11211:0")
            .unwrap_err()
            .contains("zero weight"));
        assert!(parse("127.0.0.1:11211:x")
            .unwrap_err()
            .contains("invalid weight"));
        assert!(parse("127.0.0.1:11211:1 a b")
            .unwrap_err()
            .contains("invalid weight"));
        assert!(parse("127.0.0.1:0:1").unwrap_err().contains("invalid port"));
        assert!(parse("127.0.0.1:11211:4294967297")
            .unwrap_err()
            .contains("wrap"));
    }
}
