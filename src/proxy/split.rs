//! Planning a multi-key request (memcache `get k1 k2 …`, redis MGET / DEL /
//! MSET …): which server each key goes to, and the fragments to send.

use std::cell::Cell;

use super::pool::PoolRuntime;

/// Where the keys of one request go.
pub enum Plan {
    /// Some key has no live server: the request fails with ECONNREFUSED.
    Refused,
    /// Every key lives on this server: the request goes whole (the reply is
    /// the same as a merged one).
    Whole(usize),
    /// Keys on several servers: the fragments are in the [`Split`].
    Split,
}

/// The fragments of a split request. One per worker is reused for every
/// request (see [`with_split`]), so planning allocates nothing once its
/// lists have grown to the widest request seen.
#[derive(Default)]
pub struct Split {
    /// Per key, in request order: its fragment (while planning: its server).
    fragments: Vec<u32>,
    /// Distinct servers in order of first appearance: fragment `i` goes to `servers[i]`.
    servers: Vec<usize>,
    /// The key indexes of one fragment, for [`Split::keys_of`].
    keys: Vec<usize>,
}

thread_local! {
    static SPLIT: Cell<Split> = Cell::new(Split::default());
}

/// Lists longer than this are not kept between requests.
const KEEP_MAX: usize = 4096;

/// Runs `f` with the worker's reusable [`Split`]. Taken out of its cell for
/// the call, so a nested call gets a fresh one instead of a borrow panic.
pub fn with_split<R>(f: impl FnOnce(&mut Split) -> R) -> R {
    let mut split = SPLIT.with(Cell::take);
    let result = f(&mut split);
    if split.fragments.capacity() <= KEEP_MAX {
        SPLIT.with(|cell| cell.set(split));
    }
    result
}

impl Split {
    /// Routes every key.
    pub fn plan<K: AsRef<[u8]>>(
        &mut self,
        pool: &PoolRuntime,
        keys: impl Iterator<Item = K>,
    ) -> Plan {
        self.fragments.clear();
        self.servers.clear();
        for key in keys {
            match pool.route(key.as_ref()) {
                Some(server) => self.fragments.push(server.index as u32),
                None => return Plan::Refused,
            }
        }
        let Some(&first) = self.fragments.first() else {
            return Plan::Refused;
        };
        if self.fragments.iter().all(|&t| t == first) {
            return Plan::Whole(first as usize);
        }
        // Server indexes become fragment indexes, numbered in order of first appearance.
        for target in &mut self.fragments {
            let server = *target as usize;
            let fragment = match self.servers.iter().position(|&s| s == server) {
                Some(fragment) => fragment,
                None => {
                    self.servers.push(server);
                    self.servers.len() - 1
                }
            };
            *target = fragment as u32;
        }
        Plan::Split
    }

    /// How many fragments the request splits into.
    pub fn fragment_count(&self) -> usize {
        self.servers.len()
    }

    /// The server of fragment `fragment`.
    pub fn server(&self, fragment: usize) -> usize {
        self.servers.get(fragment).copied().unwrap_or(0)
    }

    /// Per key, in request order: its fragment.
    pub fn fragments(&self) -> &[u32] {
        &self.fragments
    }

    /// The indexes of the keys that go to fragment `fragment`, in request order.
    pub fn keys_of(&mut self, fragment: usize) -> &[usize] {
        self.keys.clear();
        self.keys.extend(
            self.fragments
                .iter()
                .enumerate()
                .filter(|&(_, &f)| f as usize == fragment)
                .map(|(i, _)| i),
        );
        &self.keys
    }
}
