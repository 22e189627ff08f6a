//! Property tests: split-anywhere feeding, compose → parse round trips, fragment/merge round trips.

use proptest::prelude::*;
use rustcracker_memcache::{
    merge_values, parse_request, parse_response, write_fragment, Command, RequestParse,
    RequestParser, ResponseKind, ResponseParse,
};

/// A request as composed by the test, with what parsing it must give.
#[derive(Debug, Clone)]
struct Composed {
    bytes: Vec<u8>,
    command: Command,
    keys: Vec<Vec<u8>>,
    noreply: bool,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    // Any byte but space, CR and LF (LF ends a line, as in memcached), 1..=250 bytes; mostly short.
    let byte = any::<u8>().prop_filter("no space/CR/LF", |b| !matches!(*b, b' ' | b'\r' | b'\n'));
    prop_oneof![
        8 => proptest::collection::vec(byte.clone(), 1..12),
        1 => proptest::collection::vec(byte, 240..=250),
    ]
}

fn spaces() -> impl Strategy<Value = Vec<u8>> {
    (1usize..4).prop_map(|n| vec![b' '; n])
}

fn retrieval() -> impl Strategy<Value = Composed> {
    (
        prop::sample::select(vec![
            Command::Get,
            Command::Gets,
            Command::Gat,
            Command::Gats,
        ]),
        proptest::collection::vec((spaces(), key()), 1..24),
        -100_000i64..100_000,
        0usize..3,
        0usize..3,
    )
        .prop_map(|(command, keys, exptime, lead, trail)| {
            let mut bytes = vec![b' '; lead];
            bytes.extend_from_slice(command.name().as_bytes());
            if command.is_touching_retrieval() {
                bytes.extend_from_slice(format!(" {exptime}").as_bytes());
            }
            for (sep, key) in &keys {
                bytes.extend_from_slice(sep);
                bytes.extend_from_slice(key);
            }
            bytes.extend(vec![b' '; trail]);
            bytes.extend_from_slice(b"\r\n");
            Composed {
                bytes,
                command,
                keys: keys.into_iter().map(|(_, k)| k).collect(),
                noreply: false,
            }
        })
}

fn storage() -> impl Strategy<Value = Composed> {
    (
        prop::sample::select(vec![
            Command::Set,
            Command::Add,
            Command::Replace,
            Command::Append,
            Command::Prepend,
            Command::Cas,
        ]),
        key(),
        any::<u32>(),
        any::<i32>(),
        any::<u64>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..300),
        spaces(),
    )
        .prop_map(|(command, key, flags, exptime, cas, noreply, value, sep)| {
            let sep = String::from_utf8(sep).unwrap_or_default();
            let mut bytes = command.name().as_bytes().to_vec();
            bytes.extend_from_slice(sep.as_bytes());
            bytes.extend_from_slice(&key);
            bytes.extend_from_slice(
                format!("{sep}{flags}{sep}{exptime}{sep}{}", value.len()).as_bytes(),
            );
            if command == Command::Cas {
                bytes.extend_from_slice(format!(" {cas}").as_bytes());
            }
            if noreply {
                bytes.extend_from_slice(b" noreply");
            }
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&value);
            bytes.extend_from_slice(b"\r\n");
            Composed {
                bytes,
                command,
                keys: vec![key],
                noreply,
            }
        })
}

fn single_key() -> impl Strategy<Value = Composed> {
    (
        prop::sample::select(vec![
            Command::Incr,
            Command::Decr,
            Command::Touch,
            Command::Delete,
        ]),
        key(),
        any::<i64>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(command, key, number, noreply, hold)| {
            let mut bytes = command.name().as_bytes().to_vec();
            bytes.push(b' ');
            bytes.extend_from_slice(&key);
            match command {
                Command::Delete if hold => bytes.extend_from_slice(b" 0"),
                Command::Delete => {}
                Command::Touch => bytes.extend_from_slice(format!(" {number}").as_bytes()),
                _ => bytes.extend_from_slice(format!(" {}", number.unsigned_abs()).as_bytes()),
            }
            if noreply {
                bytes.extend_from_slice(b" noreply");
            }
            bytes.extend_from_slice(b"\r\n");
            Composed {
                bytes,
                command,
                keys: vec![key],
                noreply,
            }
        })
}

fn no_key() -> impl Strategy<Value = Composed> {
    prop::sample::select(vec![Command::Version, Command::Quit]).prop_map(|command| Composed {
        bytes: format!("{}\r\n", command.name()).into_bytes(),
        command,
        keys: Vec::new(),
        noreply: false,
    })
}

fn any_request() -> impl Strategy<Value = Composed> {
    prop_oneof![3 => retrieval(), 3 => storage(), 2 => single_key(), 1 => no_key()]
}

/// (command, keys, noreply, len) of a parsed request, for comparisons.
type Parsed = (Command, Vec<Vec<u8>>, bool, usize);

fn expected(requests: &[Composed]) -> Vec<Parsed> {
    requests
        .iter()
        .map(|r| (r.command, r.keys.clone(), r.noreply, r.bytes.len()))
        .collect()
}

/// Feeds `stream` in the given chunks, parsing as a proxy would (one parser, given back every
/// request), and checks each result against a fresh parser's; panics on Invalid.
fn feed(stream: &[u8], cuts: &[usize]) -> Vec<Parsed> {
    let mut parser = RequestParser::default();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    points.sort_unstable();
    points.push(stream.len());
    for point in points {
        buf.extend_from_slice(&stream[fed..point.max(fed)]);
        fed = point.max(fed);
        loop {
            let parsed = parser.parse(&buf);
            assert_eq!(parsed, parse_request(&buf));
            match parsed {
                RequestParse::Request(r) => {
                    assert!(r.len <= buf.len());
                    let keys = r.keys.iter().map(|k| buf[k.range()].to_vec()).collect();
                    out.push((r.command, keys, r.noreply, r.len));
                    buf.drain(..r.len);
                    parser.recycle(r);
                }
                RequestParse::Incomplete { needed } => {
                    if let Some(n) = needed {
                        assert!(n > buf.len(), "needed {n} with {} buffered", buf.len());
                    }
                    break;
                }
                RequestParse::Invalid(inv) => panic!("valid stream gave {inv:?}"),
            }
        }
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Parsing a valid stream whole gives the composed requests.
    #[test]
    fn compose_then_parse(requests in proptest::collection::vec(any_request(), 1..6)) {
        let stream: Vec<u8> = requests.iter().flat_map(|r| r.bytes.clone()).collect();
        prop_assert_eq!(feed(&stream, &[]), expected(&requests));
    }

    /// Fed split at every single point, the stream parses exactly as it does whole.
    #[test]
    fn split_anywhere(requests in proptest::collection::vec(any_request(), 1..4)) {
        let stream: Vec<u8> = requests.iter().flat_map(|r| r.bytes.clone()).collect();
        let whole = feed(&stream, &[]);
        for cut in 0..=stream.len() {
            prop_assert_eq!(&feed(&stream, &[cut]), &whole);
        }
    }

    /// Fed in random chunks, the stream parses exactly as it does whole.
    #[test]
    fn random_chunks(
        requests in proptest::collection::vec(any_request(), 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let stream: Vec<u8> = requests.iter().flat_map(|r| r.bytes.clone()).collect();
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        prop_assert_eq!(feed(&stream, &cuts), expected(&requests));
    }

    /// Every proper prefix of a request is Incomplete, with a `needed` that never overshoots.
    #[test]
    fn prefixes_are_incomplete(request in any_request()) {
        let bytes = &request.bytes;
        for p in 0..bytes.len() {
            match parse_request(&bytes[..p]) {
                RequestParse::Incomplete { needed: Some(n) } => {
                    prop_assert!(n > p && n <= bytes.len(), "prefix {} needed {}", p, n);
                }
                RequestParse::Incomplete { needed: None } => {}
                other => prop_assert!(false, "prefix {} of {:?} gave {:?}", p, bytes, other),
            }
        }
    }

    /// A fragment of a retrieval parses back to the same command with the chosen keys.
    #[test]
    fn fragment_round_trip(
        request in retrieval(),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..6),
    ) {
        let RequestParse::Request(parsed) = parse_request(&request.bytes) else {
            panic!("valid retrieval")
        };
        let indexes: Vec<usize> = picks.iter().map(|i| i.index(parsed.keys.len())).collect();
        let mut out = Vec::new();
        write_fragment(&request.bytes, &parsed, &indexes, &mut out);
        let RequestParse::Request(sub) = parse_request(&out) else {
            panic!("fragment {:?} must parse", out)
        };
        prop_assert_eq!(sub.command, parsed.command);
        prop_assert_eq!(sub.len, out.len());
        let keys: Vec<&[u8]> = sub.keys.iter().map(|k| &out[k.range()]).collect();
        let want: Vec<&[u8]> = indexes.iter().map(|&i| &request.keys[i][..]).collect();
        prop_assert_eq!(keys, want);
        if parsed.command.is_touching_retrieval() {
            // Same exptime token: the bytes before the first key match once spaces are collapsed.
            let words = |b: &[u8], k: usize| -> Vec<Vec<u8>> {
                b[..k].split(|&c| c == b' ').filter(|w| !w.is_empty()).map(<[u8]>::to_vec).collect()
            };
            prop_assert_eq!(
                words(&out, sub.keys[0].range().start),
                words(&request.bytes, parsed.keys[0].range().start)
            );
        }
    }

    /// Merging per-server replies gives what one memcached holding every key would answer.
    #[test]
    fn merge_matches_single_server(
        picks in proptest::collection::vec((0usize..6, any::<bool>()), 0..12),
        servers in 1usize..4,
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 6),
        gets in any::<bool>(),
    ) {
        // Key i lives on server i % servers; hits are decided per key (duplicates agree).
        let names: Vec<Vec<u8>> = (0..6).map(|i| format!("key{i}").into_bytes()).collect();
        let hit = |i: usize| picks.iter().find(|p| p.0 == i).is_some_and(|p| p.1);
        let block = |i: usize| {
            let mut b = format!("VALUE key{i} {i} {}", values[i].len()).into_bytes();
            if gets {
                b.extend_from_slice(format!(" {}", 1000 + i).as_bytes());
            }
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(&values[i]);
            b.extend_from_slice(b"\r\n");
            b
        };
        let mut fragments = vec![Vec::new(); servers];
        let mut single = Vec::new();
        for &(i, _) in &picks {
            if hit(i) {
                fragments[i % servers].extend(block(i));
                single.extend(block(i));
            }
        }
        for f in &mut fragments {
            f.extend_from_slice(b"END\r\n");
        }
        single.extend_from_slice(b"END\r\n");
        for f in &fragments {
            let parsed = parse_response(f);
            prop_assert_eq!(
                parsed,
                ResponseParse::Response(rustcracker_memcache::Response { len: f.len(), kind: ResponseKind::Values })
            );
        }
        let keys: Vec<(&[u8], usize)> = picks.iter().map(|&(i, _)| (&names[i][..], i % servers)).collect();
        let frags: Vec<&[u8]> = fragments.iter().map(Vec::as_slice).collect();
        let mut out = Vec::new();
        merge_values(&keys, &frags, &mut out);
        prop_assert_eq!(out, single);
    }

    /// Response streams parse the same whole and split anywhere.
    #[test]
    fn responses_split_anywhere(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(b"STORED\r\n".to_vec()),
                Just(b"NOT_FOUND\r\n".to_vec()),
                Just(b"END\r\n".to_vec()),
                Just(b"SERVER_ERROR out of memory\r\n".to_vec()),
                Just(b"42  \r\n".to_vec()),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..4)
                    .prop_map(|vals| {
                        let mut r = Vec::new();
                        for (i, v) in vals.iter().enumerate() {
                            r.extend(format!("VALUE k{i} 0 {} {i}\r\n", v.len()).into_bytes());
                            r.extend_from_slice(v);
                            r.extend_from_slice(b"\r\n");
                        }
                        r.extend_from_slice(b"END\r\n");
                        r
                    }),
            ],
            1..5,
        ),
    ) {
        let stream: Vec<u8> = parts.concat();
        let lens: Vec<usize> = parts.iter().map(Vec::len).collect();
        for cut in 0..=stream.len() {
            let mut buf = Vec::new();
            let mut got = Vec::new();
            for chunk in [&stream[..cut], &stream[cut..]] {
                buf.extend_from_slice(chunk);
                loop {
                    match parse_response(&buf) {
                        ResponseParse::Response(r) => {
                            got.push(r.len);
                            buf.drain(..r.len);
                        }
                        ResponseParse::Incomplete { needed } => {
                            if let Some(n) = needed {
                                prop_assert!(n > buf.len());
                            }
                            break;
                        }
                        ResponseParse::Invalid => prop_assert!(false, "invalid at cut {}", cut),
                    }
                }
            }
            prop_assert_eq!(&got, &lens);
        }
    }
}
