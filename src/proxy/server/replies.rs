//! A server connection's replies: read when the hub finds its socket ready,
//! parsed, and handed to the requests at the head of its FIFO.

use std::collections::VecDeque;
use std::io;

use rustcracker_memcache::ValueSpan;

use super::{Ending, ServerConnection, ServerRuntime, Waiting, WHOLE};
use super::{FIFO_KEEP, INPUT_KEEP, KEYS_KEEP, READ_CHUNK, READ_MAX};
use crate::proxy::client;
use crate::proxy::clock::Micros;
use crate::proxy::combine::{self, Cut};
use crate::proxy::errno::Failure;
use crate::proxy::{Framed, Protocol, ResponseParse, ResponseReader};

/// A connection's replies as they are read and parsed.
pub(super) struct Input {
    bytes: Vec<u8>,
    /// Room to read into: doubles while reads fill it, so a burst of replies
    /// is read in one call rather than one per 16 KiB.
    chunk: usize,
    /// Where the next reply starts in `bytes`.
    start: usize,
    /// The length `bytes` must reach before the reply at `start` can be whole.
    need: usize,
    reader: ResponseReader,
    group: Group,
}

impl Input {
    /// Nothing read yet, replies of `protocol` expected.
    pub(super) fn new(protocol: Protocol) -> Input {
        Input {
            bytes: Vec::new(),
            chunk: READ_CHUNK,
            start: 0,
            need: 0,
            reader: ResponseReader::new(protocol),
            group: Group::default(),
        }
    }
}

/// The members of a combined line while its reply is shared out: their
/// keys, and where each one's part of the reply is (kept with the connection's
/// input, so that nothing is allocated per reply).
#[derive(Default)]
pub(super) struct Group {
    pub(super) members: Vec<Waiting>,
    pub(super) keys: Vec<u8>,
    pub(super) bodies: Vec<std::ops::Range<usize>>,
    /// Per member, in turn: its blocks' spans within its body (memcache).
    pub(super) spans: Vec<ValueSpan>,
    /// Per member, in turn: where its elements end within its body (redis).
    pub(super) ends: Vec<usize>,
}

impl ServerConnection {
    /// The hub found the socket ready: reads and hands out the replies there
    /// are, and writes what the kernel did not take before. `closed`: the
    /// event also said the server closed (or the socket has an error).
    pub fn on_event(&self, server: &ServerRuntime, readable: bool, writable: bool, closed: bool) {
        let (broken, blocked) = {
            let st = self.state.borrow();
            (st.broken, st.write_blocked)
        };
        if broken {
            return;
        }
        if writable && blocked {
            self.flush();
        }
        if readable {
            if let Err(failure) = self.read_replies(server, closed) {
                self.end_soon(Ending::Read(failure));
            }
        }
    }

    /// Reads until the socket is drained, handing out each whole reply;
    /// `closed`: until the end of the stream shows (the edge that said so
    /// does not come again).
    fn read_replies(&self, server: &ServerRuntime, closed: bool) -> Result<(), Failure> {
        let socket = self.socket.borrow();
        let Some(socket) = socket.as_ref() else {
            return Ok(());
        };
        let mut input = self.input.borrow_mut();
        let input = &mut *input;
        loop {
            // Room for the rest of a reply of known size at once (up to a
            // bound: the size comes from the server's bytes), and for `chunk`.
            let rest = input.need.saturating_sub(input.bytes.len()).min(INPUT_KEEP);
            let wanted = input.chunk.max(rest);
            if input.bytes.capacity() - input.bytes.len() < wanted / 2 {
                input.bytes.reserve(wanted);
            }
            let room = input.bytes.capacity() - input.bytes.len();
            // A read that comes back short drained the socket: the next bytes
            // bring a new event (edge-triggered), so no read to see EAGAIN;
            // unless the server closed, which no later event would tell.
            let drained = match socket.read_into(&mut input.bytes) {
                Ok(0) => {
                    let outstanding = self.state.borrow().fifo.len();
                    crate::log_info!(
                        "s to '{}' closed by server, {outstanding} outstanding",
                        server.config.pname
                    );
                    return Err(Failure::Unknown);
                }
                Ok(n) if n == room => {
                    input.chunk = (input.chunk * 2).min(READ_MAX);
                    false
                }
                Ok(_) => !closed,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    crate::log_error!("recv on s to '{}' failed: {e}", server.config.pname);
                    return Err(Failure::from_io(&e));
                }
            };
            if input.bytes.len() >= input.need {
                self.hand_out(input, server)?;
            }
            if drained {
                return Ok(());
            }
        }
    }

    /// Hands out every whole reply in `input`, keeping the unparsed tail.
    fn hand_out(&self, input: &mut Input, server: &ServerRuntime) -> Result<(), Failure> {
        // One clock read per batch of replies, for the latency histogram.
        let arrived = crate::proxy::clock::tick();
        // Clients answered in this batch are written to when it ends.
        let _batch = client::open_reply_batch();
        let Input {
            bytes,
            chunk,
            start,
            need,
            reader,
            group,
        } = input;
        loop {
            let buf = &bytes[*start..];
            match reader.parse(buf) {
                ResponseParse::Incomplete(needed) => {
                    *need = *start + needed;
                    break;
                }
                ResponseParse::Invalid => {
                    crate::log_error!("parsed bad response from '{}'", server.config.pname);
                    return Err(Failure::INVALID);
                }
                ResponseParse::Response {
                    len,
                    server_failure,
                } => {
                    if server_failure {
                        return Err(Failure::INVALID);
                    }
                    let reply = &buf[..len];
                    let head = self.state.borrow_mut().take_reply(group);
                    server.failures.set(0);
                    let framed = reader.framed();
                    if let Some(head) = head {
                        let waited = self.replied(&head, len, arrived);
                        head.pending.deliver(Ok(reply), framed, waited);
                    } else if group.members.is_empty() {
                        crate::log_error!("stray response from '{}'", server.config.pname);
                        return Err(Failure::INVALID);
                    } else if let Err(failure) = self.reply_group(group, reply, framed, arrived) {
                        crate::log_error!("parsed bad response from '{}'", server.config.pname);
                        return Err(failure);
                    }
                    *start += len;
                }
            }
        }
        // Keep the unparsed tail at the front; let big buffers go when idle.
        if *start == bytes.len() {
            *need = 0;
            bytes.clear();
            if bytes.capacity() > INPUT_KEEP {
                *bytes = Vec::new();
                *chunk = READ_CHUNK;
            }
            let mut st = self.state.borrow_mut();
            if st.fifo.is_empty() && st.fifo.capacity() > FIFO_KEEP {
                st.fifo = VecDeque::new();
            }
            if st.fifo.is_empty() && st.keys.capacity() > KEYS_KEEP {
                st.keys = Vec::new();
            }
        } else if *start > 0 {
            bytes.drain(..*start);
            *need = need.saturating_sub(*start);
        }
        *start = 0;
        Ok(())
    }

    /// Counts the reply (`len` bytes) to request `waiting`, which leaves the
    /// FIFO; returns how long the server took on it.
    fn replied(&self, waiting: &Waiting, len: usize, arrived: Micros) -> Micros {
        crate::proxy::coalesce::count_event();
        let waited = arrived.saturating_sub(waiting.queued);
        if waiting.pending.client.is_none() {
            return waited;
        }
        let stats = self.stats.get();
        stats.responses.inc();
        stats.response_bytes.add(len as i64);
        stats.out_queue.add(-1);
        stats.out_queue_bytes.add(-i64::from(waiting.len));
        self.stats.latency().record_us(waited);
        let mut st = self.state.borrow_mut();
        st.outstanding.requests -= 1;
        st.outstanding.bytes -= i64::from(waiting.len);
        waited
    }

    /// Shares the reply to a combined line out among its members (each gets
    /// its part, or the whole reply when it is an error). A reply that does
    /// not fit the line fails them all: the connection is out of step.
    fn reply_group(
        &self,
        group: &mut Group,
        reply: &[u8],
        framed: Framed<'_>,
        arrived: Micros,
    ) -> Result<(), Failure> {
        let cut = match framed {
            Framed::Values(spans) => self.share_values(group, reply, spans, arrived),
            Framed::Elements(ends) => self.share_elements(group, reply, ends, arrived),
        };
        match cut {
            Cut::Invalid => Err(Failure::INVALID),
            Cut::Values | Cut::Same => Ok(()),
        }
    }

    /// A member's reply when the line's reply is not cut up: a failure when
    /// it does not fit the line (`Cut::Invalid`), else the reply itself (an
    /// error reply, the same for every member).
    fn reply_uncut(&self, member: Waiting, cut: &Cut, reply: &[u8], arrived: Micros) {
        if *cut == Cut::Invalid {
            member
                .pending
                .deliver(Err(Failure::INVALID), Framed::NONE, 0);
        } else {
            let waited = self.replied(&member, reply.len(), arrived);
            member.pending.deliver(Ok(reply), Framed::NONE, waited);
        }
    }

    /// A combined redis `MGET`'s reply: each member gets its elements.
    fn share_elements(
        &self,
        group: &mut Group,
        reply: &[u8],
        reply_ends: &[usize],
        arrived: Micros,
    ) -> Cut {
        let Group {
            members,
            bodies,
            ends,
            ..
        } = group;
        let cut = combine::cut_elements(
            reply,
            reply_ends,
            members.iter().map(|w| w.keys as usize),
            bodies,
        );
        let mut next_end = 0;
        for (i, member) in members.drain(..).enumerate() {
            match (&cut, bodies.get(i)) {
                (Cut::Values, Some(body)) => {
                    let count = member.keys;
                    let mine = reply_ends
                        .get(next_end..next_end + count as usize)
                        .unwrap_or_default();
                    next_end += count as usize;
                    ends.clear();
                    // Only a member that is a fragment of a split request
                    // uses them (in its merge).
                    if member.pending.fragment != WHOLE {
                        ends.extend(mine.iter().map(|&end| end - body.start));
                    }
                    // Counted as the reply the client gets (its own array header, then its elements).
                    let len = rustcracker_redis::header_len(count as usize) + body.len();
                    let waited = self.replied(&member, len, arrived);
                    member
                        .pending
                        .deliver_elements(count, &reply[body.clone()], ends, waited);
                }
                _ => self.reply_uncut(member, &cut, reply, arrived),
            }
        }
        cut
    }

    /// A combined memcache retrieval's reply: each member gets its `VALUE`
    /// blocks then `END`.
    fn share_values(
        &self,
        group: &mut Group,
        reply: &[u8],
        reply_spans: &[ValueSpan],
        arrived: Micros,
    ) -> Cut {
        let Group {
            members,
            keys,
            bodies,
            spans,
            ..
        } = group;
        let cut = combine::cut(
            reply,
            reply_spans,
            keys,
            members.iter().map(|w| w.keys as usize),
            bodies,
        );
        keys.clear();
        // The blocks are in member order: each member's spans follow the last one's.
        let mut next_span = 0;
        for (i, member) in members.drain(..).enumerate() {
            match (&cut, bodies.get(i)) {
                (Cut::Values, Some(body)) => {
                    let first = next_span;
                    while reply_spans
                        .get(next_span)
                        .is_some_and(|s| s.end <= body.end)
                    {
                        next_span += 1;
                    }
                    spans.clear();
                    // Only a member that is a fragment of a split request uses
                    // them (in its merge).
                    if member.pending.fragment != WHOLE {
                        let mine = reply_spans.get(first..next_span).unwrap_or_default();
                        spans.extend(mine.iter().filter_map(|s| s.relative_to(body.start)));
                    }
                    let waited = self.replied(&member, body.len() + b"END\r\n".len(), arrived);
                    member
                        .pending
                        .deliver_values(&reply[body.clone()], spans, waited);
                }
                _ => self.reply_uncut(member, &cut, reply, arrived),
            }
        }
        cut
    }
}
