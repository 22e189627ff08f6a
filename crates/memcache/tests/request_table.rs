//! Table of request bytes → expected parse. Replies of invalid requests are memcached 1.6.18's,
//! checked against a real memcached (`printf ... | nc`).

use rustcracker_memcache::{parse_request, reply, Command, RequestParse};

/// What a row expects.
#[derive(Clone, Copy)]
enum Expect {
    /// A request: command, keys, noreply; its length is the whole input.
    Req(Command, &'static [&'static [u8]], bool),
    /// A request shorter than the input (pipelined bytes follow).
    ReqLen(Command, &'static [&'static [u8]], bool, usize),
    /// Answered locally: reply, close. Consumes the whole input unless `InvLen` is used.
    Inv(&'static [u8], bool),
    /// Answered locally, consuming exactly `len` bytes.
    InvLen(&'static [u8], bool, usize),
    /// Answered locally, consuming the first line (through the first `\r\n`).
    InvLine(&'static [u8], bool),
    /// Needs more bytes.
    Inc(Option<usize>),
}
use Expect::*;

const ERROR: &[u8] = reply::ERROR;
const BAD_LINE: &[u8] = reply::BAD_COMMAND_LINE;
const BAD_CHUNK: &[u8] = reply::BAD_DATA_CHUNK;
const NONE: &[u8] = b"";

fn check(input: &[u8], expect: Expect) {
    let got = parse_request(input);
    let show = String::from_utf8_lossy(input);
    match expect {
        Req(command, keys, noreply) => check_req(input, &got, command, keys, noreply, input.len()),
        ReqLen(command, keys, noreply, len) => check_req(input, &got, command, keys, noreply, len),
        Inv(reply, close) => {
            let RequestParse::Invalid(inv) = got else {
                panic!("{show:?}: expected invalid, got {got:?}")
            };
            assert_eq!(
                (String::from_utf8_lossy(inv.reply), inv.close),
                (String::from_utf8_lossy(reply), close),
                "{show:?}"
            );
            assert!(inv.len >= 1 && inv.len <= input.len(), "{show:?}: {inv:?}");
            if !close {
                assert_eq!(inv.len, input.len(), "{show:?}");
            }
        }
        InvLen(reply, close, len) => {
            let RequestParse::Invalid(inv) = got else {
                panic!("{show:?}: expected invalid, got {got:?}")
            };
            assert_eq!(
                (inv.reply, inv.close, inv.len),
                (reply, close, len),
                "{show:?}"
            );
        }
        InvLine(reply, close) => {
            let line = input
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(0, |p| p + 2);
            check(input, InvLen(reply, close, line));
        }
        Inc(needed) => assert_eq!(got, RequestParse::Incomplete { needed }, "{show:?}"),
    }
}

fn check_req(
    input: &[u8],
    got: &RequestParse,
    command: Command,
    keys: &[&[u8]],
    noreply: bool,
    len: usize,
) {
    let show = String::from_utf8_lossy(input);
    let RequestParse::Request(req) = got else {
        panic!("{show:?}: expected a request, got {got:?}")
    };
    assert_eq!(req.command, command, "{show:?}");
    assert_eq!(req.len, len, "{show:?}");
    assert_eq!(req.noreply, noreply, "{show:?}");
    let got_keys: Vec<&[u8]> = req.keys.iter().map(|k| &input[k.range()]).collect();
    assert_eq!(got_keys, keys, "{show:?}");
}

fn key(len: usize) -> Vec<u8> {
    vec![b'x'; len]
}

#[test]
fn valid_requests() {
    use Command::*;
    let rows: &[(&[u8], Expect)] = &[
        // §8.2 success vectors.
        (b"add key 0 600 5\r\nvalue\r\n", Req(Add, &[b"key"], false)),
        (
            b"add key 0 0 1 noreply\r\n\n\r\n",
            Req(Add, &[b"key"], true),
        ),
        (
            b"append key 0 600 5\r\nvalue\r\n",
            Req(Append, &[b"key"], false),
        ),
        (
            b"append key 0 1 0 noreply\r\n\r\n",
            Req(Append, &[b"key"], true),
        ),
        (
            b"cas key 0 600 5 123456\r\nvalue\r\n",
            Req(Cas, &[b"key"], false),
        ),
        (
            b"cas key 0 1 1 1 noreply\r\nx\r\n",
            Req(Cas, &[b"key"], true),
        ),
        (b"decr key 0\r\n", Req(Decr, &[b"key"], false)),
        (b"decr key 0 noreply\r\n", Req(Decr, &[b"key"], true)),
        (b"delete a noreply\r\n", Req(Delete, &[b"a"], true)),
        (b"delete key\r\n", Req(Delete, &[b"key"], false)),
        (b"get key\r\n", Req(Get, &[b"key"], false)),
        (b"gets u\r\n", Req(Gets, &[b"u"], false)),
        (b"incr key 1\r\n", Req(Incr, &[b"key"], false)),
        (
            b"incr key 9223372036854775807 noreply\r\n",
            Req(Incr, &[b"key"], true),
        ),
        (
            b"prepend key 0 600 5\r\nvalue\r\n",
            Req(Prepend, &[b"key"], false),
        ),
        (
            b"prepend key 0 600 0 noreply\r\n\r\n",
            Req(Prepend, &[b"key"], true),
        ),
        (b"quit\r\n", Req(Quit, &[], false)),
        (
            b"replace key 0 600 5\r\nvalue\r\n",
            Req(Replace, &[b"key"], false),
        ),
        (
            b"replace key 0 9 0 noreply\r\n\r\n",
            Req(Replace, &[b"key"], true),
        ),
        (
            b"set key 0 5 10 noreply\r\nvalue12345\r\n",
            Req(Set, &[b"key"], true),
        ),
        (b"set key 0 600 5\r\nvalue\r\n", Req(Set, &[b"key"], false)),
        (b"touch key 12345\r\n", Req(Touch, &[b"key"], false)),
        (b"touch key 12345 noreply\r\n", Req(Touch, &[b"key"], true)),
        (b"version\r\n", Req(Version, &[], false)),
        // Multi-key retrievals, spacing.
        (b"get a b c\r\n", Req(Get, &[b"a", b"b", b"c"], false)),
        (b"gets  a   b  \r\n", Req(Gets, &[b"a", b"b"], false)),
        (b"   get foo\r\n", Req(Get, &[b"foo"], false)),
        (
            b"get foo nokey foo\r\n",
            Req(Get, &[b"foo", b"nokey", b"foo"], false),
        ),
        (b"get noreply\r\n", Req(Get, &[b"noreply"], false)),
        (b"set  k  0  0  1 \r\na\r\n", Req(Set, &[b"k"], false)),
        // gat / gats (fix: supported).
        (b"gat 3600 key\r\n", Req(Gat, &[b"key"], false)),
        (
            b"gat 100 k1 k2 k3\r\n",
            Req(Gat, &[b"k1", b"k2", b"k3"], false),
        ),
        (b"gats -1 foo\r\n", Req(Gats, &[b"foo"], false)),
        // Negative exptime (fix: memcached accepts it).
        (b"set k 0 -1 1\r\na\r\n", Req(Set, &[b"k"], false)),
        (
            b"cas k 0 -100 1 5 noreply\r\na\r\n",
            Req(Cas, &[b"k"], true),
        ),
        // memcached's numeric limits.
        (
            b"set k 18446744073709551615 0 1\r\na\r\n",
            Req(Set, &[b"k"], false),
        ),
        (
            b"set k 0 -9223372036854775808 1\r\na\r\n",
            Req(Set, &[b"k"], false),
        ),
        (
            b"cas k 0 0 1 18446744073709551615\r\na\r\n",
            Req(Cas, &[b"k"], false),
        ),
        // Binary values containing \r\n, and an empty value.
        (
            b"set k 0 0 8\r\na\r\nb\r\n\x00\xff\r\n",
            Req(Set, &[b"k"], false),
        ),
        (b"set k 0 0 4\r\n\r\n\r\n\r\n", Req(Set, &[b"k"], false)),
        (b"set k 0 0 0\r\n\r\n", Req(Set, &[b"k"], false)),
        // Keys: any byte but space, CR and LF. A bare \n ends the line, as memcached frames it
        // (nutcracker made it part of the key, and the server then answered twice).
        (b"get a\tb\r\n", Req(Get, &[b"a\tb"], false)),
        (b"get foo\n", Req(Get, &[b"foo"], false)),
        (b"delete foo\n", Req(Delete, &[b"foo"], false)),
        (b"get foo bar\n", Req(Get, &[b"foo", b"bar"], false)),
        (
            b"delete \xc3\xa9t\xc3\xa9\r\n",
            Req(Delete, &[b"\xc3\xa9t\xc3\xa9"], false),
        ),
        // incr/decr/touch numbers: nutcracker's `-`?digits, forwarded as is.
        (b"incr k -1\r\n", Req(Incr, &[b"k"], false)),
        (b"touch k -1\r\n", Req(Touch, &[b"k"], false)),
        (
            b"incr k 99999999999999999999999\r\n",
            Req(Incr, &[b"k"], false),
        ),
        // memcached ignores an optional last token that is not `noreply`; so do we (fix).
        (b"decr key 0 extra\r\n", Req(Decr, &[b"key"], false)),
        (b"touch k 10 extra\r\n", Req(Touch, &[b"k"], false)),
        (b"set k 0 0 5 extra\r\nhello\r\n", Req(Set, &[b"k"], false)),
        // delete's legacy hold time 0.
        (b"delete foo 0\r\n", Req(Delete, &[b"foo"], false)),
        (b"delete foo 0 noreply\r\n", Req(Delete, &[b"foo"], true)),
        // version/quit ignore arguments, as memcached does (fix).
        (b"version extra\r\n", Req(Version, &[], false)),
        (b"quit extra\r\n", Req(Quit, &[], false)),
        // Pipelining: only the first request is parsed.
        (b"get a\r\nget b\r\n", ReqLen(Get, &[b"a"], false, 7)),
        (
            b"set k 0 0 1\r\na\r\nget k\r\n",
            ReqLen(Set, &[b"k"], false, 16),
        ),
        (
            b"get foo\r\nquit\r\nget foo\r\n",
            ReqLen(Get, &[b"foo"], false, 9),
        ),
    ];
    for (input, expect) in rows.iter().copied() {
        check(input, expect);
    }
}

#[test]
fn key_length_limits() {
    let k250 = key(250);
    let k251 = key(251);
    let join = |parts: &[&[u8]]| parts.concat();

    let get250 = join(&[b"get ", &k250, b"\r\n"]);
    let RequestParse::Request(req) = parse_request(&get250) else {
        panic!("250-byte key must parse")
    };
    assert_eq!(&get250[req.keys[0].range()], &k250[..]);
    check(
        &join(&[b"get a b ", &k250, b"\r\n"]),
        Req(Command::Get, leak(&[b"a", b"b", &k250]), false),
    );
    check(
        &join(&[b"set ", &k250, b" 0 0 1\r\na\r\n"]),
        Req(Command::Set, leak(&[&k250]), false),
    );

    // 251 bytes: memcached's reply; the connection stays unless framing is lost.
    check(&join(&[b"get ", &k251, b"\r\n"]), Inv(BAD_LINE, false));
    check(&join(&[b"get foo ", &k251, b"\r\n"]), Inv(BAD_LINE, false));
    check(
        &join(&[b"gats 10 foo ", &k251, b"\r\n"]),
        Inv(BAD_LINE, false),
    );
    check(&join(&[b"incr ", &k251, b" 1\r\n"]), Inv(BAD_LINE, false));
    check(
        &join(&[b"incr ", &k251, b" 1 noreply\r\n"]),
        Inv(NONE, false),
    );
    check(&join(&[b"touch ", &k251, b" 1\r\n"]), Inv(BAD_LINE, false));
    check(&join(&[b"delete ", &k251, b"\r\n"]), Inv(BAD_LINE, false));
    check(
        &join(&[b"delete ", &k251, b" 1\r\n"]),
        Inv(reply::DELETE_USAGE, false),
    );
    // Storage: memcached would run the data block as a command; we close after its reply.
    let add251 = join(&[b"add ", &k251, b" 0 600 5\r\nvalue\r\n"]);
    check(&add251, InvLen(BAD_LINE, true, add251.len() - 7));
    let set251 = join(&[b"set ", &k251, b" 0 0 5 noreply\r\nhello\r\n"]);
    check(&set251, InvLen(NONE, true, set251.len() - 7));
}

fn leak(parts: &[&[u8]]) -> &'static [&'static [u8]] {
    let owned: Vec<&'static [u8]> = parts
        .iter()
        .map(|p| &*Box::leak(p.to_vec().into_boxed_slice()))
        .collect();
    Box::leak(owned.into_boxed_slice())
}

#[test]
fn invalid_requests() {
    let rows: &[(&[u8], Expect)] = &[
        // §8.2 failure vectors, with memcached's replies.
        (b"add\r\n", Inv(ERROR, true)),
        (b"get\r\n", Inv(ERROR, false)),
        (b"get \r\n", Inv(ERROR, false)),
        (b"get key\r\r", Inv(BAD_LINE, true)),
        (b"append key 0 600\r\n", Inv(ERROR, true)),
        (b"cas key 0 600 5 \r\n", Inv(ERROR, true)),
        (b"decr key\r\n", Inv(ERROR, false)),
        (b"delete \r\n", Inv(ERROR, false)),
        (b"DELETE key\r\n", Inv(ERROR, false)),
        (b"gets\r\n", Inv(ERROR, false)),
        (b"incr\r\n", Inv(ERROR, false)),
        // A delta memcached rejects goes to it all the same (one line back, whatever it is).
        (
            b"incr key 0notanint\r\n",
            Req(Command::Incr, &[b"key"], false),
        ),
        (
            b"prepend key 0 600 5\r\nvalueextra\r\n",
            InvLen(BAD_CHUNK, true, 28),
        ),
        (b"prepend key 0 600 0 noreply\r\r", Inv(BAD_LINE, true)),
        (b"replace key 0 9 ?\r\n\r\n", InvLine(BAD_LINE, true)),
        (b"set key 0 5 10 noreply\r\nvalue12345\r\r", Inv(NONE, true)),
        (
            b"set key 0 600 5\r\nvaluee\r\n",
            InvLen(BAD_CHUNK, true, 24),
        ),
        (b"touch missingarg\r\n", Inv(ERROR, false)),
        // Unknown and unsupported commands: ERROR, connection kept (fix).
        (b"GET foo\r\n", Inv(ERROR, false)),
        (b"stats\r\n", Inv(ERROR, false)),
        (b"flush_all\r\n", Inv(ERROR, false)),
        (b"verbosity 1\r\n", Inv(ERROR, false)),
        (b"mg foo v\r\n", Inv(ERROR, false)),
        (b"get\tfoo\r\n", Inv(ERROR, false)),
        (b"\r\n", Inv(ERROR, false)),
        (b"   \r\n", Inv(ERROR, false)),
        (b"stats\r\nget a\r\n", InvLen(ERROR, false, 7)),
        // gat / gats argument errors.
        (b"gat\r\n", Inv(ERROR, false)),
        (b"gat \r\n", Inv(ERROR, false)),
        (b"gat 10\r\n", Inv(reply::END, false)),
        (b"gat 10 \r\n", Inv(reply::END, false)),
        (b"gat foo\r\n", Inv(reply::INVALID_EXPTIME, false)),
        (b"gat abc foo\r\n", Inv(reply::INVALID_EXPTIME, false)),
        // Storage command lines: memcached's reply, then close (framing unknown).
        (b"set k 0 0\r\n", Inv(ERROR, true)),
        (b"set k 0 0 5 noreply x\r\nhello\r\n", InvLine(ERROR, true)),
        (b"set k 0 0 abc\r\nhello\r\n", InvLine(BAD_LINE, true)),
        (b"set k 0 0 -1\r\nhello\r\n", InvLine(BAD_LINE, true)),
        (b"set k -1 0 5\r\nhello\r\n", InvLine(BAD_LINE, true)),
        (b"set k 0x 0 5\r\nhello\r\n", InvLine(BAD_LINE, true)),
        (b"set k 0 0 +5\r\nhello\r\n", InvLine(BAD_LINE, true)),
        (b"set k 0 0 abc noreply\r\nhello\r\n", InvLine(NONE, true)),
        (b"set k 0 0 2147483646\r\n", Inv(BAD_LINE, true)),
        (
            b"set k 18446744073709551616 0 1\r\na\r\n",
            InvLine(BAD_LINE, true),
        ),
        (
            b"set k 0 9223372036854775808 1\r\na\r\n",
            InvLine(BAD_LINE, true),
        ),
        (b"cas k 0 0 1\r\na\r\n", InvLine(ERROR, true)),
        (b"cas k 0 0 5 abc\r\nhello\r\n", InvLine(BAD_LINE, true)),
        (
            b"cas k 0 0 1 18446744073709551616\r\na\r\n",
            InvLine(BAD_LINE, true),
        ),
        // Bad data chunks: memcached's reply (none with noreply), then close.
        (b"set k 0 0 5\r\nhelloXX\r\n", InvLen(BAD_CHUNK, true, 20)),
        (b"set k 0 0 5\r\nhelloab", Inv(BAD_CHUNK, true)),
        (
            b"set k 0 0 5 noreply\r\nhelloXX\r\n",
            InvLen(NONE, true, 28),
        ),
        (b"set k 0 0 3\r\nabcd\r\n", InvLen(BAD_CHUNK, true, 18)),
        // incr/decr/touch numbers go to memcached whatever they are (it answers in one line);
        // other errors get memcached's reply locally (none with noreply), connection kept.
        (b"incr k abc\r\n", Req(Command::Incr, &[b"k"], false)),
        (b"incr k abc noreply\r\n", Req(Command::Incr, &[b"k"], true)),
        (b"incr k +1\r\n", Req(Command::Incr, &[b"k"], false)),
        (b"incr k 1 2 3\r\n", Inv(ERROR, false)),
        // A bare \n ends the line, as memcached frames it; the `\r\n` after it is an empty line.
        (b"incr k 1\n\r\n", ReqLen(Command::Incr, &[b"k"], false, 9)),
        (b"touch k\r\n", Inv(ERROR, false)),
        (b"touch k abc\r\n", Req(Command::Touch, &[b"k"], false)),
        (
            b"touch k abc noreply\r\n",
            Req(Command::Touch, &[b"k"], true),
        ),
        (b"touch k \t5\r\n", Req(Command::Touch, &[b"k"], false)),
        (b"delete\r\n", Inv(ERROR, false)),
        (b"delete foo 1\r\n", Inv(reply::DELETE_USAGE, false)),
        (b"delete foo bar\r\n", Inv(reply::DELETE_USAGE, false)),
        (b"delete foo 0 0\r\n", Inv(reply::DELETE_USAGE, false)),
        (b"delete foo 1 noreply\r\n", Inv(NONE, false)),
        (b"delete k a b c\r\n", Inv(ERROR, false)),
        // Binary protocol: closed without a reply.
        (
            b"\x80\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00",
            Inv(NONE, true),
        ),
        (b"\x80", Inv(NONE, true)),
    ];
    for (input, expect) in rows.iter().copied() {
        check(input, expect);
    }
}

#[test]
fn incomplete_requests() {
    let rows: &[(&[u8], Expect)] = &[
        (b"", Inc(None)),
        (b"g", Inc(None)),
        (b"get", Inc(None)),
        (b"get foo", Inc(None)),
        (b"get foo\r", Inc(None)),
        (b"   ", Inc(None)),
        (b"stats", Inc(None)),
        (b"set k 0 0 5", Inc(None)),
        (b"set k 0 0 5\r\n", Inc(Some(20))),
        (b"set k 0 0 5\r\nhel", Inc(Some(20))),
        (b"set k 0 0 5\r\nhello\r", Inc(Some(20))),
        (b"set k 0 0 1048576\r\n", Inc(Some(19 + 1_048_576 + 2))),
        (b"cas k 0 0 5 1 noreply\r\nhello", Inc(Some(30))),
    ];
    for (input, expect) in rows.iter().copied() {
        check(input, expect);
    }
}

#[test]
fn long_lines_are_bounded() {
    // Garbage without a line end: memcached closes silently beyond 2048 bytes; so do we.
    check(&vec![b'x'; 2048], Inc(None));
    check(&vec![b'x'; 2049], Inv(NONE, true));
    check(&vec![b' '; 3000], Inv(NONE, true));
    let mut long_set = b"set k".to_vec();
    long_set.extend(vec![b' '; 3000]);
    check(&long_set, Inv(NONE, true));
    long_set.extend_from_slice(b"0 0 1\r\na\r\n");
    check(&long_set, Inv(NONE, true));
    // A line of exactly the limit is still fine.
    let mut at_limit = b"set k 0 0 1".to_vec();
    at_limit.resize(2048, b' ');
    at_limit.extend_from_slice(b"\r\na\r\n");
    check(&at_limit, Req(Command::Set, &[b"k"], false));

    // Retrieval lines may be long: many short keys.
    let mut many = b"get".to_vec();
    for i in 0..2000 {
        many.extend_from_slice(format!(" key{i}").as_bytes());
    }
    check(&many, Inc(None));
    many.extend_from_slice(b"\r\n");
    let RequestParse::Request(req) = parse_request(&many) else {
        panic!("long get")
    };
    assert_eq!(req.keys.len(), 2000);
    assert_eq!(&many[req.keys[1999].range()], b"key1999");

    // But a single token beyond 2048 bytes closes, complete or not.
    let mut huge_key = b"get ".to_vec();
    huge_key.extend(vec![b'k'; 2049]);
    check(&huge_key, Inv(BAD_LINE, true));
    huge_key.extend_from_slice(b"\r\n");
    check(&huge_key, Inv(BAD_LINE, true));
    // A key between 251 and 2048 bytes waits for the line end, then gets memcached's reply.
    let mut mid_key = b"get ".to_vec();
    mid_key.extend(vec![b'k'; 2000]);
    check(&mid_key, Inc(None));
    mid_key.extend_from_slice(b"\r\n");
    check(&mid_key, Inv(BAD_LINE, false));
}
