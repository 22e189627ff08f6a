//! Request parsing (client → proxy).
//!
//! Framing follows nutcracker 0.5.0 (spec §5.1): leading spaces are skipped, fields are separated
//! by one or more spaces, command names are exact lower-case words, keys are 1..=250 bytes. One
//! deliberate difference: a command line ends at the first `\n` (with or without `\r` before it),
//! as memcached frames it. nutcracker makes a bare `\n` part of the key and forwards it, and the
//! server then sees two commands and sends two replies for one request, handing the extra reply
//! to whichever request comes next on the shared server connection, possibly another client's.
//!
//! Where nutcracker would close the connection silently, we answer what memcached 1.6.18 answers
//! to the same line (each reply below was checked against a real memcached), and keep the
//! connection whenever that is safe. The exceptions, where we close after the reply:
//! * storage command lines that memcached rejects: memcached does not skip the data block after
//!   such a line, it runs the value bytes as commands; we refuse to, so we close;
//! * a data block not followed by `\r\n` (`CLIENT_ERROR bad data chunk`): framing is lost;
//! * a `\r` not followed by `\n` in a command line: framing is lost;
//! * over-long lines (see [`MAX_LINE_LEN`]) and binary-protocol packets.

use smallvec::SmallVec;

use crate::command::Command;
use crate::number::{parse_i64, parse_u64};
use crate::reply;

/// The longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;

/// memcached closes a connection, without a reply, when 2048 bytes arrive without a line end and
/// the line is not a `get`/`gets` (memcached's `try_read_command_ascii`). We apply the same bound
/// to the position of the line's `\r`, measured from the start of the request (leading spaces
/// included), so the verdict does not depend on how the bytes were split into reads.
pub const MAX_LINE_LEN: usize = 2048;

/// Retrieval lines (`get gets gat gats`) may carry any number of keys (nutcracker has no limit;
/// memcached grows its buffer for them). We still stop at 16 MiB so that a client sending keys
/// forever without `\r\n` cannot grow the buffer forever: beyond it the connection is closed.
/// A single token longer than [`MAX_LINE_LEN`] in a retrieval line also closes (after
/// `CLIENT_ERROR bad command line format`), whether or not its line is complete.
pub const MAX_RETRIEVAL_LINE_LEN: usize = 16 << 20;

/// The largest `<bytes>` memcached accepts in a storage command (`INT_MAX - 2`); larger values
/// get `CLIENT_ERROR bad command line format`.
pub const MAX_VALUE_LEN: u64 = 2_147_483_645;

/// The most arguments (after the command name) any non-retrieval command can have (`cas`).
const MAX_ARGS: usize = 6;

/// The byte range of one key within the request buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRange {
    /// Offset of the key's first byte.
    pub start: u32,
    /// Offset one past the key's last byte.
    pub end: u32,
}

impl KeyRange {
    /// The key's bytes as a `usize` range, for slicing the request buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    /// Whether the range is empty (never true for a parsed key).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn new(start: usize, end: usize) -> Option<KeyRange> {
        Some(KeyRange {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }
}

/// A complete, valid request at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// Bytes of this request, including leading spaces, the data block and the final `\r\n`.
    pub len: usize,
    /// Byte ranges of the keys within the buffer, in request order, duplicates kept: one for
    /// single-key commands, one or more for retrievals, none for `version` and `quit`.
    pub keys: SmallVec<[KeyRange; 4]>,
    /// The request ends with the `noreply` token: memcached will send nothing back.
    pub noreply: bool,
}

impl Request {
    /// The bytes of the `index`-th key, given the buffer the request was parsed from.
    pub fn key<'a>(&self, buf: &'a [u8], index: usize) -> Option<&'a [u8]> {
        buf.get(self.keys.get(index)?.range())
    }

    /// The first key (the routing key of single-key commands), if any.
    pub fn first_key<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        self.key(buf, 0)
    }
}

/// A request the proxy answers itself instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidRequest {
    /// Bytes to discard from the front of the buffer (at least 1, at most the buffer length).
    pub len: usize,
    /// The reply to send, in order with the replies of earlier requests. May be empty: memcached
    /// suppresses error replies of commands ending in `noreply`, and closes silently on over-long
    /// lines.
    pub reply: &'static [u8],
    /// Close the connection after writing `reply` (and all earlier replies).
    pub close: bool,
}

/// The result of [`parse_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestParse {
    /// More bytes are needed. `needed`, when known, is the total buffer length required before
    /// parsing can make progress (e.g. a storage command's header is parsed and its data block is
    /// pending), so the caller can skip re-parsing until that many bytes are buffered.
    Incomplete {
        /// Total buffer length needed, when known.
        needed: Option<usize>,
    },
    /// A complete request.
    Request(Request),
    /// A request answered locally; see [`InvalidRequest`].
    Invalid(InvalidRequest),
}

const INCOMPLETE: RequestParse = RequestParse::Incomplete { needed: None };

fn invalid(len: usize, reply: &'static [u8], close: bool) -> RequestParse {
    RequestParse::Invalid(InvalidRequest { len, reply, close })
}

/// Drops everything and closes without a reply.
fn close_silently(buf: &[u8]) -> RequestParse {
    invalid(buf.len().max(1), b"", true)
}

/// memcached does not send error replies for commands ending in `noreply`.
fn unless_noreply(noreply: bool, reply: &'static [u8]) -> &'static [u8] {
    if noreply {
        b""
    } else {
        reply
    }
}

/// Iterates the space-separated tokens of `buf[from..to]`, as absolute `(start, end)` offsets.
fn tokens(buf: &[u8], from: usize, to: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = from;
    std::iter::from_fn(move || {
        while buf.get(pos) == Some(&b' ') && pos < to {
            pos += 1;
        }
        if pos >= to {
            return None;
        }
        let start = pos;
        let rest = buf.get(pos..to).unwrap_or_default();
        pos += crate::scan::find_either_words(rest, b' ', b' ').unwrap_or(rest.len());
        Some((start, pos))
    })
}

/// Parses one request from the front of `buf`. Never allocates unless a retrieval has more than
/// four keys; [`RequestParser`] avoids that allocation too.
pub fn parse_request(buf: &[u8]) -> RequestParse {
    RequestParser::default().parse(buf)
}

/// [`parse_request`] with a reusable key list: give each finished [`Request`] back with
/// [`RequestParser::recycle`] and a retrieval of any number of keys allocates nothing once the
/// list has grown to the widest one seen.
#[derive(Debug, Clone, Default)]
pub struct RequestParser {
    /// Storage for the next retrieval's keys (empty, possibly with capacity).
    spare: SmallVec<[KeyRange; 4]>,
}

/// The most keys whose storage [`RequestParser::recycle`] keeps (8 KiB).
const SPARE_KEYS_MAX: usize = 1024;

impl RequestParser {
    /// Parses one request from the front of `buf`; see [`parse_request`].
    pub fn parse(&mut self, buf: &[u8]) -> RequestParse {
        parse(buf, &mut self.spare)
    }

    /// Takes back the key list of a request the caller is done with, for the next retrieval.
    pub fn recycle(&mut self, request: Request) {
        let mut keys = request.keys;
        if keys.spilled()
            && keys.capacity() > self.spare.capacity()
            && keys.capacity() <= SPARE_KEYS_MAX
        {
            keys.clear();
            self.spare = keys;
        }
    }
}

fn parse(buf: &[u8], spare: &mut SmallVec<[KeyRange; 4]>) -> RequestParse {
    let Some(&first) = buf.first() else {
        return INCOMPLETE;
    };
    // Binary protocol (request magic 0x80). memcached would answer in binary; we do not speak it
    // and an ASCII error would only confuse a binary client, so we close without a reply, as
    // nutcracker does.
    if first == 0x80 {
        return close_silently(buf);
    }

    // The command word: after leading spaces, up to a space or `\r`.
    let start = buf.iter().position(|&b| b != b' ').unwrap_or(buf.len());
    let cmd_end = buf
        .iter()
        .skip(start)
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .map(|p| start + p);
    let cmd_end = match cmd_end {
        Some(end) if end <= MAX_LINE_LEN => end,
        Some(_) => return close_silently(buf),
        None if buf.len() > MAX_LINE_LEN => return close_silently(buf),
        None => return INCOMPLETE,
    };
    let command = buf.get(start..cmd_end).and_then(Command::from_name);
    let retrieval = command.is_some_and(Command::is_retrieval);
    let limit = if retrieval {
        MAX_RETRIEVAL_LINE_LEN
    } else {
        MAX_LINE_LEN
    };

    // The line end: the first `\n`; the arguments stop before a `\r` right in front of it.
    let rest = buf.get(cmd_end..).unwrap_or_default();
    // The usual line, `\r\n` or `\n` after the arguments and no `\r` before: one scan.
    let usual = crate::scan::find_either(rest, b'\r', b'\n').and_then(|p| match rest[p..] {
        [b'\n', ..] => Some((cmd_end + p, cmd_end + p)),
        [b'\r', b'\n', ..] => Some((cmd_end + p, cmd_end + p + 1)),
        _ => None,
    });
    if let Some((cr, nl)) = usual {
        if cr > limit {
            return close_silently(buf);
        }
        return line_of(buf, command, cmd_end, cr, nl + 1, spare);
    }
    let Some(nl) = memchr::memchr(b'\n', rest).map(|p| cmd_end + p) else {
        // A `\r` followed by anything but `\n` is already known to be a lone `\r` (see below).
        if memchr::memchr(b'\r', rest).is_some_and(|p| p + 1 < rest.len()) {
            return invalid(buf.len(), reply::BAD_COMMAND_LINE, true);
        }
        if buf.len() > limit {
            return close_silently(buf);
        }
        if retrieval && tokens(buf, cmd_end, buf.len()).any(|(s, e)| e - s > MAX_LINE_LEN) {
            return invalid(buf.len(), reply::BAD_COMMAND_LINE, true);
        }
        return INCOMPLETE;
    };
    let cr = if nl > cmd_end && buf.get(nl - 1) == Some(&b'\r') {
        nl - 1
    } else {
        nl
    };
    if cr > limit {
        return close_silently(buf);
    }
    // A lone `\r` inside the line: nutcracker rejects it; memcached would make it part of a
    // token, which we cannot forward (keys never contain `\r`), so close.
    if memchr::memchr(b'\r', buf.get(cmd_end..cr).unwrap_or_default()).is_some() {
        return invalid(nl + 1, reply::BAD_COMMAND_LINE, true);
    }
    line_of(buf, command, cmd_end, cr, nl + 1, spare)
}

/// A complete line without a lone `\r`: the command's arguments at `args_start..cr`.
fn line_of(
    buf: &[u8],
    command: Option<Command>,
    args_start: usize,
    cr: usize,
    line_len: usize,
    spare: &mut SmallVec<[KeyRange; 4]>,
) -> RequestParse {
    let Some(command) = command else {
        // Unknown, unsupported, upper-case or empty command: memcached says ERROR and goes on.
        return invalid(line_len, reply::ERROR, false);
    };
    let line = Line {
        buf,
        command,
        args_start,
        args_end: cr,
        line_len,
    };
    match command {
        Command::Get | Command::Gets | Command::Gat | Command::Gats => line.retrieval(spare),
        Command::Set
        | Command::Add
        | Command::Replace
        | Command::Append
        | Command::Prepend
        | Command::Cas => line.storage(),
        Command::Incr | Command::Decr | Command::Touch => line.key_and_number(),
        Command::Delete => line.delete(),
        Command::Version | Command::Quit => line.request(SmallVec::new(), false, line_len),
    }
}

/// A complete command line of a known command.
struct Line<'a> {
    buf: &'a [u8],
    command: Command,
    /// Offset just after the command name.
    args_start: usize,
    /// Offset of the line's `\r`.
    args_end: usize,
    /// Length of the line including leading spaces and `\r\n`.
    line_len: usize,
}

impl Line<'_> {
    fn bytes(&self, (start, end): (usize, usize)) -> &[u8] {
        self.buf.get(start..end).unwrap_or_default()
    }

    fn request(&self, keys: SmallVec<[KeyRange; 4]>, noreply: bool, len: usize) -> RequestParse {
        RequestParse::Request(Request {
            command: self.command,
            len,
            keys,
            noreply,
        })
    }

    /// Collects up to [`MAX_ARGS`] arguments; `None` if there are more.
    fn args(&self) -> Option<([(usize, usize); MAX_ARGS], usize)> {
        let mut args = [(0, 0); MAX_ARGS];
        let mut count = 0;
        for token in tokens(self.buf, self.args_start, self.args_end) {
            *args.get_mut(count)? = token;
            count += 1;
        }
        Some((args, count))
    }

    /// Whether the last of `args` is the exact token `noreply`, as memcached's
    /// `set_noreply_maybe` decides it. Any other optional last token is ignored by memcached.
    fn noreply(&self, args: &[(usize, usize)], optional_at: usize) -> bool {
        args.len() > optional_at
            && args
                .last()
                .is_some_and(|&token| self.bytes(token) == b"noreply")
    }

    /// `get`/`gets <key>+`, `gat`/`gats <exptime> <key>+`.
    fn retrieval(&self, spare: &mut SmallVec<[KeyRange; 4]>) -> RequestParse {
        // A token longer than a line closes whatever else is wrong, whether or not the line is
        // complete (see MAX_RETRIEVAL_LINE_LEN); the one scan below finds it among the keys.
        let huge = |(start, end): (usize, usize)| end - start > MAX_LINE_LEN;
        let close = || invalid(self.line_len, reply::BAD_COMMAND_LINE, true);
        let mut tokens = tokens(self.buf, self.args_start, self.args_end);
        let mut exptime_error = None;
        if self.command.is_touching_retrieval() {
            let Some(exptime) = tokens.next() else {
                // memcached: fewer than 3 tokens → ERROR.
                return invalid(self.line_len, reply::ERROR, false);
            };
            if huge(exptime) {
                return close();
            }
            if parse_i64(self.bytes(exptime)).is_none() {
                exptime_error = Some(invalid(self.line_len, reply::INVALID_EXPTIME, false));
            }
        }
        let mut keys = std::mem::take(spare);
        keys.clear();
        let mut too_long = false;
        let mut key_count = 0;
        let mut closes = false;
        for (start, end) in tokens {
            closes |= huge((start, end));
            too_long |= end - start > MAX_KEY_LEN;
            key_count += 1;
            match KeyRange::new(start, end) {
                Some(key) if !too_long => keys.push(key),
                Some(_) => {}
                None => return close_silently(self.buf),
            }
        }
        if closes || exptime_error.is_some() {
            keys.clear();
            *spare = keys;
            return match exptime_error {
                Some(error) if !closes => error,
                _ => close(),
            };
        }
        if too_long || key_count == 0 {
            // Rejected: the list goes back for the next retrieval.
            keys.clear();
            *spare = keys;
            return self.no_keys(too_long);
        }
        self.request(keys, false, self.line_len)
    }

    /// The reply to a retrieval with an over-long key or without keys.
    fn no_keys(&self, too_long: bool) -> RequestParse {
        if too_long {
            // memcached drops the VALUE blocks it had prepared and sends only this.
            return invalid(self.line_len, reply::BAD_COMMAND_LINE, false);
        }
        if self.command.is_touching_retrieval() {
            // `gat 10` has the 3 tokens memcached wants, then no key: it answers END.
            invalid(self.line_len, reply::END, false)
        } else {
            // `get` / `get ` : fewer than 3 tokens → ERROR.
            invalid(self.line_len, reply::ERROR, false)
        }
    }

    /// `set|add|replace|append|prepend <key> <flags> <exptime> <bytes> [noreply]`,
    /// `cas <key> <flags> <exptime> <bytes> <cas> [noreply]`, then `<data>\r\n`.
    ///
    /// Every rejection closes: memcached would not skip the data block and would run the value
    /// bytes as commands. Numbers are checked against memcached's own limits so that anything we
    /// forward has its data block consumed by memcached as data.
    fn storage(&self) -> RequestParse {
        let required = if self.command == Command::Cas { 5 } else { 4 };
        let Some((all, count)) = self.args() else {
            return invalid(self.line_len, reply::ERROR, true);
        };
        let args = all.get(..count).unwrap_or_default();
        if count != required && count != required + 1 {
            return invalid(self.line_len, reply::ERROR, true);
        }
        let noreply = self.noreply(args, required);
        let bad = invalid(
            self.line_len,
            unless_noreply(noreply, reply::BAD_COMMAND_LINE),
            true,
        );
        let field = |i: usize| args.get(i).map_or(&[][..], |&t| self.bytes(t));
        let key = field(0);
        if key.len() > MAX_KEY_LEN
            || parse_u64(field(1)).is_none()
            || parse_i64(field(2)).is_none()
            || (self.command == Command::Cas && parse_u64(field(4)).is_none())
        {
            return bad;
        }
        let Some(bytes) = parse_u64(field(3)).filter(|&n| n <= MAX_VALUE_LEN) else {
            return bad;
        };
        let (Some(&(start, end)), Ok(bytes)) = (args.first(), usize::try_from(bytes)) else {
            return bad;
        };
        let Some(key) = KeyRange::new(start, end) else {
            return bad;
        };
        let Some(total) = self
            .line_len
            .checked_add(bytes)
            .and_then(|n| n.checked_add(2))
        else {
            return bad;
        };
        if self.buf.len() < total {
            return RequestParse::Incomplete {
                needed: Some(total),
            };
        }
        if self.buf.get(total - 2..total) != Some(b"\r\n") {
            // memcached: `CLIENT_ERROR bad data chunk` (silent with noreply). It then reads
            // on from an arbitrary point; we close.
            return invalid(total, unless_noreply(noreply, reply::BAD_DATA_CHUNK), true);
        }
        self.request(SmallVec::from_elem(key, 1), noreply, total)
    }

    /// `incr|decr <key> <delta> [noreply]`, `touch <key> <exptime> [noreply]`.
    ///
    /// The number goes to memcached as written, whatever it is: memcached answers one of these
    /// lines with exactly one line (or none with `noreply`), so nothing can get out of step, and
    /// it alone knows what its `strtoull`/`strtol` take (`+5`, `\t5`, `5\t…`: nutcracker took
    /// digits only and closed on anything else; a check of our own here answered those with
    /// an error memcached would not give). A 4th token other than `noreply` is ignored, as
    /// memcached does.
    fn key_and_number(&self) -> RequestParse {
        let Some((all, count)) = self.args() else {
            return invalid(self.line_len, reply::ERROR, false);
        };
        let args = all.get(..count).unwrap_or_default();
        if count != 2 && count != 3 {
            return invalid(self.line_len, reply::ERROR, false);
        }
        let noreply = self.noreply(args, 2);
        // The number (the 2nd token, there by the count above) is not looked at.
        let Some(&key) = args.first() else {
            return invalid(self.line_len, reply::ERROR, false);
        };
        if key.1 - key.0 > MAX_KEY_LEN {
            let reply = unless_noreply(noreply, reply::BAD_COMMAND_LINE);
            return invalid(self.line_len, reply, false);
        }
        match KeyRange::new(key.0, key.1) {
            Some(key) => self.request(SmallVec::from_elem(key, 1), noreply, self.line_len),
            None => close_silently(self.buf),
        }
    }

    /// `delete <key> [0] [noreply]`: memcached still accepts the legacy hold time `0`.
    fn delete(&self) -> RequestParse {
        let Some((all, count)) = self.args() else {
            return invalid(self.line_len, reply::ERROR, false);
        };
        let args = all.get(..count).unwrap_or_default();
        if !(1..=3).contains(&count) {
            return invalid(self.line_len, reply::ERROR, false);
        }
        let noreply = self.noreply(args, 1);
        if count > 1 {
            let hold_is_zero = args.get(1).is_some_and(|&t| self.bytes(t) == b"0");
            let valid = (count == 2 && (hold_is_zero || noreply))
                || (count == 3 && hold_is_zero && noreply);
            if !valid {
                let reply = unless_noreply(noreply, reply::DELETE_USAGE);
                return invalid(self.line_len, reply, false);
            }
        }
        let Some(&(start, end)) = args.first() else {
            return invalid(self.line_len, reply::ERROR, false);
        };
        if end - start > MAX_KEY_LEN {
            let reply = unless_noreply(noreply, reply::BAD_COMMAND_LINE);
            return invalid(self.line_len, reply, false);
        }
        match KeyRange::new(start, end) {
            Some(key) => self.request(SmallVec::from_elem(key, 1), noreply, self.line_len),
            None => close_silently(self.buf),
        }
    }
}
