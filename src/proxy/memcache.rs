//! Routing memcache requests: single-key commands to their server, multi-key
//! retrievals split per server and merged, `version` to the `placeholder`
//! server, `quit` and bad requests answered here.

use std::cell::Cell;
use std::rc::Rc;

use rustcracker_memcache::{Command, Request, RequestParse, RequestParser};

use super::client::Client;
use super::merge::{Merge, MergeKind};
use super::pool::PoolRuntime;
use super::server::{Pending, ServerConnection, WHOLE};
use super::session::{Dispatched, Stop};
use super::split;

/// The routing key of keyless commands (`version`), as in nutcracker.
const PLACEHOLDER: &[u8] = b"placeholder";

/// Parses and routes every complete request in `input`.
pub fn dispatch(client: &Rc<Client>, pool: &Rc<PoolRuntime>, input: &[u8]) -> Dispatched {
    // The worker's parser, taken out of its cell for the call (a nested call would get a fresh
    // one rather than a borrow panic).
    let mut parser = PARSER.with(Cell::take);
    let dispatched = dispatch_with(&mut parser, client, pool, input);
    PARSER.with(|cell| cell.set(parser));
    dispatched
}

fn dispatch_with(
    parser: &mut RequestParser,
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    input: &[u8],
) -> Dispatched {
    let mut pos = 0;
    while pos < input.len() {
        let buf = &input[pos..];
        match parser.parse(buf) {
            RequestParse::Incomplete { needed } => {
                return Dispatched::more(pos, pos + needed.unwrap_or(0));
            }
            RequestParse::Invalid(invalid) => {
                client.push_local(invalid.reply);
                pos += invalid.len;
                if invalid.close {
                    return Dispatched::stop(pos, Stop::Error);
                }
            }
            RequestParse::Request(request) => {
                let bytes = &buf[..request.len];
                pos += request.len;
                match request.command {
                    // Bytes after `quit` are discarded; earlier replies are still delivered.
                    Command::Quit => return Dispatched::stop(pos, Stop::Quit),
                    Command::Version => {
                        forward(client, pool, PLACEHOLDER, bytes, false, Command::Version)
                    }
                    _ if request.keys.len() > 1 => forward_split(client, pool, bytes, &request),
                    _ => {
                        let key = request
                            .keys
                            .first()
                            .map_or(PLACEHOLDER, |k| &bytes[k.range()]);
                        forward(client, pool, key, bytes, request.noreply, request.command);
                    }
                }
                // Its key list serves the next multi-key request.
                parser.recycle(request);
            }
        }
    }
    Dispatched::more(pos, 0)
}

/// Sends a whole request to the server of `key`.
fn forward(
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    key: &[u8],
    bytes: &[u8],
    noreply: bool,
    command: Command,
) {
    let Some(server) = pool.route(key) else {
        if !noreply {
            client.refuse(command as u16);
        }
        return;
    };
    let conn = server.connection(pool);
    if noreply {
        conn.enqueue(bytes, None);
        return;
    }
    let seq = client.reserve(command as u16);
    let pending = pool.pending(client, seq, WHOLE);
    queue(&conn, command, std::iter::once(key), bytes, pending);
}

/// Whether requests of `command` may be combined with others into one line
/// on a server connection (see `combine.rs`): `get` and `gets`.
fn combinable(command: Command) -> bool {
    matches!(command, Command::Get | Command::Gets)
}

/// Queues `bytes`, a request of `command` for `keys`, on `conn`: a `get` or
/// `gets` as a line of its keys that may be combined with other clients',
/// anything else as it came.
fn queue<'k>(
    conn: &Rc<ServerConnection>,
    command: Command,
    keys: impl Iterator<Item = &'k [u8]> + Clone,
    bytes: &[u8],
    pending: Pending,
) {
    if !combinable(command) {
        return conn.enqueue(bytes, Some(pending));
    }
    // Most requests came as the proxy would write them (`get k1 k2\r\n`: one space before
    // each key, nothing else): of exactly that length, they can be nothing else, and go as
    // they are instead of being copied into a line first.
    let name = command.name().as_bytes();
    let line_len = name.len() + 2 + keys.clone().map(|k| 1 + k.len()).sum::<usize>();
    if bytes.len() == line_len && bytes.starts_with(name) && bytes.ends_with(b"\r\n") {
        return conn.enqueue_retrieval(bytes, bytes.len(), pending);
    }
    FRAGMENT.with(|line| {
        let mut line = line.borrow_mut();
        line.clear();
        line.extend_from_slice(command.name().as_bytes());
        for key in keys {
            line.push(b' ');
            line.extend_from_slice(key);
        }
        line.extend_from_slice(b"\r\n");
        conn.enqueue_retrieval(&line, bytes.len(), pending);
    });
}

/// A retrieval of several keys: one sub-request per server, keys in request
/// order; sent whole when every key lives on one server (the reply is the same).
fn forward_split(client: &Rc<Client>, pool: &Rc<PoolRuntime>, bytes: &[u8], request: &Request) {
    split::with_split(|split| {
        let command = request.command as u16;
        let keys = request.keys.iter().map(|k| &bytes[k.range()]);
        if !split.route(client, pool, command, keys.clone(), |conn, pending| {
            queue(conn, request.command, keys, bytes, pending)
        }) {
            return;
        }
        let mut merge = Merge::new(MergeKind::MemcacheValues, split.fragment_count());
        for (key, &fragment) in request.keys.iter().zip(split.fragments()) {
            merge.push_key(&bytes[key.range()], fragment);
        }
        let seq = client.reserve_merge(merge, command);
        FRAGMENT.with(|sub| {
            let mut sub = sub.borrow_mut();
            split.send_fragments(
                client,
                pool,
                seq,
                &mut sub,
                |keys, out| rustcracker_memcache::write_fragment(bytes, request, keys, out),
                // A fragment is a line of its keys already.
                |conn, fragment, pending| {
                    if combinable(request.command) {
                        conn.enqueue_retrieval(fragment, fragment.len(), pending)
                    } else {
                        conn.enqueue(fragment, Some(pending))
                    }
                },
            );
            if sub.capacity() > 64 * 1024 {
                *sub = Vec::new();
            }
        });
    });
}

thread_local! {
    /// The worker's request parser: its key list is reused by every retrieval.
    static PARSER: Cell<RequestParser> = Cell::new(RequestParser::default());
    /// The worker's buffer for building fragment requests.
    static FRAGMENT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
