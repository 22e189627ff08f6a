//! Replies the proxy writes itself. The error texts are memcached 1.6.18's, byte for byte.

/// Unknown command, or wrong number of tokens.
pub const ERROR: &[u8] = b"ERROR\r\n";
/// A malformed command line (bad key length, bad number in a storage command, …).
pub const BAD_COMMAND_LINE: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
/// A data block not terminated by `\r\n`.
pub const BAD_DATA_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
/// `gat`/`gats` with an exptime that is not a number.
pub const INVALID_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument\r\n";
/// `delete` with a second argument other than `0` or `noreply`.
pub const DELETE_USAGE: &[u8] =
    b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
/// An empty retrieval reply (`gat <exptime>` with no key).
pub const END: &[u8] = b"END\r\n";

/// The proxy's own error reply: `SERVER_ERROR <message>\r\n`.
pub fn server_error(message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"SERVER_ERROR ");
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\r\n");
}
