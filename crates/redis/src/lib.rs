//! The redis RESP2 protocol, sans-IO: request parsing with nutcracker's
//! command table, response parsing, fragmentation and merging.
#![forbid(unsafe_code)]
