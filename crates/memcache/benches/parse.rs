//! Microbenchmarks: `parse_request` (get, set of 100 B, multi-get of 10 keys),
//! `parse_response` (a `VALUE` block through `END`, and 50 of them: one
//! server's half of the bench's multi-get of 100) and `merge_spans` (two such
//! halves, framed, into the reply of a multi-get of 100, as the proxy merges them).
//!
//! `cargo bench -p rustcracker-memcache`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustcracker_memcache::{
    merge_spans, parse_request, parse_response, RequestParse, ResponseParse, ResponseParser,
    ValueSpan,
};

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
    // The bench's multi-get of 100 (keys `lg:` + 10 digits, 32 B values), split
    // over two servers: even keys on one, odd on the other.
    let key = |i: usize| format!("lg:{i:010}");
    let mut halves = [Vec::new(), Vec::new()];
    for i in 0..100 {
        let block = format!("VALUE {} 0 32\r\n{:x<32}\r\n", key(i), key(i));
        halves[i % 2].extend_from_slice(block.as_bytes());
    }
    for half in &mut halves {
        half.extend_from_slice(b"END\r\n");
        assert!(matches!(parse_response(half), ResponseParse::Response(r) if r.len == half.len()));
    }
    group.throughput(Throughput::Elements(50));
    group.bench_function("50 VALUEs of 32 B", |b| {
        b.iter(|| parse_response(black_box(&halves[0])))
    });
    group.finish();

    let keys: Vec<(Vec<u8>, usize)> = (0..100).map(|i| (key(i).into_bytes(), i % 2)).collect();
    let keys: Vec<(&[u8], usize)> = keys.iter().map(|(k, f)| (&k[..], *f)).collect();
    let fragments = [&halves[0][..], &halves[1][..]];
    let parsers: Vec<ResponseParser> = fragments
        .iter()
        .map(|h| ResponseParser::framing(h))
        .collect();
    let spans: Vec<&[ValueSpan]> = parsers.iter().map(ResponseParser::value_spans).collect();
    let mut out = Vec::with_capacity(halves[0].len() * 2);
    let mut group = c.benchmark_group("memcache merge_spans");
    group.throughput(Throughput::Elements(100));
    group.bench_function("100 VALUEs of 32 B from 2 servers", |b| {
        b.iter(|| {
            out.clear();
            merge_spans(black_box(&keys), black_box(&fragments), &spans, &mut out);
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, request, response);
criterion_main!(benches);
