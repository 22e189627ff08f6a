//! Key placement, bit-exact with nutcracker 0.5.0: the twelve hash functions
//! (`hash`), hash tags, and the ketama / modula / random distributions
//! (`distribution`). Pure code: no IO, no clocks.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

pub mod distribution;
pub mod hash;

pub use distribution::{Distribution, Router};
pub use hash::HashFunction;
