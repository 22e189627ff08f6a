//! Merging the fragment replies of a multi-key retrieval.

use std::borrow::Borrow;

use crate::response::{value_block_end_for, ValueSpan};

/// Merges fragment replies of a multi-key retrieval into one reply, `VALUE` blocks in request
/// order (a fix over nutcracker, which could reorder them around misses), then `END\r\n`.
///
/// `keys` yields (key bytes, fragment index) for each key of the original request, in order (a
/// slice or any iterator); `fragments` holds the complete `Values` reply of each fragment, whose keys were sent in
/// request order, duplicates kept. memcached answers hits in the order asked and omits misses, so
/// for each key we take the next block of its fragment when that block carries the key, and emit
/// nothing (a miss) otherwise. Duplicates each get their block. Blocks are copied verbatim (flags,
/// cas). Allocates nothing unless there are more than 64 fragments.
pub fn merge_values<'k, K>(keys: K, fragments: &[&[u8]], out: &mut Vec<u8>)
where
    K: IntoIterator,
    K::Item: Borrow<(&'k [u8], usize)>,
{
    merge_values_with(keys, fragments, |fragment, range| {
        out.extend_from_slice(&fragments[fragment][range]);
    });
    out.extend_from_slice(b"END\r\n");
}

/// [`merge_values`] without the copying: calls `block(fragment, range)` for each `VALUE` block
/// of the merged reply in order (`fragments[fragment][range]`); the reply is those blocks, then
/// `END\r\n`. For writing a big reply straight from where the fragment replies are.
pub fn merge_values_with<'k, K>(
    keys: K,
    fragments: &[&[u8]],
    mut block: impl FnMut(usize, std::ops::Range<usize>),
) where
    K: IntoIterator,
    K::Item: Borrow<(&'k [u8], usize)>,
{
    // One cursor (a byte offset) per fragment.
    let (mut small, mut large) = ([0; 64], Vec::new());
    let cursors = cursors(fragments.len(), &mut small, &mut large);
    for item in keys {
        let &(key, fragment) = item.borrow();
        let (Some(reply), Some(cursor)) = (fragments.get(fragment), cursors.get_mut(fragment))
        else {
            continue;
        };
        // A complete block of this key (so within the reply), or a miss.
        if let Some(end) = value_block_end_for(reply, *cursor, key) {
            block(fragment, *cursor..end);
            *cursor = end;
        }
    }
}

/// [`merge_values_with`] for fragment replies whose blocks were found while they were framed:
/// `spans[i]` holds the [`ValueSpan`]s of `replies[i]` (from
/// [`ResponseParser::value_spans`](crate::ResponseParser::value_spans), offsets in that reply).
/// No header is read again: a key takes its fragment's next block when that block carries it,
/// and is a miss otherwise. Given each reply's own spans, the blocks are those
/// [`merge_values_with`] finds.
pub fn merge_spans_with<'k, K>(
    keys: K,
    replies: &[&[u8]],
    spans: &[&[ValueSpan]],
    mut block: impl FnMut(usize, std::ops::Range<usize>),
) where
    K: IntoIterator,
    K::Item: Borrow<(&'k [u8], usize)>,
{
    // One cursor (a span index) per fragment.
    let (mut small, mut large) = ([0; 64], Vec::new());
    let cursors = cursors(replies.len(), &mut small, &mut large);
    for item in keys {
        let &(key, fragment) = item.borrow();
        let (Some(reply), Some(spans), Some(cursor)) = (
            replies.get(fragment),
            spans.get(fragment),
            cursors.get_mut(fragment),
        ) else {
            continue;
        };
        let next = spans.get(*cursor).and_then(|span| span.block(reply));
        if let Some(next) = next.filter(|next| next.key == key) {
            block(fragment, next.range);
            *cursor += 1;
        }
    }
}

/// `count` cursors at zero: `small` when they fit (fragments are at most one per server), else
/// `large`, grown to `count`.
fn cursors<'a>(
    count: usize,
    small: &'a mut [usize; 64],
    large: &'a mut Vec<usize>,
) -> &'a mut [usize] {
    if count <= small.len() {
        small
    } else {
        large.resize(count, 0);
        large
    }
}
