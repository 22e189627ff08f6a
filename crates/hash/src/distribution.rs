//! ketama, modula and random: which server of a pool a key goes to.

use crate::hash::HashFunction;

/// The `distribution:` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    Ketama,
    Modula,
    Random,
}

impl Distribution {
    /// Every distribution.
    pub const ALL: [Distribution; 3] = [Distribution::Ketama, Distribution::Modula, Distribution::Random];

    /// The name used in nutcracker.yml.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
            Distribution::Random => "random",
        }
    }

    /// Looks a distribution up by its nutcracker.yml name.
    pub fn from_name(name: &str) -> Option<Distribution> {
        Distribution::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// Routes keys of one pool to server indexes (positions in the pool's sorted
/// server list), honouring which servers are live.
#[derive(Debug, Clone)]
pub struct Router {
    _private: (),
}

impl Router {
    /// Builds the router for servers given as (name, weight), in the pool's
    /// sorted order; every server starts live.
    pub fn new(
        hash: HashFunction,
        hash_tag: Option<[u8; 2]>,
        distribution: Distribution,
        servers: &[(&[u8], u32)],
    ) -> Router {
        let _ = (hash, hash_tag, distribution, servers);
        todo!("router")
    }

    /// Rebuilds the continuum / slots with only the servers marked live.
    pub fn set_live(&mut self, live: &[bool]) {
        let _ = live;
        todo!("router")
    }

    /// The server index for `key`, or `None` when no server is live.
    pub fn route(&self, key: &[u8]) -> Option<usize> {
        let _ = key;
        todo!("router")
    }
}
