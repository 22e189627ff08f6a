//! Fuzzes `parse_request` (and `write_fragment` on what it accepts).
//!
//! Invariants: no panic; consumed ≤ input; `needed` > buffered; a proper prefix of a request is
//! never a request; keys are non-empty, ≤ 250 bytes, free of space and CR, inside the request;
//! key counts fit the command; a request parses the same on its own; fragments re-parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustcracker_memcache::{parse_request, write_fragment, Command, RequestParse, MAX_KEY_LEN};

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        RequestParse::Incomplete { needed } => {
            if let Some(n) = needed {
                assert!(n > data.len(), "needed {n} <= buffered {}", data.len());
            }
        }
        RequestParse::Invalid(inv) => {
            assert!(inv.len >= 1 && inv.len <= data.len(), "{inv:?}");
        }
        RequestParse::Request(req) => {
            assert!(req.len >= 1 && req.len <= data.len());
            let bytes = &data[..req.len];
            for key in &req.keys {
                let range = key.range();
                assert!(range.start < range.end && range.end <= req.len, "{key:?}");
                let k = &bytes[range];
                assert!(k.len() <= MAX_KEY_LEN);
                assert!(!k.contains(&b' ') && !k.contains(&b'\r'), "{k:?}");
            }
            match req.command {
                c if c.is_retrieval() => assert!(!req.keys.is_empty()),
                Command::Version | Command::Quit => assert!(req.keys.is_empty()),
                _ => assert_eq!(req.keys.len(), 1),
            }
            assert!(!req.noreply || req.command.accepts_noreply());
            // Self-contained: the request alone parses identically.
            assert_eq!(parse_request(bytes), RequestParse::Request(req.clone()));
            // Incomplete input never yields a request: every proper prefix is Incomplete.
            let step = (req.len / 512).max(1);
            for p in (0..req.len).step_by(step).chain([req.len - 1]) {
                match parse_request(&bytes[..p]) {
                    RequestParse::Incomplete { needed } => {
                        if let Some(n) = needed {
                            assert!(n > p && n <= req.len, "prefix {p}: needed {n}");
                        }
                    }
                    other => panic!("prefix {p} of a request gave {other:?}"),
                }
            }
            // Fragments of retrievals parse back with the chosen keys.
            if req.command.is_retrieval() {
                let indexes: Vec<usize> = (0..req.keys.len()).rev().collect();
                let mut out = Vec::new();
                write_fragment(bytes, &req, &indexes, &mut out);
                let RequestParse::Request(sub) = parse_request(&out) else {
                    panic!("fragment {out:?} does not parse");
                };
                assert_eq!(sub.command, req.command);
                assert_eq!(sub.len, out.len());
                let got: Vec<&[u8]> = sub.keys.iter().map(|k| &out[k.range()]).collect();
                let want: Vec<&[u8]> = indexes
                    .iter()
                    .map(|&i| &bytes[req.keys[i].range()])
                    .collect();
                assert_eq!(got, want);
            }
        }
    }
});
