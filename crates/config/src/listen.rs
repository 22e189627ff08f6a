//! The `listen:` directive: `host:port` or `/path [octal permissions]`.

use std::net::ToSocketAddrs;
use std::path::PathBuf;

use crate::value::{number, NumberError};
use crate::Listen;

/// The longest unix socket path (`sizeof(sun_path) - 1` on Linux).
const MAX_UNIX_PATH: usize = 107;

/// Parses and resolves a listen string; the error is nutcracker's reason
/// phrase (after `directive "listen" `), possibly with details.
pub(crate) fn parse(value: &str) -> Result<Listen, String> {
    if value.starts_with('/') {
        return parse_unix(value);
    }
    let Some(colon) = value.rfind(':') else {
        return Err("has an invalid \"hostname:port\" format string (expected host:port or /path/to/socket)".into());
    };
    let (host, port_text) = (&value[..colon], &value[colon + 1..]);
    let port = match number(port_text) {
        Ok(p) if (1..=65535).contains(&p) => p as u16,
        Ok(_) | Err(NumberError::NotANumber) | Err(NumberError::TooLarge) => {
            return Err(format!(
                "has an invalid port in \"hostname:port\" format string: \"{port_text}\" is not a port between 1 and 65535"
            ))
        }
    };
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| {
            let hint = if host.starts_with('[') {
                " (write IPv6 addresses without brackets, e.g. ::1:22121)"
            } else {
                ""
            };
            format!("has an invalid value: address resolution of node '{host}' service '{port}' failed{hint}")
        })?;
    Ok(Listen::Tcp {
        host: host.to_string(),
        port,
        addr,
    })
}

fn parse_unix(value: &str) -> Result<Listen, String> {
    let (path, permissions) = match value.rfind(' ') {
        None => (value, None),
        Some(space) => {
            let perm = strtol_octal(&value[space + 1..]).filter(|p| (0..=0o777).contains(p)).ok_or_else(|| {
                format!(
                    "has an invalid file permission in \"socket_path permission\" format string: \"{}\" is not an octal mode up to 0777",
                    &value[space + 1..]
                )
            })?;
            (&value[..space], (perm != 0).then_some(perm as u32))
        }
    };
    if path.len() > MAX_UNIX_PATH {
        return Err(format!(
            "has an invalid value: the socket path is {} bytes long, more than the {MAX_UNIX_PATH} a unix socket address holds",
            path.len()
        ));
    }
    Ok(Listen::Unix {
        path: PathBuf::from(path),
        permissions,
    })
}

/// C's `strtol(text, NULL, 8)`: leading white space, an optional sign, then
/// octal digits up to the first other character (none → 0).  `None` on
/// overflow (`ERANGE`).
fn strtol_octal(text: &str) -> Option<i64> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(|b| (b'0'..=b'7').contains(b)) {
        v = v.checked_mul(8)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal() {
        assert_eq!(strtol_octal("0666"), Some(0o666));
        assert_eq!(strtol_octal("999"), Some(0));
        assert_eq!(strtol_octal("abc"), Some(0));
        assert_eq!(strtol_octal("-1"), Some(-1));
        assert_eq!(strtol_octal("7777777777777777777777777"), None);
    }

    #[test]
    fn listen_forms() {
        assert!(matches!(
            parse("127.0.0.1:22121"),
            Ok(Listen::Tcp { port: 22121, .. })
        ));
        assert!(matches!(
            parse("::1:22121"),
            Ok(Listen::Tcp { port: 22121, .. })
        ));
        assert!(parse("[::1]:22121").is_err());
        assert!(parse("127.0.0.1").is_err());
        assert!(parse("127.0.0.1:0").is_err());
        assert!(parse("127.0.0.1:65536").is_err());
        assert_eq!(
            parse("/tmp/x.sock 0600"),
            Ok(Listen::Unix {
                path: "/tmp/x.sock".into(),
                permissions: Some(0o600)
            })
        );
        assert_eq!(
            parse("/tmp/x.sock 999"),
            Ok(Listen::Unix {
                path: "/tmp/x.sock".into(),
                permissions: None
            })
        );
        assert_eq!(
            parse("/tmp/x.sock"),
            Ok(Listen::Unix {
                path: "/tmp/x.sock".into(),
                permissions: None
            })
        );
        assert!(parse("/tmp/x.sock 01000").is_err());
        assert!(parse("/tmp/x.sock -1").is_err());
    }
}
