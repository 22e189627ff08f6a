//! Response parsing (redis → proxy), spec §6.5: RESP2 only.
//!
//! `+status`, `-error`, `:integer`, `$bulk` (`$-1` is nil), `*array` (`*-1` is a nil array) with
//! elements of any type, nested to any depth. Nesting is handled with a counter of elements
//! still due, not recursion, so depth costs nothing. Lines must end with `\r\n`; numbers are an
//! optional `-` and 1 to 20 digits within `i64`; a bulk's data must be followed by `\r\n`.
//! Anything else, RESP3 types included, is [`ResponseParse::Invalid`]: the proxy closes that
//! server connection. Bad bytes are reported as soon as they arrive, not when the reply would
//! have been complete.

/// A status or error line longer than this without `\r\n` is invalid, so a broken backend cannot
/// grow the buffer forever. Redis lines can be long (a script's `error_reply` text), so the
/// bound is redis's own largest string, 512 MiB.
pub const MAX_RESPONSE_LINE_LEN: usize = 512 * 1024 * 1024;

/// Digits (and sign) allowed in a `:`, `$` or `*` line.
const MAX_NUMBER_LEN: usize = 20;

/// The class of an error reply, from its first word (`-WRONGTYPE Operation…` → `WrongType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// `-ERR`
    Err,
    /// `-OOM` (a transient server failure)
    Oom,
    /// `-BUSY` (a transient server failure)
    Busy,
    /// `-NOAUTH`
    NoAuth,
    /// `-LOADING` (a transient server failure)
    Loading,
    /// `-BUSYKEY`
    BusyKey,
    /// `-MISCONF`
    Misconf,
    /// `-NOSCRIPT`
    NoScript,
    /// `-READONLY`
    ReadOnly,
    /// `-WRONGTYPE`
    WrongType,
    /// `-EXECABORT`
    ExecAbort,
    /// `-MASTERDOWN`
    MasterDown,
    /// `-NOREPLICAS`
    NoReplicas,
    /// Any other error.
    Other,
}

impl ErrorClass {
    /// Classifies an error line by its first word (up to a space or the end of the line).
    pub fn from_message(message: &[u8]) -> ErrorClass {
        let word_len = message
            .iter()
            .position(|&b| b == b' ' || b == b'\r')
            .unwrap_or(message.len());
        match message.get(..word_len).unwrap_or_default() {
            b"ERR" => ErrorClass::Err,
            b"OOM" => ErrorClass::Oom,
            b"BUSY" => ErrorClass::Busy,
            b"NOAUTH" => ErrorClass::NoAuth,
            b"LOADING" => ErrorClass::Loading,
            b"BUSYKEY" => ErrorClass::BusyKey,
            b"MISCONF" => ErrorClass::Misconf,
            b"NOSCRIPT" => ErrorClass::NoScript,
            b"READONLY" => ErrorClass::ReadOnly,
            b"WRONGTYPE" => ErrorClass::WrongType,
            b"EXECABORT" => ErrorClass::ExecAbort,
            b"MASTERDOWN" => ErrorClass::MasterDown,
            b"NOREPLICAS" => ErrorClass::NoReplicas,
            _ => ErrorClass::Other,
        }
    }

    /// `-OOM`, `-BUSY`, `-LOADING`: nutcracker (issue #369) discards the reply, closes the
    /// server connection, fails its outstanding requests with `-ERR Invalid argument`, and
    /// counts a server failure.
    pub fn is_server_failure(self) -> bool {
        matches!(
            self,
            ErrorClass::Oom | ErrorClass::Busy | ErrorClass::Loading
        )
    }
}

/// What kind of reply a [`Response`] is (its top-level type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    /// `+…`
    Status,
    /// `-…`
    Error(ErrorClass),
    /// `:<n>`
    Integer(i64),
    /// `$<len>` with data.
    Bulk,
    /// `$-1`
    Nil,
    /// `*<n>` and its `n` elements.
    Array(u64),
    /// `*-1`
    NilArray,
}

impl ResponseKind {
    /// A transient-failure error reply (see [`ErrorClass::is_server_failure`]).
    pub fn is_server_failure(self) -> bool {
        matches!(self, ResponseKind::Error(class) if class.is_server_failure())
    }
}

/// A complete response at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Bytes of this response, through its last element's `\r\n`.
    pub len: usize,
    /// The top-level type.
    pub kind: ResponseKind,
}

/// The result of parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseParse {
    /// More bytes are needed; `needed`, when known, is the total buffer length required before
    /// parsing can make progress (a bulk's data is pending).
    Incomplete {
        /// Total buffer length needed, when known.
        needed: Option<usize>,
    },
    /// A complete response.
    Response(Response),
    /// Not a RESP2 reply: the server connection must be closed.
    Invalid,
}

const INCOMPLETE: ResponseParse = ResponseParse::Incomplete { needed: None };

/// Parses one response from the front of `buf`.
pub fn parse_response(buf: &[u8]) -> ResponseParse {
    // One reply, no merge after it: nothing to record (and nothing allocated).
    ResponseParser {
        unrecorded: true,
        ..ResponseParser::default()
    }
    .parse(buf)
}

/// The end of the complete reply starting at `pos` of `buf`, if there is one. A scalar (the
/// elements of an `MGET` reply) is framed directly, without a parser's state.
pub(crate) fn reply_end(buf: &[u8], pos: usize) -> Option<usize> {
    match element(buf, pos) {
        Ok(Element::Scalar(end, _)) => Some(end),
        Ok(Element::Array(..)) => match parse_response(buf.get(pos..)?) {
            ResponseParse::Response(r) => pos.checked_add(r.len),
            _ => None,
        },
        Err(_) => None,
    }
}

/// The offset after the array header at the start of `reply`, and its element count; `None`
/// for anything else (a null array included). Read as [`parse_response`] reads it.
pub(crate) fn array_header(reply: &[u8]) -> Option<(usize, u64)> {
    match element(reply, 0) {
        Ok(Element::Array(end, n)) => Some((end, n)),
        _ => None,
    }
}

/// A resumable [`parse_response`]: after [`ResponseParse::Incomplete`] it remembers how far it
/// got, so a reply of a million small elements arriving in many reads is scanned once.
///
/// Call [`ResponseParser::parse`] with the same buffer each time, grown at the end only; after a
/// `Response` or `Invalid` result the parser is reset for the next reply, which must then start
/// at offset 0 of the buffer passed.
///
/// While it frames an array of scalars (an `MGET` reply) it records where each element ends
/// ([`ResponseParser::element_ends`]), so that a merge need not frame the elements again.
#[derive(Debug, Clone, Default)]
pub struct ResponseParser {
    /// Offset of the next element to read.
    pos: usize,
    /// Elements still due (0 before the first).
    remaining: u64,
    /// The top-level kind, once read.
    kind: Option<ResponseKind>,
    /// The ends of the top-level array's elements read so far, while all are scalars.
    ends: Vec<usize>,
    /// `ends` holds every element read so far (no nested array, not too many).
    flat: bool,
    /// The reply last found complete was an array of scalars, its element ends in `ends`.
    framed: bool,
    /// Records nothing ([`parse_response`]).
    unrecorded: bool,
}

/// The most element ends a [`ResponseParser`] records for one reply (a wider array is merged by
/// framing it again), and keeps room for between replies.
const ENDS_MAX: usize = 4096;

/// One element header.
enum Element {
    /// A complete scalar ending at the offset.
    Scalar(usize, ResponseKind),
    /// An array header ending at the offset, with its element count.
    Array(usize, u64),
}

impl ResponseParser {
    /// A parser that has framed `reply` once, for its [`ResponseParser::element_ends`].
    pub fn framing(reply: &[u8]) -> ResponseParser {
        let mut parser = ResponseParser::default();
        parser.parse(reply);
        parser
    }

    /// Parses (or continues parsing) the response at the front of `buf`.
    pub fn parse(&mut self, buf: &[u8]) -> ResponseParse {
        let result = self.advance(buf);
        if !matches!(result, ResponseParse::Incomplete { .. }) {
            self.framed = self.flat
                && matches!(
                    result,
                    ResponseParse::Response(Response {
                        kind: ResponseKind::Array(_),
                        ..
                    })
                );
            self.pos = 0;
            self.remaining = 0;
            self.kind = None;
        }
        result
    }

    /// Where each element of the array reply [`ResponseParser::parse`] last found complete ends
    /// (offsets in it), if it was an array of at most 4,096 scalars (an `MGET` reply); `None` for
    /// any other reply.
    pub fn element_ends(&self) -> Option<&[usize]> {
        self.framed.then_some(&self.ends[..])
    }

    fn advance(&mut self, buf: &[u8]) -> ResponseParse {
        if self.kind.is_none() {
            self.pos = 0;
            self.remaining = 1;
            if self.ends.capacity() > ENDS_MAX {
                self.ends = Vec::new();
            }
            self.ends.clear();
            self.flat = !self.unrecorded;
            self.framed = false;
        }
        while self.remaining > 0 {
            let element = match element(buf, self.pos) {
                Ok(element) => element,
                Err(result) => return result,
            };
            let (end, children, kind) = match element {
                Element::Scalar(end, kind) => (end, 0, kind),
                Element::Array(end, n) => (end, n, ResponseKind::Array(n)),
            };
            if self.kind.is_some() && self.flat {
                // An element of the top-level array (all before it were scalars).
                if matches!(kind, ResponseKind::Array(_)) || self.ends.len() == ENDS_MAX {
                    self.flat = false;
                } else {
                    self.ends.push(end);
                }
            }
            self.kind.get_or_insert(kind);
            self.pos = end;
            self.remaining = match (self.remaining - 1).checked_add(children) {
                Some(remaining) => remaining,
                None => return ResponseParse::Invalid,
            };
        }
        match self.kind {
            Some(kind) => ResponseParse::Response(Response {
                len: self.pos,
                kind,
            }),
            None => ResponseParse::Invalid,
        }
    }
}

/// Reads the element header at `pos` (and a bulk's data).
fn element(buf: &[u8], pos: usize) -> Result<Element, ResponseParse> {
    let Some(&kind) = buf.get(pos) else {
        return Err(INCOMPLETE);
    };
    match kind {
        b'+' | b'-' => {
            let end = text_line(buf, pos + 1)?;
            let kind = if kind == b'+' {
                ResponseKind::Status
            } else {
                let message = buf.get(pos + 1..end - 2).unwrap_or_default();
                ResponseKind::Error(ErrorClass::from_message(message))
            };
            Ok(Element::Scalar(end, kind))
        }
        b':' => {
            let (value, end) = number_line(buf, pos + 1)?;
            Ok(Element::Scalar(end, ResponseKind::Integer(value)))
        }
        b'$' => {
            let (len, end) = number_line(buf, pos + 1)?;
            if len == -1 {
                return Ok(Element::Scalar(end, ResponseKind::Nil));
            }
            let len = usize::try_from(len).map_err(|_| ResponseParse::Invalid)?;
            let data_end = end.checked_add(len).ok_or(ResponseParse::Invalid)?;
            let total = data_end.checked_add(2).ok_or(ResponseParse::Invalid)?;
            // Check whatever part of the terminator has arrived, so a wrong byte is reported at
            // once.
            // (Byte patterns, not `starts_with`: that is a `memcmp` call per element.)
            let terminator = buf.get(data_end..buf.len().min(total)).unwrap_or_default();
            if !matches!(terminator, [] | [b'\r'] | [b'\r', b'\n']) {
                return Err(ResponseParse::Invalid);
            }
            if buf.len() < total {
                return Err(ResponseParse::Incomplete {
                    needed: Some(total),
                });
            }
            Ok(Element::Scalar(total, ResponseKind::Bulk))
        }
        b'*' => {
            let (count, end) = number_line(buf, pos + 1)?;
            match count {
                -1 => Ok(Element::Scalar(end, ResponseKind::NilArray)),
                n => Ok(Element::Array(
                    end,
                    u64::try_from(n).map_err(|_| ResponseParse::Invalid)?,
                )),
            }
        }
        _ => Err(ResponseParse::Invalid),
    }
}

/// The end (past `\r\n`) of a status or error line whose text starts at `from`.
fn text_line(buf: &[u8], from: usize) -> Result<usize, ResponseParse> {
    let rest = buf.get(from..).unwrap_or_default();
    let Some(cr) = memchr::memchr(b'\r', rest) else {
        return Err(if rest.len() > MAX_RESPONSE_LINE_LEN {
            ResponseParse::Invalid
        } else {
            INCOMPLETE
        });
    };
    match rest.get(cr + 1) {
        None => Err(INCOMPLETE),
        Some(b'\n') => Ok(from + cr + 2),
        Some(_) => Err(ResponseParse::Invalid),
    }
}

/// A number line starting at `from`: its value and the offset past its `\r\n`. Any byte that
/// cannot belong to a number line is reported at once; an overflow, at the line's end.
fn number_line(buf: &[u8], from: usize) -> Result<(i64, usize), ResponseParse> {
    let rest = buf.get(from..).unwrap_or_default();
    let negative = rest.first() == Some(&b'-');
    let digits_from = usize::from(negative);
    // One pass: the value is accumulated as the digits are checked (an element header is read
    // for every bulk of a reply, so this is the framing's inner loop).
    let (mut magnitude, mut overflow) = (0u64, false);
    let mut i = digits_from;
    while let Some(&b) = rest.get(i) {
        let digit = b.wrapping_sub(b'0');
        if digit < 10 && i < MAX_NUMBER_LEN {
            let (times_ten, o1) = magnitude.overflowing_mul(10);
            let (sum, o2) = times_ten.overflowing_add(u64::from(digit));
            (magnitude, overflow) = (sum, overflow | o1 | o2);
            i += 1;
            continue;
        }
        if b != b'\r' || i == digits_from || overflow {
            return Err(ResponseParse::Invalid);
        }
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        }
        .ok_or(ResponseParse::Invalid)?;
        return match rest.get(i + 1) {
            None => Err(INCOMPLETE),
            Some(b'\n') => Ok((value, from + i + 2)),
            Some(_) => Err(ResponseParse::Invalid),
        };
    }
    Err(INCOMPLETE)
}
