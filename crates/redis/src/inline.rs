//! Inline requests (`GET k\r\n`), split into arguments exactly as redis 7.0 does it
//! (`processInlineBuffer` + `sdssplitargs`):
//!
//! * the line ends at the first `\n`; a `\r` just before it is dropped; a NUL byte ends the
//!   line's text (redis handles the line as a C string);
//! * arguments are separated by white space (space, `\t`, `\n`, `\v`, `\f`, `\r`); an unquoted
//!   argument ends at a space, `\t`, `\n` or `\r` (so `\v` and `\f` inside one are kept);
//! * `"…"` understands `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\<any>`; `'…'` understands `\'`;
//!   a quote may start in the middle of an argument (`a"b c"` is `ab c`); a closing quote must be
//!   followed by white space or the end of the line; an unclosed quote is an error.
//!
//! Arguments are reported as byte ranges of the buffer. When the value is a contiguous part of
//! the line (no quotes, or one quoted section without escapes), the range covers the value
//! itself. Otherwise it covers the raw argument text, which then contains a quote character, and
//! [`decode`] turns it into the value; [`crate::Request::arg`] does that transparently.

use smallvec::SmallVec;

use crate::request::ArgRange;

/// The line holds an unbalanced quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unbalanced;

/// C `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// What [`scan`] saw in one argument.
#[derive(Default)]
struct Shape {
    quoted: bool,
    escaped: bool,
}

/// Scans one argument of `line` from `start` (a non-space byte). Returns the offset just past it
/// (past the closing quote for quoted arguments). Writes the value to `sink` when given.
fn scan(
    line: &[u8],
    start: usize,
    mut sink: Option<&mut Vec<u8>>,
) -> Result<(usize, Shape), Unbalanced> {
    let mut emit = |b: u8| {
        if let Some(out) = sink.as_deref_mut() {
            out.push(b);
        }
    };
    let mut shape = Shape::default();
    let mut p = start;
    let mut in_double = false;
    let mut in_single = false;
    // After a closing quote: it must be followed by white space or the end.
    let close = |p: usize| match line.get(p + 1) {
        Some(&next) if !is_space(next) => Err(Unbalanced),
        _ => Ok(p + 1),
    };
    loop {
        let c = line.get(p).copied();
        if in_double {
            match c {
                None => return Err(Unbalanced),
                Some(b'\\') => {
                    let hex = line.get(p + 1) == Some(&b'x');
                    let hi = line.get(p + 2).copied().and_then(hex_value);
                    let lo = line.get(p + 3).copied().and_then(hex_value);
                    if let (true, Some(hi), Some(lo)) = (hex, hi, lo) {
                        emit(hi * 16 + lo);
                        shape.escaped = true;
                        p += 4;
                    } else if let Some(&e) = line.get(p + 1) {
                        emit(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        shape.escaped = true;
                        p += 2;
                    } else {
                        // A backslash at the very end: kept, then the quote is unclosed.
                        emit(b'\\');
                        p += 1;
                    }
                }
                Some(b'"') => return Ok((close(p)?, shape)),
                Some(b) => {
                    emit(b);
                    p += 1;
                }
            }
        } else if in_single {
            match c {
                None => return Err(Unbalanced),
                Some(b'\\') if line.get(p + 1) == Some(&b'\'') => {
                    emit(b'\'');
                    shape.escaped = true;
                    p += 2;
                }
                Some(b'\'') => return Ok((close(p)?, shape)),
                Some(b) => {
                    emit(b);
                    p += 1;
                }
            }
        } else {
            match c {
                None | Some(b' ' | b'\n' | b'\r' | b'\t') => return Ok((p, shape)),
                Some(b'"') => {
                    in_double = true;
                    shape.quoted = true;
                    p += 1;
                }
                Some(b'\'') => {
                    in_single = true;
                    shape.quoted = true;
                    p += 1;
                }
                Some(b) => {
                    emit(b);
                    p += 1;
                }
            }
        }
    }
}

/// Splits `buf[start..end]` (one inline line without its line end) into arguments, appending
/// their ranges (absolute offsets) to `args`.
pub(crate) fn split(
    buf: &[u8],
    start: usize,
    end: usize,
    args: &mut SmallVec<[ArgRange; 8]>,
) -> Result<(), Unbalanced> {
    let line = buf.get(start..end).unwrap_or_default();
    let line = match memchr::memchr(0, line) {
        Some(nul) => line.get(..nul).unwrap_or_default(),
        None => line,
    };
    let mut p = 0;
    loop {
        while line.get(p).is_some_and(|&b| is_space(b)) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(());
        }
        let (token_end, shape) = scan(line, p, None)?;
        let token = line.get(p..token_end).unwrap_or_default();
        let simple_quoted = shape.quoted
            && !shape.escaped
            && token.len() >= 2
            && matches!(token.first(), Some(b'"' | b'\''))
            && memchr::memchr2(
                b'"',
                b'\'',
                token.get(1..token.len() - 1).unwrap_or_default(),
            )
            .is_none();
        let (s, e) = if simple_quoted {
            (p + 1, token_end - 1)
        } else {
            (p, token_end)
        };
        args.push(ArgRange {
            start: start + s,
            end: start + e,
        });
        p = token_end;
    }
}

/// Whether an argument range of an inline request holds raw text that [`decode`] must turn
/// into the value.
pub(crate) fn needs_decoding(raw: &[u8]) -> bool {
    memchr::memchr2(b'"', b'\'', raw).is_some()
}

/// The value of one raw inline argument (see the module documentation).
pub(crate) fn decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    // The text was accepted by `split`, so scanning it again cannot fail.
    let _ = scan(raw, 0, Some(&mut out));
    out
}
