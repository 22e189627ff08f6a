//! The four FNV variants. All of them read key bytes as signed `char`.

use super::signed;

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

/// 64-bit FNV-1 (multiply, then xor the sign-extended byte); the low 32 bits.
pub(super) fn fnv1_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_64_PRIME);
        // (uint64_t) of a negative char: sign-extended to all 64 bits.
        h ^= b as i8 as i64 as u64;
    }
    h as u32
}

/// nutcracker's "fnv1a_64": really FNV-1a in 32 bits, with the 64-bit basis
/// and prime truncated to their low 32 bits.
pub(super) fn fnv1a_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT as u32;
    for &b in key {
        h ^= signed(b);
        h = h.wrapping_mul(FNV_64_PRIME as u32);
    }
    h
}

/// 32-bit FNV-1.
pub(super) fn fnv1_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_32_PRIME);
        h ^= signed(b);
    }
    h
}

/// 32-bit FNV-1a.
pub(super) fn fnv1a_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h ^= signed(b);
        h = h.wrapping_mul(FNV_32_PRIME);
    }
    h
}
