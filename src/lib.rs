//! rustcracker: a drop-in successor to twemproxy (nutcracker).
//!
//! Layers (see README "Architecture"): the pure crates `rustcracker-hash`
//! (hash functions, distributions), `rustcracker-config` (nutcracker.yml),
//! `rustcracker-memcache` and `rustcracker-redis` (sans-IO protocols); this
//! crate adds the IO: `proxy` (workers, listeners, client and server
//! connections), `stats`, process life (`daemon`, `logging`) and the CLI.
#![deny(unsafe_code)]

pub mod cli;
pub mod daemon;
pub mod logging;
pub mod proxy;
pub mod route;
pub mod stats;

pub use rustcracker_config as config;
pub use rustcracker_hash as hash;

/// The version this binary reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
