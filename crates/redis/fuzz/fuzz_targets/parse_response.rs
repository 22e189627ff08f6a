//! Response parser invariants on arbitrary bytes: no panic; consumed ≤ input; `Incomplete`
//! never yields a message and its `needed` lies beyond the input; every strict prefix of a
//! parsed response is `Incomplete`; resumable feeding agrees with a whole parse. `merge_mget`
//! never panics, and merging an array reply as the only fragment gives its elements back byte for
//! byte; merging over the element ends the stream parser recorded gives the same as framing the
//! elements again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcracker_redis::{
    merge_mget, merge_mget_framed, parse_response, ResponseKind, ResponseParse, ResponseParser,
};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let whole = parse_response(input);
    match whole {
        ResponseParse::Incomplete { needed } => {
            if let Some(n) = needed {
                assert!(n > input.len());
            }
        }
        ResponseParse::Invalid => {}
        ResponseParse::Response(r) => {
            assert!(r.len >= 1 && r.len <= input.len());
            if let ResponseKind::Array(n) = r.kind {
                if n <= 1024 {
                    let keys = vec![0; n as usize];
                    let mut out = Vec::new();
                    merge_mget(&keys, &[&input[..r.len]], &mut out).expect("an array merges");
                    // The header is written anew (`*02` comes back as `*2`); the elements are
                    // copied as they were.
                    let body =
                        |b: &[u8]| b[b.iter().position(|&c| c == b'\n').unwrap() + 1..].to_vec();
                    assert_eq!(body(&out), body(&input[..r.len]));
                }
            }
            for end in 0..r.len {
                assert!(matches!(
                    parse_response(&input[..end]),
                    ResponseParse::Incomplete { .. }
                ));
            }
        }
    }
    // Whatever the bytes, as one or two fragments: no panic, and nothing written on error.
    let mut out = b"x".to_vec();
    let split = usize::from(chunk) % (input.len() + 1);
    let keys = [0, 1, 0, 1, 1];
    if merge_mget(&keys, &[&input[..split], &input[split..]], &mut out).is_err() {
        assert_eq!(out, b"x");
    }
    let step = usize::from(chunk % 32) + 1;
    let mut parser = ResponseParser::default();
    let mut end = 0;
    let fed = loop {
        end = (end + step).min(input.len());
        let got = parser.parse(&input[..end]);
        if !matches!(got, ResponseParse::Incomplete { .. }) || end == input.len() {
            break got;
        }
    };
    assert_eq!(fed, whole);
    if let ResponseParse::Response(r) = fed {
        if let ResponseKind::Array(n) = r.kind {
            if n <= 1024 {
                let keys = vec![0; n as usize];
                let reply = &input[..r.len];
                let ends = parser.element_ends().unwrap_or_default();
                let (mut framed, mut again) = (Vec::new(), Vec::new());
                assert_eq!(
                    merge_mget_framed(&keys, &[reply], &[ends], &mut framed),
                    merge_mget(&keys, &[reply], &mut again)
                );
                assert_eq!(framed, again, "merge over recorded element ends");
            }
        }
    }
});
