//! Replies the proxy writes itself. Texts marked "redis 7.0" were checked byte for byte against
//! a real `redis-server` 7.0.15; the others are nutcracker 0.5.0's (spec §6.4, §6.7).

/// `PING` without an argument.
pub const PONG: &[u8] = b"+PONG\r\n";
/// `QUIT` (a fix: nutcracker sent nothing), successful `AUTH`, merged `MSET`.
pub const OK: &[u8] = b"+OK\r\n";
/// Any command but `AUTH`/`QUIT` before a successful `AUTH` in a pool with `redis_auth`
/// (nutcracker's text: no trailing period, unlike redis).
pub const NOAUTH: &[u8] = b"-NOAUTH Authentication required\r\n";
/// `AUTH` with the wrong password (nutcracker's text).
pub const INVALID_PASSWORD: &[u8] = b"-ERR invalid password\r\n";
/// `AUTH` in a pool without `redis_auth` (nutcracker's text).
pub const NO_PASSWORD_SET: &[u8] = b"-ERR Client sent AUTH, but no password is set\r\n";
/// A fragmented request whose fragment got a reply of an unexpected type (EINVAL).
pub const INVALID_ARGUMENT: &[u8] = b"-ERR Invalid argument\r\n";
/// `AUTH` with more than two arguments (redis 7.0).
pub const SYNTAX_ERROR: &[u8] = b"-ERR syntax error\r\n";
/// A routing key longer than the proxy's limit (a proxy limit inherited from nutcracker, which
/// closed the connection instead; no redis equivalent). The request is well framed, so the
/// connection is kept.
pub const KEY_TOO_LONG: &[u8] = b"-ERR key too long\r\n";

/// Protocol errors (redis 7.0). Redis closes the connection after each.
pub mod protocol {
    /// `*` count not a valid number, or above `INT_MAX`.
    pub const INVALID_MULTIBULK_LENGTH: &[u8] =
        b"-ERR Protocol error: invalid multibulk length\r\n";
    /// `$` length not a valid number, negative, or above 512 MiB.
    pub const INVALID_BULK_LENGTH: &[u8] = b"-ERR Protocol error: invalid bulk length\r\n";
    /// More than 64 KiB without `\r` after `*`.
    pub const TOO_BIG_MBULK_COUNT: &[u8] = b"-ERR Protocol error: too big mbulk count string\r\n";
    /// More than 64 KiB without `\r` after an argument's `$`.
    pub const TOO_BIG_BULK_COUNT: &[u8] = b"-ERR Protocol error: too big bulk count string\r\n";
    /// An inline request of more than 64 KiB without `\n`.
    pub const TOO_BIG_INLINE: &[u8] = b"-ERR Protocol error: too big inline request\r\n";
    /// An inline request with a quote that is not closed, or not followed by a space.
    pub const UNBALANCED_QUOTES: &[u8] = b"-ERR Protocol error: unbalanced quotes in request\r\n";
}

/// The proxy's own error reply: `-ERR <message>\r\n` (nutcracker: `-ERR <strerror(errno)>`, and
/// `-ERR unknown` when errno is 0).
pub fn error_reply(message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR ");
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `-ERR Protocol error: expected '$', got '<c>'` (redis 7.0), with `\r`/`\n` shown as a space
/// as redis does.
pub(crate) fn expected_dollar(got: u8) -> Vec<u8> {
    let mut out = b"-ERR Protocol error: expected '$', got '".to_vec();
    out.push(sanitize(got));
    out.extend_from_slice(b"'\r\n");
    out
}

/// `-ERR wrong number of arguments for '<name>' command` (redis 7.0; the name in lower case).
pub(crate) fn wrong_arity(name: &str) -> Vec<u8> {
    let mut out = b"-ERR wrong number of arguments for '".to_vec();
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"' command\r\n");
    out
}

/// How much of the arguments redis quotes in its unknown-command error.
const ARGS_PREVIEW: usize = 128;

/// `-ERR unknown command '<name>', with args beginning with: '<a1>' '<a2>' … ` as redis 7.0
/// builds it: the name up to 128 bytes; arguments appended as `'<arg>' ` while the list is
/// shorter than 128 bytes, each cut to the room left; every string stops at a NUL byte (redis
/// formats them with `%s`); `\r` and `\n` become spaces.
pub(crate) fn unknown_command<'a>(name: &[u8], args: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = b"-ERR unknown command '".to_vec();
    let name = until_nul(name);
    out.extend(name.iter().take(ARGS_PREVIEW).map(|&b| sanitize(b)));
    out.extend_from_slice(b"', with args beginning with: ");
    let list_start = out.len();
    for arg in args {
        let used = out.len() - list_start;
        if used >= ARGS_PREVIEW {
            break;
        }
        out.push(b'\'');
        out.extend(
            until_nul(arg)
                .iter()
                .take(ARGS_PREVIEW - used)
                .map(|&b| sanitize(b)),
        );
        out.extend_from_slice(b"' ");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn until_nul(s: &[u8]) -> &[u8] {
    match memchr::memchr(0, s) {
        Some(nul) => s.get(..nul).unwrap_or_default(),
        None => s,
    }
}

fn sanitize(b: u8) -> u8 {
    if b == b'\r' || b == b'\n' {
        b' '
    } else {
        b
    }
}

/// The reply to a local `PING`: `+PONG` without an argument, the argument as a bulk string with
/// one (as redis does; nutcracker closed the connection on `PING <msg>`).
pub fn ping_reply(message: Option<&[u8]>, out: &mut Vec<u8>) {
    match message {
        None => out.extend_from_slice(PONG),
        Some(message) => write_bulk(message, out),
    }
}

/// Writes `$<len>\r\n<bytes>\r\n`.
pub fn write_bulk(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// How many bytes a header `*<n>\r\n` or `$<n>\r\n` takes.
pub fn header_len(n: usize) -> usize {
    let mut digits = 1;
    let mut rest = n;
    while rest >= 10 {
        rest /= 10;
        digits += 1;
    }
    digits + 3
}

/// Writes `<prefix><n>\r\n` (`*3\r\n`, `:7\r\n`).
pub(crate) fn write_number_line(prefix: u8, n: i64, out: &mut Vec<u8>) {
    out.push(prefix);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_len_counts_the_prefix_digits_and_crlf() {
        for n in [0, 2, 9, 10, 99, 100, 101, 12_345] {
            let mut out = Vec::new();
            write_number_line(b'*', n as i64, &mut out);
            assert_eq!(header_len(n), out.len(), "{n}");
        }
        assert_eq!((header_len(2), header_len(10), header_len(101)), (4, 5, 6));
    }
}
