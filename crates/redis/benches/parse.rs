//! Microbenchmarks: `parse_request` (GET, SET, MGET of 10 keys) and
//! `parse_response` (a bulk string, an array of 10 bulks).
//!
//! `cargo bench -p rustcracker-redis`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustcracker_redis::{
    max_key_len_for_mbuf, parse_request, parse_response, RequestParse, ResponseParse,
};

/// RESP2 multi-bulk encoding of `args`.
fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn request(c: &mut Criterion) {
    let max_key_len = max_key_len_for_mbuf(16384);
    let value = [b'v'; 32];
    let keys: Vec<String> = (0..10).map(|i| format!("user:{i:010}")).collect();
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(|k| k.as_bytes()));
    let cases = [
        ("GET", command(&[b"GET", b"user:1234567890"])),
        ("SET 32 B", command(&[b"SET", b"user:1234567890", &value])),
        ("MGET 10", command(&mget)),
    ];
    let mut group = c.benchmark_group("redis parse_request");
    group.throughput(Throughput::Elements(1));
    for (name, buf) in &cases {
        assert!(
            matches!(parse_request(buf, max_key_len), RequestParse::Request(r) if r.len == buf.len()),
            "{name} parses"
        );
        group.bench_function(*name, |b| {
            b.iter(|| parse_request(black_box(buf), max_key_len))
        });
    }
    group.finish();
}

fn response(c: &mut Criterion) {
    let mut bulk = b"$100\r\n".to_vec();
    bulk.extend_from_slice(&[b'v'; 100]);
    bulk.extend_from_slice(b"\r\n");
    let mut array = b"*10\r\n".to_vec();
    for _ in 0..10 {
        array.extend_from_slice(b"$32\r\n");
        array.extend_from_slice(&[b'v'; 32]);
        array.extend_from_slice(b"\r\n");
    }
    let cases = [("bulk 100 B", bulk), ("array of 10 bulks", array)];
    let mut group = c.benchmark_group("redis parse_response");
    group.throughput(Throughput::Elements(1));
    for (name, buf) in &cases {
        assert!(
            matches!(parse_response(buf), ResponseParse::Response(r) if r.len == buf.len()),
            "{name} parses"
        );
        group.bench_function(*name, |b| b.iter(|| parse_response(black_box(buf))));
    }
    group.finish();
}

criterion_group!(benches, request, response);
criterion_main!(benches);
