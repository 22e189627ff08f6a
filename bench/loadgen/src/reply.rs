//! Reply parsing and checking.
//!
//! [`parse`] looks at the start of the receive buffer and says whether one
//! complete reply to the expected request is there, how long it is, and what
//! it held. It is restartable: on [`Parsed::Incomplete`] the caller reads
//! more and calls again from the same start. Value bodies are skipped by
//! length, so re-parsing a partly received multi-get only re-reads headers.
//!
//! Three outcomes are distinguished:
//! * well-formed and correct (hits and misses both count as correct);
//! * well-formed but wrong: an error reply (`SERVER_ERROR`, `-ERR` …) or a
//!   value for a key that was not asked for, of the wrong size or content;
//!   the connection stays usable;
//! * malformed ([`Malformed`]): the stream cannot be trusted any more and the
//!   connection must be dropped.

use crate::workload::{value_matches, KeyFmt, Kind, Protocol, MAX_KEY};

/// What one reply should answer.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Protocol.
    pub proto: Protocol,
    /// Request kind.
    pub kind: Kind,
    /// Keys asked for, in request order.
    pub keys: &'a [u32],
    /// Size of every stored value.
    pub value_len: usize,
    /// Key format, to recognise and rebuild keys.
    pub keyfmt: &'a KeyFmt,
}

/// What a complete, well-formed reply held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The server answered with an error.
    pub error_reply: bool,
    /// A value did not belong to the request (wrong key, size or content),
    /// or a set was not acknowledged with `STORED` / `+OK`.
    pub mismatch: bool,
    /// Values returned.
    pub hits: u32,
}

/// Result of looking for one reply at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A reply of `len` bytes.
    Done {
        /// Bytes taken by the reply.
        len: usize,
        /// What it held.
        outcome: Outcome,
    },
}

/// The bytes do not form a reply of the expected shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Position of the first `\r\n` in `buf` at or after `from`.
#[inline]
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = memchr::memchr(b'\n', buf.get(i..)?) {
        let nl = i + off;
        if nl > from && buf[nl - 1] == b'\r' {
            return Some(nl - 1);
        }
        i = nl + 1;
    }
    None
}

/// Parses a non-negative decimal number.
fn decimal(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    let mut n = 0usize;
    for &d in s {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + usize::from(d - b'0');
    }
    Some(n)
}

/// Parses a RESP length: a decimal or `-1`.
fn resp_len(s: &[u8]) -> Option<i64> {
    if s == b"-1" {
        return Some(-1);
    }
    decimal(s).map(|n| n as i64)
}

fn mc_error_line(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"SERVER_ERROR") || line.starts_with(b"CLIENT_ERROR")
}

/// Looks for one complete reply to `exp` at the start of `buf`.
pub fn parse(buf: &[u8], exp: &Expect<'_>) -> Result<Parsed, Malformed> {
    match exp.proto {
        Protocol::Memcache => parse_memcache(buf, exp),
        Protocol::Redis => parse_redis(buf, exp),
    }
}

fn done(len: usize, outcome: Outcome) -> Result<Parsed, Malformed> {
    Ok(Parsed::Done { len, outcome })
}

fn parse_memcache(buf: &[u8], exp: &Expect<'_>) -> Result<Parsed, Malformed> {
    let mut out = Outcome::default();
    if exp.kind == Kind::Set {
        let Some(end) = find_crlf(buf, 0) else {
            return Ok(Parsed::Incomplete);
        };
        let line = &buf[..end];
        if line == b"STORED" {
        } else if mc_error_line(line) {
            out.error_reply = true;
        } else if matches!(line, b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND") {
            out.mismatch = true;
        } else {
            return Err(Malformed);
        }
        return done(end + 2, out);
    }
    let mut pos = 0;
    loop {
        let Some(end) = find_crlf(buf, pos) else {
            return Ok(Parsed::Incomplete);
        };
        let line = &buf[pos..end];
        if line == b"END" {
            return done(end + 2, out);
        }
        if let Some(rest) = line.strip_prefix(b"VALUE ") {
            // VALUE <key> <flags> <bytes> [<cas>]
            let mut f = rest.split(|&b| b == b' ');
            let key = f.next().ok_or(Malformed)?;
            let _flags = f.next().and_then(decimal).ok_or(Malformed)?;
            let n = f.next().and_then(decimal).ok_or(Malformed)?;
            let data = end + 2;
            if buf.len() < data + n + 2 {
                return Ok(Parsed::Incomplete);
            }
            if &buf[data + n..data + n + 2] != b"\r\n" {
                return Err(Malformed);
            }
            let asked = exp
                .keyfmt
                .parse(key)
                .is_some_and(|idx| exp.keys.contains(&idx));
            if !asked || !value_matches(key, exp.value_len, &buf[data..data + n]) {
                out.mismatch = true;
            }
            out.hits += 1;
            pos = data + n + 2;
            continue;
        }
        if pos == 0 && mc_error_line(line) {
            out.error_reply = true;
            return done(end + 2, out);
        }
        return Err(Malformed);
    }
}

/// A parsed bulk string: its data range (`None` for nil) and the position
/// after it.
type Bulk = (Option<(usize, usize)>, usize);

/// Parses one bulk string (or nil) at `pos`; `None` when incomplete.
fn resp_bulk(buf: &[u8], pos: usize) -> Result<Option<Bulk>, Malformed> {
    let Some(end) = find_crlf(buf, pos) else {
        return Ok(None);
    };
    if buf[pos] != b'$' {
        return Err(Malformed);
    }
    match resp_len(&buf[pos + 1..end]).ok_or(Malformed)? {
        -1 => Ok(Some((None, end + 2))),
        n => {
            let (data, n) = (end + 2, n as usize);
            if buf.len() < data + n + 2 {
                return Ok(None);
            }
            if &buf[data + n..data + n + 2] != b"\r\n" {
                return Err(Malformed);
            }
            Ok(Some((Some((data, data + n)), data + n + 2)))
        }
    }
}

fn parse_redis(buf: &[u8], exp: &Expect<'_>) -> Result<Parsed, Malformed> {
    let mut out = Outcome::default();
    let Some(end) = find_crlf(buf, 0) else {
        return Ok(Parsed::Incomplete);
    };
    if end == 0 {
        return Err(Malformed);
    }
    if buf[0] == b'-' {
        out.error_reply = true;
        return done(end + 2, out);
    }
    let mut kb = [0u8; MAX_KEY];
    let mut check = |out: &mut Outcome, key: u32, data: Option<(usize, usize)>| {
        if let Some((s, e)) = data {
            out.hits += 1;
            if !value_matches(exp.keyfmt.key(key, &mut kb), exp.value_len, &buf[s..e]) {
                out.mismatch = true;
            }
        }
    };
    match exp.kind {
        Kind::Set => {
            match &buf[..end] {
                b"+OK" => {}
                [b'+', ..] => out.mismatch = true,
                _ => return Err(Malformed),
            }
            done(end + 2, out)
        }
        Kind::Get => match resp_bulk(buf, 0)? {
            None => Ok(Parsed::Incomplete),
            Some((data, len)) => {
                check(&mut out, exp.keys[0], data);
                done(len, out)
            }
        },
        Kind::MultiGet => {
            if buf[0] != b'*' {
                return Err(Malformed);
            }
            let n = decimal(&buf[1..end]).ok_or(Malformed)?;
            if n != exp.keys.len() {
                out.mismatch = true;
            }
            let mut pos = end + 2;
            for i in 0..n {
                match resp_bulk(buf, pos)? {
                    None => return Ok(Parsed::Incomplete),
                    Some((data, next)) => {
                        match exp.keys.get(i) {
                            Some(&k) => check(&mut out, k, data),
                            None => out.mismatch = true,
                        }
                        pos = next;
                    }
                }
            }
            done(pos, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp<'a>(proto: Protocol, kind: Kind, keys: &'a [u32], f: &'a KeyFmt) -> Expect<'a> {
        Expect {
            proto,
            kind,
            keys,
            value_len: 5,
            keyfmt: f,
        }
    }

    fn ok(len: usize, hits: u32) -> Result<Parsed, Malformed> {
        done(
            len,
            Outcome {
                hits,
                ..Outcome::default()
            },
        )
    }

    #[test]
    fn crlf() {
        assert_eq!(find_crlf(b"ab\ncd\r\n", 0), Some(5));
        assert_eq!(find_crlf(b"\nab", 0), None);
        assert_eq!(find_crlf(b"ab\r", 0), None);
    }

    #[test]
    fn memcache_get() {
        let f = KeyFmt::new("k:");
        let e = exp(Protocol::Memcache, Kind::MultiGet, &[1, 2], &f);
        let r = b"VALUE k:0000000002 0 5\r\nk:000\r\nVALUE k:0000000001 0 5\r\nk:000\r\nEND\r\n";
        assert_eq!(parse(r, &e), ok(r.len(), 2));
        for cut in 0..r.len() {
            assert_eq!(parse(&r[..cut], &e), Ok(Parsed::Incomplete), "cut {cut}");
        }
        assert_eq!(parse(b"END\r\nEND\r\n", &e), ok(5, 0));
        // A key that was not asked for, or a wrong size.
        let bad = b"VALUE k:0000000003 0 5\r\nk:000\r\nEND\r\n";
        let Ok(Parsed::Done { outcome, .. }) = parse(bad, &e) else {
            panic!()
        };
        assert!(outcome.mismatch);
        let bad = b"VALUE k:0000000001 0 4\r\nk:00\r\nEND\r\n";
        let Ok(Parsed::Done { outcome, .. }) = parse(bad, &e) else {
            panic!()
        };
        assert!(outcome.mismatch);
        assert_eq!(
            parse(b"VALUE k:0000000001 0 5\r\nk:000xxEND\r\n", &e),
            Err(Malformed)
        );
        assert_eq!(parse(b"STORED\r\n", &e), Err(Malformed));
        let Ok(Parsed::Done { outcome, len }) = parse(b"SERVER_ERROR out of memory\r\n", &e) else {
            panic!()
        };
        assert!(outcome.error_reply);
        assert_eq!(len, 28);
    }

    #[test]
    fn memcache_set() {
        let f = KeyFmt::new("k:");
        let e = exp(Protocol::Memcache, Kind::Set, &[1], &f);
        assert_eq!(parse(b"STORED\r\nEND", &e), ok(8, 0));
        assert_eq!(parse(b"STOR", &e), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"VALUE\r\n", &e), Err(Malformed));
        let Ok(Parsed::Done { outcome, .. }) = parse(b"ERROR\r\n", &e) else {
            panic!()
        };
        assert!(outcome.error_reply);
    }

    #[test]
    fn redis_replies() {
        let f = KeyFmt::new("k:");
        let set = exp(Protocol::Redis, Kind::Set, &[1], &f);
        assert_eq!(parse(b"+OK\r\n", &set), ok(5, 0));
        assert_eq!(parse(b"$-1\r\n", &set), Err(Malformed));
        let get = exp(Protocol::Redis, Kind::Get, &[1], &f);
        assert_eq!(parse(b"$5\r\nk:000\r\n", &get), ok(11, 1));
        assert_eq!(parse(b"$5\r\nk:000\r", &get), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"$-1\r\n", &get), ok(5, 0));
        assert_eq!(parse(b"$5\r\nk:000xx", &get), Err(Malformed));
        let Ok(Parsed::Done { outcome, len }) = parse(b"-ERR unknown\r\n", &get) else {
            panic!()
        };
        assert!(outcome.error_reply);
        assert_eq!(len, 14);
        let mget = exp(Protocol::Redis, Kind::MultiGet, &[1, 2, 3], &f);
        let r = b"*3\r\n$5\r\nk:000\r\n$-1\r\n$5\r\nk:000\r\n";
        assert_eq!(parse(r, &mget), ok(r.len(), 2));
        for cut in 0..r.len() {
            assert_eq!(parse(&r[..cut], &mget), Ok(Parsed::Incomplete), "cut {cut}");
        }
        let Ok(Parsed::Done { outcome, .. }) = parse(b"*1\r\n$-1\r\n", &mget) else {
            panic!()
        };
        assert!(outcome.mismatch);
        let bad = b"*1\r\n$5\r\nj:000\r\n";
        let one = exp(Protocol::Redis, Kind::MultiGet, &[1], &f);
        let Ok(Parsed::Done { outcome, .. }) = parse(bad, &one) else {
            panic!()
        };
        assert!(outcome.mismatch);
    }
}
