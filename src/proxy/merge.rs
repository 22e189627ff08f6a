//! Collecting the fragment replies of a request split across servers and
//! building the one reply the client gets.

use std::cell::RefCell;
use std::time::Duration;

use super::errno::Failure;
use super::Protocol;

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
    /// The fragment replies, back to back.
    data: Vec<u8>,
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
    backend: Duration,
}

thread_local! {
    /// Finished merges, kept with their buffers so that split requests
    /// allocate nothing in steady state.
    // Boxed on purpose: the box is what a client's reply slot holds, so
    // pooling it saves that allocation too.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<Merge>>> = const { RefCell::new(Vec::new()) };
}

/// Merges kept per worker, and the biggest buffer a kept merge may hold.
const POOL_MAX: usize = 1024;
const POOL_BUFFER_MAX: usize = 64 * 1024;

impl Merge {
    /// A merge of `fragments` replies (from the worker's pool when it can).
    pub fn new(kind: MergeKind, fragments: usize) -> Box<Merge> {
        let mut merge = POOL
            .with(|pool| pool.borrow_mut().pop())
            .unwrap_or_else(|| {
                Box::new(Merge {
                    kind,
                    parts: Vec::new(),
                    data: Vec::new(),
                    remaining: 0,
                    failure: None,
                    keys: Vec::new(),
                    key_ends: Vec::new(),
                    key_fragments: Vec::new(),
                    backend: Duration::ZERO,
                })
            });
        merge.kind = kind;
        merge.parts.clear();
        merge.parts.resize(fragments, None);
        merge.data.clear();
        merge.remaining = fragments;
        merge.failure = None;
        merge.keys.clear();
        merge.key_ends.clear();
        merge.key_fragments.clear();
        merge.backend = Duration::ZERO;
        merge
    }

    /// Gives a finished merge back to the worker's pool.
    pub fn recycle(merge: Box<Merge>) {
        if merge.data.capacity() > POOL_BUFFER_MAX || merge.keys.capacity() > POOL_BUFFER_MAX {
            return;
        }
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_MAX {
                pool.push(merge);
            }
        });
    }

    /// Records the next key of the original request and its fragment.
    pub fn push_key(&mut self, key: &[u8], fragment: u32) {
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len() as u32);
        self.key_fragments.push(fragment as usize);
    }

    /// Records one fragment's outcome; true when every fragment is in.
    pub fn add(
        &mut self,
        fragment: u32,
        outcome: Result<&[u8], Failure>,
        backend: Duration,
    ) -> bool {
        self.backend = self.backend.max(backend);
        let Some(part) = self.parts.get_mut(fragment as usize) else {
            return false;
        };
        if part.is_some() {
            return false;
        }
        let start = self.data.len() as u32;
        match outcome {
            Ok(reply) => {
                if !self.kind.accepts(reply) {
                    self.failure.get_or_insert(Failure::INVALID);
                }
                self.data.extend_from_slice(reply);
            }
            Err(failure) => {
                self.failure.get_or_insert(failure);
            }
        }
        *part = Some((start, self.data.len() as u32));
        self.remaining -= 1;
        self.remaining == 0
    }

    /// The slowest fragment's server time.
    pub fn backend(&self) -> Duration {
        self.backend
    }

    /// How many fragments the request was split into.
    pub fn fragments(&self) -> usize {
        self.parts.len()
    }

    /// Builds the client's reply once every fragment is in; true when the
    /// reply is the proxy's own error.
    pub fn finish(&self, protocol: Protocol, out: &mut Vec<u8>) -> bool {
        if let Some(failure) = self.failure {
            protocol.error_reply(&failure.message(), out);
            return true;
        }
        // The fragment replies as slices, on the stack unless there are very many fragments.
        let mut small: [&[u8]; 64] = [&[]; 64];
        let mut large = Vec::new();
        let reply = |part: &Option<(u32, u32)>| {
            part.map_or(&[][..], |(s, e)| &self.data[s as usize..e as usize])
        };
        let parts: &[&[u8]] = if self.parts.len() <= small.len() {
            for (slot, part) in small.iter_mut().zip(&self.parts) {
                *slot = reply(part);
            }
            &small[..self.parts.len()]
        } else {
            large.extend(self.parts.iter().map(reply));
            &large
        };
        match self.kind {
            MergeKind::MemcacheValues => {
                let starts = std::iter::once(0).chain(self.key_ends.iter().copied());
                let keys = starts
                    .zip(&self.key_ends)
                    .map(|(start, &end)| &self.keys[start as usize..end as usize])
                    .zip(self.key_fragments.iter().copied());
                rustcracker_memcache::merge_values(keys, parts, out);
                false
            }
            MergeKind::RedisMget | MergeKind::RedisSum | MergeKind::RedisMset => {
                let merged = match self.kind {
                    MergeKind::RedisMget => {
                        rustcracker_redis::merge_mget(&self.key_fragments, parts, out)
                    }
                    MergeKind::RedisSum => rustcracker_redis::merge_sum(parts, out),
                    _ => rustcracker_redis::merge_mset(parts, out),
                };
                // A fragment reply of the wrong type (`-READONLY`, say): EINVAL, as nutcracker.
                if merged.is_err() {
                    protocol.error_reply(&Failure::INVALID.message(), out);
                }
                merged.is_err()
            }
        }
    }
}

impl MergeKind {
    /// Whether a fragment reply has the type this merge can use; any other
    /// (a backend `SERVER_ERROR`, say) fails the request with EINVAL, as in nutcracker.
    fn accepts(self, reply: &[u8]) -> bool {
        match self {
            MergeKind::MemcacheValues => reply.starts_with(b"VALUE ") || reply == b"END\r\n",
            // The redis merges check the reply types themselves.
            MergeKind::RedisMget | MergeKind::RedisSum | MergeKind::RedisMset => true,
        }
    }
}
