//! Response parsing (memcached → proxy), spec §5.3.
//!
//! Recognised: a decimal number (incr/decr; trailing spaces allowed), zero or more
//! `VALUE <key> <flags> <bytes> [<cas>]` blocks followed by `END` (one [`Response`] covers the
//! whole retrieval reply), `STORED`, `NOT_STORED`, `EXISTS`, `NOT_FOUND`, `DELETED`, `TOUCHED`,
//! `VERSION …`, `ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`. Anything else is
//! [`ResponseParse::Invalid`]: the proxy closes that server connection.

/// A response line longer than this without `\r\n` is invalid, so a broken backend cannot grow the
/// buffer forever. memcached's longest lines (a `VALUE` header with a 250-byte key and a cas, an
/// error message) are far shorter.
pub const MAX_RESPONSE_LINE_LEN: usize = 8192;

/// What kind of reply a [`Response`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    /// A full retrieval reply: zero or more `VALUE` blocks, then `END`.
    Values,
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `EXISTS`
    Exists,
    /// `NOT_FOUND`
    NotFound,
    /// `DELETED`
    Deleted,
    /// `TOUCHED`
    Touched,
    /// The new value after `incr`/`decr`.
    Number,
    /// `VERSION <version>`
    Version,
    /// `ERROR`
    Error,
    /// `CLIENT_ERROR <message>`
    ClientError,
    /// `SERVER_ERROR <message>`
    ServerError,
}

impl ResponseKind {
    /// `ERROR`, `CLIENT_ERROR …` or `SERVER_ERROR …`.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            ResponseKind::Error | ResponseKind::ClientError | ResponseKind::ServerError
        )
    }
}

/// A complete response at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Bytes of this response, through its final `\r\n` (through `END\r\n` for retrievals).
    pub len: usize,
    /// The kind of reply.
    pub kind: ResponseKind,
}

/// The result of [`parse_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseParse {
    /// More bytes are needed; `needed`, when known, is the total buffer length required before
    /// parsing can make progress (a `VALUE` data block is pending).
    Incomplete {
        /// Total buffer length needed, when known.
        needed: Option<usize>,
    },
    /// A complete response.
    Response(Response),
    /// Not a memcached response: the server connection must be closed.
    Invalid,
}

/// One line at `from`: `Ok(Some(cr))` with the offset of its `\r\n`, `Ok(None)` if incomplete,
/// `Err(())` if malformed (lone `\r`, or too long).
fn line_end(buf: &[u8], from: usize) -> Result<Option<usize>, ()> {
    let rest = buf.get(from..).unwrap_or_default();
    match memchr::memchr(b'\r', rest) {
        Some(p) if p > MAX_RESPONSE_LINE_LEN => Err(()),
        Some(p) => match rest.get(p + 1) {
            Some(b'\n') => Ok(Some(from + p)),
            Some(_) => Err(()),
            None => Ok(None),
        },
        None if rest.len() > MAX_RESPONSE_LINE_LEN => Err(()),
        None => Ok(None),
    }
}

/// A parsed `VALUE` header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueHeader<'a> {
    /// The key as sent by memcached.
    pub key: &'a [u8],
    /// Where the key starts in the buffer.
    pub key_start: usize,
    /// Offset just past the whole block (header, data and `\r\n`).
    pub block_end: usize,
}

/// The outcome of looking at one `VALUE` block at some offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Block<'a> {
    /// A complete block.
    Complete(ValueHeader<'a>),
    /// More bytes needed (total buffer length, when known).
    Incomplete(Option<usize>),
    /// Not a well-formed `VALUE` block.
    Invalid,
}

fn is_digits(token: &[u8]) -> bool {
    !token.is_empty() && token.iter().all(u8::is_ascii_digit)
}

/// Parses `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n` at `pos`.
pub(crate) fn value_block(buf: &[u8], pos: usize) -> Block<'_> {
    // Runs for every value of every retrieval reply, as it is framed:
    // the header as memcached writes it is read in one pass; anything else
    // (runs of spaces, a line still coming in, a malformed one) takes the
    // general path, which decides as it always did.
    match value_header_fast(buf.get(pos..).unwrap_or_default()) {
        Some((key, bytes, data_start)) => {
            block_after_header(buf, key, pos + 6, pos + data_start, bytes)
        }
        None => value_block_general(buf, pos),
    }
}

/// The common `VALUE <key> <flags> <bytes>[ <cas>]\r\n` (single spaces, a
/// complete line): the key, the data length and where the data starts;
/// `None` for anything else.
fn value_header_fast(rest: &[u8]) -> Option<(&[u8], usize, usize)> {
    let fields = rest.strip_prefix(b"VALUE ")?;
    let key_len = crate::scan::find_either_words(fields, b' ', b'\r')?;
    if key_len == 0 || fields[key_len] != b' ' {
        return None;
    }
    let (bytes, header_len) = header_numbers(rest, fields, key_len + 1)?;
    Some((&fields[..key_len], bytes, header_len))
}

/// The rest of a `VALUE` header as memcached writes it, from `at` in `fields` (`rest` without
/// `VALUE `, `at` just past the key's space): `<flags> <bytes>[ <cas>]\r\n`. Returns the data
/// length and the header's length in `rest`.
#[inline(always)]
fn header_numbers(rest: &[u8], fields: &[u8], mut at: usize) -> Option<(usize, usize)> {
    let (_flags, after) = digits(fields, &mut at)?;
    if after != b' ' {
        return None;
    }
    let (bytes, mut after) = digits(fields, &mut at)?;
    if after == b' ' {
        (_, after) = digits(fields, &mut at)?;
    }
    // `at` is just past the `\r`, which must end a line of acceptable length.
    let cr = 6 + at - 1;
    if after != b'\r' || cr > MAX_RESPONSE_LINE_LEN || rest.get(cr + 1) != Some(&b'\n') {
        return None;
    }
    Some((bytes, cr + 2))
}

/// A run of digits at `*at` and the byte after it (for the optional cas, `\r`); `*at` moves past
/// that byte. `None` for no digits, more than 18 (those never overflow; longer numbers take the
/// general path) or the end of `fields`.
#[inline(always)]
fn digits(fields: &[u8], at: &mut usize) -> Option<(usize, u8)> {
    let start = *at;
    let mut n: usize = 0;
    for (i, &b) in fields.get(start..)?.iter().enumerate() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            *at = start + i + 1;
            return (i > 0).then_some((n, b));
        }
        if i == 18 {
            return None;
        }
        n = n * 10 + usize::from(digit);
    }
    None
}

/// The rest of a block whose header was read (its key at `key_start`): `bytes` of data at
/// `data_start`, then `\r\n`.
fn block_after_header<'a>(
    buf: &[u8],
    key: &'a [u8],
    key_start: usize,
    data_start: usize,
    bytes: usize,
) -> Block<'a> {
    let Some(data_end) = data_start.checked_add(bytes) else {
        return Block::Invalid;
    };
    let Some(block_end) = data_end.checked_add(2) else {
        return Block::Invalid;
    };
    if buf.len() < block_end {
        return Block::Incomplete(Some(block_end));
    }
    if !matches!(buf.get(data_end..block_end), Some([b'\r', b'\n'])) {
        return Block::Invalid;
    }
    Block::Complete(ValueHeader {
        key,
        key_start,
        block_end,
    })
}

/// [`value_block`] for any header: finds the line, then its tokens.
fn value_block_general(buf: &[u8], pos: usize) -> Block<'_> {
    let cr = match line_end(buf, pos) {
        Ok(Some(cr)) => cr,
        Ok(None) => return Block::Incomplete(None),
        Err(()) => return Block::Invalid,
    };
    let line = buf.get(pos..cr).unwrap_or_default();
    let Some(fields) = line.strip_prefix(b"VALUE ") else {
        return Block::Invalid;
    };
    let mut at = 0;
    let key = next_token(fields, &mut at);
    let key_start = pos + 6 + at - key.map_or(0, <[u8]>::len);
    let (Some(key), Some(flags), Some(bytes)) = (
        key,
        next_token(fields, &mut at),
        next_token(fields, &mut at),
    ) else {
        return Block::Invalid;
    };
    let cas = next_token(fields, &mut at);
    if next_token(fields, &mut at).is_some() || !is_digits(flags) || !cas.is_none_or(is_digits) {
        return Block::Invalid;
    }
    let Some(bytes) = parse_digits(bytes) else {
        return Block::Invalid;
    };
    block_after_header(buf, key, key_start, cr + 2, bytes)
}

/// The next space-separated token of `line` from `*at` (runs of spaces are one separator).
fn next_token<'a>(line: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = line.get(*at..)?;
    let start = rest.iter().position(|&b| b != b' ')?;
    let len = rest[start..]
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(rest.len() - start);
    *at += start + len;
    rest.get(start..start + len)
}

/// A non-empty run of ASCII digits as a number; `None` on anything else or overflow.
fn parse_digits(token: &[u8]) -> Option<usize> {
    if token.is_empty() {
        return None;
    }
    token.iter().try_fold(0usize, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
    })
}

/// `line` is `word` alone or `word` followed by a space and free text.
fn word_then_text(line: &[u8], word: &[u8]) -> bool {
    line.strip_prefix(word)
        .is_some_and(|rest| rest.is_empty() || rest.first() == Some(&b' '))
}

fn complete(len: usize, kind: ResponseKind) -> ResponseParse {
    ResponseParse::Response(Response { len, kind })
}

/// Parses one response from the front of `buf`.
pub fn parse_response(buf: &[u8]) -> ResponseParse {
    parse_response_at(buf, &mut 0, None)
}

/// Where one `VALUE` block of a retrieval reply is, as found while the reply was framed
/// ([`ResponseParser::value_spans`]): offsets from the reply's first byte. With these, merging
/// fragment replies and sharing out a combined one read no header a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValueSpan {
    /// Where the block (its `VALUE`) starts.
    pub start: usize,
    /// Where its key starts.
    pub key_start: usize,
    /// Where its key ends.
    pub key_end: usize,
    /// Just past the block's last `\r\n`.
    pub end: usize,
}

impl ValueSpan {
    /// The block in `reply`; `None` when the span does not lie within it.
    pub fn block<'a>(&self, reply: &'a [u8]) -> Option<ValueBlock<'a>> {
        let key = reply.get(self.key_start..self.key_end)?;
        (self.start <= self.key_start && self.end <= reply.len()).then_some(ValueBlock {
            key,
            range: self.start..self.end,
        })
    }

    /// The same span in the slice of the reply that starts at `start` (`None` if the span
    /// begins before it).
    pub fn relative_to(&self, start: usize) -> Option<ValueSpan> {
        Some(ValueSpan {
            start: self.start.checked_sub(start)?,
            key_start: self.key_start.checked_sub(start)?,
            key_end: self.key_end.checked_sub(start)?,
            end: self.end.checked_sub(start)?,
        })
    }
}

/// The most spans a [`ResponseParser`] keeps room for between replies.
const SPANS_KEEP: usize = 1024;

/// [`parse_response`] for a stream of responses: after `Incomplete` it
/// remembers how far a retrieval reply was read, so that a big one arriving
/// over many reads is read once rather than again from its start at each.
#[derive(Debug, Default, Clone)]
pub struct ResponseParser {
    /// Where the first incomplete `VALUE` block of the reply at the front begins.
    resume: usize,
    /// The `VALUE` blocks of the retrieval reply being read, or of the last one read.
    spans: Vec<ValueSpan>,
}

impl ResponseParser {
    /// A parser that has framed `reply` once, for its [`ResponseParser::value_spans`] (a reply
    /// without its `END`, a member's part of a combined one, stops after its blocks).
    pub fn framing(reply: &[u8]) -> ResponseParser {
        let mut parser = ResponseParser::default();
        parser.parse(reply);
        parser
    }

    /// Parses the response at the front of `buf`; after `Incomplete`, pass
    /// the same bytes again, grown.
    pub fn parse(&mut self, buf: &[u8]) -> ResponseParse {
        match std::mem::take(&mut self.resume) {
            0 => {
                // A very wide reply's list is not kept for the narrow ones after it.
                if self.spans.capacity() > SPANS_KEEP {
                    self.spans = Vec::new();
                }
                self.spans.clear();
                parse_response_at(buf, &mut self.resume, Some(&mut self.spans))
            }
            resume => values_from(buf, resume, &mut self.resume, Some(&mut self.spans)),
        }
    }

    /// Where the `VALUE` blocks are in the reply [`ResponseParser::parse`] last found complete
    /// (none unless it was a retrieval reply with values).
    pub fn value_spans(&self) -> &[ValueSpan] {
        &self.spans
    }
}

/// [`parse_response`], setting `resume` when a retrieval reply is incomplete (and recording
/// its blocks in `spans`, if given).
fn parse_response_at(
    buf: &[u8],
    resume: &mut usize,
    spans: Option<&mut Vec<ValueSpan>>,
) -> ResponseParse {
    // Reject at once what no reply can start with (e.g. a bare `\r`), without waiting for a line.
    match buf.first() {
        None => return ResponseParse::Incomplete { needed: None },
        Some(b) if b.is_ascii_digit() || b"VESNDTC".contains(b) => {}
        Some(_) => return ResponseParse::Invalid,
    }
    let cr = match line_end(buf, 0) {
        Ok(Some(cr)) => cr,
        Ok(None) => return ResponseParse::Incomplete { needed: None },
        Err(()) => return ResponseParse::Invalid,
    };
    let line = buf.get(..cr).unwrap_or_default();
    let len = cr + 2;
    let kind = match line {
        b"END" => ResponseKind::Values,
        b"STORED" => ResponseKind::Stored,
        b"NOT_STORED" => ResponseKind::NotStored,
        b"EXISTS" => ResponseKind::Exists,
        b"NOT_FOUND" => ResponseKind::NotFound,
        b"DELETED" => ResponseKind::Deleted,
        b"TOUCHED" => ResponseKind::Touched,
        b"ERROR" => ResponseKind::Error,
        _ if line.starts_with(b"VALUE ") => return values_from(buf, 0, resume, spans),
        _ if line.starts_with(b"VERSION ") => ResponseKind::Version,
        _ if word_then_text(line, b"CLIENT_ERROR") => ResponseKind::ClientError,
        _ if word_then_text(line, b"SERVER_ERROR") => ResponseKind::ServerError,
        // `ERROR <message>` is sent by some memcached-compatible servers.
        _ if word_then_text(line, b"ERROR") => ResponseKind::Error,
        _ => {
            // incr/decr result: digits, then optional trailing spaces (older memcached pads).
            let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
            let trailing = line.get(digits..).unwrap_or_default();
            if digits == 0 || !trailing.iter().all(|&b| b == b' ') {
                return ResponseParse::Invalid;
            }
            ResponseKind::Number
        }
    };
    complete(len, kind)
}

/// A retrieval reply: `VALUE` blocks, then `END\r\n`, the blocks before
/// `pos` already read; when incomplete, `resume` is where to go on from.
/// Each complete block is added to `spans`, if given.
fn values_from(
    buf: &[u8],
    mut pos: usize,
    resume: &mut usize,
    mut spans: Option<&mut Vec<ValueSpan>>,
) -> ResponseParse {
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        if rest.starts_with(b"END\r\n") {
            return complete(pos + 5, ResponseKind::Values);
        }
        if rest.len() < 5 && b"END\r\n".starts_with(rest) {
            // `END\r\n` (or another block) must follow: at least 5 more bytes.
            *resume = pos;
            return ResponseParse::Incomplete {
                needed: Some(pos + 5),
            };
        }
        match value_block(buf, pos) {
            Block::Complete(header) => {
                if let Some(spans) = spans.as_deref_mut() {
                    spans.push(ValueSpan {
                        start: pos,
                        key_start: header.key_start,
                        key_end: header.key_start + header.key.len(),
                        end: header.block_end,
                    });
                }
                pos = header.block_end;
            }
            Block::Incomplete(needed) => {
                *resume = pos;
                // After a data block at least `END\r\n` must follow.
                let needed = needed.and_then(|n| n.checked_add(5));
                return ResponseParse::Incomplete { needed };
            }
            Block::Invalid => return ResponseParse::Invalid,
        }
    }
}

/// One `VALUE` block of a retrieval reply, as yielded by [`value_blocks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueBlock<'a> {
    /// The key as memcached sent it.
    pub key: &'a [u8],
    /// The block's bytes within the reply: header line, data and `\r\n`.
    pub range: std::ops::Range<usize>,
}

/// Iterates the complete `VALUE` blocks at the start of a retrieval reply (stops at `END`, at an
/// incomplete block or at anything malformed).
pub fn value_blocks(reply: &[u8]) -> impl Iterator<Item = ValueBlock<'_>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || match value_block(reply, pos) {
        Block::Complete(header) => {
            let range = pos..header.block_end;
            pos = header.block_end;
            Some(ValueBlock {
                key: header.key,
                range,
            })
        }
        Block::Incomplete(_) | Block::Invalid => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of `VALUE` headers, right and wrong, to build lines from.
    const PIECES: &[&str] = &[
        "VALUE ",
        "VALUE",
        "VALUE  ",
        " ",
        "  ",
        "k",
        "key",
        "a\nb",
        "0",
        "7",
        "12",
        "00",
        "18446744073709551615",
        "999999999999999999999",
        "-1",
        "x",
        "\r\n",
        "\r",
        "\n",
        "\rx",
        "END\r\n",
        "1234567890abcdefghij",
    ];

    fn check(buf: &[u8]) {
        for len in 0..=buf.len() {
            let part = &buf[..len];
            let block = value_block(part, 0);
            assert_eq!(
                block,
                value_block_general(part, 0),
                "{:?}",
                String::from_utf8_lossy(part)
            );
        }
    }

    #[test]
    fn the_fast_path_reads_what_memcached_writes() {
        let buf = b"VALUE lg:0000000001 0 5 77\r\nhello\r\nEND\r\n";
        assert!(value_header_fast(buf).is_some());
        assert_eq!(
            value_block(buf, 0),
            Block::Complete(ValueHeader {
                key: b"lg:0000000001",
                key_start: 6,
                block_end: 35
            })
        );
        check(buf);
        check(b"VALUE k 0 3\r\nabc\r\n");
        check(&[b"VALUE k 0 8192\r\n".as_slice(), &[b'v'; 8192], b"\r\n"].concat());
        let long_key = format!("VALUE {} 0 1\r\nv\r\n", "k".repeat(MAX_RESPONSE_LINE_LEN));
        check(long_key.as_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Fed a reply a few bytes more at a time, the stream parser answers
        /// what `parse_response` answers for the same bytes.
        #[test]
        fn the_stream_parser_agrees_with_parse_response(
            values in prop::collection::vec((1usize..20, 0usize..40, any::<bool>()), 0..8),
            tail in prop::sample::select(vec!["END\r\n", "ENDX", "VALUE k 0 1\r\nxyz", "STORED\r\n"]),
            steps in prop::collection::vec(1usize..30, 1..200),
        ) {
            let mut reply = Vec::new();
            for (i, &(key_len, len, cas)) in values.iter().enumerate() {
                let key = "k".repeat(key_len);
                let cas = if cas { " 99" } else { "" };
                reply.extend_from_slice(format!("VALUE {key} {i} {len}{cas}\r\n").as_bytes());
                reply.extend(std::iter::repeat_n(b'v', len));
                reply.extend_from_slice(b"\r\n");
            }
            reply.extend_from_slice(tail.as_bytes());
            let mut parser = ResponseParser::default();
            let mut len = 0;
            for step in steps.iter().cycle() {
                let part = &reply[..len];
                let got = parser.parse(part);
                prop_assert_eq!(&got, &parse_response(part));
                if let ResponseParse::Response(r) = got {
                    // The blocks it recorded are the reply's blocks.
                    let recorded: Vec<_> =
                        parser.value_spans().iter().filter_map(|s| s.block(part)).collect();
                    let blocks: Vec<_> = value_blocks(&part[..r.len]).collect();
                    prop_assert_eq!(recorded.len(), parser.value_spans().len());
                    prop_assert_eq!(recorded, blocks);
                }
                if !matches!(got, ResponseParse::Incomplete { .. }) || len == reply.len() {
                    break;
                }
                len = (len + step).min(reply.len());
            }
        }

        /// Whatever the bytes, the fast path decides as the general one would.
        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            pieces in prop::collection::vec(prop::sample::select(PIECES), 0..14),
            data in prop::collection::vec(any::<u8>(), 0..12),
        ) {
            let mut buf = pieces.concat().into_bytes();
            buf.extend_from_slice(&data);
            check(&buf);
            let mut header = b"VALUE ".to_vec();
            header.extend_from_slice(&buf);
            check(&header);
        }
    }
}
