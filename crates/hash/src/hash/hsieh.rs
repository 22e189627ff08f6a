//! Paul Hsieh's SuperFastHash as nutcracker builds it on x86-64.

/// Two bytes little-endian. nutcracker's 16-bit read is a byte-wise macro
/// on x86-64 (the pointer-cast version is for i386 only), so bytes are
/// unsigned here.
#[inline]
fn get16(b: &[u8]) -> u32 {
    u32::from(b[0]) | (u32::from(b[1]) << 8)
}

/// SuperFastHash, with two nutcracker quirks: the state starts at 0 instead
/// of the length, and the third byte of a 3-byte tail is a signed `char`
/// (sign-extended before the shift). The 1-byte tail is cast to unsigned.
pub(super) fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let mut hash: u32 = 0;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        hash = hash.wrapping_add(get16(c));
        let tmp = (get16(&c[2..]) << 11) ^ hash;
        hash = (hash << 16) ^ tmp;
        hash = hash.wrapping_add(hash >> 11);
    }
    match *chunks.remainder() {
        [b0, b1, b2] => {
            hash = hash.wrapping_add(get16(&[b0, b1]));
            hash ^= hash << 16;
            hash ^= super::signed(b2) << 18;
            hash = hash.wrapping_add(hash >> 11);
        }
        [b0, b1] => {
            hash = hash.wrapping_add(get16(&[b0, b1]));
            hash ^= hash << 11;
            hash = hash.wrapping_add(hash >> 17);
        }
        [b0] => {
            hash = hash.wrapping_add(u32::from(b0));
            hash ^= hash << 10;
            hash = hash.wrapping_add(hash >> 1);
        }
        _ => {}
    }
    hash ^= hash << 3;
    hash = hash.wrapping_add(hash >> 5);
    hash ^= hash << 4;
    hash = hash.wrapping_add(hash >> 17);
    hash ^= hash << 25;
    hash = hash.wrapping_add(hash >> 6);
    hash
}
