//! Building the requests sent to servers: per-server fragments of split commands, and
//! multi-bulk re-encoding of inline requests.

use crate::command::Fragmentation;
use crate::reply::{header_len, write_bulk, write_number_line};
use crate::request::Request;

/// Writes the sub-request of a split command for the given keys, in the given order, as
/// nutcracker does: `*<n>\r\n$4\r\nmget\r\n$<len>\r\n<key>\r\n…` with the command name in lower
/// case (`mget`, `del`, `unlink`, `touch`, `exists`, `mset`); for `MSET` each key is followed by
/// its value. `key_indexes` index [`Request::keys`]; indexes outside it are skipped.
/// `request_bytes` is the buffer the request was parsed from.
pub fn write_fragment(
    request_bytes: &[u8],
    request: &Request,
    key_indexes: &[usize],
    out: &mut Vec<u8>,
) {
    let with_values = request.command.fragmentation() == Some(Fragmentation::Mset);
    let arg_of = |index: usize| -> Option<usize> {
        let arg = usize::try_from(*request.keys.get(index)?).ok()?;
        // An MSET key always has its value next; check anyway.
        if with_values && arg + 1 >= request.args.len() {
            return None;
        }
        Some(arg)
    };
    let valid = key_indexes.iter().filter(|&&i| arg_of(i).is_some()).count();
    let per_key = if with_values { 2 } else { 1 };
    let count = i64::try_from(1 + valid * per_key).unwrap_or(i64::MAX);
    write_number_line(b'*', count, out);
    write_bulk(request.command.name().as_bytes(), out);
    for &index in key_indexes {
        let Some(arg) = arg_of(index) else {
            continue;
        };
        for i in arg..arg + per_key {
            write_arg(request_bytes, request, i, out);
        }
    }
}

/// Writes argument `index` as a bulk string: for a multi-bulk request, its bytes as they came
/// (header included: the parser accepts only canonical `$<len>` headers, so the header's length
/// follows from the argument's); re-encoded for an inline one.
fn write_arg(request_bytes: &[u8], request: &Request, index: usize, out: &mut Vec<u8>) {
    if !request.inline {
        if let Some(range) = request.args.get(index) {
            let header = header_len(range.end - range.start);
            let raw = range
                .start
                .checked_sub(header)
                .and_then(|from| request_bytes.get(from..range.end + 2));
            if let Some(raw) = raw.filter(|raw| raw.first() == Some(&b'$')) {
                out.extend_from_slice(raw);
                return;
            }
        }
    }
    if let Some(value) = request.arg(request_bytes, index) {
        write_bulk(&value, out);
    }
}

/// Writes the whole request as multi-bulk, the command name in lower case. For forwarding inline
/// requests: redis would read them the same way, except that it hangs on an inline line holding
/// a NUL byte, and re-encoding also keeps every backend stream in one framing.
pub fn write_request(request_bytes: &[u8], request: &Request, out: &mut Vec<u8>) {
    let count = i64::try_from(1 + request.args.len()).unwrap_or(i64::MAX);
    write_number_line(b'*', count, out);
    write_bulk(request.command.name().as_bytes(), out);
    for i in 0..request.args.len() {
        if let Some(value) = request.arg(request_bytes, i) {
            write_bulk(&value, out);
        }
    }
}
