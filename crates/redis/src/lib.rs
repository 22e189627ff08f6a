//! The redis RESP2 protocol, sans-IO: request parsing with nutcracker's command table (and the
//! fixes of compatibility.md), response parsing, fragmentation and merging. No sockets, no
//! clocks; parsing allocates nothing for ordinary requests.
//!
//! * [`parse_request`] / [`RequestParser`]: client bytes → [`Request`] to forward (or answer,
//!   for [`Command::is_local`] commands), [`InvalidRequest`] answered with redis's own error
//!   text, or [`RequestParse::Incomplete`].
//! * [`write_fragment`] and [`merge_mget`] / [`merge_sum`] / [`merge_mset`]: split a multi-key
//!   command per server and merge the replies; [`write_request`] re-encodes an inline request.
//! * [`parse_response`] / [`ResponseParser`]: server bytes → one [`Response`].
//! * [`reply`]: the proxy's own replies.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod command;
mod fragment;
mod inline;
mod merge;
mod number;
pub mod reply;
mod request;
mod response;

pub use command::{ArityClass, Command, Fragmentation, ALL as ALL_COMMANDS};
pub use fragment::{write_fragment, write_request};
pub use merge::{
    merge_mget, merge_mget_framed, merge_mget_framed_with, merge_mset, merge_sum, mget_header,
    MergeError,
};
pub use reply::{error_reply, header_len};
pub use request::{
    max_key_len_for_mbuf, parse_request, ArgRange, InvalidRequest, ReplyText, Request,
    RequestParse, RequestParser, INLINE_MAX, MAX_BULK_LEN, MBUF_HEADER,
};
pub use response::{
    parse_response, ErrorClass, Response, ResponseKind, ResponseParse, ResponseParser,
    MAX_RESPONSE_LINE_LEN,
};
