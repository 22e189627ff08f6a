//! Fuzzes `parse_response` and `merge_values` on what it accepts.
//!
//! Invariants: no panic; consumed ≤ input; `needed` > buffered; a proper prefix of a response is
//! never a response; the stream parser, fed the input a chunk at a time, answers as
//! `parse_response` on each prefix; merging a `Values` reply under any key list ends with
//! `END\r\n` and only copies bytes of the reply; the blocks the stream parser records while
//! framing a `Values` reply are the reply's blocks, and merging over them gives what
//! `merge_values` gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcracker_memcache::{
    merge_spans_with, merge_values, parse_response, value_blocks, ResponseKind, ResponseParse,
    ResponseParser,
};

/// `merge_values` (which frames the reply itself), and `merge_spans_with` over the blocks
/// `parser` recorded while the reply was fed a chunk at a time: they must agree.
fn merge_both(keys: &[(&[u8], usize)], reply: &[u8], parser: &ResponseParser) -> Vec<u8> {
    let mut out = Vec::new();
    merge_values(keys, &[reply], &mut out);
    let mut spanned = Vec::new();
    merge_spans_with(keys, &[reply], &[parser.value_spans()], |_, r| {
        spanned.extend_from_slice(&reply[r])
    });
    spanned.extend_from_slice(b"END\r\n");
    assert_eq!(spanned, out, "merge over recorded blocks");
    out
}

fuzz_target!(|data: &[u8]| {
    let mut parser = ResponseParser::default();
    let chunk = usize::from(data.first().copied().unwrap_or(1) % 64).max(1);
    let mut len = 0;
    loop {
        let got = parser.parse(&data[..len]);
        assert_eq!(got, parse_response(&data[..len]), "stream parser at {len}");
        if let ResponseParse::Response(rsp) = got {
            let recorded: Vec<_> = parser
                .value_spans()
                .iter()
                .map(|s| s.block(data).expect("a recorded block lies in the reply"))
                .collect();
            let blocks: Vec<_> = value_blocks(&data[..rsp.len]).collect();
            assert_eq!(recorded, blocks, "recorded blocks");
        }
        if !matches!(got, ResponseParse::Incomplete { .. }) || len == data.len() {
            break;
        }
        len = (len + chunk).min(data.len());
    }
    match parse_response(data) {
        ResponseParse::Incomplete { needed } => {
            if let Some(n) = needed {
                assert!(n > data.len(), "needed {n} <= buffered {}", data.len());
            }
        }
        ResponseParse::Invalid => {}
        ResponseParse::Response(rsp) => {
            assert!(rsp.len >= 2 && rsp.len <= data.len());
            let bytes = &data[..rsp.len];
            assert!(bytes.ends_with(b"\r\n"));
            assert_eq!(parse_response(bytes), ResponseParse::Response(rsp));
            let step = (rsp.len / 512).max(1);
            for p in (0..rsp.len).step_by(step).chain([rsp.len - 1]) {
                match parse_response(&bytes[..p]) {
                    ResponseParse::Incomplete { needed } => {
                        if let Some(n) = needed {
                            assert!(n > p && n <= rsp.len, "prefix {p}: needed {n}");
                        }
                    }
                    other => panic!("prefix {p} of a response gave {other:?}"),
                }
            }
            if rsp.kind == ResponseKind::Values {
                // Keys taken from the reply's own VALUE lines, plus a miss, in reverse order.
                let keys: Vec<(&[u8], usize)> = value_blocks(bytes)
                    .map(|b| b.key)
                    .chain([&b"missing"[..]])
                    .map(|k| (k, 0))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let out = merge_both(&keys, bytes, &parser);
                assert!(out.ends_with(b"END\r\n"));
                assert!(out.len() <= bytes.len());
                // memcached never repeats a key within one reply unless asked twice; with
                // repeated keys reverse order may legitimately drop blocks, so only the
                // forward merge below must reproduce the reply exactly.
                // Merged in reply order, everything comes back.
                let forward: Vec<(&[u8], usize)> = keys.iter().rev().copied().collect();
                assert_eq!(merge_both(&forward, bytes, &parser), bytes);
            }
        }
    }
});
