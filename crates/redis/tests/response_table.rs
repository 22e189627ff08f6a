//! Response parsing: nutcracker's own vectors (src/test_all.c, spec §8.2) and more.

use rustcracker_redis::{
    parse_response, ErrorClass, Response, ResponseKind, ResponseParse, ResponseParser,
};

fn complete(input: &[u8]) -> ResponseKind {
    match parse_response(input) {
        ResponseParse::Response(Response { len, kind }) if len == input.len() => kind,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

/// `test_redis_parse_rsp_success`: each parses completely.
#[test]
fn nutcracker_success_vectors() {
    use ResponseKind::*;
    let cases: &[(&[u8], ResponseKind)] = &[
        (b"-CUSTOMERR\r\n", Error(ErrorClass::Other)),
        (b"-Error message\r\n", Error(ErrorClass::Other)),
        (b"+OK\r\n", Status),
        (b"$6\r\nfoobar\r\n", Bulk),
        (b"$0\r\n\r\n", Bulk),
        (b"$-1\r\n", Nil),
        (b"*0\r\n", Array(0)),
        (b"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", Array(2)),
        (b"*3\r\n:1\r\n:2\r\n:3\r\n", Array(3)),
        (b"*-1\r\n", NilArray),
        (
            b"*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Foo\r\n-Bar\r\n",
            Array(2),
        ),
    ];
    for (input, kind) in cases {
        assert_eq!(
            complete(input),
            *kind,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// `test_redis_parse_rsp_failure`: each is invalid (the last one, a truncated nested array
/// whose next element line is empty, is invalid as soon as the empty line is seen).
#[test]
fn nutcracker_failure_vectors() {
    let cases: &[&[u8]] = &[
        b"*\r\n",
        b":x\r\n",
        b"$6\r\nfoobarr\r\n",
        b"$6\r\nfoobar\n\n",
        b"$0\r\nx\r\n",
        b"$0\n",
        b"*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n\r\n",
    ];
    for input in cases {
        assert_eq!(
            parse_response(input),
            ResponseParse::Invalid,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn more_vectors() {
    use ResponseKind::*;
    assert_eq!(complete(b":-42\r\n"), Integer(-42));
    assert_eq!(complete(b":9223372036854775807\r\n"), Integer(i64::MAX));
    assert_eq!(complete(b":-9223372036854775808\r\n"), Integer(i64::MIN));
    // Leading zeros are read (redis never sends them; nutcracker takes them).
    assert_eq!(complete(b":007\r\n"), Integer(7));
    assert_eq!(complete(b"$03\r\nabc\r\n"), Bulk);
    assert_eq!(complete(b"+\r\n"), Status);
    assert_eq!(complete(b"-ERR\r\n"), Error(ErrorClass::Err));
    assert_eq!(
        complete(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
        Error(ErrorClass::WrongType)
    );
    for (text, class, failure) in [
        (&b"-OOM command not allowed\r\n"[..], ErrorClass::Oom, true),
        (
            b"-BUSY Redis is busy running a script\r\n",
            ErrorClass::Busy,
            true,
        ),
        (b"-BUSY\r\n", ErrorClass::Busy, true),
        (
            b"-LOADING Redis is loading the dataset in memory\r\n",
            ErrorClass::Loading,
            true,
        ),
        (
            b"-BUSYKEY Target key name already exists.\r\n",
            ErrorClass::BusyKey,
            false,
        ),
        (
            b"-NOAUTH Authentication required.\r\n",
            ErrorClass::NoAuth,
            false,
        ),
        (
            b"-READONLY You can't write against a read only replica.\r\n",
            ErrorClass::ReadOnly,
            false,
        ),
        (
            b"-NOSCRIPT No matching script.\r\n",
            ErrorClass::NoScript,
            false,
        ),
        (b"-MISCONF x\r\n", ErrorClass::Misconf, false),
        (b"-EXECABORT x\r\n", ErrorClass::ExecAbort, false),
        (b"-MASTERDOWN x\r\n", ErrorClass::MasterDown, false),
        (b"-NOREPLICAS x\r\n", ErrorClass::NoReplicas, false),
        (b"-OOMX x\r\n", ErrorClass::Other, false),
    ] {
        let kind = complete(text);
        assert_eq!(kind, Error(class));
        assert_eq!(kind.is_server_failure(), failure);
    }
    // Binary data with CR/LF inside a bulk.
    assert_eq!(complete(b"$4\r\n\r\n\r\n\r\n"), Bulk);
    // Nested 20 deep (upstream test_basic: EVAL returning nested arrays).
    let mut deep = Vec::new();
    for _ in 0..20 {
        deep.extend_from_slice(b"*2\r\n:1\r\n");
    }
    deep.extend_from_slice(b"$1\r\nx\r\n");
    assert_eq!(complete(&deep), Array(2));
    // A million levels: no recursion.
    let deep: Vec<u8> = b"*1\r\n"
        .repeat(1_000_000)
        .into_iter()
        .chain(*b":1\r\n")
        .collect();
    assert_eq!(complete(&deep), Array(1));
    // Pipelined replies: one at a time.
    assert_eq!(
        parse_response(b"+OK\r\n:1\r\n"),
        ResponseParse::Response(Response {
            len: 5,
            kind: Status
        })
    );
    // Invalid: RESP3 types, bad numbers, negative lengths, stray bytes, lone CR.
    for bad in [
        &b"_\r\n"[..],
        b"#t\r\n",
        b",1.5\r\n",
        b"%1\r\n",
        b"~1\r\n",
        b">1\r\n",
        b"=5\r\ntxt:x\r\n",
        b"(123\r\n",
        b"!3\r\nerr\r\n",
        b"$-2\r\n",
        b"*-2\r\n",
        b":1x\r\n",
        b":\r\n",
        b":-\r\n",
        b": 1\r\n",
        b":99999999999999999999\r\n",
        b":123456789012345678901\r\n",
        b":-9223372036854775809\r\n",
        b":9223372036854775808\r\n",
        b":--1\r\n",
        b":1-\r\n",
        b"$-\r\n",
        b"+OK\rX",
        b"$3\r\nabcX",
        b"\r\n",
        b"x",
    ] {
        assert_eq!(
            parse_response(bad),
            ResponseParse::Invalid,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Incomplete, with `needed` while a bulk's data is pending.
    for (partial, needed) in [
        (&b""[..], None),
        (b"+OK", None),
        (b"+OK\r", None),
        (b":12", None),
        // An overflow is told at the line's end, like any other bad number.
        (b":99999999999999999999", None),
        (b"$3", None),
        (b"$3\r\n", Some(9)),
        (b"$3\r\nab", Some(9)),
        (b"$3\r\nabc\r", Some(9)),
        (b"*2\r\n:1\r\n", None),
        (b"*2\r\n$5\r\nhello\r\n$3\r\n", Some(24)),
    ] {
        assert_eq!(
            parse_response(partial),
            ResponseParse::Incomplete { needed },
            "{:?}",
            String::from_utf8_lossy(partial)
        );
    }
}

/// The resumable parser gives the same result as a fresh parse, byte by byte.
#[test]
fn resumable_parser() {
    let reply = b"*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n+OK\r\n:7\r\n";
    let full = b"*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n+OK\r\n".len();
    let mut parser = ResponseParser::default();
    for end in 0..reply.len() {
        let got = parser.parse(&reply[..end]);
        if end < full {
            assert!(
                matches!(got, ResponseParse::Incomplete { .. }),
                "{end}: {got:?}"
            );
        } else {
            assert_eq!(
                got,
                ResponseParse::Response(Response {
                    len: full,
                    kind: ResponseKind::Array(3)
                })
            );
            break;
        }
    }
}
