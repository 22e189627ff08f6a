//! Merging the replies of a request split across servers (spec §6.3).
//!
//! Each function takes every fragment's complete reply (`fragments[f]`, exactly one response)
//! and writes the client's reply. A fragment reply of the wrong type (an error such as
//! `-READONLY` or `-NOAUTH`, a count that does not match) fails the whole request with
//! [`MergeError`], which the proxy answers with [`crate::reply::INVALID_ARGUMENT`]
//! (`-ERR Invalid argument`, nutcracker's EINVAL). On error nothing is written to `out`.

use crate::reply::{write_number_line, OK};
use crate::response::{array_header, parse_response, reply_end, ResponseKind, ResponseParse};

/// A fragment reply could not be merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a fragment reply has an unexpected type")]
pub struct MergeError;

/// The whole reply in `buf`, or an error if it is not exactly one complete reply.
fn whole(buf: &[u8]) -> Result<ResponseKind, MergeError> {
    match parse_response(buf) {
        ResponseParse::Response(r) if r.len == buf.len() => Ok(r.kind),
        _ => Err(MergeError),
    }
}

/// `MGET`: `key_fragments[i]` is the fragment the i-th key of the original request went to.
/// Each fragment reply must be an array with one element per key sent there, in order. Writes
/// `*<keys>\r\n` and then, for each key in request order, the next element of its fragment's
/// reply, copied verbatim (`$-1` for misses), as nutcracker does. Duplicate keys are fine.
pub fn merge_mget(
    key_fragments: &[usize],
    fragments: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<(), MergeError> {
    merge_mget_framed(key_fragments, fragments, &[], out)
}

/// [`merge_mget`] for fragment replies whose element ends were recorded while they were framed:
/// `element_ends[i]` as [`ResponseParser::element_ends`](crate::ResponseParser::element_ends)
/// gave it for `fragments[i]` (missing or empty: the elements are framed here). The reply is
/// the same.
pub fn merge_mget_framed(
    key_fragments: &[usize],
    fragments: &[&[u8]],
    element_ends: &[&[usize]],
    out: &mut Vec<u8>,
) -> Result<(), MergeError> {
    let start = out.len();
    mget_header(key_fragments.len(), out);
    let merged = merge_mget_framed_with(key_fragments, fragments, element_ends, |f, range| {
        out.extend_from_slice(&fragments[f][range]);
    });
    if merged.is_err() {
        out.truncate(start);
    }
    merged
}

/// The array header of a merged `MGET` reply of `keys` elements (`*<keys>\r\n`).
pub fn mget_header(keys: usize, out: &mut Vec<u8>) {
    write_number_line(b'*', i64::try_from(keys).unwrap_or(i64::MAX), out);
}

/// [`merge_mget_framed`] without the copying: calls `element(fragment, range)` for each element
/// of the merged reply in order (`fragments[fragment][range]`); the reply is [`mget_header`],
/// then those elements. On an error some elements may have been given already: discard them.
pub fn merge_mget_framed_with(
    key_fragments: &[usize],
    fragments: &[&[u8]],
    element_ends: &[&[usize]],
    mut element: impl FnMut(usize, std::ops::Range<usize>),
) -> Result<(), MergeError> {
    // Per fragment: the cursor after its array header, the elements not yet taken, and the next
    // of its recorded element ends (`FRAME`: none recorded, frame each element when taken).
    // Fragments are at most one per server; the fallback handles more.
    const FRAME: usize = usize::MAX;
    let mut small = [(0usize, 0u64, FRAME); 64];
    let mut large = Vec::new();
    let cursors: &mut [(usize, u64, usize)] = if fragments.len() <= small.len() {
        &mut small[..fragments.len()]
    } else {
        large.resize(fragments.len(), (0, 0, FRAME));
        &mut large
    };
    // Only the array headers are read here: each element is framed once (by the parser that
    // recorded its end, or here when it is taken), and the checks at the end prove each reply
    // was exactly its header and its elements.
    for (i, (reply, cursor)) in fragments.iter().zip(cursors.iter_mut()).enumerate() {
        let (start, count) = array_header(reply).ok_or(MergeError)?;
        // Recorded ends are used only when there is one per element the header announces.
        let recorded = element_ends
            .get(i)
            .is_some_and(|ends| ends.len() as u64 == count && count > 0);
        *cursor = (start, count, if recorded { 0 } else { FRAME });
    }
    let copied = key_fragments.iter().all(|&f| {
        (|| {
            let reply = fragments.get(f)?;
            let (cursor, left, next) = cursors.get_mut(f)?;
            *left = left.checked_sub(1)?;
            let end = match *next {
                FRAME => reply_end(reply, *cursor)?,
                i => {
                    *next += 1;
                    *element_ends.get(f)?.get(i)?
                }
            };
            reply.get(*cursor..end)?;
            element(f, *cursor..end);
            *cursor = end;
            Some(())
        })()
        .is_some()
    });
    let exact = fragments
        .iter()
        .zip(cursors.iter())
        .all(|(reply, &(cursor, left, _))| left == 0 && cursor == reply.len());
    if !(copied && exact) {
        return Err(MergeError);
    }
    Ok(())
}

/// `DEL`, `UNLINK`, `TOUCH`, `EXISTS`: every fragment reply must be an integer; writes
/// `:<sum>\r\n`.
pub fn merge_sum(fragments: &[&[u8]], out: &mut Vec<u8>) -> Result<(), MergeError> {
    let mut sum: i64 = 0;
    for reply in fragments {
        let ResponseKind::Integer(n) = whole(reply)? else {
            return Err(MergeError);
        };
        sum = sum.checked_add(n).ok_or(MergeError)?;
    }
    write_number_line(b':', sum, out);
    Ok(())
}

/// `MSET`: every fragment reply must be a status; writes `+OK\r\n`. Not atomic: fragments that
/// succeeded are not rolled back when another fails.
pub fn merge_mset(fragments: &[&[u8]], out: &mut Vec<u8>) -> Result<(), MergeError> {
    for reply in fragments {
        if whole(reply)? != ResponseKind::Status {
            return Err(MergeError);
        }
    }
    out.extend_from_slice(OK);
    Ok(())
}
