//! Routing redis requests. The redis data plane lands with the redis issue;
//! until then a redis pool answers every request with an error and closes.

use std::rc::Rc;

use super::client::Client;
use super::pool::PoolRuntime;
use super::session::Dispatched;
use super::ResponseParse;

/// Answers and stops: the redis request path is not built yet.
pub fn dispatch(client: &Rc<Client>, pool: &Rc<PoolRuntime>, input: &[u8]) -> Dispatched {
    let _ = (pool, input);
    client.push_local(b"-ERR redis pools are not supported by this build yet\r\n");
    Dispatched {
        consumed: input.len(),
        need: 0,
        stop: true,
    }
}

/// No reply is ever parsed while no request is forwarded.
pub fn parse_response(buf: &[u8]) -> ResponseParse {
    let _ = buf;
    ResponseParse::Invalid
}
