//! Planning a multi-key request (memcache `get k1 k2 …`, redis MGET / DEL /
//! MSET …): which server each key goes to, and the fragments to send.

use smallvec::SmallVec;

use super::pool::PoolRuntime;

/// Where the keys of one request go.
pub enum Plan {
    /// Some key has no live server: the request fails with ECONNREFUSED.
    Refused,
    /// Every key lives on this server: the request goes whole (the reply is
    /// the same as a merged one).
    Whole(usize),
    /// Keys on several servers.
    Split(Split),
}

/// The fragments of a split request.
pub struct Split {
    /// Per key, in request order: its server.
    pub targets: SmallVec<[usize; 8]>,
    /// Distinct servers in order of first appearance: fragment `i` goes to `servers[i]`.
    pub servers: SmallVec<[usize; 8]>,
}

/// Routes every key.
pub fn plan<K: AsRef<[u8]>>(pool: &PoolRuntime, keys: impl Iterator<Item = K>) -> Plan {
    let mut targets: SmallVec<[usize; 8]> = SmallVec::new();
    for key in keys {
        match pool.route(key.as_ref()) {
            Some(server) => targets.push(server.index),
            None => return Plan::Refused,
        }
    }
    let Some(&first) = targets.first() else {
        return Plan::Refused;
    };
    if targets.iter().all(|&t| t == first) {
        return Plan::Whole(first);
    }
    let mut servers: SmallVec<[usize; 8]> = SmallVec::new();
    for &t in &targets {
        if !servers.contains(&t) {
            servers.push(t);
        }
    }
    Plan::Split(Split { targets, servers })
}

impl Split {
    /// The fragment of the `key`-th key.
    pub fn fragment_of(&self, key: usize) -> u32 {
        let target = self.targets.get(key).copied().unwrap_or(0);
        self.servers.iter().position(|&s| s == target).unwrap_or(0) as u32
    }

    /// The indexes of the keys that go to fragment `fragment`, into `out`.
    pub fn keys_of(&self, fragment: usize, out: &mut SmallVec<[usize; 16]>) {
        out.clear();
        let Some(&server) = self.servers.get(fragment) else {
            return;
        };
        out.extend(
            self.targets
                .iter()
                .enumerate()
                .filter(|(_, &t)| t == server)
                .map(|(i, _)| i),
        );
    }
}
