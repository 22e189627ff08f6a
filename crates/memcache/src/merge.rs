//! Merging the fragment replies of a multi-key retrieval.

use crate::response::{value_block, Block};

/// Merges fragment replies of a multi-key retrieval into one reply, `VALUE` blocks in request
/// order (a fix over nutcracker, which could reorder them around misses), then `END\r\n`.
///
/// `keys[i]` = (key bytes, fragment index) for the i-th key of the original request;
/// `fragments[f]` = the complete `Values` reply of fragment f, whose keys were sent in request
/// order, duplicates kept. memcached answers hits in the order asked and omits misses, so for each
/// key we take the next block of its fragment when that block carries the key, and emit nothing
/// (a miss) otherwise. Duplicates each get their block. Blocks are copied verbatim (flags, cas).
pub fn merge_values(keys: &[(&[u8], usize)], fragments: &[&[u8]], out: &mut Vec<u8>) {
    // One cursor per fragment. Fragments are few; the fallback handles more without panicking.
    let mut small = [0usize; 16];
    let mut large = Vec::new();
    let cursors: &mut [usize] = if fragments.len() <= small.len() {
        &mut small
    } else {
        large.resize(fragments.len(), 0);
        &mut large
    };
    for &(key, fragment) in keys {
        let (Some(reply), Some(cursor)) = (fragments.get(fragment), cursors.get_mut(fragment))
        else {
            continue;
        };
        if let Block::Complete(header) = value_block(reply, *cursor) {
            if header.key == key {
                out.extend_from_slice(reply.get(*cursor..header.block_end).unwrap_or_default());
                *cursor = header.block_end;
            }
        }
    }
    out.extend_from_slice(b"END\r\n");
}
