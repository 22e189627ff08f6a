//! MD5-based hashing: the `md5` key hash and the ketama point hash.

use ::md5::{Digest, Md5};

fn digest(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// The `md5` key hash: the first four digest bytes, little-endian.
pub(super) fn md5(key: &[u8]) -> u32 {
    ketama_hash(key, 0)
}

/// The ketama point hash: MD5 of `s`, digest bytes `4*alignment ..
/// 4*alignment+3` read little-endian. `alignment` is taken modulo 4.
pub fn ketama_hash(s: &[u8], alignment: usize) -> u32 {
    digest_word(&digest(s), alignment)
}

/// Word `alignment % 4` of a digest, little-endian.
pub(crate) fn digest_word(d: &[u8; 16], alignment: usize) -> u32 {
    let i = (alignment % 4) * 4;
    u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]])
}

/// The four little-endian words of MD5(`s`): the four ketama points one
/// `"<name>-<j>"` string yields.
pub(crate) fn ketama_points(s: &[u8]) -> [u32; 4] {
    let d = digest(s);
    [
        digest_word(&d, 0),
        digest_word(&d, 1),
        digest_word(&d, 2),
        digest_word(&d, 3),
    ]
}
