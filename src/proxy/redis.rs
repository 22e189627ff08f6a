//! Routing redis requests: PING / QUIT / AUTH answered here, MGET / DEL /
//! UNLINK / TOUCH / EXISTS / MSET split per server and merged, everything
//! else sent whole to the server of its first key (`placeholder` for keyless
//! commands). Inline requests are re-encoded as multi-bulk.

use std::rc::Rc;

use rustcracker_redis::{reply, Command, Fragmentation, Request, RequestParse, RequestParser};

use super::client::Client;
use super::merge::{Merge, MergeKind};
use super::pool::PoolRuntime;
use super::server::{Pending, ServerConnection, WHOLE};
use super::session::{Dispatched, Stop};
use super::split;

/// The routing key of keyless commands (`COMMAND`, `LOLWUT`), as in nutcracker.
const PLACEHOLDER: &[u8] = b"placeholder";

/// A redis client's state between reads.
#[derive(Default)]
pub struct RedisSession {
    /// Remembers a partly framed request, so a huge request is scanned once.
    parser: RequestParser,
    /// AUTH succeeded (pools with `redis_auth`).
    authenticated: bool,
    /// Scratch space for re-encoded and fragment requests.
    scratch: Vec<u8>,
}

impl RedisSession {
    /// The state of a client coming back from being parked.
    pub fn resume(authenticated: bool) -> RedisSession {
        RedisSession {
            authenticated,
            ..RedisSession::default()
        }
    }

    /// Whether the client has passed AUTH (kept while it is parked).
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }
}

/// Parses and routes every complete request in `input`.
pub fn dispatch(
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    input: &[u8],
    session: &mut RedisSession,
) -> Dispatched {
    let mut pos = 0;
    while pos < input.len() {
        let buf = &input[pos..];
        match session.parser.parse(buf, pool.max_key_len) {
            RequestParse::Incomplete { needed } => {
                return Dispatched::more(pos, pos + needed.unwrap_or(0));
            }
            RequestParse::Invalid(invalid) => {
                if !invalid.reply.is_empty() {
                    client.push_local(invalid.reply.as_bytes());
                }
                pos += invalid.len;
                if invalid.close {
                    return Dispatched::stop(pos, Stop::Error);
                }
            }
            RequestParse::Request(request) => {
                let bytes = &buf[..request.len];
                pos += request.len;
                if request.command == Command::Quit {
                    client.push_local(reply::OK);
                    return Dispatched::stop(pos, Stop::Quit);
                }
                if request.command == Command::Auth {
                    authenticate(client, pool, bytes, &request, session);
                    continue;
                }
                if pool.config.redis_auth.is_some() && !session.authenticated {
                    client.push_local(reply::NOAUTH);
                    continue;
                }
                if request.command == Command::Echo {
                    let mut out = Vec::new();
                    reply::write_bulk(&request.arg(bytes, 0).unwrap_or_default(), &mut out);
                    client.push_local(&out);
                    continue;
                }
                if request.command == Command::Ping {
                    let mut out = Vec::new();
                    let message = request.arg(bytes, 0);
                    reply::ping_reply(message.as_deref(), &mut out);
                    client.push_local(&out);
                    continue;
                }
                match request.command.fragmentation() {
                    Some(kind) if request.keys.len() > 1 => {
                        forward_split(client, pool, bytes, &request, kind, session)
                    }
                    _ => forward(client, pool, bytes, &request, session),
                }
                // Its argument and key lists serve the next request.
                session.parser.recycle(request);
            }
        }
    }
    Dispatched::more(pos, 0)
}

/// `AUTH [user] password` against the pool's `redis_auth` (nutcracker §6.4).
fn authenticate(
    client: &Client,
    pool: &PoolRuntime,
    bytes: &[u8],
    request: &Request,
    session: &mut RedisSession,
) {
    let Some(expected) = &pool.config.redis_auth else {
        client.push_local(reply::NO_PASSWORD_SET);
        return;
    };
    let given = request.arg(bytes, request.arg_count().saturating_sub(1));
    session.authenticated = given.as_deref() == Some(expected.as_bytes());
    client.push_local(if session.authenticated {
        reply::OK
    } else {
        reply::INVALID_PASSWORD
    });
}

/// Sends a whole request to the server of its routing key.
fn forward(
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    bytes: &[u8],
    request: &Request,
    session: &mut RedisSession,
) {
    let key = request.routing_key(bytes);
    let Some(server) = pool.route(key.as_deref().unwrap_or(PLACEHOLDER)) else {
        client.refuse(request.command as u16);
        return;
    };
    let conn = server.connection(pool);
    let seq = client.reserve(request.command as u16);
    let pending = pool.pending(client, seq, WHOLE);
    send(&conn, bytes, request, pending, &mut session.scratch);
}

/// Queues a request, re-encoded as multi-bulk when it came inline.
fn send(
    conn: &Rc<ServerConnection>,
    bytes: &[u8],
    request: &Request,
    pending: Pending,
    scratch: &mut Vec<u8>,
) {
    let bytes = if request.inline {
        scratch.clear();
        rustcracker_redis::write_request(bytes, request, scratch);
        &scratch[..]
    } else {
        bytes
    };
    // An MGET may join (or be joined by) others queued on the connection.
    if request.command == Command::Mget {
        conn.enqueue_mget(bytes, pending);
    } else {
        conn.enqueue(bytes, Some(pending));
    }
}

/// A multi-key command: one sub-request per server with its keys in request
/// order; sent whole when every key lives on one server.
fn forward_split(
    client: &Rc<Client>,
    pool: &Rc<PoolRuntime>,
    bytes: &[u8],
    request: &Request,
    kind: Fragmentation,
    session: &mut RedisSession,
) {
    split::with_split(|split| {
        let command = request.command as u16;
        let keys = (0..request.keys.len()).map(|i| request.key(bytes, i).unwrap_or_default());
        if !split.route(client, pool, command, keys, |conn, pending| {
            send(conn, bytes, request, pending, &mut session.scratch)
        }) {
            return;
        }
        let merge_kind = match kind {
            Fragmentation::Mget => MergeKind::RedisMget,
            Fragmentation::Sum => MergeKind::RedisSum,
            Fragmentation::Mset => MergeKind::RedisMset,
        };
        let mut merge = Merge::new(merge_kind, split.fragment_count());
        for &fragment in split.fragments() {
            merge.push_key(&[], fragment);
        }
        let seq = client.reserve_merge(merge, command);
        split.send_fragments(
            client,
            pool,
            seq,
            &mut session.scratch,
            |keys, out| rustcracker_redis::write_fragment(bytes, request, keys, out),
            |conn, fragment, pending| match kind {
                Fragmentation::Mget => conn.enqueue_mget(fragment, pending),
                _ => conn.enqueue(fragment, Some(pending)),
            },
        );
    });
}

/// What a new server connection sends before any request: `AUTH redis_auth`,
/// then `SELECT redis_db` (in that order, on every kind of connection: a fix
/// over nutcracker, which sent SELECT first and skipped it on unix sockets).
pub fn connection_preamble(pool: &PoolRuntime) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(password) = &pool.config.redis_auth {
        out.extend_from_slice(b"*2\r\n$4\r\nAUTH\r\n");
        reply::write_bulk(password.as_bytes(), &mut out);
    }
    if pool.config.redis_db > 0 {
        out.extend_from_slice(b"*2\r\n$6\r\nSELECT\r\n");
        reply::write_bulk(
            itoa::Buffer::new().format(pool.config.redis_db).as_bytes(),
            &mut out,
        );
    }
    out
}
