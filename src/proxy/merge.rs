//! Collecting the fragment replies of a request split across servers and
//! building the one reply the client gets.

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
    /// One reply per fragment, as it arrives.
    parts: Vec<Option<Vec<u8>>>,
    remaining: usize,
    /// The first failure of any fragment: the whole request gets one error reply.
    failure: Option<Failure>,
    /// The original request's keys, concatenated.
    keys: Vec<u8>,
    /// Per original key: (start, end) in `keys` and the fragment it went to.
    key_spans: Vec<(u32, u32, u32)>,
    /// The slowest fragment's server time.
    backend: Duration,
}

impl Merge {
    /// A merge of `fragments` replies.
    pub fn new(kind: MergeKind, fragments: usize) -> Merge {
        Merge {
            kind,
            parts: vec![None; fragments],
            remaining: fragments,
            failure: None,
            keys: Vec::new(),
            key_spans: Vec::new(),
            backend: Duration::ZERO,
        }
    }

    /// Records the next key of the original request and its fragment.
    pub fn push_key(&mut self, key: &[u8], fragment: u32) {
        let start = self.keys.len() as u32;
        self.keys.extend_from_slice(key);
        self.key_spans
            .push((start, self.keys.len() as u32, fragment));
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
        match outcome {
            Ok(reply) => {
                if !self.kind.accepts(reply) {
                    self.failure.get_or_insert(Failure::INVALID);
                }
                *part = Some(reply.to_vec());
            }
            Err(failure) => {
                self.failure.get_or_insert(failure);
                *part = Some(Vec::new());
            }
        }
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
        match self.kind {
            MergeKind::MemcacheValues => {
                let keys: Vec<(&[u8], usize)> = self
                    .key_spans
                    .iter()
                    .map(|&(s, e, f)| (&self.keys[s as usize..e as usize], f as usize))
                    .collect();
                let parts: Vec<&[u8]> = self
                    .parts
                    .iter()
                    .map(|p| p.as_deref().unwrap_or_default())
                    .collect();
                rustcracker_memcache::merge_values(&keys, &parts, out);
                false
            }
            MergeKind::RedisMget | MergeKind::RedisSum | MergeKind::RedisMset => {
                let parts: Vec<&[u8]> = self
                    .parts
                    .iter()
                    .map(|p| p.as_deref().unwrap_or_default())
                    .collect();
                let merged = match self.kind {
                    MergeKind::RedisMget => {
                        let fragments: Vec<usize> =
                            self.key_spans.iter().map(|&(_, _, f)| f as usize).collect();
                        rustcracker_redis::merge_mget(&fragments, &parts, out)
                    }
                    MergeKind::RedisSum => rustcracker_redis::merge_sum(&parts, out),
                    _ => rustcracker_redis::merge_mset(&parts, out),
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
