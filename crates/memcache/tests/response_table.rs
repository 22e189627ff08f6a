//! Response parsing: nutcracker's §8.2 vectors plus memcached's other replies.

use rustcracker_memcache::{parse_response, Response, ResponseKind, ResponseParse};

fn complete(input: &[u8], kind: ResponseKind) {
    assert_eq!(
        parse_response(input),
        ResponseParse::Response(Response {
            len: input.len(),
            kind
        }),
        "{:?}",
        String::from_utf8_lossy(input)
    );
}

#[test]
fn success_vectors() {
    use ResponseKind::*;
    let rows: &[(&[u8], ResponseKind)] = &[
        // §8.2 (test_memcache_parse_rsp_success).
        (b"0\r\n", Number),
        (b"0  \r\n", Number),
        (b"9223372036854775807\r\n", Number),
        (b"DELETED\r\n", Deleted),
        (b"END\r\n", Values),
        (b"ERROR\r\n", Error),
        (b"EXISTS\r\n", Exists),
        (b"NOT_FOUND\r\n", NotFound),
        (b"STORED\r\n", Stored),
        (b"TOUCHED\r\n", Touched),
        (b"VALUE key 0 2\r\nab\r\nEND\r\n", Values),
        (
            b"VALUE key 0 2\r\nab\r\nVALUE key2 0 2\r\ncd\r\nEND\r\n",
            Values,
        ),
        (b"VERSION 1.5.22\r\n", Version),
        // Others memcached sends.
        (b"NOT_STORED\r\n", NotStored),
        (b"18446744073709551615\r\n", Number),
        (b"CLIENT_ERROR bad command line format\r\n", ClientError),
        (b"CLIENT_ERROR bad data chunk\r\n", ClientError),
        (b"SERVER_ERROR object too large for cache\r\n", ServerError),
        (
            b"SERVER_ERROR out of memory storing object\r\n",
            ServerError,
        ),
        (b"VERSION 1.6.18\r\n", Version),
        (b"VALUE foo 0 3 121022\r\nbar\r\nEND\r\n", Values),
        (b"VALUE k 5 6\r\na\r\nb\r\n\r\nEND\r\n", Values),
        (b"VALUE k 0 0\r\n\r\nEND\r\n", Values),
        (
            b"VALUE k 4294967295 3 18446744073709551615\r\nEND\r\nEND\r\n",
            Values,
        ),
    ];
    for &(input, kind) in rows {
        complete(input, kind);
    }
}

#[test]
fn failure_vectors() {
    let rows: &[&[u8]] = &[
        // §8.2 (test_memcache_parse_rsp_failure).
        b"\r\n",
        b"ENDD\r\n",
        b"\r",
        b"-1\r\n",
        // Others.
        b"OK\r\n",
        b"end\r\n",
        b"STORED \r\n",
        b"1a\r\n",
        b"END\r\r",
        b"VALUE k 0 2\r\nabc\r\nEND\r\n",
        b"VALUE k 0 2\r\nab\r\nSTORED\r\n",
        b"VALUE k 0 2\r\nab\r\nENDD\r\n",
        b"VALUE k 0\r\nab\r\nEND\r\n",
        b"VALUE k x 2\r\nab\r\nEND\r\n",
        b"VALUE k 0 2 3 4\r\nab\r\nEND\r\n",
        b"VALUE k 0 99999999999999999999999\r\n",
        b"CLIENT_ERRORX\r\n",
        b"\x80\x01",
    ];
    for &input in rows {
        assert_eq!(
            parse_response(input),
            ResponseParse::Invalid,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn incomplete_and_needed() {
    let inc = |needed| ResponseParse::Incomplete { needed };
    assert_eq!(parse_response(b""), inc(None));
    assert_eq!(parse_response(b"STOR"), inc(None));
    assert_eq!(parse_response(b"STORED\r"), inc(None));
    assert_eq!(parse_response(b"VALUE k 0 10\r\n"), inc(Some(14 + 12 + 5)));
    assert_eq!(parse_response(b"VALUE k 0 10\r\n0123"), inc(Some(31)));
    assert_eq!(parse_response(b"VALUE k 0 1\r\na\r\n"), inc(Some(21)));
    assert_eq!(parse_response(b"VALUE k 0 1\r\na\r\nEN"), inc(Some(21)));
    assert_eq!(parse_response(b"VALUE k 0 1\r\na\r\nVALUE k"), inc(None));
    // A broken backend cannot grow the buffer forever.
    assert_eq!(parse_response(&vec![b'V'; 9000]), ResponseParse::Invalid);
}

#[test]
fn pipelined_responses() {
    let stream = b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n12\r\n";
    let mut rest = &stream[..];
    let mut kinds = Vec::new();
    while let ResponseParse::Response(r) = parse_response(rest) {
        kinds.push(r.kind);
        rest = &rest[r.len..];
    }
    assert!(rest.is_empty());
    assert_eq!(
        kinds,
        [
            ResponseKind::Stored,
            ResponseKind::Values,
            ResponseKind::Number
        ]
    );
}
