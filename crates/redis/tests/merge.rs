//! Fragment building and reply merging (spec §6.3).

use rustcracker_redis::{
    merge_mget_framed, merge_mset, merge_sum, parse_request, reply, write_fragment, write_request,
    MergeError, RequestParse, ResponseParse, ResponseParser,
};

fn request(input: &[u8]) -> rustcracker_redis::Request {
    match parse_request(input, 1000) {
        RequestParse::Request(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn fragments_are_lowercase_multibulk() {
    let input = b"*5\r\n$4\r\nMGET\r\n$3\r\nk10\r\n$2\r\nk0\r\n$5\r\nnokey\r\n$3\r\nk11\r\n";
    let r = request(input);
    let mut out = Vec::new();
    write_fragment(input, &r, &[0, 3], &mut out);
    assert_eq!(out, b"*3\r\n$4\r\nmget\r\n$3\r\nk10\r\n$3\r\nk11\r\n");
    out.clear();
    write_fragment(input, &r, &[2, 9], &mut out); // 9 is out of range: skipped
    assert_eq!(out, b"*2\r\n$4\r\nmget\r\n$5\r\nnokey\r\n");

    for (name, lower) in [
        ("DEL", "del"),
        ("UNLINK", "unlink"),
        ("TOUCH", "touch"),
        ("EXISTS", "exists"),
    ] {
        let input = format!("*3\r\n${}\r\n{name}\r\n$1\r\na\r\n$1\r\nb\r\n", name.len());
        let r = request(input.as_bytes());
        let mut out = Vec::new();
        write_fragment(input.as_bytes(), &r, &[1], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("*2\r\n${}\r\n{lower}\r\n$1\r\nb\r\n", lower.len())
        );
    }

    let input =
        b"*7\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$0\r\n\r\n$1\r\nc\r\n$3\r\n333\r\n";
    let r = request(input);
    let mut out = Vec::new();
    write_fragment(input, &r, &[1, 2], &mut out);
    assert_eq!(
        out,
        b"*5\r\n$4\r\nmset\r\n$1\r\nb\r\n$0\r\n\r\n$1\r\nc\r\n$3\r\n333\r\n"
    );
}

#[test]
fn inline_requests_are_reencoded() {
    let input = b"mget a \"b c\" 'd\\'e'\r\n";
    let r = request(input);
    let mut out = Vec::new();
    write_fragment(input, &r, &[1, 2], &mut out);
    assert_eq!(out, b"*3\r\n$4\r\nmget\r\n$3\r\nb c\r\n$3\r\nd'e\r\n");
    out.clear();
    write_request(input, &r, &mut out);
    assert_eq!(
        out,
        b"*4\r\n$4\r\nmget\r\n$1\r\na\r\n$3\r\nb c\r\n$3\r\nd'e\r\n"
    );
    let input = b"SET k \"\\x00\\xff\"\n";
    let r = request(input);
    out.clear();
    write_request(input, &r, &mut out);
    assert_eq!(out, b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$2\r\n\x00\xff\r\n");
}

/// `merge_mget`, checked against the merge over the element ends a stream parser recorded while
/// framing each fragment (which must agree, errors included).
fn merge_mget(keys: &[usize], fragments: &[&[u8]], out: &mut Vec<u8>) -> Result<(), MergeError> {
    let parsers: Vec<ResponseParser> = fragments
        .iter()
        .map(|f| ResponseParser::framing(f))
        .collect();
    let ends: Vec<&[usize]> = parsers
        .iter()
        .map(|p| p.element_ends().unwrap_or_default())
        .collect();
    let mut framed = out.clone();
    let framed_result = merge_mget_framed(keys, fragments, &ends, &mut framed);
    let result = rustcracker_redis::merge_mget(keys, fragments, out);
    assert_eq!((framed_result, &framed), (result, &*out));
    result
}

#[test]
fn element_ends_are_recorded_for_arrays_of_scalars_only() {
    let ends = |reply: &[u8]| {
        let mut parser = ResponseParser::default();
        assert!(matches!(parser.parse(reply), ResponseParse::Response(_)));
        parser.element_ends().map(<[usize]>::to_vec)
    };
    assert_eq!(
        ends(b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n"),
        Some(vec![11, 16, 20])
    );
    assert_eq!(ends(b"*0\r\n"), Some(vec![]));
    assert_eq!(ends(b"*2\r\n*1\r\n:1\r\n:2\r\n"), None);
    assert_eq!(ends(b"$1\r\na\r\n"), None);
    assert_eq!(ends(b"-ERR x\r\n"), None);
    // Each reply's own: an array after an array of scalars, a scalar after it.
    let mut parser = ResponseParser::default();
    let mut buf = b"*1\r\n:1\r\n".to_vec();
    parser.parse(&buf);
    buf = b"*1\r\n:22\r\n".to_vec();
    parser.parse(&buf);
    assert_eq!(parser.element_ends(), Some(&[9][..]));
    parser.parse(b"+OK\r\n");
    assert_eq!(parser.element_ends(), None);
}

#[test]
fn mget_merge_in_request_order() {
    // MGET k10 k0 nokey k11: k10, k11 on fragment 0; k0, nokey on fragment 1.
    let f0: &[u8] = b"*2\r\n$4\r\nvk10\r\n$4\r\nvk11\r\n";
    let f1: &[u8] = b"*2\r\n$3\r\nvk0\r\n$-1\r\n";
    let mut out = b"prefix".to_vec();
    merge_mget(&[0, 1, 1, 0], &[f0, f1], &mut out).unwrap();
    assert_eq!(
        out,
        b"prefix*4\r\n$4\r\nvk10\r\n$3\r\nvk0\r\n$-1\r\n$4\r\nvk11\r\n"
    );

    // Duplicate keys each get their element.
    let mut out = Vec::new();
    merge_mget(&[0, 0], &[b"*2\r\n$1\r\nv\r\n$1\r\nv\r\n"], &mut out).unwrap();
    assert_eq!(out, b"*2\r\n$1\r\nv\r\n$1\r\nv\r\n");

    // Wrong type or count: nothing written, EINVAL.
    for bad in [
        &b"-READONLY You can't write\r\n"[..],
        b"*1\r\n$1\r\nv\r\n",
        b":1\r\n",
        b"*2\r\n$1\r\nv\r\n",
        // More elements than keys, or bytes after the reply.
        b"*3\r\n$1\r\nv\r\n$1\r\nv\r\n$1\r\nv\r\n",
        b"*2\r\n$1\r\nv\r\n$1\r\nv\r\n+OK\r\n",
        // A null array, a malformed header, a truncated element.
        b"*-1\r\n",
        b"*2x\r\n$1\r\nv\r\n$1\r\nv\r\n",
        b"*2\r\n$1\r\nv\r\n$5\r\nv\r\n",
    ] {
        let mut out = b"x".to_vec();
        assert_eq!(
            merge_mget(&[0, 1, 1, 0], &[f0, bad], &mut out),
            Err(MergeError)
        );
        assert_eq!(out, b"x");
    }
}

#[test]
fn sum_merge() {
    let mut out = Vec::new();
    merge_sum(&[b":1\r\n", b":0\r\n", b":2\r\n"], &mut out).unwrap();
    assert_eq!(out, b":3\r\n");
    let mut out = Vec::new();
    assert_eq!(
        merge_sum(
            &[b":1\r\n", b"-NOAUTH Authentication required.\r\n"],
            &mut out
        ),
        Err(MergeError)
    );
    assert_eq!(
        merge_sum(&[b":1\r\n", b"+OK\r\n"], &mut out),
        Err(MergeError)
    );
    assert!(out.is_empty());
}

#[test]
fn mset_merge() {
    let mut out = Vec::new();
    merge_mset(&[b"+OK\r\n", b"+OK\r\n"], &mut out).unwrap();
    assert_eq!(out, reply::OK);
    assert_eq!(
        merge_mset(&[b"+OK\r\n", b"-ERR x\r\n"], &mut Vec::new()),
        Err(MergeError)
    );
    assert_eq!(
        merge_mset(&[b"+OK\r\n+OK\r\n"], &mut Vec::new()),
        Err(MergeError)
    );
}

#[test]
fn proxy_replies() {
    let mut out = Vec::new();
    reply::error_reply("Connection refused", &mut out);
    assert_eq!(out, b"-ERR Connection refused\r\n");
    out.clear();
    reply::ping_reply(None, &mut out);
    reply::ping_reply(Some(b"hello"), &mut out);
    assert_eq!(out, b"+PONG\r\n$5\r\nhello\r\n");
    assert_eq!(rustcracker_redis::max_key_len_for_mbuf(16384), 16335);
}
