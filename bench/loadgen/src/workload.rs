//! Pre-built request streams.
//!
//! A [`Cycle`] is built once before the run: a byte buffer holding a fixed
//! sequence of complete requests, cut into batches of `pipeline` requests
//! that are contiguous in memory, so a connection sends a batch with one
//! `write` of a borrowed slice and never formats or allocates per request.
//! Every connection walks the same cycle from its own starting batch.
//!
//! Values carry their key: the first `min(value_len, key_len)` bytes of the
//! value stored under a key are the key itself, the rest is `x`. A reply can
//! therefore be checked for the right key even when the protocol does not
//! echo keys (redis).

/// Wire protocol spoken to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// memcached ASCII (`get`, `set`).
    Memcache,
    /// RESP2 (`GET`, `MGET`, `SET`).
    Redis,
}

impl Protocol {
    /// Name used in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Memcache => "memcache",
            Protocol::Redis => "redis",
        }
    }
}

/// Number of decimal digits of the key index in a key.
pub const KEY_DIGITS: usize = 10;

/// Longest key: prefix (at most 32 bytes) plus the digits.
pub const MAX_KEY: usize = 32 + KEY_DIGITS;

/// Formats keys as `prefix` followed by a zero-padded 10-digit index.
#[derive(Debug, Clone)]
pub struct KeyFmt {
    prefix: Vec<u8>,
}

impl KeyFmt {
    /// A formatter for keys starting with `prefix` (at most 32 bytes).
    pub fn new(prefix: &str) -> Self {
        assert!(prefix.len() <= 32, "key prefix longer than 32 bytes");
        KeyFmt {
            prefix: prefix.as_bytes().to_vec(),
        }
    }

    /// Length of every key.
    pub fn key_len(&self) -> usize {
        self.prefix.len() + KEY_DIGITS
    }

    /// Writes the key for `idx` into `out` and returns it.
    pub fn key<'a>(&self, idx: u32, out: &'a mut [u8; MAX_KEY]) -> &'a [u8] {
        let p = self.prefix.len();
        out[..p].copy_from_slice(&self.prefix);
        let mut n = idx;
        for i in (0..KEY_DIGITS).rev() {
            out[p + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        &out[..p + KEY_DIGITS]
    }

    /// The index encoded in `key`, if `key` has this formatter's shape.
    pub fn parse(&self, key: &[u8]) -> Option<u32> {
        let digits = key.strip_prefix(self.prefix.as_slice())?;
        if digits.len() != KEY_DIGITS {
            return None;
        }
        let mut n: u64 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u64::from(d - b'0');
        }
        u32::try_from(n).ok()
    }
}

/// Appends the value stored under `key` (see the module docs).
pub fn push_value(key: &[u8], value_len: usize, out: &mut Vec<u8>) {
    let m = key.len().min(value_len);
    out.extend_from_slice(&key[..m]);
    out.resize(out.len() + (value_len - m), b'x');
}

/// Whether `data` is the value [`push_value`] makes for `key`.
pub fn value_matches(key: &[u8], value_len: usize, data: &[u8]) -> bool {
    let m = key.len().min(value_len);
    data.len() == value_len && data[..m] == key[..m]
}

/// What a request is, and so which reply it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A single-key get (memcache `get k`, redis `GET k`).
    Get,
    /// A multi-key get (memcache `get k1 .. kn`, redis `MGET k1 .. kn`).
    MultiGet,
    /// A set of one key.
    Set,
}

/// One request of a [`Cycle`].
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Request kind.
    pub kind: Kind,
    /// Start of this request's key indices in [`Cycle::key_idx`].
    pub keys_start: u32,
    /// Number of keys.
    pub keys_len: u32,
}

/// Parameters of a request stream.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Protocol.
    pub proto: Protocol,
    /// Requests per batch.
    pub pipeline: usize,
    /// Key space.
    pub keys: u32,
    /// Value size for sets.
    pub value_len: usize,
    /// Get weight.
    pub gets: u32,
    /// Set weight.
    pub sets: u32,
    /// Keys per get.
    pub mget: usize,
    /// Random seed.
    pub seed: u64,
}

/// A fixed sequence of requests, in batches of `pipeline` (see module docs).
#[derive(Debug)]
pub struct Cycle {
    /// Requests of all batches back to back.
    pub bytes: Vec<u8>,
    /// `batch_at[b]..batch_at[b + 1]` is batch `b` in `bytes`.
    pub batch_at: Vec<usize>,
    /// The requests, in order.
    pub entries: Vec<Entry>,
    /// Key indices of all requests, in order.
    pub key_idx: Vec<u32>,
    /// Requests per batch.
    pub pipeline: usize,
}

/// A small, fast PRNG (xorshift64*), good enough to pick keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator (any seed, including 0).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Appends one RESP bulk string.
fn push_bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Upper bound on the bytes of a cycle (sets of big values dominate).
const CYCLE_BYTES: usize = 32 << 20;

impl Cycle {
    /// Builds the random request stream described by `spec`.
    pub fn random(spec: &Spec, keys: &KeyFmt) -> Self {
        let p = spec.pipeline;
        let total = u64::from(spec.gets + spec.sets);
        let set_frac = f64::from(spec.sets) / total as f64;
        let key_len = keys.key_len();
        let avg = set_frac * (spec.value_len + key_len + 40) as f64
            + (1.0 - set_frac) * (spec.mget * (key_len + 8) + 20) as f64;
        let by_keys = (65_536 / spec.mget).clamp(64, 8192);
        let by_bytes = (CYCLE_BYTES as f64 / avg.max(1.0)) as usize;
        let n = by_keys.min(by_bytes).max(1).div_ceil(p) * p;
        let mut rng = Rng::new(spec.seed);
        let mut cycle = Cycle::empty(p);
        let mut picked: Vec<u32> = Vec::with_capacity(spec.mget);
        for _ in 0..n {
            picked.clear();
            if rng.below(total) < u64::from(spec.sets) {
                picked.push(rng.below(u64::from(spec.keys)) as u32);
                cycle.push(spec, keys, Kind::Set, &picked);
            } else {
                while picked.len() < spec.mget {
                    let k = rng.below(u64::from(spec.keys)) as u32;
                    if !picked.contains(&k) {
                        picked.push(k);
                    }
                }
                let kind = if spec.mget == 1 {
                    Kind::Get
                } else {
                    Kind::MultiGet
                };
                cycle.push(spec, keys, kind, &picked);
            }
        }
        cycle
    }

    /// Sets of the keys `range`, in order (for prefilling).
    pub fn sets(spec: &Spec, keys: &KeyFmt, range: std::ops::Range<u32>) -> Self {
        let mut cycle = Cycle::empty(spec.pipeline);
        for k in range {
            cycle.push(spec, keys, Kind::Set, &[k]);
        }
        if cycle.batch_at.last() != Some(&cycle.bytes.len()) {
            cycle.batch_at.push(cycle.bytes.len());
        }
        cycle
    }

    fn empty(pipeline: usize) -> Self {
        Cycle {
            bytes: Vec::new(),
            batch_at: vec![0],
            entries: Vec::new(),
            key_idx: Vec::new(),
            pipeline,
        }
    }

    /// Appends one request; closes the batch when it is full.
    fn push(&mut self, spec: &Spec, keys: &KeyFmt, kind: Kind, idx: &[u32]) {
        let mut kb = [0u8; MAX_KEY];
        let out = &mut self.bytes;
        match (spec.proto, kind) {
            (Protocol::Memcache, Kind::Set) => {
                let key = keys.key(idx[0], &mut kb);
                out.extend_from_slice(b"set ");
                out.extend_from_slice(key);
                out.extend_from_slice(format!(" 0 0 {}\r\n", spec.value_len).as_bytes());
                push_value(key, spec.value_len, out);
                out.extend_from_slice(b"\r\n");
            }
            (Protocol::Memcache, _) => {
                out.extend_from_slice(b"get");
                for &k in idx {
                    out.push(b' ');
                    out.extend_from_slice(keys.key(k, &mut kb));
                }
                out.extend_from_slice(b"\r\n");
            }
            (Protocol::Redis, Kind::Set) => {
                let key = keys.key(idx[0], &mut kb);
                out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
                push_bulk(out, key);
                let mut v = Vec::with_capacity(spec.value_len);
                push_value(key, spec.value_len, &mut v);
                push_bulk(out, &v);
            }
            (Protocol::Redis, Kind::Get) => {
                out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
                push_bulk(out, keys.key(idx[0], &mut kb));
            }
            (Protocol::Redis, Kind::MultiGet) => {
                out.extend_from_slice(format!("*{}\r\n$4\r\nMGET\r\n", idx.len() + 1).as_bytes());
                for &k in idx {
                    push_bulk(out, keys.key(k, &mut kb));
                }
            }
        }
        self.entries.push(Entry {
            kind,
            keys_start: self.key_idx.len() as u32,
            keys_len: idx.len() as u32,
        });
        self.key_idx.extend_from_slice(idx);
        if self.entries.len().is_multiple_of(self.pipeline) {
            self.batch_at.push(self.bytes.len());
        }
    }

    /// Number of batches.
    pub fn batches(&self) -> usize {
        self.batch_at.len() - 1
    }

    /// The bytes of batch `b`.
    pub fn batch_bytes(&self, b: usize) -> &[u8] {
        &self.bytes[self.batch_at[b]..self.batch_at[b + 1]]
    }

    /// The requests of batch `b` (the last batch of a prefill may be short).
    pub fn batch_entries(&self, b: usize) -> &[Entry] {
        let start = b * self.pipeline;
        let end = (start + self.pipeline).min(self.entries.len());
        &self.entries[start..end]
    }

    /// Key indices of `e`.
    pub fn keys_of(&self, e: &Entry) -> &[u32] {
        let s = e.keys_start as usize;
        &self.key_idx[s..s + e.keys_len as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(proto: Protocol) -> Spec {
        Spec {
            proto,
            pipeline: 4,
            keys: 100,
            value_len: 5,
            gets: 1,
            sets: 1,
            mget: 3,
            seed: 7,
        }
    }

    #[test]
    fn keys_round_trip() {
        let f = KeyFmt::new("k:");
        let mut b = [0; MAX_KEY];
        assert_eq!(f.key(42, &mut b), b"k:0000000042");
        assert_eq!(f.parse(b"k:0000000042"), Some(42));
        assert_eq!(f.parse(b"k:000000042"), None);
        assert_eq!(f.parse(b"x:0000000042"), None);
        assert_eq!(f.parse(b"k:99999999999"), None);
    }

    #[test]
    fn values_carry_keys() {
        let mut v = Vec::new();
        push_value(b"abc", 5, &mut v);
        assert_eq!(v, b"abcxx");
        assert!(value_matches(b"abc", 5, b"abcxx"));
        assert!(!value_matches(b"abd", 5, b"abcxx"));
        v.clear();
        push_value(b"abc", 2, &mut v);
        assert_eq!(v, b"ab");
    }

    #[test]
    fn batches_are_contiguous_and_whole() {
        for proto in [Protocol::Memcache, Protocol::Redis] {
            let s = spec(proto);
            let c = Cycle::random(&s, &KeyFmt::new("k:"));
            assert!(c.entries.len().is_multiple_of(s.pipeline));
            assert_eq!(c.batches() * s.pipeline, c.entries.len());
            assert_eq!(*c.batch_at.last().unwrap(), c.bytes.len());
            for e in &c.entries {
                let ks = c.keys_of(e);
                match e.kind {
                    Kind::Set => assert_eq!(ks.len(), 1),
                    _ => assert_eq!(ks.len(), 3),
                }
                assert!(ks.iter().all(|&k| k < 100));
            }
        }
    }

    #[test]
    fn request_bytes() {
        let mut s = spec(Protocol::Memcache);
        s.pipeline = 1;
        let f = KeyFmt::new("k:");
        let c = Cycle::sets(&s, &f, 1..3);
        assert_eq!(
            c.bytes,
            b"set k:0000000001 0 0 5\r\nk:000\r\nset k:0000000002 0 0 5\r\nk:000\r\n"
        );
        assert_eq!(c.batches(), 2);
        s.proto = Protocol::Redis;
        let c = Cycle::sets(&s, &f, 1..2);
        assert_eq!(
            c.bytes,
            b"*3\r\n$3\r\nSET\r\n$12\r\nk:0000000001\r\n$5\r\nk:000\r\n".as_slice()
        );
        // A short last batch still ends the batch list.
        s.pipeline = 4;
        let c = Cycle::sets(&s, &f, 0..5);
        assert_eq!(c.batches(), 2);
        assert_eq!(c.batch_entries(1).len(), 1);
    }
}
