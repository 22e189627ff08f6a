//! Response parser invariants on arbitrary bytes: no panic; consumed ≤ input; `Incomplete`
//! never yields a message and its `needed` lies beyond the input; every strict prefix of a
//! parsed response is `Incomplete`; resumable feeding agrees with a whole parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcracker_redis::{parse_response, ResponseParse, ResponseParser};

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
            for end in 0..r.len {
                assert!(matches!(
                    parse_response(&input[..end]),
                    ResponseParse::Incomplete { .. }
                ));
            }
        }
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
});
