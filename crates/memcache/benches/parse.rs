//! Microbenchmarks: `parse_request` (get, set of 100 B, multi-get of 10 keys)
//! and `parse_response` (a `VALUE` block through `END`).
//!
//! `cargo bench -p rustcracker-memcache`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustcracker_memcache::{parse_request, parse_response, RequestParse, ResponseParse};

fn requests() -> Vec<(&'static str, Vec<u8>)> {
    let mut set = b"set user:1234567890 0 0 100\r\n".to_vec();
    set.extend_from_slice(&[b'v'; 100]);
    set.extend_from_slice(b"\r\n");
    let mut multi = b"get".to_vec();
    for i in 0..10 {
        multi.extend_from_slice(format!(" user:{i:010}").as_bytes());
    }
    multi.extend_from_slice(b"\r\n");
    vec![
        ("get", b"get user:1234567890\r\n".to_vec()),
        ("set 100 B", set),
        ("get 10 keys", multi),
    ]
}

fn request(c: &mut Criterion) {
    let mut group = c.benchmark_group("memcache parse_request");
    group.throughput(Throughput::Elements(1));
    for (name, buf) in requests() {
        assert!(
            matches!(parse_request(&buf), RequestParse::Request(r) if r.len == buf.len()),
            "{name} parses"
        );
        group.bench_function(name, |b| b.iter(|| parse_request(black_box(&buf))));
    }
    group.finish();
}

fn response(c: &mut Criterion) {
    let mut buf = b"VALUE user:1234567890 0 100\r\n".to_vec();
    buf.extend_from_slice(&[b'v'; 100]);
    buf.extend_from_slice(b"\r\nEND\r\n");
    assert!(matches!(parse_response(&buf), ResponseParse::Response(r) if r.len == buf.len()));
    let mut group = c.benchmark_group("memcache parse_response");
    group.throughput(Throughput::Elements(1));
    group.bench_function("VALUE 100 B", |b| {
        b.iter(|| parse_response(black_box(&buf)))
    });
    group.finish();
}

criterion_group!(benches, request, response);
criterion_main!(benches);
