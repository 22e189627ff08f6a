//! The twelve hash functions of nutcracker's `hash:` directive, bit-exact
//! with nutcracker 0.5.0 built for x86-64.
//!
//! nutcracker passes keys as C `char *`, and `char` is signed on x86-64, so
//! several functions see bytes ≥ 0x80 as negative numbers and sign-extend
//! them. Each function below says whether it does; [`signed`] is the shared
//! helper.

mod crc;
mod fnv;
mod hsieh;
mod jenkins;
pub(crate) mod md5;
mod murmur;

pub use self::md5::ketama_hash;

/// A hash function selectable with the `hash:` directive.
// The variant names mirror nutcracker's names (`fnv1a_64` → `Fnv1a_64`);
// `Fnv1a64` would read as "FNV-1a-64" just as well but other crates already
// use these names, so the lint is silenced instead.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunction {
    /// Jenkins one-at-a-time, signed bytes.
    OneAtATime,
    /// MD5, first four digest bytes little-endian.
    Md5,
    /// CRC-16/XMODEM table with an unmasked 32-bit accumulator.
    Crc16,
    /// libmemcached's CRC-32: bits 16..31 of the standard CRC-32, masked to 15 bits.
    Crc32,
    /// The standard CRC-32 (IEEE).
    Crc32a,
    /// 64-bit FNV-1, signed bytes, low 32 bits returned.
    Fnv1_64,
    /// nutcracker's default: FNV-1a in 32-bit arithmetic with the truncated
    /// 64-bit basis and prime, signed bytes.
    Fnv1a_64,
    /// 32-bit FNV-1, signed bytes.
    Fnv1_32,
    /// 32-bit FNV-1a, signed bytes.
    Fnv1a_32,
    /// Paul Hsieh's SuperFastHash starting from 0.
    Hsieh,
    /// MurmurHash2 with seed `0xdeadbeef * len`.
    Murmur,
    /// Bob Jenkins' lookup3 `hashlittle` with initval 13.
    Jenkins,
}

impl HashFunction {
    /// Every hash function, in nutcracker's documentation order.
    pub const ALL: [HashFunction; 12] = [
        HashFunction::OneAtATime,
        HashFunction::Md5,
        HashFunction::Crc16,
        HashFunction::Crc32,
        HashFunction::Crc32a,
        HashFunction::Fnv1_64,
        HashFunction::Fnv1a_64,
        HashFunction::Fnv1_32,
        HashFunction::Fnv1a_32,
        HashFunction::Hsieh,
        HashFunction::Murmur,
        HashFunction::Jenkins,
    ];

    /// The name used in nutcracker.yml (`fnv1a_64`, …).
    pub fn name(self) -> &'static str {
        match self {
            HashFunction::OneAtATime => "one_at_a_time",
            HashFunction::Md5 => "md5",
            HashFunction::Crc16 => "crc16",
            HashFunction::Crc32 => "crc32",
            HashFunction::Crc32a => "crc32a",
            HashFunction::Fnv1_64 => "fnv1_64",
            HashFunction::Fnv1a_64 => "fnv1a_64",
            HashFunction::Fnv1_32 => "fnv1_32",
            HashFunction::Fnv1a_32 => "fnv1a_32",
            HashFunction::Hsieh => "hsieh",
            HashFunction::Murmur => "murmur",
            HashFunction::Jenkins => "jenkins",
        }
    }

    /// Looks a hash function up by its nutcracker.yml name (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<HashFunction> {
        HashFunction::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Hashes `key` exactly as nutcracker 0.5.0 on x86-64 does.
    ///
    /// This is the raw function: the empty-key and single-server shortcuts
    /// and hash tags are the router's business ([`crate::Router`]).
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            HashFunction::OneAtATime => jenkins::one_at_a_time(key),
            HashFunction::Md5 => md5::md5(key),
            HashFunction::Crc16 => crc::crc16(key),
            HashFunction::Crc32 => crc::crc32(key),
            HashFunction::Crc32a => crc::crc32a(key),
            HashFunction::Fnv1_64 => fnv::fnv1_64(key),
            HashFunction::Fnv1a_64 => fnv::fnv1a_64(key),
            HashFunction::Fnv1_32 => fnv::fnv1_32(key),
            HashFunction::Fnv1a_32 => fnv::fnv1a_32(key),
            HashFunction::Hsieh => hsieh::hsieh(key),
            HashFunction::Murmur => murmur::murmur(key),
            HashFunction::Jenkins => jenkins::lookup3(key),
        }
    }
}

impl std::fmt::Display for HashFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A key byte as x86-64 C code sees it through `(uint32_t) char_value`:
/// bytes ≥ 0x80 are negative `char`s and become 0xffffff80..0xffffffff.
#[inline]
fn signed(b: u8) -> u32 {
    b as i8 as i32 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's unit-test vectors for "apple" (twemproxy src/test_all.c,
    /// equal to libmemcached's tests/hash_results.h).
    #[test]
    fn apple_vectors() {
        let expected: [(HashFunction, u32); 12] = [
            (HashFunction::OneAtATime, 2297466611),
            (HashFunction::Md5, 3195025439),
            (HashFunction::Crc16, 3662830516),
            (HashFunction::Crc32, 10542),
            (HashFunction::Crc32a, 2838417488),
            (HashFunction::Fnv1_64, 473199127),
            (HashFunction::Fnv1a_64, 1488911807),
            (HashFunction::Fnv1_32, 67176023),
            (HashFunction::Fnv1a_32, 280767167),
            (HashFunction::Hsieh, 3738850110),
            (HashFunction::Murmur, 4142305122),
            (HashFunction::Jenkins, 1442444624),
        ];
        for (h, v) in expected {
            assert_eq!(h.hash(b"apple"), v, "{}", h.name());
        }
    }

    #[test]
    fn ketama_vectors() {
        assert_eq!(ketama_hash(b"server1-8", 0), 3853726576);
        assert_eq!(ketama_hash(b"server1-8", 3), 2667054752);
    }

    /// Values checked in C on x86-64 (rust guide §A6).
    #[test]
    fn quirk_vectors() {
        assert_eq!(HashFunction::Crc16.hash(b"123456789"), 0x869031c3);
        assert_eq!(
            HashFunction::Fnv1a_64.hash("user:été".as_bytes()),
            798168100
        );
        assert_eq!(HashFunction::Crc32a.hash(b"123456789"), 0xCBF43926);
    }

    #[test]
    fn names_round_trip() {
        for h in HashFunction::ALL {
            assert_eq!(HashFunction::from_name(h.name()), Some(h));
            assert_eq!(h.to_string(), h.name());
        }
        assert_eq!(HashFunction::from_name("FNV1A_64"), None);
    }

    #[test]
    fn signed_bytes() {
        assert_eq!(signed(0x7f), 0x7f);
        assert_eq!(signed(0x80), 0xffff_ff80);
        assert_eq!(signed(0xff), 0xffff_ffff);
    }
}
