//! The memcached ASCII protocol, sans-IO: request parsing, response parsing,
//! multi-get fragmentation and merging. No sockets, no clocks.
//!
//! * [`parse_request`]: client bytes → [`Request`] to forward, or [`InvalidRequest`] to answer
//!   locally (memcached's own error replies), or [`RequestParse::Incomplete`].
//! * [`write_fragment`] / [`merge_values`]: split a multi-key retrieval per server and merge the
//!   replies back, `VALUE` blocks in request order.
//! * [`parse_response`]: server bytes → one [`Response`] (a whole retrieval reply through `END`).
//! * [`server_error`]: the proxy's own `SERVER_ERROR <message>` reply.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod command;
mod fragment;
mod merge;
mod number;
pub mod reply;
mod request;
mod response;
mod scan;

pub use command::Command;
pub use fragment::write_fragment;
pub use merge::{merge_spans, merge_spans_with, merge_values};
pub use reply::server_error;
pub use request::{
    parse_request, InvalidRequest, KeyRange, Request, RequestParse, RequestParser, MAX_KEY_LEN,
    MAX_LINE_LEN, MAX_RETRIEVAL_LINE_LEN, MAX_VALUE_LEN,
};
pub use response::{
    parse_response, value_blocks, Response, ResponseKind, ResponseParse, ResponseParser,
    ValueBlock, ValueSpan, MAX_RESPONSE_LINE_LEN,
};
