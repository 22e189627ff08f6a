//! Building the per-server sub-requests of a multi-key retrieval.

use crate::request::Request;

/// Writes the sub-request for a multi-key retrieval: the same command (and the exptime for
/// `gat`/`gats`) with only the given keys, in the given order: e.g. `get k1 k3\r\n`,
/// `gat 100 k1 k3\r\n`. Indexes outside `request.keys` are skipped.
pub fn write_fragment(
    request_bytes: &[u8],
    request: &Request,
    key_indexes: &[usize],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(request.command.name().as_bytes());
    if request.command.is_touching_retrieval() {
        if let Some(exptime) = exptime_token(request_bytes, request) {
            out.push(b' ');
            out.extend_from_slice(exptime);
        }
    }
    for &index in key_indexes {
        if let Some(key) = request.key(request_bytes, index) {
            out.push(b' ');
            out.extend_from_slice(key);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The exptime token of a `gat`/`gats` request: the text between the command name and the first
/// key, without the surrounding spaces.
fn exptime_token<'a>(request_bytes: &'a [u8], request: &Request) -> Option<&'a [u8]> {
    let first_key = request.keys.first()?.range().start;
    let head = request_bytes.get(..first_key)?;
    let start = head.iter().position(|&b| b != b' ')?;
    let after_command = start + request.command.name().len();
    let args = head.get(after_command..)?;
    let token_start = args.iter().position(|&b| b != b' ')?;
    let token = args.get(token_start..)?;
    let token_len = token.iter().position(|&b| b == b' ').unwrap_or(token.len());
    token.get(..token_len)
}
