//! Combined retrievals: the memcache `get`s (and `gets`) that clients queue on
//! one server connection in one round leave as one `get k1 k2 …` line, and
//! its one reply is cut back into each request's reply.
//!
//! Why: memcached 1.6 answers every `get` of a pipeline with its own
//! `sendmsg`, a multi-key `get` with one. On this project's bench machine a
//! pipelined single-key `get` cost memcached ~11 µs, a key of an 8-key `get`
//! ~2.5 µs; and each `sendmsg` is one more segment for the proxy to receive.
//! nutcracker forwards every `get` as it came.
//!
//! This module is the pure part: where each member's `VALUE` blocks sit in
//! the combined reply. memcached answers the keys of a line in order and
//! leaves misses out, so the blocks are matched to the keys in one pass.
//!
//! redis `MGET`s are combined the same way (`*N MGET k1 … kN`), for the same
//! reason: redis's cost per command is several times its cost per key of an
//! `MGET`. Its reply is an array with one element per key, in order, so each
//! member's part is its count of elements ([`cut_elements`]). Single-key
//! `GET`s are not turned into `MGET`s: `GET` of a list is an error, `MGET`
//! answers nil for it.
//!
//! A key is never in two members of one memcache line ([`has_key`] keeps it out):
//! with a concurrent `set`, memcached could find it missing for the first
//! and present for the second, and which member a lone `VALUE` belonged to
//! would be a guess. Within one member (a client's own `get a a`) the member
//! gets exactly the blocks memcached sent, as without combining.

use std::ops::Range;

use rustcracker_memcache::ValueSpan;

/// The most keys one combined line carries (clients' own multi-gets may be longer: they are sent
/// as they are, alone).
pub const KEYS_MAX: usize = 100;
/// The longest combined line: memcached reads lines of up to 2 KiB in its ordinary path.
pub const LINE_MAX: usize = 2048;
/// Requests (or multi-get fragments) of more keys go alone and take no company: memcached's cost
/// per line is then small beside its cost per key, and cutting their reply would cost the proxy
/// more than the line saves (callgrind, multi-gets of 100 keys over 2 servers from 50 clients:
/// ~185k instructions per request combined, ~125k alone).
pub const MEMBER_KEYS_MAX: usize = 16;

/// Whether `key` is one of the space-separated `keys` (the keys of an open line).
pub fn has_key(keys: &[u8], key: &[u8]) -> bool {
    // Token by token, comparing only tokens of the same length (a memmem
    // searcher costs more to build than this scan of a short line).
    let mut start = 0;
    for end in memchr::memchr_iter(b' ', keys).chain(std::iter::once(keys.len())) {
        if end - start == key.len() && &keys[start..end] == key {
            return true;
        }
        start = end + 1;
    }
    false
}

/// The keys on an open line, as a Bloom filter (1,024 bits, two per key):
/// most keys are new, and this answers for them without scanning the line.
#[derive(Clone, Default)]
pub struct KeySet([u64; 16]);

impl KeySet {
    /// Forgets every key.
    pub fn clear(&mut self) {
        self.0 = [0; 16];
    }

    /// Adds `key`.
    pub fn insert(&mut self, key: &[u8]) {
        self.insert_bits(Self::bits(key));
    }

    /// Adds the key of `bits` (from [`KeySet::bits`]).
    pub fn insert_bits(&mut self, bits: [usize; 2]) {
        for bit in bits {
            self.0[bit >> 6] |= 1 << (bit & 63);
        }
    }

    /// False when `key` was surely not added; true when it may have been.
    #[cfg(test)]
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.may_hold(Self::bits(key))
    }

    /// [`KeySet::may_contain`] for the key of `bits`.
    pub fn may_hold(&self, bits: [usize; 2]) -> bool {
        bits.iter()
            .all(|&bit| self.0[bit >> 6] & (1 << (bit & 63)) != 0)
    }

    /// The key's two bits.
    pub fn bits(key: &[u8]) -> [usize; 2] {
        let mut hash = key.len() as u64;
        for chunk in key.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        hash ^= hash >> 32;
        [(hash & 1023) as usize, ((hash >> 10) & 1023) as usize]
    }
}

/// How a combined reply is shared out.
#[derive(Debug, PartialEq, Eq)]
pub enum Cut {
    /// Each member's `VALUE` blocks (without the `END`) are at its range of the reply.
    Values,
    /// Not a retrieval reply (`SERVER_ERROR …`): every member gets it as it is.
    Same,
    /// A value no member asked for, or out of order: the connection is out of step.
    Invalid,
}

/// Cuts `reply` (one complete reply to a combined line) among its members.
/// `spans` are its `VALUE` blocks, as framing it found them (so no header is
/// read twice); `keys` holds the members' keys in line order, each followed
/// by one space; `member_key_bytes` gives, per member, how many bytes of
/// `keys` are its. Fills `bodies` with one range per member when the answer
/// is [`Cut::Values`].
pub fn cut(
    reply: &[u8],
    spans: &[ValueSpan],
    keys: &[u8],
    member_key_bytes: impl IntoIterator<Item = usize>,
    bodies: &mut Vec<Range<usize>>,
) -> Cut {
    bodies.clear();
    if !reply.starts_with(b"VALUE ") && reply != b"END\r\n" {
        return Cut::Same;
    }
    let mut members = member_key_bytes.into_iter();
    let Some(mut member_end) = members.next() else {
        return Cut::Invalid;
    };
    // The current member's blocks start here; `pos` walks `keys`.
    let mut start = 0;
    let mut pos = 0;
    let mut blocks_end = 0;
    for span in spans {
        let Some(block) = span.block(reply) else {
            return Cut::Invalid;
        };
        loop {
            let Some(len) = keys
                .get(pos..)
                .and_then(|k| k.iter().position(|&b| b == b' '))
            else {
                return Cut::Invalid;
            };
            let (at, key) = (pos, &keys[pos..pos + len]);
            pos += len + 1;
            // Members whose keys all came before this one are complete.
            while at >= member_end {
                bodies.push(start..block.range.start);
                start = block.range.start;
                let Some(bytes) = members.next() else {
                    return Cut::Invalid;
                };
                member_end += bytes;
            }
            if key == block.key {
                break;
            }
        }
        blocks_end = block.range.end;
    }
    if reply.get(blocks_end..) != Some(&b"END\r\n"[..]) {
        return Cut::Invalid;
    }
    bodies.push(start..blocks_end);
    bodies.extend(members.map(|_| blocks_end..blocks_end));
    Cut::Values
}

/// Cuts `reply` (one complete reply to a combined redis `MGET`) among its
/// members: `ends` are where its elements end, as framing recorded them;
/// `member_keys` gives each member's key count. Fills `bodies` with each
/// member's elements (without the array header) when the answer is
/// [`Cut::Values`].
pub fn cut_elements(
    reply: &[u8],
    ends: &[usize],
    member_keys: impl IntoIterator<Item = usize>,
    bodies: &mut Vec<Range<usize>>,
) -> Cut {
    bodies.clear();
    // An error (or any reply that is not an array) answers every member.
    if !reply.starts_with(b"*") {
        return Cut::Same;
    }
    let Some(mut start) = memchr::memchr(b'\n', reply).map(|i| i + 1) else {
        return Cut::Invalid;
    };
    let mut taken = 0;
    for count in member_keys {
        taken += count;
        let end = match taken.checked_sub(1) {
            None => start,
            Some(last) => match ends.get(last) {
                Some(&end) if end >= start => end,
                _ => return Cut::Invalid,
            },
        };
        bodies.push(start..end);
        start = end;
    }
    // Exactly one element per key: framing recorded every element (an array
    // of scalars) and the members asked for them all.
    if taken != ends.len() || start != reply.len() {
        return Cut::Invalid;
    }
    Cut::Values
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value(key: &str, data: &str) -> String {
        format!("VALUE {key} 0 {}\r\n{data}\r\n", data.len())
    }

    /// Each member's part of `reply`.
    fn parts(reply: &str, bodies: &[Range<usize>]) -> Vec<String> {
        bodies
            .iter()
            .map(|r| reply[r.clone()].to_string())
            .collect()
    }

    /// Members' keys as the connection stores them, and their byte counts.
    fn keys_of(members: &[&[&str]]) -> (Vec<u8>, Vec<usize>) {
        let mut keys = Vec::new();
        let mut lens = Vec::new();
        for member in members {
            let start = keys.len();
            for key in *member {
                keys.extend_from_slice(key.as_bytes());
                keys.push(b' ');
            }
            lens.push(keys.len() - start);
        }
        (keys, lens)
    }

    fn cut_str(reply: &str, members: &[&[&str]]) -> (Cut, Vec<String>) {
        let (keys, lens) = keys_of(members);
        let mut bodies = Vec::new();
        let parser = rustcracker_memcache::ResponseParser::framing(reply.as_bytes());
        let cut = cut(
            reply.as_bytes(),
            parser.value_spans(),
            &keys,
            lens,
            &mut bodies,
        );
        (cut, parts(reply, &bodies))
    }

    #[test]
    fn each_member_gets_its_own_blocks_and_misses_get_none() {
        let reply = [value("a", "1"), value("c", "3"), value("d", "4")].concat() + "END\r\n";
        let (cut, parts) = cut_str(&reply, &[&["a"], &["b"], &["c", "x", "d"], &["e"]]);
        assert_eq!(cut, Cut::Values);
        assert_eq!(
            parts,
            [
                value("a", "1"),
                String::new(),
                value("c", "3") + &value("d", "4"),
                String::new()
            ]
        );
    }

    #[test]
    fn the_same_key_twice_is_answered_twice() {
        let reply = [value("a", "1"), value("a", "1")].concat() + "END\r\n";
        let (cut, parts) = cut_str(&reply, &[&["a"], &["a"]]);
        assert_eq!(cut, Cut::Values);
        assert_eq!(parts, [value("a", "1"), value("a", "1")]);
        // Deleted between the two lookups: the second one misses.
        let reply = value("a", "1") + "END\r\n";
        let (_, parts) = cut_str(&reply, &[&["a"], &["a"]]);
        assert_eq!(parts, [value("a", "1"), String::new()]);
    }

    #[test]
    fn all_misses_and_errors() {
        let (cut, parts) = cut_str("END\r\n", &[&["a"], &["b", "c"]]);
        assert_eq!(
            (cut, parts),
            (Cut::Values, vec![String::new(), String::new()])
        );
        let (cut, _) = cut_str("SERVER_ERROR out of memory\r\n", &[&["a"], &["b"]]);
        assert_eq!(cut, Cut::Same);
    }

    #[test]
    fn a_value_nobody_asked_for_is_out_of_step() {
        let reply = value("z", "1") + "END\r\n";
        assert_eq!(cut_str(&reply, &[&["a"], &["b"]]).0, Cut::Invalid);
        // In the wrong order.
        let reply = [value("b", "2"), value("a", "1")].concat() + "END\r\n";
        assert_eq!(cut_str(&reply, &[&["a"], &["b"]]).0, Cut::Invalid);
    }

    /// Cuts a redis reply among members of `counts` keys.
    fn cut_redis(reply: &str, counts: &[usize]) -> (Cut, Vec<String>) {
        let parser = rustcracker_redis::ResponseParser::framing(reply.as_bytes());
        let ends = parser.element_ends().unwrap_or_default();
        let mut bodies = Vec::new();
        let cut = cut_elements(reply.as_bytes(), ends, counts.iter().copied(), &mut bodies);
        (cut, parts(reply, &bodies))
    }

    #[test]
    fn each_mget_member_gets_its_own_elements() {
        let reply = "*4\r\n$1\r\na\r\n$-1\r\n$3\r\nccc\r\n$0\r\n\r\n";
        let (cut, parts) = cut_redis(reply, &[1, 2, 1]);
        assert_eq!(cut, Cut::Values);
        assert_eq!(parts, ["$1\r\na\r\n", "$-1\r\n$3\r\nccc\r\n", "$0\r\n\r\n"]);
        // The same key in two members: each gets its own element.
        let (cut, parts) = cut_redis("*2\r\n$1\r\nx\r\n$1\r\nx\r\n", &[1, 1]);
        assert_eq!((cut, parts.len()), (Cut::Values, 2));
    }

    #[test]
    fn an_mget_reply_that_does_not_fit_is_out_of_step() {
        // Too few or too many elements for the members' keys.
        assert_eq!(cut_redis("*1\r\n$1\r\na\r\n", &[1, 1]).0, Cut::Invalid);
        assert_eq!(
            cut_redis("*3\r\n$1\r\na\r\n$-1\r\n$-1\r\n", &[1, 1]).0,
            Cut::Invalid
        );
        assert_eq!(cut_redis("*0\r\n", &[1]).0, Cut::Invalid);
        // Not an array of scalars: framing recorded no ends.
        assert_eq!(cut_redis("*2\r\n*0\r\n$-1\r\n", &[1, 1]).0, Cut::Invalid);
        // An error answers everyone.
        assert_eq!(
            cut_redis("-NOAUTH Authentication required.\r\n", &[1, 2]).0,
            Cut::Same
        );
    }

    #[test]
    fn the_key_set_never_misses_a_key_it_holds() {
        let mut set = KeySet::default();
        let keys: Vec<String> = (0..100).map(|i| format!("lg:{i:010}")).collect();
        for key in &keys {
            set.insert(key.as_bytes());
        }
        assert!(keys.iter().all(|k| set.may_contain(k.as_bytes())));
        // Few false positives at a full line's 100 keys (two bits per key in 1,024: ~3%).
        let others = (100..10_100).filter(|i| set.may_contain(format!("lg:{i:010}").as_bytes()));
        assert!(others.count() < 800);
        set.clear();
        assert!(!set.may_contain(b"lg:0000000001"));
    }

    #[test]
    fn has_key_matches_whole_keys_only() {
        let keys = b"ab abc x";
        assert!(has_key(keys, b"ab"));
        assert!(has_key(keys, b"abc"));
        assert!(has_key(keys, b"x"));
        assert!(!has_key(keys, b"a"));
        assert!(!has_key(keys, b"bc"));
        assert!(!has_key(keys, b"abcd"));
        assert!(!has_key(b"", b"a"));
    }

    proptest! {
        /// Any members (no key in two of them, a key maybe twice in one),
        /// any subset hit: each member's body is exactly the blocks of its
        /// own hits, in order.
        #[test]
        fn bodies_are_the_members_hits(
            members in prop::collection::vec(prop::collection::vec(0u8..3, 1..4), 1..8),
            hits in prop::collection::vec(any::<bool>(), 64),
        ) {
            let names: Vec<Vec<String>> = members
                .iter()
                .enumerate()
                .map(|(i, m)| m.iter().map(|k| format!("m{i}k{k}")).collect())
                .collect();
            let mut reply = String::new();
            let mut expected = Vec::new();
            let mut n = 0;
            for member in &names {
                let mut body = String::new();
                for key in member {
                    if hits[n % hits.len()] {
                        body += &value(key, &format!("v{n}"));
                    }
                    n += 1;
                }
                reply += &body;
                expected.push(body);
            }
            reply += "END\r\n";
            let refs: Vec<Vec<&str>> =
                names.iter().map(|m| m.iter().map(String::as_str).collect()).collect();
            let refs: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
            let (cut, parts) = cut_str(&reply, &refs);
            prop_assert_eq!(cut, Cut::Values);
            prop_assert_eq!(parts, expected);
        }
    }
}
