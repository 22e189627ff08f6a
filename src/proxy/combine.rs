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
//! A key is never in two members of one line ([`has_key`] keeps it out):
//! with a concurrent `set`, memcached could find it missing for the first
//! and present for the second, and which member a lone `VALUE` belonged to
//! would be a guess. Within one member (a client's own `get a a`) the member
//! gets exactly the blocks memcached sent, as without combining.

use std::ops::Range;

/// The most keys one combined line carries (clients' own multi-gets may be longer: they are sent
/// as they are, alone).
pub const KEYS_MAX: usize = 100;
/// The longest combined line: memcached reads lines of up to 2 KiB in its ordinary path.
pub const LINE_MAX: usize = 2048;

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
/// `keys` holds the members' keys in line order, each followed by one space;
/// `member_key_bytes` gives, per member, how many bytes of `keys` are its.
/// Fills `bodies` with one range per member when the answer is [`Cut::Values`].
pub fn cut(
    reply: &[u8],
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
    for block in rustcracker_memcache::value_blocks(reply) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value(key: &str, data: &str) -> String {
        format!("VALUE {key} 0 {}\r\n{data}\r\n", data.len())
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
        let cut = cut(reply.as_bytes(), &keys, lens, &mut bodies);
        let parts = bodies
            .iter()
            .map(|r| reply[r.clone()].to_string())
            .collect();
        (cut, parts)
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
