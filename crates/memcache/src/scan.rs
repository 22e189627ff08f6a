//! Byte scans over keys and command lines, eight bytes at a time.
//!
//! Keys run to 250 bytes and every `VALUE` header and retrieval line has them: a byte loop cost
//! about seven instructions a byte there (callgrind: ~100 of the ~300 instructions a `VALUE` block
//! took to frame). Safe code on `u64` words; the tail goes byte by byte.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bytes of `word` equal to `byte` get their high bit set. Exact for the lowest such byte (a
/// borrow can only flag bytes above a real match), which is the only one read.
fn matches(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Bytes scanned a word at a time before handing over to `memchr2`, whose vector loop is faster
/// on long runs but whose set-up costs ~80 instructions: keys and most lines end before this.
const WORDS_FIRST: usize = 32;

/// The index of the first byte of `bytes` that is `a` or `b`, for runs that may be long (a line's
/// end): words first, then `memchr2`.
pub(crate) fn find_either(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    if bytes.len() > WORDS_FIRST {
        let (head, rest) = bytes.split_at(WORDS_FIRST);
        return find_either_words(head, a, b)
            .or_else(|| memchr::memchr2(a, b, rest).map(|p| WORDS_FIRST + p));
    }
    find_either_words(bytes, a, b)
}

/// [`find_either`] a word at a time all the way, for runs that end early (keys, tokens).
#[inline(always)]
pub(crate) fn find_either_words(bytes: &[u8], a: u8, b: u8) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let found = matches(word, a) | matches(word, b);
        if found != 0 {
            // Little-endian: the lowest flagged byte is the first in memory.
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    let tail = chunks.remainder().iter().position(|&c| c == a || c == b)?;
    Some(base + tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_position_and_length() {
        for len in 0..80 {
            for at in 0..=len {
                let mut bytes = vec![b'k'; len];
                if at < len {
                    bytes[at] = b'\r';
                }
                let want = (at < len).then_some(at);
                assert_eq!(find_either(&bytes, b' ', b'\r'), want, "len {len} at {at}");
                assert_eq!(find_either(&bytes, b'\r', b' '), want, "len {len} at {at}");
                assert_eq!(
                    find_either_words(&bytes, b' ', b'\r'),
                    want,
                    "len {len} at {at}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn find_either_as_a_byte_loop(bytes in proptest::collection::vec(any::<u8>(), 0..100),
                               a in any::<u8>(), b in any::<u8>()) {
            let want = bytes.iter().position(|&c| c == a || c == b);
            prop_assert_eq!(find_either(&bytes, a, b), want);
            prop_assert_eq!(find_either_words(&bytes, a, b), want);
        }

        #[test]
        fn near_misses(bytes in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'!'),
                           Just(0x1f_u8), Just(b'\r'), Just(0x0c_u8), Just(0x8d_u8), Just(0xa0_u8)], 0..80)) {
            // Bytes one off (and a high bit off) the ones sought: the carries of the word trick.
            let want = bytes.iter().position(|&c| c == b' ' || c == b'\r');
            prop_assert_eq!(find_either(&bytes, b' ', b'\r'), want);
        }
    }
}
