//! A server connection's combined retrieval line: memcache `get`s (or redis
//! `MGET`s) queued for the same server in one round join one line (see
//! [`crate::proxy::combine`]), and the reply to it is shared out among them.

use super::replies::Group;
use super::{ConnectionState, Waiting};
use crate::proxy::combine;

/// The retrieval at the end of a connection's output, not yet written, that
/// later retrievals may join (see [`combine`]).
#[derive(Clone, Copy)]
pub(super) struct OpenLine {
    kind: LineKind,
    /// Where the line starts and ends in `out` (it is joinable only while
    /// it still ends `out`).
    start: usize,
    end: usize,
    keys: usize,
    /// Another request joined it (the first one's keys were recorded then).
    joined: bool,
}

/// What an open line asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Get,
    Gets,
    /// A redis `MGET` (a multi-bulk request).
    Mget,
}

/// The most bytes a combined redis `MGET` grows to (a member's key may be
/// long; redis reads bigger requests, but each join may move the request
/// when its header grows a digit).
const MGET_BYTES_MAX: usize = 16 * 1024;

/// Where the keys of a multi-bulk `MGET` (`*N\r\n$4\r\nMGET\r\n<keys>`) start, and
/// how many there are; `None` for anything else, and for `MGET`s of more
/// than [`combine::MEMBER_KEYS_MAX`] keys. The proxy writes `MGET`s in this
/// form (client requests, whose argument headers the parser takes only in
/// this form, fragments, re-encoded inline requests).
fn mget_keys(request: &[u8]) -> Option<(usize, usize)> {
    // A byte at a time: this runs for every MGET, and the count is short.
    if request.first() != Some(&b'*') {
        return None;
    }
    let mut count = 0;
    let mut at = 1;
    while let Some(&digit @ b'0'..=b'9') = request.get(at) {
        count = count * 10 + usize::from(digit - b'0');
        at += 1;
        if count > combine::MEMBER_KEYS_MAX + 1 {
            return None;
        }
    }
    let command = request.get(at..at + 12)?;
    let is_mget = command.starts_with(b"\r\n$4\r\n")
        && command[6..10].eq_ignore_ascii_case(b"MGET")
        && command.ends_with(b"\r\n");
    (is_mget && count >= 2).then_some((at + 12, count - 1))
}

/// The keys of a retrieval line `get k1 k2\r\n` (`gets …` when `gets`): `k1 k2`.
fn keys_on(line: &[u8], gets: bool) -> &[u8] {
    // The proxy writes these lines itself: the command, one space, the keys, `\r\n`.
    let start = if gets { 5 } else { 4 };
    line.get(start..line.len().saturating_sub(2))
        .unwrap_or_default()
}

/// How many keys a line's `keys` (from [`keys_on`]) hold, counted up to one
/// more than [`combine::MEMBER_KEYS_MAX`]: a line with more never joins
/// another, so a multi-get's fragment of 50 keys is not scanned to its end.
fn key_count(keys: &[u8]) -> usize {
    keys.iter()
        .filter(|&&b| b == b' ')
        .take(combine::MEMBER_KEYS_MAX)
        .count()
        + 1
}

impl ConnectionState {
    /// Puts retrieval `line` in `out`: joined to the open line when it may
    /// be (returning the bytes its keys take in `keys`), else as the new open line.
    pub(super) fn put_retrieval(&mut self, line: &[u8]) -> Option<u32> {
        let gets = line.starts_with(b"gets ");
        let kind = if gets { LineKind::Gets } else { LineKind::Get };
        let new_keys = keys_on(line, gets);
        let keys = key_count(new_keys);
        let combinable = self.combine_max > 0 && keys <= combine::MEMBER_KEYS_MAX;
        let joined = if combinable {
            self.join(new_keys, kind, keys)
        } else {
            None
        };
        if joined.is_none() {
            let start = self.out.len();
            self.out.extend_from_slice(line);
            self.open = None;
            if combinable {
                self.open_keys.clear();
                for key in new_keys.split(|&b| b == b' ') {
                    self.open_keys.insert(key);
                }
                self.open = Some(OpenLine {
                    kind,
                    start,
                    end: self.out.len(),
                    keys,
                    joined: false,
                });
            }
        }
        joined
    }

    /// Joins a retrieval of `new_keys` (`count` of them) to the open line if
    /// it may: same command, the open line still unwritten and last in `out`,
    /// within the line bounds, and none of the keys already on it. Returns the
    /// bytes its keys take in `keys`.
    fn join(&mut self, new_keys: &[u8], kind: LineKind, count: usize) -> Option<u32> {
        let gets = kind == LineKind::Gets;
        let mut open = self.open?;
        if open.end != self.out.len()
            || open.kind != kind
            || new_keys.is_empty()
            || open.keys + count > self.combine_max
            || open.end - open.start + new_keys.len() + 1 > combine::LINE_MAX
        {
            return None;
        }
        // None of the new keys may be on the line already (a repeat within
        // them is theirs to keep); they go into the line's key set once
        // they join.
        let open_keys = keys_on(&self.out[open.start..open.end], gets);
        let mut bits = [[0; 2]; combine::MEMBER_KEYS_MAX];
        for (slot, key) in bits.iter_mut().zip(new_keys.split(|&b| b == b' ')) {
            *slot = combine::KeySet::bits(key);
            if self.open_keys.may_hold(*slot) && combine::has_key(open_keys, key) {
                return None;
            }
        }
        for &key_bits in &bits[..count] {
            self.open_keys.insert_bits(key_bits);
        }
        if !open.joined {
            // The line's first request has company now: record its keys too
            // (its FIFO entry is the last one: nothing was queued after it).
            let first = self.fifo.back_mut()?;
            first.keys = open_keys.len() as u32 + 1;
            self.keys.extend_from_slice(open_keys);
            self.keys.push(b' ');
            open.joined = true;
        }
        self.out.truncate(open.end - 2);
        self.out.push(b' ');
        self.out.extend_from_slice(new_keys);
        self.out.extend_from_slice(b"\r\n");
        self.keys.extend_from_slice(new_keys);
        self.keys.push(b' ');
        open.keys += count;
        open.end = self.out.len();
        self.open = Some(open);
        Some(new_keys.len() as u32 + 1)
    }

    /// Puts redis `request` in `out`: joined to the open `MGET` when it is
    /// one of few keys and may join (returning its key count), else as it is
    /// (and as the new open line when it is an `MGET` others may join).
    pub(super) fn put_mget(&mut self, request: &[u8]) -> Option<u32> {
        let keys = mget_keys(request).filter(|_| self.combine_max > 0);
        if let Some((start, count)) = keys {
            if let Some(joined) = self.join_mget(&request[start..], count) {
                return Some(joined);
            }
        }
        let start = self.out.len();
        self.out.extend_from_slice(request);
        self.open = keys.map(|(_, count)| OpenLine {
            kind: LineKind::Mget,
            start,
            end: self.out.len(),
            keys: count,
            joined: false,
        });
        None
    }

    /// Joins an `MGET` of `count` keys (`keys`: their multi-bulk arguments)
    /// to the open one if it may: the open line still unwritten and last in
    /// `out`, within the bounds. Unlike memcache, a key may be on the line
    /// twice: redis answers every key of an `MGET` in its place, from one
    /// snapshot, so each member's elements are its own.
    fn join_mget(&mut self, keys: &[u8], count: usize) -> Option<u32> {
        let mut open = self.open?;
        if open.end != self.out.len()
            || open.kind != LineKind::Mget
            || open.keys + count > self.combine_max
            || open.end - open.start + keys.len() > MGET_BYTES_MAX
        {
            return None;
        }
        let header_len = rustcracker_redis::header_len(open.keys + 1);
        if !open.joined {
            // The line's first request has company now: record its key count
            // (its FIFO entry is the last one: nothing was queued after it).
            self.fifo.back_mut()?.keys = open.keys as u32;
            open.joined = true;
        }
        // The new argument count, `*<keys + 1>\r\n`; it moves the rest of
        // the line only when it grows a digit.
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(open.keys + count + 1).as_bytes();
        let mut header = [0u8; 24];
        header[0] = b'*';
        header[1..=digits.len()].copy_from_slice(digits);
        header[digits.len() + 1..digits.len() + 3].copy_from_slice(b"\r\n");
        let header = &header[..digits.len() + 3];
        let old = open.start..open.start + header_len;
        if header.len() == header_len {
            self.out[old].copy_from_slice(header);
        } else {
            self.out.splice(old, header.iter().copied());
        }
        self.out.extend_from_slice(keys);
        open.keys += count;
        open.end = self.out.len();
        self.open = Some(open);
        Some(count as u32)
    }

    /// Takes the requests a reply is for: the FIFO's head, or when it heads
    /// a combined line, every member (into `group`, with their keys).
    pub(super) fn take_reply(&mut self, group: &mut Group) -> Option<Waiting> {
        let head = self.fifo.pop_front()?;
        if head.keys == 0 {
            return Some(head);
        }
        let mut total = head.keys as usize;
        group.members.push(head);
        while let Some(member) = self.fifo.pop_front() {
            if !member.joined {
                self.fifo.push_front(member);
                break;
            }
            total += member.keys as usize;
            group.members.push(member);
        }
        if !self.keyed {
            // redis: `total` counts keys; the reply is cut by position.
            return None;
        }
        let end = (self.keys_head + total).min(self.keys.len());
        group
            .keys
            .extend_from_slice(&self.keys[self.keys_head..end]);
        self.keys_head = end;
        if self.keys_head == self.keys.len() {
            self.keys.clear();
            self.keys_head = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::server::{Pending, WHOLE};

    /// A memcache connection's state.
    fn state(combine_max: usize) -> ConnectionState {
        ConnectionState::new(combine_max, true)
    }

    /// A redis connection's state.
    fn redis_state(combine_max: usize) -> ConnectionState {
        ConnectionState::new(combine_max, false)
    }

    /// Enters a request just put in `out` in the FIFO, as `queued` does (without the stats).
    fn enter(st: &mut ConnectionState, joined: Option<u32>) {
        st.fifo.push_back(Waiting {
            pending: Pending {
                client: None,
                seq: 0,
                fragment: WHOLE,
                deadline: None,
            },
            len: 0,
            queued: 0,
            keys: joined.unwrap_or(0),
            joined: joined.is_some(),
        });
    }

    /// Queues retrieval lines as `enqueue_retrieval` does.
    fn put(st: &mut ConnectionState, lines: &[&str]) {
        for line in lines {
            let joined = st.put_retrieval(format!("{line}\r\n").as_bytes());
            enter(st, joined);
        }
    }

    /// Queues redis requests as `enqueue_mget` does.
    fn put_redis(st: &mut ConnectionState, requests: &[&[&str]]) {
        for args in requests {
            let mut request = format!("*{}\r\n", args.len());
            for arg in *args {
                request += &format!("${}\r\n{arg}\r\n", arg.len());
            }
            let joined = st.put_mget(request.as_bytes());
            enter(st, joined);
        }
    }

    fn out(st: &ConnectionState) -> String {
        String::from_utf8_lossy(&st.out).into_owned()
    }

    #[test]
    fn retrievals_join_the_open_line() {
        let mut st = state(100);
        put(&mut st, &["get a", "get b c", "get d"]);
        assert_eq!(out(&st), "get a b c d\r\n");
        assert_eq!(st.keys, b"a b c d ");
        let entries: Vec<_> = st.fifo.iter().map(|w| (w.keys, w.joined)).collect();
        assert_eq!(entries, [(2, false), (4, true), (2, true)]);
        // The reply is for all three, with their keys.
        let mut group = Group::default();
        assert!(st.take_reply(&mut group).is_none());
        assert_eq!(
            (group.members.len(), &group.keys[..]),
            (3, &b"a b c d "[..])
        );
        assert!(st.fifo.is_empty() && st.keys.is_empty());
    }

    #[test]
    fn mgets_join_the_open_mget() {
        let mut st = redis_state(100);
        put_redis(
            &mut st,
            &[&["MGET", "a"], &["mget", "b", "c"], &["MGET", "a"]],
        );
        assert_eq!(
            out(&st),
            "*5\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n"
        );
        let entries: Vec<_> = st.fifo.iter().map(|w| (w.keys, w.joined)).collect();
        assert_eq!(entries, [(1, false), (2, true), (1, true)]);
        let mut group = Group::default();
        assert!(st.take_reply(&mut group).is_none());
        assert_eq!(group.members.len(), 3);
        // Cut by position: no keys kept.
        assert!(st.fifo.is_empty() && group.keys.is_empty() && st.keys.is_empty());
    }

    #[test]
    fn a_combined_mget_header_grows_its_digits() {
        let mut st = redis_state(100);
        let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
        for key in &keys {
            put_redis(&mut st, &[&["MGET", key]]);
        }
        let mut expected = "*13\r\n$4\r\nMGET\r\n".to_string();
        for key in &keys {
            expected += &format!("${}\r\n{key}\r\n", key.len());
        }
        assert_eq!(out(&st), expected);
    }

    #[test]
    fn what_mget_does_not_join() {
        // Other commands close the open MGET and are never joined.
        let mut st = redis_state(100);
        put_redis(
            &mut st,
            &[
                &["MGET", "a"],
                &["GET", "b"],
                &["MGET", "c"],
                &["MGET", "d"],
            ],
        );
        assert_eq!(
            out(&st),
            "*2\r\n$4\r\nMGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n\
             *3\r\n$4\r\nMGET\r\n$1\r\nc\r\n$1\r\nd\r\n"
        );
        // At most `combine_max` keys a line; a wide MGET goes alone and takes no company.
        let mut st = redis_state(3);
        put_redis(&mut st, &[&["MGET", "a", "b"], &["MGET", "c", "d"]]);
        assert_eq!(st.fifo.iter().filter(|w| w.joined).count(), 0);
        let wide: Vec<String> = (0..17).map(|i| format!("w{i}")).collect();
        let mut args = vec!["MGET"];
        args.extend(wide.iter().map(String::as_str));
        let mut st = redis_state(100);
        put_redis(&mut st, &[&["MGET", "a"], &args, &["MGET", "b"]]);
        assert_eq!(st.fifo.iter().filter(|w| w.joined).count(), 0);
        // Not combining: every request as it came.
        let mut st = redis_state(0);
        put_redis(&mut st, &[&["MGET", "a"], &["MGET", "b"]]);
        assert_eq!(st.fifo.iter().filter(|w| w.joined).count(), 0);
    }

    #[test]
    fn only_multi_bulk_mgets_of_few_keys_are_recognised() {
        assert_eq!(mget_keys(b"*2\r\n$4\r\nMGET\r\n$1\r\na\r\n"), Some((14, 1)));
        assert_eq!(
            mget_keys(b"*3\r\n$4\r\nmget\r\n$1\r\na\r\n$1\r\nb\r\n"),
            Some((14, 2))
        );
        let wide = format!("*{}\r\n$4\r\nMGET\r\n", combine::MEMBER_KEYS_MAX + 2);
        assert_eq!(mget_keys(wide.as_bytes()), None);
        for other in [
            &b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n"[..],
            b"*1\r\n$4\r\nMGET\r\n",
            b"*2\r\n$4\r\nMSET\r\n$1\r\na\r\n",
            b"MGET a\r\n",
            b"*2\r\n$4\r\nMGET",
            b"",
        ] {
            assert_eq!(mget_keys(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn what_does_not_join() {
        // get and gets do not mix; a key already on the line starts a new one.
        let mut st = state(100);
        put(
            &mut st,
            &["get a", "gets b", "gets c", "get d", "get d", "get e"],
        );
        assert_eq!(out(&st), "get a\r\ngets b c\r\nget d\r\nget d e\r\n");
        // A single line keeps no keys: its reply goes to it whole.
        let mut group = Group::default();
        assert!(st.take_reply(&mut group).is_some());
        assert!(st.take_reply(&mut group).is_none());
        assert_eq!((group.members.len(), &group.keys[..]), (2, &b"b c "[..]));
    }

    #[test]
    fn lines_are_bounded_and_other_bytes_close_them() {
        let mut st = state(2);
        put(&mut st, &["get a", "get b", "get c", "get d e", "get f"]);
        assert_eq!(out(&st), "get a b\r\nget c\r\nget d e\r\nget f\r\n");
        // Anything queued after the open line (a write, another command) closes it.
        st.out.extend_from_slice(b"delete x\r\n");
        put(&mut st, &["get g"]);
        assert!(out(&st).ends_with("delete x\r\nget g\r\n"));
        // 2 KiB at most.
        let mut st = state(100);
        let long = format!("get {}", "k".repeat(250));
        let longs: Vec<String> = (0..9).map(|i| format!("{long}{i}")).collect();
        let lines: Vec<&str> = longs.iter().map(String::as_str).collect();
        put(&mut st, &lines);
        assert!(st
            .out
            .split(|&b| b == b'\n')
            .all(|l| l.len() <= combine::LINE_MAX));
        assert_eq!(st.out.iter().filter(|&&b| b == b'\n').count(), 2);
        // A request of many keys goes alone, and nothing joins it.
        let mut st = state(100);
        let wide = format!(
            "get {}",
            (0..17)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        put(&mut st, &["get a", &wide, "get b", "get c"]);
        assert_eq!(out(&st), format!("get a\r\n{wide}\r\nget b c\r\n"));
        // Not combining: every line as it came.
        let mut st = state(0);
        put(&mut st, &["get a", "get b"]);
        assert_eq!(out(&st), "get a\r\nget b\r\n");
    }
}
