//! Fragmenting multi-key retrievals and merging the replies.

use rustcracker_memcache::{
    merge_values, parse_request, parse_response, server_error, write_fragment, Command,
    RequestParse, ResponseKind, ResponseParse,
};

fn request(bytes: &[u8]) -> rustcracker_memcache::Request {
    match parse_request(bytes) {
        RequestParse::Request(r) => r,
        other => panic!("{other:?}"),
    }
}

fn merge(keys: &[(&[u8], usize)], fragments: &[&[u8]]) -> String {
    for f in fragments {
        assert!(
            matches!(parse_response(f), ResponseParse::Response(r) if r.kind == ResponseKind::Values && r.len == f.len()),
            "test fragment must be a complete Values reply"
        );
    }
    let mut out = Vec::new();
    merge_values(keys, fragments, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn fragments_keep_command_exptime_and_order() {
    let bytes = b"get k1 k2 k3 k1\r\n";
    let req = request(bytes);
    let mut out = Vec::new();
    write_fragment(bytes, &req, &[0, 2, 3], &mut out);
    assert_eq!(out, b"get k1 k3 k1\r\n");

    let bytes = b"  gat   100  k1 k2  k3 \r\n";
    let req = request(bytes);
    out.clear();
    write_fragment(bytes, &req, &[0, 2], &mut out);
    assert_eq!(out, b"gat 100 k1 k3\r\n");

    let bytes = b"gats -1 a b\r\n";
    let req = request(bytes);
    out.clear();
    write_fragment(bytes, &req, &[1], &mut out);
    assert_eq!(out, b"gats -1 b\r\n");

    let bytes = b"gets a b\r\n";
    let req = request(bytes);
    out.clear();
    write_fragment(bytes, &req, &[1, 0, 9], &mut out);
    assert_eq!(out, b"gets b a\r\n");

    // Every fragment parses back to the same command with the chosen keys.
    let bytes = b"gat 5 x y z\r\n";
    let req = request(bytes);
    out.clear();
    write_fragment(bytes, &req, &[2, 1], &mut out);
    let sub = request(&out);
    assert_eq!(sub.command, Command::Gat);
    assert_eq!(sub.len, out.len());
    assert_eq!(sub.key(&out, 0), Some(&b"z"[..]));
    assert_eq!(sub.key(&out, 1), Some(&b"y"[..]));
}

#[test]
fn merge_in_request_order_with_misses() {
    // §5.2: `get missing key0 key200`, `missing` and `key200` on server A (fragment 0), `key0` on
    // server B (fragment 1). nutcracker emits key200 before key0; we keep request order.
    let a: &[u8] = b"VALUE key200 0 1\r\nb\r\nEND\r\n";
    let b: &[u8] = b"VALUE key0 0 1\r\na\r\nEND\r\n";
    let keys: &[(&[u8], usize)] = &[(b"missing", 0), (b"key0", 1), (b"key200", 0)];
    assert_eq!(
        merge(keys, &[a, b]),
        "VALUE key0 0 1\r\na\r\nVALUE key200 0 1\r\nb\r\nEND\r\n"
    );
}

#[test]
fn merge_all_misses_and_empty() {
    let keys: &[(&[u8], usize)] = &[(b"a", 0), (b"b", 1)];
    assert_eq!(merge(keys, &[b"END\r\n", b"END\r\n"]), "END\r\n");
    assert_eq!(merge(&[], &[]), "END\r\n");
}

#[test]
fn merge_duplicates_each_get_their_block() {
    // `get foo nokey foo`, all on one server: memcached answers foo twice.
    let f: &[u8] = b"VALUE foo 0 3\r\nbar\r\nVALUE foo 0 3\r\nbar\r\nEND\r\n";
    let keys: &[(&[u8], usize)] = &[(b"foo", 0), (b"nokey", 0), (b"foo", 0)];
    assert_eq!(
        merge(keys, &[f]),
        "VALUE foo 0 3\r\nbar\r\nVALUE foo 0 3\r\nbar\r\nEND\r\n"
    );
    // Duplicates split across the request, interleaved with another fragment.
    let g: &[u8] = b"VALUE x 1 1\r\n1\r\nEND\r\n";
    let keys: &[(&[u8], usize)] = &[(b"foo", 0), (b"x", 1), (b"foo", 0)];
    assert_eq!(
        merge(keys, &[f, g]),
        "VALUE foo 0 3\r\nbar\r\nVALUE x 1 1\r\n1\r\nVALUE foo 0 3\r\nbar\r\nEND\r\n"
    );
}

#[test]
fn a_fragment_that_hit_every_key_is_taken_in_order_without_its_keys_read_back() {
    // memcached answers hits in the order asked, so a fragment with a block for every key asked
    // of it needs no key compared. Shown here with a reply no memcached sends (blocks for other
    // keys): taken as it is, as nutcracker would. With fewer blocks than keys, a miss is
    // somewhere: every key is compared with its fragment's next block.
    let other: &[u8] = b"VALUE x 0 1\r\n1\r\nVALUE y 0 1\r\n2\r\nEND\r\n";
    let keys: &[(&[u8], usize)] = &[(b"a", 0), (b"b", 0)];
    assert_eq!(
        merge(keys, &[other]),
        "VALUE x 0 1\r\n1\r\nVALUE y 0 1\r\n2\r\nEND\r\n"
    );
    let keys: &[(&[u8], usize)] = &[(b"a", 0), (b"x", 0), (b"b", 0)];
    assert_eq!(merge(keys, &[other]), "VALUE x 0 1\r\n1\r\nEND\r\n");
}

#[test]
fn merge_several_fragments_gats_with_cas_and_binary_values() {
    let f0: &[u8] = b"VALUE a 0 4 11\r\n\r\n\r\n\r\nVALUE c 7 0 12\r\n\r\nEND\r\n";
    let f1: &[u8] = b"VALUE b 0 2 13\r\nEN\r\nEND\r\n";
    let f2: &[u8] = b"END\r\n";
    let keys: &[(&[u8], usize)] = &[(b"a", 0), (b"b", 1), (b"c", 0), (b"d", 2), (b"e", 1)];
    assert_eq!(
        merge(keys, &[f0, f1, f2]),
        "VALUE a 0 4 11\r\n\r\n\r\n\r\nVALUE b 0 2 13\r\nEN\r\nVALUE c 7 0 12\r\n\r\nEND\r\n"
    );
}

#[test]
fn merge_tolerates_bad_indexes() {
    let keys: &[(&[u8], usize)] = &[(b"a", 5)];
    let mut out = Vec::new();
    merge_values(keys, &[b"VALUE a 0 1\r\nx\r\nEND\r\n"], &mut out);
    assert_eq!(out, b"END\r\n");
    // More fragments than the on-stack cursor array.
    let frags: Vec<&[u8]> = vec![b"VALUE a 0 1\r\nx\r\nEND\r\n"; 80];
    let keys: Vec<(&[u8], usize)> = (0..80).map(|f| (&b"a"[..], f)).collect();
    out.clear();
    merge_values(&keys, &frags, &mut out);
    assert_eq!(out.len(), 80 * 16 + 5);
}

#[test]
fn proxy_error_reply() {
    let mut out = Vec::new();
    server_error("Connection refused", &mut out);
    assert_eq!(out, b"SERVER_ERROR Connection refused\r\n");
}
