//! crc16 (with nutcracker's unmasked accumulator), crc32 (libmemcached's
//! 15-bit variant) and crc32a (the standard CRC-32).
//!
//! The sign of key bytes does not matter here: every function masks the
//! byte-mixed index with 0xff.

/// CRC-16/XMODEM lookup table (polynomial 0x1021), built at compile time.
const CRC16_TABLE: [u16; 256] = crc16_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// The XMODEM table walk, but on a `uint32_t` that is never masked to 16
/// bits: the high bits keep the shifted-out history, so the result is not a
/// 16-bit CRC (`"123456789"` → 0x869031c3). `modula` sees those bits.
pub(super) fn crc16(key: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in key {
        let index = ((crc >> 8) ^ u32::from(b)) & 0xff;
        crc = (crc << 8) ^ u32::from(CRC16_TABLE[index as usize]);
    }
    crc
}

/// libmemcached's "crc32": the standard CRC-32, shifted right 16 and masked
/// to 15 bits.
pub(super) fn crc32(key: &[u8]) -> u32 {
    (crc32a(key) >> 16) & 0x7fff
}

/// The standard CRC-32 (IEEE 802.3, reflected, init and xorout 0xffffffff).
pub(super) fn crc32a(key: &[u8]) -> u32 {
    crc32fast::hash(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_spot_checks() {
        assert_eq!(super::CRC16_TABLE[1], 0x1021);
        assert_eq!(super::CRC16_TABLE[255], 0x1ef0);
        assert_eq!(super::CRC16_TABLE[128], 0x9188);
    }
}
