//! The twelve hash functions of nutcracker's `hash:` directive.

/// A hash function selectable with the `hash:` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunction {
    OneAtATime,
    Md5,
    Crc16,
    Crc32,
    Crc32a,
    Fnv1_64,
    Fnv1a_64,
    Fnv1_32,
    Fnv1a_32,
    Hsieh,
    Murmur,
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
    pub fn hash(self, key: &[u8]) -> u32 {
        let _ = key;
        todo!("hash functions")
    }
}
