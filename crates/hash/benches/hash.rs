//! Microbenchmarks: the twelve hash functions on 10- and 100-byte keys, and
//! `Router::route` for ketama and modula.
//!
//! `cargo bench -p rustcracker-hash` (filter: `cargo bench -p rustcracker-hash -- ketama`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rustcracker_hash::{Distribution, HashFunction, Router};

/// A key of `len` bytes that looks like a real cache key.
fn key(len: usize) -> Vec<u8> {
    b"user:1234567890:profile:"
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn hash_functions(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Elements(1));
    for len in [10, 100] {
        let key = key(len);
        for function in HashFunction::ALL {
            group.bench_with_input(BenchmarkId::new(function.name(), len), &key, |b, key| {
                b.iter(|| function.hash(black_box(key)))
            });
        }
    }
    group.finish();
}

fn route(c: &mut Criterion) {
    let names: Vec<String> = (0..4)
        .map(|i| format!("127.0.0.1:{}:1", 11211 + i))
        .collect();
    let servers: Vec<(&[u8], u32)> = names.iter().map(|n| (n.as_bytes(), 1)).collect();
    let keys: Vec<Vec<u8>> = (0..64)
        .map(|i| format!("key:{i:06}").into_bytes())
        .collect();
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(1));
    for distribution in [Distribution::Ketama, Distribution::Modula] {
        let router = Router::new(HashFunction::Fnv1a_64, None, distribution, &servers);
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new(distribution.name(), "4 servers"), |b| {
            b.iter(|| {
                i = (i + 1) & 63;
                router.route(black_box(&keys[i]))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hash_functions, route);
criterion_main!(benches);
