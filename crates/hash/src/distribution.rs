//! ketama, modula and random: which server of a pool a key goes to,
//! exactly as nutcracker 0.5.0 decides it (server_pool_idx and the
//! hashkit distributions).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::hash::md5::ketama_points;
use crate::hash::HashFunction;

/// The `distribution:` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Consistent hashing on an MD5 continuum (nutcracker's default).
    Ketama,
    /// `hash % total_weight` over weight-sized slots.
    Modula,
    /// A uniformly random live server; the key is ignored.
    Random,
}

impl Distribution {
    /// Every distribution.
    pub const ALL: [Distribution; 3] = [
        Distribution::Ketama,
        Distribution::Modula,
        Distribution::Random,
    ];

    /// The name used in nutcracker.yml.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
            Distribution::Random => "random",
        }
    }

    /// Looks a distribution up by its nutcracker.yml name.
    pub fn from_name(name: &str) -> Option<Distribution> {
        Distribution::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Points per server on the ketama continuum when all weights are equal.
const KETAMA_POINTS_PER_SERVER: f32 = 160.0;
/// nutcracker formats `"<name>-<j>"` into a 273-byte buffer, so at most 272
/// bytes are hashed.
const KETAMA_MAX_POINT_NAME: usize = 272;

/// One point on the ketama continuum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    value: u32,
    server: u32,
}

/// Routes keys of one pool to server indexes (positions in the pool's sorted
/// server list), honouring which servers are live.
///
/// Building and [`Router::set_live`] allocate; [`Router::route`] does not.
#[derive(Debug)]
pub struct Router {
    hash: HashFunction,
    hash_tag: Option<[u8; 2]>,
    distribution: Distribution,
    names: Vec<Box<[u8]>>,
    weights: Vec<u32>,
    live: Vec<bool>,
    /// ketama: the sorted continuum of live servers.
    continuum: Vec<Point>,
    /// ketama: for each of 2^k equal slices of the hash space, the first
    /// continuum point at or past the slice's start (then the continuum's
    /// length), so a lookup searches one slice (a point or two) instead of
    /// the whole continuum.
    slices: Vec<u32>,
    /// ketama: `hash >> slice_shift` is the slice of `hash`.
    slice_shift: u32,
    /// modula: running weight totals of the live servers, with their
    /// indexes; random: the live servers (end = position + 1).
    slots: Vec<(u64, u32)>,
    /// splitmix64 state for `random`; atomic so `route` can take `&self`.
    rng: AtomicU64,
}

impl Clone for Router {
    fn clone(&self) -> Router {
        Router {
            hash: self.hash,
            hash_tag: self.hash_tag,
            distribution: self.distribution,
            names: self.names.clone(),
            weights: self.weights.clone(),
            live: self.live.clone(),
            continuum: self.continuum.clone(),
            slices: self.slices.clone(),
            slice_shift: self.slice_shift,
            slots: self.slots.clone(),
            rng: AtomicU64::new(self.rng.load(Ordering::Relaxed) ^ random_seed()),
        }
    }
}

impl Router {
    /// Builds the router for servers given as (name, weight), in the pool's
    /// sorted order; every server starts live. `name` is the server's
    /// continuum name (explicit name, else `host:port`, …); only `ketama`
    /// uses names and only `ketama` and `modula` use weights.
    pub fn new(
        hash: HashFunction,
        hash_tag: Option<[u8; 2]>,
        distribution: Distribution,
        servers: &[(&[u8], u32)],
    ) -> Router {
        let mut router = Router {
            hash,
            hash_tag,
            distribution,
            names: servers.iter().map(|(n, _)| Box::from(*n)).collect(),
            weights: servers.iter().map(|&(_, w)| w).collect(),
            live: vec![true; servers.len()],
            continuum: Vec::new(),
            slices: Vec::new(),
            slice_shift: 32,
            slots: Vec::new(),
            rng: AtomicU64::new(random_seed()),
        };
        router.rebuild();
        router
    }

    /// Rebuilds the continuum / slots with only the servers marked live.
    /// `live[i]` is server `i`; servers without an entry count as live and
    /// extra entries are ignored.
    pub fn set_live(&mut self, live: &[bool]) {
        for (i, slot) in self.live.iter_mut().enumerate() {
            *slot = live.get(i).copied().unwrap_or(true);
        }
        self.rebuild();
    }

    /// The server index for `key`, or `None` when no server is live.
    pub fn route(&self, key: &[u8]) -> Option<usize> {
        // nutcracker answers ECONNREFUSED before looking at the key when
        // every server is ejected, single-server pools included.
        if self.names.len() == 1 {
            // 0.5.0 optimisation: one server, no hashing at all.
            return self.live[0].then_some(0);
        }
        match self.distribution {
            Distribution::Ketama => {
                if self.continuum.is_empty() {
                    return None;
                }
                Some(self.ketama_server(self.key_hash(key)))
            }
            Distribution::Modula => {
                let total = self.slots.last()?.0;
                let slot = u64::from(self.key_hash(key)) % total;
                // The server whose run of `weight` slots covers `slot`.
                let i = self.slots.partition_point(|&(end, _)| end <= slot);
                self.slots.get(i).map(|&(_, s)| s as usize)
            }
            Distribution::Random => {
                let n = self.slots.len() as u64;
                if n == 0 {
                    return None;
                }
                let r = self.next_random();
                self.slots.get((r % n) as usize).map(|&(_, s)| s as usize)
            }
        }
    }

    /// The value the distribution sees for `key`: the hash of the hash-tag
    /// part (or the whole key), 0 for an empty key. Pools with one server
    /// skip hashing, and `random` ignores the value.
    pub fn key_hash(&self, key: &[u8]) -> u32 {
        let key = self.tagged(key);
        if key.is_empty() {
            // nutcracker forces the hash of an empty key to 0.
            return 0;
        }
        self.hash.hash(key)
    }

    /// The part of `key` that is hashed: with `hash_tag: "LR"`, the bytes
    /// between the first `L` and the first `R` after it, when both exist
    /// and at least one byte lies between; otherwise the whole key.
    pub fn tagged<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        let Some([l, r]) = self.hash_tag else {
            return key;
        };
        let Some(start) = key.iter().position(|&b| b == l) else {
            return key;
        };
        let inner = &key[start + 1..];
        match inner.iter().position(|&b| b == r) {
            Some(end) if end > 0 => &inner[..end],
            _ => key,
        }
    }

    /// The number of servers in the pool, live or not.
    pub fn server_count(&self) -> usize {
        self.names.len()
    }

    /// The number of live servers.
    pub fn live_count(&self) -> usize {
        self.live.iter().filter(|&&l| l).count()
    }

    /// Whether server `index` is live (false for an unknown index).
    pub fn is_live(&self, index: usize) -> bool {
        self.live.get(index).copied().unwrap_or(false)
    }

    /// The hash function.
    pub fn hash_function(&self) -> HashFunction {
        self.hash
    }

    /// The distribution.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// The number of ketama points per server index on the current
    /// continuum (all zero for other distributions).
    pub fn ketama_points(&self) -> Vec<usize> {
        let mut counts = vec![0; self.names.len()];
        for p in &self.continuum {
            counts[p.server as usize] += 1;
        }
        counts
    }

    fn rebuild(&mut self) {
        self.continuum.clear();
        self.slices.clear();
        self.slots.clear();
        match self.distribution {
            Distribution::Ketama => self.build_continuum(),
            Distribution::Modula => {
                let mut end = 0u64;
                for (i, &w) in self.weights.iter().enumerate() {
                    if self.live[i] && w > 0 {
                        end += u64::from(w);
                        self.slots.push((end, i as u32));
                    }
                }
            }
            Distribution::Random => {
                for (i, &live) in self.live.iter().enumerate() {
                    if live {
                        self.slots.push((i as u64 + 1, i as u32));
                    }
                }
            }
        }
    }

    /// nutcracker's ketama_update, float32 arithmetic included.
    fn build_continuum(&mut self) {
        let live = self.live_count();
        if live == 0 {
            return;
        }
        let total: u64 = self
            .weights
            .iter()
            .zip(&self.live)
            .filter(|(_, &l)| l)
            .map(|(&w, _)| u64::from(w))
            .sum();
        let mut point_name = Vec::with_capacity(KETAMA_MAX_POINT_NAME + 1);
        for (i, name) in self.names.iter().enumerate() {
            if !self.live[i] {
                continue;
            }
            let points = ketama_point_count(self.weights[i], total, live);
            // `%.*s` stops at a NUL byte.
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            for j in 0..points / 4 {
                point_name.clear();
                point_name.extend_from_slice(name);
                point_name.push(b'-');
                point_name.extend_from_slice(j.to_string().as_bytes());
                point_name.truncate(KETAMA_MAX_POINT_NAME);
                for value in ketama_points(&point_name) {
                    self.continuum.push(Point {
                        value,
                        server: i as u32,
                    });
                }
            }
        }
        // Stable, like glibc's merge-sort qsort: equal values keep server
        // order, and the lookup takes the first of them.
        self.continuum.sort_by_key(|p| p.value);
        self.build_slices();
    }

    /// The server of the first continuum point with value >= `hash`, wrapping
    /// past the end (the continuum must not be empty). Every point before the
    /// slice's first is below the slice, hence below `hash`; the next slice's
    /// first is at or past it: the answer lies between the two.
    fn ketama_server(&self, hash: u32) -> usize {
        let slice = (u64::from(hash) >> self.slice_shift) as usize;
        let from = self.slices.get(slice).map_or(0, |&i| i as usize);
        let to = self
            .slices
            .get(slice + 1)
            .map_or(self.continuum.len(), |&i| i as usize);
        let within = self.continuum.get(from..to).unwrap_or_default();
        let i = from + within.partition_point(|p| p.value < hash);
        let point = self.continuum.get(i).unwrap_or(&self.continuum[0]);
        point.server as usize
    }

    /// The slice index of the continuum: about one slice per point.
    fn build_slices(&mut self) {
        let slices = self.continuum.len().next_power_of_two().max(2);
        self.slice_shift = 32 - slices.trailing_zeros();
        let mut next = 0usize;
        self.slices = (0..slices as u64)
            .map(|slice| {
                let start = slice << self.slice_shift;
                while self
                    .continuum
                    .get(next)
                    .is_some_and(|p| u64::from(p.value) < start)
                {
                    next += 1;
                }
                next as u32
            })
            .collect();
    }

    /// splitmix64.
    fn next_random(&self) -> u64 {
        let mut z = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Continuum points for one live server: nutcracker computes
/// `floorf((float)(pct * 160 / 4 * (float)nlive + 0.0000000001)) * 4` with
/// `pct` a float, so the product is float32 and only the `+ 1e-10` happens
/// in double. Unequal weights lose points to the flooring (1:2 → 104 + 212).
fn ketama_point_count(weight: u32, total_weight: u64, nlive: usize) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let product = pct * KETAMA_POINTS_PER_SERVER / 4.0 * nlive as f32;
    let rounded = (f64::from(product) + 0.000_000_000_1) as f32;
    // NaN (all weights 0) and negatives saturate to 0 points.
    (rounded.floor() * 4.0) as u32
}

/// A seed for `random` from std's per-process random hasher keys (no clock,
/// no extra crate).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(d: Distribution, servers: &[(&str, u32)]) -> Router {
        let s: Vec<(&[u8], u32)> = servers.iter().map(|(n, w)| (n.as_bytes(), *w)).collect();
        Router::new(HashFunction::Fnv1a_64, None, d, &s)
    }

    #[test]
    fn names_round_trip() {
        for d in Distribution::ALL {
            assert_eq!(Distribution::from_name(d.name()), Some(d));
        }
    }

    #[test]
    fn point_counts() {
        assert_eq!(ketama_point_count(1, 2, 2), 160);
        assert_eq!(ketama_point_count(1, 3, 2), 104);
        assert_eq!(ketama_point_count(2, 3, 2), 212);
        assert_eq!(ketama_point_count(100_000, 100_001, 2), 316);
        assert_eq!(ketama_point_count(1, 100_001, 2), 0);
        assert_eq!(ketama_point_count(0, 0, 1), 0);
        // float32 rounding: 25 equal servers get 156 points each, not 160
        // (checked against nutcracker with 25 memcached: 5000/5000 keys).
        assert_eq!(ketama_point_count(1, 25, 25), 156);
        assert_eq!(ketama_point_count(1, 24, 24), 160);
    }

    /// Observed with nutcracker 0.5.0 (spec §2.3).
    #[test]
    fn observed_ketama() {
        let r = router(
            Distribution::Ketama,
            &[("127.0.0.1:21211", 1), ("127.0.0.1:21212", 1)],
        );
        assert_eq!(r.ketama_points(), vec![160, 160]);
        for (key, want) in [("foo", 0), ("bar", 1), ("key0", 1), ("key200", 0)] {
            assert_eq!(r.route(key.as_bytes()), Some(want), "{key}");
        }
        let r = router(Distribution::Ketama, &[("r1", 1), ("r2", 1)]);
        for (key, want) in [
            ("k0", 0),
            ("k1", 0),
            ("k2", 0),
            ("k10", 1),
            ("k11", 1),
            ("k12", 1),
        ] {
            assert_eq!(r.route(key.as_bytes()), Some(want), "{key}");
        }
    }

    /// The sliced lookup finds what a search of the whole continuum finds, for
    /// hashes at, beside and between the points, at both ends, for continuums
    /// of many sizes (ejections included).
    #[test]
    fn sliced_lookup_matches_full_search() {
        let names: Vec<String> = (0..13).map(|i| format!("10.0.0.{i}:11211")).collect();
        for count in 1..names.len() {
            let servers: Vec<(&str, u32)> = names[..count]
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), 1 + (i as u32 % 3)))
                .collect();
            let mut r = router(Distribution::Ketama, &servers);
            for ejected in [None, Some(0), Some(count / 2)] {
                let live: Vec<bool> = (0..count).map(|i| Some(i) != ejected).collect();
                r.set_live(&live);
                if r.continuum.is_empty() {
                    continue;
                }
                let full = |hash: u32| {
                    let i = r.continuum.partition_point(|p| p.value < hash);
                    r.continuum.get(i).unwrap_or(&r.continuum[0]).server as usize
                };
                let mut hashes = vec![0, 1, u32::MAX - 1, u32::MAX];
                for p in &r.continuum {
                    hashes.extend([p.value.wrapping_sub(1), p.value, p.value.wrapping_add(1)]);
                }
                let mut x = 0x2545_f491_u32;
                for _ in 0..2000 {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    hashes.push(x);
                }
                for hash in hashes {
                    assert_eq!(
                        r.ketama_server(hash),
                        full(hash),
                        "hash {hash:#x}, {count} servers"
                    );
                }
            }
        }
    }

    #[test]
    fn modula_slots() {
        let r = router(
            Distribution::Modula,
            &[("127.0.0.1:21211", 1), ("127.0.0.1:21212", 2)],
        );
        for i in 0..200 {
            let key = format!("key{i}");
            let want = if HashFunction::Fnv1a_64
                .hash(key.as_bytes())
                .is_multiple_of(3)
            {
                0
            } else {
                1
            };
            assert_eq!(r.route(key.as_bytes()), Some(want));
        }
    }

    #[test]
    fn hash_tags() {
        let s: [(&[u8], u32); 2] = [(b"a", 1), (b"b", 1)];
        let r = Router::new(
            HashFunction::Fnv1a_64,
            Some(*b"{}"),
            Distribution::Ketama,
            &s,
        );
        assert_eq!(r.tagged(b"a{t5}suffix"), b"t5");
        assert_eq!(r.tagged(b"bb{t5}suffix"), b"t5");
        assert_eq!(r.tagged(b"e3{}x"), b"e3{}x");
        assert_eq!(r.tagged(b"x}{y"), b"x}{y");
        assert_eq!(r.tagged(b"{a}{b}"), b"a");
        assert_eq!(r.tagged(b"{{a}"), b"{a");
        assert_eq!(r.tagged(b"{"), b"{");
        let r = Router::new(
            HashFunction::Fnv1a_64,
            Some(*b"$$"),
            Distribution::Ketama,
            &s,
        );
        assert_eq!(r.tagged(b"a$tag$b"), b"tag");
        assert_eq!(r.tagged(b"a$$b"), b"a$$b");
        assert_eq!(r.key_hash(b""), 0);
    }

    #[test]
    fn single_server() {
        for d in Distribution::ALL {
            let mut r = router(d, &[("only", 1)]);
            assert_eq!(r.route(b"anything"), Some(0));
            assert_eq!(r.route(b""), Some(0));
            r.set_live(&[false]);
            assert_eq!(r.route(b"anything"), None);
            r.set_live(&[true]);
            assert_eq!(r.route(b"anything"), Some(0));
        }
    }

    #[test]
    fn ejection() {
        let servers = [("s0", 1), ("s1", 2), ("s2", 3)];
        for d in Distribution::ALL {
            let mut r = router(d, &servers);
            r.set_live(&[true, false, true]);
            assert_eq!(r.live_count(), 2);
            for i in 0..500 {
                let got = r.route(format!("k{i}").as_bytes());
                assert!(matches!(got, Some(0) | Some(2)), "{d}: {got:?}");
            }
            r.set_live(&[false, false, false]);
            assert_eq!(r.route(b"k"), None);
        }
        // Ejecting a server rebuilds ketama as if it were not configured:
        // the survivors' points are recomputed from the live total.
        let mut r = router(Distribution::Ketama, &servers);
        r.set_live(&[true, false, true]);
        let alone = router(Distribution::Ketama, &[("s0", 1), ("s2", 3)]);
        assert_eq!(r.ketama_points(), vec![80, 0, 240]);
        for i in 0..500 {
            let key = format!("k{i}");
            let want = alone
                .route(key.as_bytes())
                .map(|s| if s == 1 { 2 } else { s });
            assert_eq!(r.route(key.as_bytes()), want);
        }
        // modula over live slots [0, 2, 2, 2]
        let mut r = router(Distribution::Modula, &servers);
        r.set_live(&[true, false, true]);
        for i in 0..200 {
            let key = format!("k{i}");
            let want = if HashFunction::Fnv1a_64
                .hash(key.as_bytes())
                .is_multiple_of(4)
            {
                0
            } else {
                2
            };
            assert_eq!(r.route(key.as_bytes()), Some(want));
        }
    }

    #[test]
    fn random_is_spread_over_live_servers() {
        let mut r = router(Distribution::Random, &[("a", 1), ("b", 100), ("c", 1)]);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            counts[r.route(b"same").unwrap_or(9)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        r.set_live(&[false, true, true]);
        let mut counts = [0usize; 3];
        for _ in 0..2000 {
            counts[r.route(b"same").unwrap_or(9)] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!(counts[1] > 800 && counts[2] > 800, "{counts:?}");
    }

    #[test]
    fn long_names_are_truncated() {
        let long = "n".repeat(400);
        let r = router(Distribution::Ketama, &[(&long, 1), ("short", 1)]);
        // Every point string of the long name truncates to the same 272
        // bytes, so its 40 strings give the same 4 values 40 times.
        let mut values: Vec<u32> = r
            .continuum
            .iter()
            .filter(|p| p.server == 0)
            .map(|p| p.value)
            .collect();
        values.dedup();
        assert_eq!(values.len(), 4);
    }

    #[test]
    fn empty_pool_routes_nowhere() {
        let r = router(Distribution::Ketama, &[]);
        assert_eq!(r.route(b"k"), None);
        let r = router(Distribution::Modula, &[]);
        assert_eq!(r.route(b"k"), None);
    }
}
