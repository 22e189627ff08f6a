//! Collecting the fragment replies of a request split across servers and
//! building the one reply the client gets.

use std::cell::RefCell;
use std::io::{self, IoSlice};

use rustcracker_memcache::ValueSpan;

use super::clock::Micros;
use super::errno::Failure;
use super::{Framed, Protocol};

/// How the fragment replies combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// memcache `get`/`gets`/`gat`/`gats`: VALUE blocks in request order, then `END`.
    MemcacheValues,
    /// redis `MGET`: one array, elements in request order.
    RedisMget,
    /// redis `DEL`/`UNLINK`/`TOUCH`/`EXISTS`: integers summed.
    RedisSum,
    /// redis `MSET`: `+OK` when every fragment answered a status.
    RedisMset,
}

/// The state of one split request.
pub struct Merge {
    kind: MergeKind,
    /// Per fragment: where its reply sits in `data`, once it is in.
    parts: Vec<Option<(u32, u32)>>,
    /// Per fragment, where what framing its reply found sits: in `spans`
    /// (memcache) or in `elements` (redis `MGET`).
    part_framing: Vec<(u32, u32)>,
    /// memcache: where the `VALUE` blocks of the copied replies are in them,
    /// as framing them found (see [`Merge::add`]).
    spans: Vec<ValueSpan>,
    /// redis `MGET`: where the elements of the copied replies end in them.
    elements: Vec<usize>,
    /// The fragment replies, back to back, but for the last one in, which
    /// [`Merge::finish`] reads from where it arrived.
    data: Vec<u8>,
    /// The fragment whose reply came in last (`usize::MAX`: every reply was
    /// copied, see [`Merge::add_elements`]).
    last: usize,
    remaining: usize,
    /// The first failure of any fragment: the whole request gets one error reply.
    failure: Option<Failure>,
    /// The original request's keys, concatenated (memcache only: its merge matches keys).
    keys: Vec<u8>,
    /// Per original key: where it ends in `keys`.
    key_ends: Vec<u32>,
    /// Per original key: the fragment it went to.
    key_fragments: Vec<usize>,
    /// The slowest fragment's server time.
    backend: Micros,
    /// The merged reply's pieces for a vectored write: (fragment, start, end) in its reply,
    /// adjacent ranges of one fragment joined, and the bytes of the proxy's own before them
    /// (the redis array header; see [`Merge::write_vectored`]).
    pieces: Vec<(u32, u32, u32)>,
    head: Vec<u8>,
}

/// The most slices one vectored write takes (the rest go in the next one).
const IOV_MAX: usize = 64;

thread_local! {
    /// Finished merges, kept with their buffers so that split requests
    /// allocate nothing in steady state.
    static POOL: RefCell<MergePool> = const {
        RefCell::new(MergePool { merges: Vec::new(), bytes: 0, taken: false })
    };
}

/// A worker's finished merges.
struct MergePool {
    // Boxed on purpose: the box is what a client's reply slot holds, so
    // pooling it saves that allocation too.
    #[allow(clippy::vec_box)]
    merges: Vec<Box<Merge>>,
    /// The buffer memory the kept merges hold.
    bytes: usize,
    /// A merge was taken since the last sweep.
    taken: bool,
}

/// Merges kept per worker, and the most buffer memory they may hold in all.
/// Big buffers are kept too (a multi-get of big values reuses them instead
/// of mapping fresh pages for every request), up to this budget, and given
/// back by the first sweep that finds the pool unused ([`Merge::sweep`]).
const POOL_MAX: usize = 1024;
const POOL_BYTES_MAX: usize = 32 << 20;
/// What a merge may keep across an idle sweep.
const IDLE_BUFFER_MAX: usize = 64 * 1024;

impl MergePool {
    /// A kept merge, if any.
    fn take(&mut self) -> Option<Box<Merge>> {
        self.taken = true;
        let merge = self.merges.pop()?;
        self.bytes -= merge.buffer_bytes();
        Some(merge)
    }

    /// Keeps a finished merge, within the count and the memory budget.
    fn keep(&mut self, merge: Box<Merge>) {
        let bytes = merge.buffer_bytes();
        if self.merges.len() < POOL_MAX && self.bytes + bytes <= POOL_BYTES_MAX {
            self.bytes += bytes;
            self.merges.push(merge);
        }
    }

    /// Lets big buffers go if no merge was taken since the last sweep.
    fn sweep(&mut self) {
        if !std::mem::take(&mut self.taken) {
            self.merges.retain(|m| m.buffer_bytes() <= IDLE_BUFFER_MAX);
            self.bytes = self.merges.iter().map(|m| m.buffer_bytes()).sum();
        }
    }
}

impl Merge {
    /// A merge of `fragments` replies (from the worker's pool when it can).
    pub fn new(kind: MergeKind, fragments: usize) -> Box<Merge> {
        let pooled = POOL.with(|pool| pool.borrow_mut().take());
        let mut merge = pooled.unwrap_or_else(|| {
            Box::new(Merge {
                kind,
                parts: Vec::new(),
                part_framing: Vec::new(),
                spans: Vec::new(),
                elements: Vec::new(),
                data: Vec::new(),
                last: 0,
                remaining: 0,
                failure: None,
                keys: Vec::new(),
                key_ends: Vec::new(),
                key_fragments: Vec::new(),
                backend: 0,
                pieces: Vec::new(),
                head: Vec::new(),
            })
        });
        merge.kind = kind;
        merge.parts.clear();
        merge.parts.resize(fragments, None);
        merge.part_framing.clear();
        merge.part_framing.resize(fragments, (0, 0));
        merge.spans.clear();
        merge.elements.clear();
        merge.data.clear();
        merge.last = 0;
        merge.remaining = fragments;
        merge.failure = None;
        merge.keys.clear();
        merge.key_ends.clear();
        merge.key_fragments.clear();
        merge.backend = 0;
        merge
    }

    /// Gives a finished merge back to the worker's pool.
    pub fn recycle(merge: Box<Merge>) {
        POOL.with(|pool| pool.borrow_mut().keep(merge));
    }

    /// Gives big buffers back if no split request used the worker's pool
    /// since the last sweep (called by its housekeeping once a period).
    pub fn sweep() {
        POOL.with(|pool| pool.borrow_mut().sweep());
    }

    /// The buffer memory this merge holds.
    fn buffer_bytes(&self) -> usize {
        self.data.capacity()
            + self.keys.capacity()
            + self.spans.capacity() * std::mem::size_of::<ValueSpan>()
            + self.elements.capacity() * std::mem::size_of::<usize>()
            + self.pieces.capacity() * std::mem::size_of::<(u32, u32, u32)>()
    }

    /// About how big the merged reply is, `last` being the last fragment's reply.
    pub fn reply_size(&self, last: &[u8]) -> usize {
        self.data.len() + last.len()
    }

    /// Records the next key of the original request and its fragment.
    pub fn push_key(&mut self, key: &[u8], fragment: u32) {
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len() as u32);
        self.key_fragments.push(fragment as usize);
    }

    /// Records one fragment's outcome; true when every fragment is in. The
    /// last reply to come in is not copied: pass it to [`Merge::finish`].
    /// `framed`: where the reply's parts are, as framing it found them (so
    /// that the merge reads none of them again).
    pub fn add(
        &mut self,
        fragment: u32,
        outcome: Result<&[u8], Failure>,
        framed: Framed<'_>,
        backend: Micros,
    ) -> bool {
        self.backend = self.backend.max(backend);
        let Some(part) = self.parts.get_mut(fragment as usize) else {
            return false;
        };
        if part.is_some() {
            return false;
        }
        let start = self.data.len() as u32;
        let last = self.remaining == 1;
        match outcome {
            Ok(reply) => {
                if !self.kind.accepts(reply) {
                    self.failure.get_or_insert(Failure::INVALID);
                }
                if !last {
                    self.data.extend_from_slice(reply);
                    let kept = match self.kind {
                        MergeKind::MemcacheValues => {
                            let first = self.spans.len();
                            extend_spans(&mut self.spans, reply, framed.values());
                            Some((first, self.spans.len()))
                        }
                        MergeKind::RedisMget => {
                            let first = self.elements.len();
                            self.elements.extend_from_slice(framed.elements());
                            Some((first, self.elements.len()))
                        }
                        MergeKind::RedisSum | MergeKind::RedisMset => None,
                    };
                    if let (Some((first, end)), Some(range)) =
                        (kept, self.part_framing.get_mut(fragment as usize))
                    {
                        *range = (first as u32, end as u32);
                    }
                }
            }
            Err(failure) => {
                self.failure.get_or_insert(failure);
            }
        }
        *part = Some((start, self.data.len() as u32));
        if last {
            self.last = fragment as usize;
        }
        self.remaining -= 1;
        self.remaining == 0
    }

    /// Records the reply of an `MGET` fragment that was part of a combined
    /// `MGET`: its `count` elements, `body`, which end at `ends` in it. Kept
    /// as a reply of its own (`*<count>` then `body`), even when it is the last
    /// one in (finish with an empty `last` then). True when every fragment is in.
    pub fn add_elements(
        &mut self,
        fragment: u32,
        count: u32,
        body: &[u8],
        ends: &[usize],
        backend: Micros,
    ) -> bool {
        self.backend = self.backend.max(backend);
        let Some(part) = self.parts.get_mut(fragment as usize) else {
            return false;
        };
        if part.is_some() || self.kind != MergeKind::RedisMget {
            return false;
        }
        let start = self.data.len();
        rustcracker_redis::mget_header(count as usize, &mut self.data);
        let body_start = self.data.len();
        self.data.extend_from_slice(body);
        *part = Some((start as u32, self.data.len() as u32));
        let first = self.elements.len();
        // Ends are kept relative to the reply (header included).
        let header = body_start - start;
        self.elements.extend(ends.iter().map(|&end| end + header));
        if let Some(range) = self.part_framing.get_mut(fragment as usize) {
            *range = (first as u32, self.elements.len() as u32);
        }
        if self.remaining == 1 {
            // No reply comes in uncopied: `finish` reads every one from `data`.
            self.last = usize::MAX;
        }
        self.remaining -= 1;
        self.remaining == 0
    }

    /// The slowest fragment's server time.
    pub fn backend(&self) -> Micros {
        self.backend
    }

    /// How many fragments the request was split into.
    pub fn fragments(&self) -> usize {
        self.parts.len()
    }

    /// Builds the client's reply at the end of `out` once every fragment is
    /// in, `last` being the reply of the fragment that came in last (as
    /// given to [`Merge::add`]); true when the reply is the proxy's own error.
    pub fn finish(
        &self,
        protocol: Protocol,
        last: &[u8],
        last_framed: Framed<'_>,
        out: &mut Vec<u8>,
    ) -> bool {
        if let Some(failure) = self.failure {
            protocol.error_reply(&failure.message(), out);
            return true;
        }
        self.with_replies(last, |parts| match self.kind {
            MergeKind::MemcacheValues => {
                self.with_spans(last, last_framed.values(), |spans| {
                    rustcracker_memcache::merge_spans(self.keys(), parts, spans, out);
                });
                false
            }
            MergeKind::RedisMget | MergeKind::RedisSum | MergeKind::RedisMset => {
                let merged = match self.kind {
                    MergeKind::RedisMget => self.with_elements(last_framed.elements(), |ends| {
                        rustcracker_redis::merge_mget_framed(&self.key_fragments, parts, ends, out)
                    }),
                    MergeKind::RedisSum => rustcracker_redis::merge_sum(parts, out),
                    _ => rustcracker_redis::merge_mset(parts, out),
                };
                // A fragment reply of the wrong type (`-READONLY`, say): EINVAL, as nutcracker.
                if merged.is_err() {
                    protocol.error_reply(&Failure::INVALID.message(), out);
                }
                merged.is_err()
            }
        })
    }

    /// Writes the merged reply with `write` (a vectored write to the client's socket) straight
    /// from where the fragment replies are, instead of copying it into the client's buffer
    /// first: a big reply is then copied once (by the kernel) rather than twice. What `write`
    /// does not take (a full socket, an error the session will meet on its next write) is
    /// appended to `out`. Returns false, writing nothing, when the reply is not a merge of
    /// values (or a fragment failed): build it with [`Merge::finish`] then.
    pub fn write_vectored(
        &mut self,
        last: &[u8],
        last_framed: Framed<'_>,
        write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
        out: &mut Vec<u8>,
    ) -> bool {
        if self.failure.is_some() {
            return false;
        }
        // Out of `self` for the call, which reads the rest of it.
        let mut pieces = std::mem::take(&mut self.pieces);
        let mut head = std::mem::take(&mut self.head);
        let written = self.with_replies(last, |replies| {
            pieces.clear();
            head.clear();
            let mut add = |fragment: usize, range: std::ops::Range<usize>| {
                let (f, s, e) = (fragment as u32, range.start as u32, range.end as u32);
                match pieces.last_mut() {
                    Some((pf, _, pe)) if *pf == f && *pe == s => *pe = e,
                    _ => pieces.push((f, s, e)),
                }
            };
            // The proxy's own bytes: the redis array header before, memcache's END after.
            let tail: &[u8] = match self.kind {
                MergeKind::MemcacheValues => {
                    self.with_spans(last, last_framed.values(), |spans| {
                        rustcracker_memcache::merge_spans_with(self.keys(), replies, spans, add);
                    });
                    b"END\r\n"
                }
                MergeKind::RedisMget => {
                    let merged = self.with_elements(last_framed.elements(), |ends| {
                        let keys = &self.key_fragments;
                        rustcracker_redis::merge_mget_framed_with(keys, replies, ends, &mut add)
                    });
                    if merged.is_err() {
                        return false;
                    }
                    rustcracker_redis::mget_header(self.key_fragments.len(), &mut head);
                    b""
                }
                MergeKind::RedisSum | MergeKind::RedisMset => return false,
            };
            let slices = std::iter::once(&head[..])
                .chain(
                    pieces
                        .iter()
                        .map(|&(f, s, e)| &replies[f as usize][s as usize..e as usize]),
                )
                .chain(std::iter::once(tail));
            write_or_keep(slices, write, out);
            true
        });
        self.pieces = pieces;
        self.head = head;
        written
    }

    /// Calls `f` with every fragment's reply in fragment order, `last` being
    /// the one that came in last.
    fn with_replies<R>(&self, last: &[u8], f: impl FnOnce(&[&[u8]]) -> R) -> R {
        let reply = |i: usize| match self.parts.get(i) {
            _ if i == self.last => last,
            Some(Some((s, e))) => self.data.get(*s as usize..*e as usize).unwrap_or_default(),
            _ => &[],
        };
        per_fragment(self.parts.len(), reply, f)
    }

    /// Calls `f` with every fragment reply's spans in fragment order (memcache
    /// merges), `last_spans` being those of the one that came in last.
    fn with_spans<R>(
        &self,
        last: &[u8],
        last_spans: &[ValueSpan],
        f: impl FnOnce(&[&[ValueSpan]]) -> R,
    ) -> R {
        let mut own = Vec::new();
        let last_spans = if last_spans.is_empty() && !last.is_empty() {
            extend_spans(&mut own, last, last_spans);
            &own[..]
        } else {
            last_spans
        };
        let spans = |i: usize| match self.part_framing.get(i) {
            _ if i == self.last => last_spans,
            Some(&(s, e)) => self.spans.get(s as usize..e as usize).unwrap_or_default(),
            None => &[],
        };
        per_fragment(self.part_framing.len(), spans, f)
    }

    /// Calls `f` with every fragment reply's element ends in fragment order
    /// (redis `MGET` merges; none where framing recorded none: the merge
    /// frames those replies itself), `last_ends` being those of the one
    /// that came in last.
    fn with_elements<R>(&self, last_ends: &[usize], f: impl FnOnce(&[&[usize]]) -> R) -> R {
        let ends = |i: usize| match self.part_framing.get(i) {
            _ if i == self.last => last_ends,
            Some(&(s, e)) => self
                .elements
                .get(s as usize..e as usize)
                .unwrap_or_default(),
            None => &[],
        };
        per_fragment(self.part_framing.len(), ends, f)
    }

    /// The original request's keys, each with its fragment (memcache merges).
    fn keys(&self) -> impl Iterator<Item = (&[u8], usize)> + Clone {
        let starts = std::iter::once(0).chain(self.key_ends.iter().copied());
        starts
            .zip(&self.key_ends)
            .map(|(start, &end)| &self.keys[start as usize..end as usize])
            .zip(self.key_fragments.iter().copied())
    }
}

/// Calls `f` with `item(i)` for each of `count` fragments in order: on the
/// stack unless there are very many fragments.
fn per_fragment<'a, T: ?Sized + 'a, R>(
    count: usize,
    item: impl Fn(usize) -> &'a T,
    f: impl FnOnce(&[&'a T]) -> R,
) -> R
where
    &'a T: Default,
{
    let mut small: [&'a T; 64] = [<&T>::default(); 64];
    if count <= small.len() {
        for (i, slot) in small.iter_mut().take(count).enumerate() {
            *slot = item(i);
        }
        f(&small[..count])
    } else {
        f(&(0..count).map(item).collect::<Vec<_>>())
    }
}

/// Appends the spans of `reply`'s `VALUE` blocks to `out`: `spans` when
/// framing the reply found them; read here only for a reply that came
/// without (none does in the proxy: a safety net, so that a merge never
/// takes a block for a miss).
fn extend_spans(out: &mut Vec<ValueSpan>, reply: &[u8], spans: &[ValueSpan]) {
    if !spans.is_empty() || !reply.starts_with(b"VALUE ") {
        out.extend_from_slice(spans);
        return;
    }
    // A fragment of a combined line has no `END`: parsing stops after its blocks.
    out.extend_from_slice(rustcracker_memcache::ResponseParser::framing(reply).value_spans());
}

/// Writes `slices` in order with `write` (up to [`IOV_MAX`] per call) while
/// it takes all it is offered; appends what it did not take to `out`.
fn write_or_keep<'s>(
    slices: impl Iterator<Item = &'s [u8]> + Clone,
    mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    out: &mut Vec<u8>,
) {
    let mut written = 0;
    loop {
        let mut iov = [IoSlice::new(&[]); IOV_MAX];
        let (mut count, mut offered) = (0, 0);
        for (slot, slice) in iov.iter_mut().zip(after(slices.clone(), written)) {
            *slot = IoSlice::new(slice);
            offered += slice.len();
            count += 1;
        }
        if count == 0 {
            break;
        }
        match write(&iov[..count]) {
            Ok(n) if n == offered => written += n,
            Ok(n) => {
                written += n;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    for slice in after(slices, written) {
        out.extend_from_slice(slice);
    }
}

/// The non-empty rest of `slices` after their first `skip` bytes.
fn after<'s>(
    slices: impl Iterator<Item = &'s [u8]>,
    mut skip: usize,
) -> impl Iterator<Item = &'s [u8]> {
    slices.filter_map(move |slice| {
        if skip >= slice.len() {
            skip -= slice.len();
            return None;
        }
        let rest = &slice[skip..];
        skip = 0;
        Some(rest)
    })
}

impl MergeKind {
    /// Whether a fragment reply has the type this merge can use; any other
    /// (a backend `SERVER_ERROR`, say) fails the request with EINVAL, as in nutcracker.
    fn accepts(self, reply: &[u8]) -> bool {
        match self {
            // A fragment that was part of a combined line gets its `VALUE`
            // blocks without the `END` (none at all when every key missed).
            MergeKind::MemcacheValues => {
                reply.is_empty() || reply.starts_with(b"VALUE ") || reply == b"END\r\n"
            }
            // The redis merges check the reply types themselves.
            MergeKind::RedisMget | MergeKind::RedisSum | MergeKind::RedisMset => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooled_bytes() -> usize {
        POOL.with(|pool| pool.borrow().bytes)
    }

    /// A multi-get of `a b c` over two servers: `b` on fragment 1, `a c` on fragment 0.
    fn abc() -> Box<Merge> {
        let mut merge = Merge::new(MergeKind::MemcacheValues, 2);
        merge.push_key(b"a", 0);
        merge.push_key(b"b", 1);
        merge.push_key(b"c", 0);
        merge
    }

    const FRAGMENT_0: &[u8] = b"VALUE a 0 1\r\n1\r\nVALUE c 0 1\r\n3\r\nEND\r\n";
    const FRAGMENT_1: &[u8] = b"VALUE b 0 1\r\n2\r\nEND\r\n";
    const MERGED: &[u8] = b"VALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nVALUE c 0 1\r\n3\r\nEND\r\n";

    /// Where framing `reply` found its `VALUE` blocks.
    fn spans_of(reply: &[u8]) -> Vec<ValueSpan> {
        rustcracker_memcache::ResponseParser::framing(reply)
            .value_spans()
            .to_vec()
    }

    /// What [`Merge::write_vectored`] sends to a socket that takes everything.
    fn write_all(merge: &mut Merge, last: &[u8], last_framed: Framed<'_>) -> Vec<u8> {
        let mut sent = Vec::new();
        let mut kept = Vec::new();
        let write = |iov: &[IoSlice<'_>]| {
            iov.iter().for_each(|s| sent.extend_from_slice(s));
            Ok(iov.iter().map(|s| s.len()).sum())
        };
        assert!(merge.write_vectored(last, last_framed, write, &mut kept));
        assert!(kept.is_empty());
        sent
    }

    #[test]
    fn the_last_fragment_is_read_where_it_arrived() {
        // With the spans framing found, and without (the merge finds them itself).
        for framed in [true, false] {
            for (first, last) in [(0, 1), (1, 0)] {
                let replies = [FRAGMENT_0, FRAGMENT_1];
                let spans = |i: u32| match framed {
                    true => spans_of(replies[i as usize]),
                    false => Vec::new(),
                };
                let mut merge = abc();
                let (first_spans, last_spans) = (spans(first), spans(last));
                assert!(!merge.add(
                    first,
                    Ok(replies[first as usize]),
                    Framed::Values(&first_spans),
                    0
                ));
                assert!(merge.add(
                    last,
                    Ok(replies[last as usize]),
                    Framed::Values(&last_spans),
                    2_000
                ));
                // Only the first reply was copied.
                assert_eq!(merge.data, replies[first as usize]);
                let mut out = b"earlier reply\r\n".to_vec();
                let last_reply = replies[last as usize];
                let last_framed = Framed::Values(&last_spans);
                let failed = merge.finish(Protocol::Memcache, last_reply, last_framed, &mut out);
                assert!(!failed);
                assert_eq!(out, [&b"earlier reply\r\n"[..], MERGED].concat());
                assert_eq!(merge.backend(), 2_000);
                // The vectored write sends the same bytes.
                assert_eq!(write_all(&mut merge, last_reply, last_framed), MERGED);
                Merge::recycle(merge);
            }
        }
    }

    #[test]
    fn an_mget_merges_with_and_without_the_element_ends_framing_found() {
        // MGET a b c: `b` on fragment 1, `a c` on fragment 0.
        let replies: [&[u8]; 2] = [b"*2\r\n$2\r\nva\r\n$-1\r\n", b"*1\r\n$2\r\nvb\r\n"];
        let merged: &[u8] = b"*3\r\n$2\r\nva\r\n$2\r\nvb\r\n$-1\r\n";
        let ends_of = |reply: &[u8]| {
            let mut parser = rustcracker_redis::ResponseParser::default();
            parser.parse(reply);
            parser.element_ends().unwrap_or_default().to_vec()
        };
        for framed in [true, false] {
            for (first, last) in [(0u32, 1u32), (1, 0)] {
                let ends = |i: u32| match framed {
                    true => ends_of(replies[i as usize]),
                    false => Vec::new(),
                };
                let (first_ends, last_ends) = (ends(first), ends(last));
                let mut merge = Merge::new(MergeKind::RedisMget, 2);
                for (key, fragment) in [(b"a", 0), (b"b", 1), (b"c", 0)] {
                    merge.push_key(key, fragment);
                }
                let first_framed = Framed::Elements(&first_ends);
                assert!(!merge.add(first, Ok(replies[first as usize]), first_framed, 0));
                let last_framed = Framed::Elements(&last_ends);
                let last_reply = replies[last as usize];
                assert!(merge.add(last, Ok(last_reply), last_framed, 0));
                let mut out = Vec::new();
                assert!(!merge.finish(Protocol::Redis, last_reply, last_framed, &mut out));
                assert_eq!(out, merged);
                assert_eq!(write_all(&mut merge, last_reply, last_framed), merged);
                Merge::recycle(merge);
            }
        }
    }

    #[test]
    fn an_mget_merges_fragments_that_were_parts_of_combined_mgets() {
        // MGET a b c as above; either fragment (or both) came as the
        // elements of a combined MGET, in either order.
        let bodies: [&[u8]; 2] = [b"$2\r\nva\r\n$-1\r\n", b"$2\r\nvb\r\n"];
        let body_ends: [&[usize]; 2] = [&[8, 13], &[8]];
        let replies: [&[u8]; 2] = [b"*2\r\n$2\r\nva\r\n$-1\r\n", b"*1\r\n$2\r\nvb\r\n"];
        let merged: &[u8] = b"*3\r\n$2\r\nva\r\n$2\r\nvb\r\n$-1\r\n";
        for combined in [[true, true], [true, false], [false, true]] {
            for (first, last) in [(0u32, 1u32), (1, 0)] {
                let mut merge = Merge::new(MergeKind::RedisMget, 2);
                for (key, fragment) in [(b"a", 0), (b"b", 1), (b"c", 0)] {
                    merge.push_key(key, fragment);
                }
                let mut last_reply: &[u8] = &[];
                for (i, fragment) in [first, last].into_iter().enumerate() {
                    let f = fragment as usize;
                    let all_in = if combined[f] {
                        let count = body_ends[f].len() as u32;
                        merge.add_elements(fragment, count, bodies[f], body_ends[f], 0)
                    } else {
                        last_reply = replies[f];
                        merge.add(fragment, Ok(replies[f]), Framed::NONE, 0)
                    };
                    assert_eq!(all_in, i == 1);
                }
                if combined[last as usize] {
                    last_reply = &[];
                }
                let mut out = Vec::new();
                assert!(!merge.finish(Protocol::Redis, last_reply, Framed::NONE, &mut out));
                assert_eq!(out, merged, "{combined:?} {first}");
                assert_eq!(write_all(&mut merge, last_reply, Framed::NONE), merged);
                Merge::recycle(merge);
            }
        }
    }

    #[test]
    fn a_failed_last_fragment_fails_the_request() {
        let mut merge = abc();
        assert!(!merge.add(0, Ok(FRAGMENT_0), Framed::NONE, 0));
        assert!(merge.add(1, Err(Failure::REFUSED), Framed::NONE, 0));
        let mut out = Vec::new();
        assert!(merge.finish(Protocol::Memcache, &[], Framed::NONE, &mut out));
        assert!(out.starts_with(b"SERVER_ERROR "), "{out:?}");
    }

    #[test]
    fn big_buffers_are_kept_while_used_and_given_back_by_an_idle_sweep() {
        let big = vec![b'x'; 200 * 1024];
        let mut merge = Merge::new(MergeKind::RedisSum, 2);
        merge.add(0, Ok(&big), Framed::NONE, 0);
        let held = merge.buffer_bytes();
        assert!(held >= big.len());
        let before = pooled_bytes();
        Merge::recycle(merge);
        assert_eq!(pooled_bytes(), before + held);
        // The pool was used since the last sweep: the buffer stays.
        Merge::sweep();
        assert_eq!(pooled_bytes(), before + held);
        // Unused for a whole period: it goes.
        Merge::sweep();
        assert!(pooled_bytes() <= IDLE_BUFFER_MAX * POOL_MAX);
        assert!(POOL.with(|pool| pool
            .borrow()
            .merges
            .iter()
            .all(|m| m.buffer_bytes() <= IDLE_BUFFER_MAX)));
    }

    #[test]
    fn the_pool_keeps_no_more_than_its_budget() {
        let big = vec![b'x'; 4 << 20];
        let mut merges = Vec::new();
        for _ in 0..(POOL_BYTES_MAX / big.len() + 4) {
            let mut merge = Merge::new(MergeKind::RedisSum, 2);
            merge.add(0, Ok(&big), Framed::NONE, 0);
            merges.push(merge);
        }
        merges.into_iter().for_each(Merge::recycle);
        assert!(pooled_bytes() <= POOL_BYTES_MAX);
        assert!(pooled_bytes() >= POOL_BYTES_MAX - 2 * (8 << 20));
    }
}
