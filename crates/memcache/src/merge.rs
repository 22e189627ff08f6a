//! Merging the fragment replies of a multi-key retrieval.

use std::borrow::Borrow;

use crate::response::{ResponseParser, ValueSpan};

/// Merges fragment replies of a multi-key retrieval into one reply, `VALUE` blocks in request
/// order (a fix over nutcracker, which could reorder them around misses), then `END\r\n`.
///
/// `keys` yields (key bytes, fragment index) for each key of the original request, in order (a
/// slice or any iterator); `fragments` holds the complete `Values` reply of each fragment, whose keys were sent in
/// request order, duplicates kept. memcached answers hits in the order asked and omits misses, so
/// for each key we take the next block of its fragment when that block carries the key, and emit
/// nothing (a miss) otherwise; a fragment with a block for every key asked of it missed none, and
/// its blocks are taken in order without their keys compared. Duplicates each get their block.
/// Blocks are copied verbatim (flags, cas). The replies are framed here first; where they were
/// framed already (the proxy), use [`merge_spans`] with what framing recorded.
pub fn merge_values<'k, K>(keys: K, fragments: &[&[u8]], out: &mut Vec<u8>)
where
    K: IntoIterator + Clone,
    K::Item: Borrow<(&'k [u8], usize)>,
{
    let parsers: Vec<ResponseParser> = fragments
        .iter()
        .map(|r| ResponseParser::framing(r))
        .collect();
    let spans: Vec<&[ValueSpan]> = parsers.iter().map(ResponseParser::value_spans).collect();
    merge_spans(keys, fragments, &spans, out);
}

/// [`merge_values`] for fragment replies whose blocks were found while they were framed:
/// `spans[i]` holds the [`ValueSpan`]s of `replies[i]` (from
/// [`ResponseParser::value_spans`], offsets in that reply). No header is read again. Allocates
/// nothing unless there are more than 64 fragments.
pub fn merge_spans<'k, K>(keys: K, replies: &[&[u8]], spans: &[&[ValueSpan]], out: &mut Vec<u8>)
where
    K: IntoIterator + Clone,
    K::Item: Borrow<(&'k [u8], usize)>,
{
    merge_spans_with(keys, replies, spans, |fragment, range| {
        out.extend_from_slice(&replies[fragment][range]);
    });
    out.extend_from_slice(b"END\r\n");
}

/// [`merge_spans`] without the copying: calls `block(fragment, range)` for each `VALUE` block of
/// the merged reply in order (`replies[fragment][range]`); the reply is those blocks, then
/// `END\r\n`. For writing a big reply straight from where the fragment replies are.
pub fn merge_spans_with<'k, K>(
    keys: K,
    replies: &[&[u8]],
    spans: &[&[ValueSpan]],
    mut block: impl FnMut(usize, std::ops::Range<usize>),
) where
    K: IntoIterator + Clone,
    K::Item: Borrow<(&'k [u8], usize)>,
{
    // Per fragment: a cursor (a span index) and how many keys were asked of it. Fragments are at
    // most one per server; the fallback handles more.
    let mut small = [(0usize, 0usize); 64];
    let mut large = Vec::new();
    let fragments: &mut [(usize, usize)] = if replies.len() <= small.len() {
        &mut small[..replies.len()]
    } else {
        large.resize(replies.len(), (0, 0));
        &mut large
    };
    for item in keys.clone() {
        if let Some((_, asked)) = fragments.get_mut(item.borrow().1) {
            *asked += 1;
        }
    }
    for item in keys {
        let &(key, fragment) = item.borrow();
        let (Some(reply), Some(spans), Some((cursor, asked))) = (
            replies.get(fragment),
            spans.get(fragment),
            fragments.get_mut(fragment),
        ) else {
            continue;
        };
        // The fragment's next block when it carries this key, else a miss. A fragment with a
        // block for every key asked of it missed none, so its blocks are its keys' in order
        // (memcached answers hits in the order asked): their keys are not read back, which in a
        // big reply cost a cache miss a key (~2% of the proxy's CPU at a multi-get of 100 keys of
        // 4 KiB: bench/HISTORY.md).
        let all_hit = spans.len() == *asked;
        let next = spans.get(*cursor).and_then(|span| span.block(reply));
        if let Some(next) = next.filter(|next| all_hit || next.key == key) {
            block(fragment, next.range);
            *cursor += 1;
        }
    }
}
