//! Property tests: split-anywhere feeding (stateless and resumable), compose → parse round trips
//! for requests (multi-bulk and inline) and responses, pipelines, fragment → parse round trips.

use proptest::prelude::*;
use rustcracker_redis::{
    parse_request, parse_response, write_fragment, write_request, Command, RequestParse,
    RequestParser, ResponseParse, ResponseParser, ALL_COMMANDS,
};

const MAX_KEY: usize = 16335;

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..12),
        1 => proptest::collection::vec(any::<u8>(), 200..400),
        2 => prop::sample::select(vec![b"0".to_vec(), b"1".to_vec(), b"2".to_vec(), b"-1".to_vec()]),
    ]
}

/// A multi-bulk request: a known command (mixed case) or an unknown one, with arguments.
fn request() -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        prop_oneof![
            4 => prop::sample::select(ALL_COMMANDS.to_vec()).prop_map(|c| c.name().as_bytes().to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..8),
        ],
        any::<bool>(),
        prop_oneof![4 => proptest::collection::vec(arg(), 0..7), 1 => proptest::collection::vec(arg(), 7..40)],
    )
        .prop_map(|(mut name, upper, args)| {
            if upper {
                name.make_ascii_uppercase();
            }
            std::iter::once(name).chain(args).collect()
        })
}

/// Feeds `input` to a resumable parser in the given chunk sizes; returns the first result that
/// is not Incomplete (or the last Incomplete).
fn feed_request(input: &[u8], cuts: &[usize]) -> RequestParse {
    let mut parser = RequestParser::default();
    let mut end: usize = 0;
    let mut cuts = cuts.iter().copied().chain(std::iter::repeat(usize::MAX));
    loop {
        end = end
            .saturating_add(cuts.next().unwrap_or(1).max(1))
            .min(input.len());
        let got = parser.parse(&input[..end], MAX_KEY);
        if !matches!(got, RequestParse::Incomplete { .. }) || end == input.len() {
            return got;
        }
    }
}

fn feed_response(input: &[u8], cuts: &[usize]) -> ResponseParse {
    let mut parser = ResponseParser::default();
    let mut end: usize = 0;
    let mut cuts = cuts.iter().copied().chain(std::iter::repeat(usize::MAX));
    loop {
        end = end
            .saturating_add(cuts.next().unwrap_or(1).max(1))
            .min(input.len());
        let got = parser.parse(&input[..end]);
        if !matches!(got, ResponseParse::Incomplete { .. }) || end == input.len() {
            return got;
        }
    }
}

/// A RESP2 reply of any shape.
fn resp() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        "[a-zA-Z0-9 ]{0,12}".prop_map(|s| format!("+{s}\r\n").into_bytes()),
        "(ERR|OOM|BUSY|WRONGTYPE|x)( [a-z ]{0,10})?".prop_map(|s| format!("-{s}\r\n").into_bytes()),
        any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|data| {
            let mut out = format!("${}\r\n", data.len()).into_bytes();
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
            out
        }),
        Just(b"$-1\r\n".to_vec()),
        Just(b"*-1\r\n".to_vec()),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(|elements| {
            let mut out = format!("*{}\r\n", elements.len()).into_bytes();
            for e in elements {
                out.extend_from_slice(&e);
            }
            out
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A complete multi-bulk request: every strict prefix is Incomplete (with `needed` beyond
    /// the prefix), the whole parses to a result covering it, resumable feeding agrees, and a
    /// Request's arguments are the composed ones.
    #[test]
    fn multibulk_split_anywhere(args in request(), cuts in proptest::collection::vec(1usize..40, 0..30)) {
        let input = multibulk(&args);
        let whole = parse_request(&input, MAX_KEY);
        for end in 0..input.len() {
            match parse_request(&input[..end], MAX_KEY) {
                RequestParse::Incomplete { needed } => {
                    prop_assert!(needed.is_none_or(|n| n > end && n <= input.len()));
                }
                other => prop_assert!(false, "prefix {end}: {other:?}"),
            }
        }
        prop_assert_eq!(feed_request(&input, &cuts), whole.clone());
        match whole {
            RequestParse::Request(r) => {
                prop_assert_eq!(r.len, input.len());
                prop_assert!(!r.inline);
                prop_assert_eq!(Some(r.command), Command::from_name(&args[0]));
                for (i, a) in args[1..].iter().enumerate() {
                    let value = r.arg(&input, i).unwrap();
                    prop_assert_eq!(value.as_ref(), a.as_slice());
                }
                for &k in &r.keys {
                    prop_assert!((k as usize) < r.args.len());
                }
                // Re-encoding gives the same request (lower-case name).
                let mut again = Vec::new();
                write_request(&input, &r, &mut again);
                let RequestParse::Request(r2) = parse_request(&again, MAX_KEY) else {
                    return Err(TestCaseError::fail("re-encoded request does not parse"));
                };
                prop_assert_eq!((r2.command, &r2.keys), (r.command, &r.keys));
            }
            RequestParse::Invalid(inv) => {
                prop_assert!(!inv.close, "{:?}", inv);
                prop_assert_eq!(inv.len, input.len());
                prop_assert!(inv.reply.as_bytes().starts_with(b"-ERR "));
                prop_assert!(inv.reply.as_bytes().ends_with(b"\r\n"));
                // One line: CR/LF only at the end.
                prop_assert_eq!(memchr::memchr2(b'\r', b'\n', inv.reply.as_bytes()), Some(inv.reply.as_bytes().len() - 2));
            }
            RequestParse::Incomplete { .. } => prop_assert!(false, "complete input incomplete"),
        }
    }

    /// Pipelined requests are parsed one by one with the right lengths, by one parser that
    /// reuses the lists of the requests given back to it exactly as a fresh parser would parse.
    #[test]
    fn pipelines(requests in proptest::collection::vec(request(), 1..8)) {
        let encoded: Vec<Vec<u8>> = requests.iter().map(|r| multibulk(r)).collect();
        let all = encoded.concat();
        let mut pos = 0;
        let mut parser = RequestParser::default();
        for e in &encoded {
            let parsed = parser.parse(&all[pos..], MAX_KEY);
            prop_assert_eq!(&parsed, &parse_request(&all[pos..], MAX_KEY));
            let len = match parsed {
                RequestParse::Request(r) => {
                    let len = r.len;
                    parser.recycle(r);
                    len
                }
                RequestParse::Invalid(inv) => inv.len,
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            };
            prop_assert_eq!(len, e.len());
            pos += len;
        }
    }

    /// Inline requests of plain and quoted words parse to the words.
    #[test]
    fn inline_words(
        words in proptest::collection::vec("[a-zA-Z0-9_:{}.-]{1,10}", 1..6),
        quote in proptest::collection::vec(0u8..3, 6),
        crlf in any::<bool>(),
    ) {
        let mut line = b"mget".to_vec();
        for (i, w) in words.iter().enumerate() {
            line.push(b' ');
            match quote[i % quote.len()] {
                0 => line.extend_from_slice(w.as_bytes()),
                1 => line.extend_from_slice(format!("\"{w}\"").as_bytes()),
                _ => line.extend_from_slice(format!("'{w}'").as_bytes()),
            }
        }
        line.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        let RequestParse::Request(r) = parse_request(&line, MAX_KEY) else {
            return Err(TestCaseError::fail("not a request"));
        };
        prop_assert!(r.inline);
        prop_assert_eq!(r.len, line.len());
        prop_assert_eq!(r.keys.len(), words.len());
        for (i, w) in words.iter().enumerate() {
            let key = r.key(&line, i).unwrap();
            prop_assert_eq!(key.as_ref(), w.as_bytes());
        }
        for end in 0..line.len() {
            let prefix_result = parse_request(&line[..end], MAX_KEY);
            let incomplete = matches!(prefix_result, RequestParse::Incomplete { needed: None });
            prop_assert!(incomplete, "prefix {}: {:?}", end, prefix_result);
        }
    }

    /// Fragments parse back to the same command with the chosen keys.
    #[test]
    fn fragments_round_trip(keys in proptest::collection::vec(arg(), 1..8), mset in any::<bool>(), pick in proptest::collection::vec(any::<prop::sample::Index>(), 1..8)) {
        let mut args = vec![if mset { b"MSET".to_vec() } else { b"MGET".to_vec() }];
        for k in &keys {
            args.push(k.clone());
            if mset {
                args.push(b"value".to_vec());
            }
        }
        let input = multibulk(&args);
        let RequestParse::Request(r) = parse_request(&input, MAX_KEY) else {
            return Err(TestCaseError::fail("not a request"));
        };
        let chosen: Vec<usize> = pick.iter().map(|i| i.index(keys.len())).collect();
        let mut fragment = Vec::new();
        write_fragment(&input, &r, &chosen, &mut fragment);
        let RequestParse::Request(f) = parse_request(&fragment, MAX_KEY) else {
            return Err(TestCaseError::fail("fragment does not parse"));
        };
        prop_assert_eq!(f.command, r.command);
        prop_assert_eq!(f.len, fragment.len());
        // Byte for byte what nutcracker sends: lower-case name, then the chosen keys (and values).
        let mut expected = vec![if mset { b"mset".to_vec() } else { b"mget".to_vec() }];
        for &c in &chosen {
            expected.push(keys[c].clone());
            if mset {
                expected.push(b"value".to_vec());
            }
        }
        prop_assert_eq!(&fragment, &multibulk(&expected));
        for (i, &c) in chosen.iter().enumerate() {
            let key = f.key(&fragment, i).unwrap();
            prop_assert_eq!(key.as_ref(), keys[c].as_slice());
        }
    }

    /// Arbitrary bytes: no panic; results stay within the input; resumable feeding agrees with
    /// a whole parse; a request's keys index its arguments.
    #[test]
    fn arbitrary_request_bytes(
        input in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            (request(), proptest::collection::vec(any::<u8>(), 0..8), any::<prop::sample::Index>())
                .prop_map(|(r, junk, at)| {
                    let mut b = multibulk(&r);
                    let at = at.index(b.len() + 1);
                    b.splice(at..at, junk);
                    b
                }),
        ],
        cuts in proptest::collection::vec(1usize..16, 0..16),
    ) {
        let whole = parse_request(&input, MAX_KEY);
        match &whole {
            RequestParse::Incomplete { needed } => prop_assert!(needed.is_none_or(|n| n > input.len())),
            RequestParse::Request(r) => {
                prop_assert!(r.len <= input.len() && r.len > 0);
                for &k in &r.keys {
                    prop_assert!((k as usize) < r.args.len());
                }
                for a in &r.args {
                    prop_assert!(a.start <= a.end && a.end <= r.len);
                }
            }
            RequestParse::Invalid(inv) => prop_assert!(inv.len >= 1 && inv.len <= input.len()),
        }
        prop_assert_eq!(feed_request(&input, &cuts), whole);
    }

    /// A complete reply: every strict prefix is Incomplete, the whole parses to its length,
    /// resumable feeding agrees, and a pipeline of two parses one at a time.
    #[test]
    fn response_split_anywhere(reply in resp(), next in resp(), cuts in proptest::collection::vec(1usize..40, 0..30)) {
        let whole = parse_response(&reply);
        let ResponseParse::Response(r) = whole else {
            return Err(TestCaseError::fail(format!("{whole:?}")));
        };
        prop_assert_eq!(r.len, reply.len());
        for end in 0..reply.len() {
            match parse_response(&reply[..end]) {
                ResponseParse::Incomplete { needed } => {
                    prop_assert!(needed.is_none_or(|n| n > end && n <= reply.len()));
                }
                other => prop_assert!(false, "prefix {end}: {other:?}"),
            }
        }
        prop_assert_eq!(feed_response(&reply, &cuts), whole);
        let both = [reply.clone(), next].concat();
        prop_assert_eq!(parse_response(&both), whole);
    }

    /// Arbitrary bytes: no panic, results within the input, resumable feeding agrees.
    #[test]
    fn arbitrary_response_bytes(
        input in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            (resp(), proptest::collection::vec(any::<u8>(), 0..4), any::<prop::sample::Index>())
                .prop_map(|(r, junk, at)| {
                    let mut b = r;
                    let at = at.index(b.len() + 1);
                    b.splice(at..at, junk);
                    b
                }),
        ],
        cuts in proptest::collection::vec(1usize..16, 0..16),
    ) {
        let whole = parse_response(&input);
        match whole {
            ResponseParse::Incomplete { needed } => prop_assert!(needed.is_none_or(|n| n > input.len())),
            ResponseParse::Response(r) => prop_assert!(r.len > 0 && r.len <= input.len()),
            ResponseParse::Invalid => {}
        }
        prop_assert_eq!(feed_response(&input, &cuts), whole);
    }
}
