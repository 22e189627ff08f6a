//! Planning a multi-key request (memcache `get k1 k2 …`, redis MGET / DEL /
//! MSET …): which server each key goes to, and the fragments to send.

use std::cell::Cell;
use std::rc::Rc;

use super::client::Client;
use super::pool::PoolRuntime;
use super::server::{Pending, ServerConnection, WHOLE};

/// Where the keys of one request go.
enum Plan {
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
    /// Per key, in request order: its fragment.
    fragments: Vec<u32>,
    /// Distinct servers in order of first appearance: fragment `i` goes to `servers[i]`.
    servers: Vec<usize>,
    /// Per server index: its fragment while planning, else [`NO_FRAGMENT`].
    /// (A table, not a search of `servers`: which server a key goes to is
    /// random, and a search per key mispredicts its branches.)
    fragment_of_server: Vec<u32>,
    /// The key indexes grouped by fragment, request order within each.
    order: Vec<usize>,
    /// Per fragment: where its keys start in `order` (then `order`'s length).
    starts: Vec<usize>,
}

const NO_FRAGMENT: u32 = u32::MAX;

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
    fn plan<K: AsRef<[u8]>>(&mut self, pool: &PoolRuntime, keys: impl Iterator<Item = K>) -> Plan {
        self.fragments.clear();
        self.servers.clear();
        let mut refused = false;
        for key in keys {
            let Some(server) = pool.route(key.as_ref()) else {
                refused = true;
                break;
            };
            let index = server.index;
            if self.fragment_of_server.len() <= index {
                self.fragment_of_server.resize(index + 1, NO_FRAGMENT);
            }
            let mut fragment = self.fragment_of_server[index];
            if fragment == NO_FRAGMENT {
                fragment = self.servers.len() as u32;
                self.servers.push(index);
                self.fragment_of_server[index] = fragment;
            }
            self.fragments.push(fragment);
        }
        for &server in &self.servers {
            self.fragment_of_server[server] = NO_FRAGMENT;
        }
        match self.servers.as_slice() {
            _ if refused => Plan::Refused,
            [] => Plan::Refused,
            [server] => Plan::Whole(*server),
            _ => {
                self.group_keys();
                Plan::Split
            }
        }
    }

    /// Fills `order` and `starts`: a counting sort of the keys by fragment.
    fn group_keys(&mut self) {
        self.starts.clear();
        self.starts.resize(self.servers.len() + 1, 0);
        for &fragment in &self.fragments {
            self.starts[fragment as usize + 1] += 1;
        }
        for i in 1..self.starts.len() {
            self.starts[i] += self.starts[i - 1];
        }
        self.order.clear();
        self.order.resize(self.fragments.len(), 0);
        // `starts[f]` moves along as fragment f's keys are placed; afterwards
        // it points at fragment f + 1's start, so shift the table back.
        for (key, &fragment) in self.fragments.iter().enumerate() {
            let at = &mut self.starts[fragment as usize];
            self.order[*at] = key;
            *at += 1;
        }
        self.starts.rotate_right(1);
        self.starts[0] = 0;
    }

    /// Routes the keys of request `command` of `client`. When they need no
    /// split, the request is dealt with here: refused (some key has no live
    /// server), or queued whole on the one server of all its keys through
    /// `send_whole` (the reply is the same as a merged one). Returns whether
    /// the request is to be split (fragments in `self`).
    pub fn route<K: AsRef<[u8]>>(
        &mut self,
        client: &Rc<Client>,
        pool: &Rc<PoolRuntime>,
        command: u16,
        keys: impl Iterator<Item = K>,
        send_whole: impl FnOnce(&Rc<ServerConnection>, Pending),
    ) -> bool {
        match self.plan(pool, keys) {
            Plan::Refused => client.refuse(command),
            Plan::Whole(server) => {
                let conn = pool.servers[server].connection(pool);
                let seq = client.reserve(command);
                send_whole(&conn, pool.pending(client, seq, WHOLE));
            }
            Plan::Split => return true,
        }
        false
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

    /// Queues the sub-request of every fragment on its server, as entries
    /// `0..` of the split request `seq` of `client`: `write` builds a
    /// fragment's request from its key indexes into `buf` (cleared first),
    /// `queue` queues it.
    pub fn send_fragments(
        &self,
        client: &Rc<Client>,
        pool: &Rc<PoolRuntime>,
        seq: u64,
        buf: &mut Vec<u8>,
        mut write: impl FnMut(&[usize], &mut Vec<u8>),
        mut queue: impl FnMut(&Rc<ServerConnection>, &[u8], Pending),
    ) {
        for fragment in 0..self.fragment_count() {
            buf.clear();
            write(self.keys_of(fragment), buf);
            let conn = pool.servers[self.server(fragment)].connection(pool);
            let pending = pool.pending(client, seq, fragment as u32);
            queue(&conn, buf, pending);
        }
    }

    /// The indexes of the keys that go to fragment `fragment`, in request order.
    pub fn keys_of(&self, fragment: usize) -> &[usize] {
        let from = self.starts.get(fragment).copied().unwrap_or(0);
        let to = self.starts.get(fragment + 1).copied().unwrap_or(from);
        self.order.get(from..to).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_grouped_by_fragment_in_request_order() {
        let mut split = Split {
            fragments: vec![0, 1, 1, 2, 0, 2, 2, 1],
            servers: vec![7, 3, 5],
            ..Split::default()
        };
        split.group_keys();
        assert_eq!(split.keys_of(0), &[0, 4]);
        assert_eq!(split.keys_of(1), &[1, 2, 7]);
        assert_eq!(split.keys_of(2), &[3, 5, 6]);
        assert_eq!(split.keys_of(3), &[] as &[usize]);
        // Reused for a smaller request.
        split.fragments = vec![1, 0];
        split.servers = vec![2, 4];
        split.group_keys();
        assert_eq!(split.keys_of(0), &[1]);
        assert_eq!(split.keys_of(1), &[0]);
    }
}
