//! The memcached ASCII protocol, sans-IO: request parsing, response parsing,
//! multi-get fragmentation and merging. No sockets, no clocks.
#![forbid(unsafe_code)]
