//! Properties of the router that hold for any key and pool shape.

use proptest::prelude::*;
use rustcracker_hash::{Distribution, HashFunction, Router};

fn pool(n: usize, weights: &[u32]) -> (Vec<Vec<u8>>, Vec<u32>) {
    let names = (0..n)
        .map(|i| format!("10.0.0.{i}:11211").into_bytes())
        .collect();
    (names, weights.iter().take(n).copied().collect())
}

fn router(h: HashFunction, d: Distribution, names: &[Vec<u8>], weights: &[u32]) -> Router {
    let servers: Vec<(&[u8], u32)> = names
        .iter()
        .zip(weights)
        .map(|(n, &w)| (n.as_slice(), w))
        .collect();
    Router::new(h, Some(*b"{}"), d, &servers)
}

fn any_hash() -> impl Strategy<Value = HashFunction> {
    prop::sample::select(HashFunction::ALL.to_vec())
}

fn any_distribution() -> impl Strategy<Value = Distribution> {
    prop::sample::select(Distribution::ALL.to_vec())
}

proptest! {
    /// Every key goes to a live server, and deterministic distributions
    /// always give the same answer.
    #[test]
    fn routes_to_a_live_server(
        h in any_hash(),
        d in any_distribution(),
        n in 1usize..8,
        weights in prop::collection::vec(1u32..20, 8),
        dead in prop::collection::vec(any::<bool>(), 8),
        keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..20),
    ) {
        let (names, weights) = pool(n, &weights);
        let mut r = router(h, d, &names, &weights);
        let live: Vec<bool> = dead.iter().take(n).map(|&d| !d).collect();
        r.set_live(&live);
        for key in &keys {
            match r.route(key) {
                Some(i) => {
                    prop_assert!(i < n && live[i]);
                    if d != Distribution::Random {
                        prop_assert_eq!(r.route(key), Some(i));
                    }
                }
                None => prop_assert!(live.iter().all(|&l| !l)),
            }
        }
    }

    /// With equal weights, ejecting a ketama server moves only its own keys
    /// (every survivor keeps exactly its 160 points).
    #[test]
    fn ketama_ejection_moves_only_the_dead_servers_keys(
        h in any_hash(),
        n in 2usize..8,
        victim in 0usize..8,
        keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 1..50),
    ) {
        let victim = victim % n;
        let (names, weights) = pool(n, &[1; 8]);
        let full = router(h, Distribution::Ketama, &names, &weights);
        let mut less = full.clone();
        let live: Vec<bool> = (0..n).map(|i| i != victim).collect();
        less.set_live(&live);
        for key in &keys {
            let before = full.route(key);
            let after = less.route(key);
            if before != Some(victim) {
                prop_assert_eq!(before, after);
            } else {
                prop_assert_ne!(after, Some(victim));
            }
        }
    }

    /// A hash tag makes keys with the same tag land together.
    #[test]
    fn same_tag_same_server(
        h in any_hash(),
        d in prop::sample::select(vec![Distribution::Ketama, Distribution::Modula]),
        tag in "[a-z0-9]{1,10}",
        a in "[a-z]{0,5}",
        b in "[a-z{}]{0,5}",
    ) {
        let (names, weights) = pool(5, &[1, 2, 3, 4, 5]);
        let r = router(h, d, &names, &weights);
        let tagged = format!("{a}{{{tag}}}{b}");
        prop_assert_eq!(r.route(tagged.as_bytes()), r.route(tag.as_bytes()));
    }
}
