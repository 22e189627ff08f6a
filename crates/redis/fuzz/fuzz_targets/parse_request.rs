//! Request parser invariants on arbitrary bytes: no panic; consumed ≤ input; `Incomplete` never
//! yields a message and its `needed` lies beyond the input; key indexes and argument ranges are
//! valid; resumable feeding (in chunks chosen by the first byte) agrees with a whole parse; a
//! request re-encoded as multi-bulk parses to the same command and keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcracker_redis::{
    parse_request, write_fragment, write_request, RequestParse, RequestParser,
};

const MAX_KEY: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let whole = parse_request(input, MAX_KEY);
    match &whole {
        RequestParse::Incomplete { needed } => {
            if let Some(n) = needed {
                assert!(*n > input.len());
            }
        }
        RequestParse::Invalid(inv) => {
            assert!(inv.len >= 1 && inv.len <= input.len());
            let reply = inv.reply.as_bytes();
            assert!(reply.is_empty() || (reply.starts_with(b"-ERR ") && reply.ends_with(b"\r\n")));
        }
        RequestParse::Request(r) => {
            assert!(r.len >= 1 && r.len <= input.len());
            for a in &r.args {
                assert!(a.start <= a.end && a.end <= r.len);
            }
            for (i, &k) in r.keys.iter().enumerate() {
                assert!((k as usize) < r.args.len());
                let key = r.key(input, i).expect("key");
                if r.command.fragmentation().is_some() || i == 0 {
                    assert!(key.len() <= MAX_KEY);
                }
            }
            let mut again = Vec::new();
            write_request(input, r, &mut again);
            match parse_request(&again, usize::MAX) {
                RequestParse::Request(r2) => {
                    assert_eq!(
                        (r2.command, &r2.keys, r2.len),
                        (r.command, &r.keys, again.len())
                    );
                }
                other => panic!("re-encoded: {other:?}"),
            }
            if r.command.fragmentation().is_some() {
                let all: Vec<usize> = (0..r.keys.len()).rev().collect();
                let mut fragment = Vec::new();
                write_fragment(input, r, &all, &mut fragment);
                match parse_request(&fragment, usize::MAX) {
                    RequestParse::Request(f) => assert_eq!(f.keys.len(), r.keys.len()),
                    other => panic!("fragment: {other:?}"),
                }
            }
        }
    }
    // Resumable feeding must agree.
    let step = usize::from(chunk % 32) + 1;
    let mut parser = RequestParser::default();
    let mut end = 0;
    let fed = loop {
        end = (end + step).min(input.len());
        let got = parser.parse(&input[..end], MAX_KEY);
        if !matches!(got, RequestParse::Incomplete { .. }) || end == input.len() {
            break got;
        }
    };
    assert_eq!(fed, whole);
});
