//! The stats port: nutcracker's JSON document to every connection, and
//! Prometheus text to an HTTP `GET /metrics`.
//!
//! One std thread accepts and serves connections one after the other, as
//! nutcracker's stats thread does. For each connection it waits briefly
//! ([`SNIFF_WAIT`]) for the client to say something:
//!
//! * nothing, EOF, or anything that does not start with `GET ` — the JSON
//!   document (§4.3), then close: `nc host 22222 </dev/null`, telnet and
//!   every nutcracker exporter keep working;
//! * `GET /metrics` (an optional query string is ignored) — `HTTP/1.1 200 OK`
//!   with the Prometheus text of [`super::prometheus`];
//! * `GET` of any other path — the JSON document as an HTTP response.
//!
//! Values are live: every connection gets the sum of all workers' counters
//! at the moment it is served. nutcracker aggregates every `-i` ms, so its
//! numbers lag by up to one interval; rustcracker's never lag, which meets
//! the same contract (cumulative since start, at most `-i` ms old) with an
//! interval of zero. `-i` is accepted and kept in [`StatsOptions`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Socket, Type};

use super::{json, prometheus, Registry};
use crate::logging::strerror;

/// How long a new connection may stay silent before it gets the JSON
/// document (a client that sends nothing and keeps the connection open).
pub const SNIFF_WAIT: Duration = Duration::from_millis(50);

/// How long an HTTP client may take to send its request head.
const HTTP_HEAD_WAIT: Duration = Duration::from_secs(1);

/// The most request bytes read before answering.
const MAX_REQUEST: usize = 8192;

/// How long a client may take to read the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long unread request bytes are drained after answering (so that
/// closing does not reset the connection before the client read the answer).
const DRAIN_WAIT: Duration = Duration::from_millis(200);

/// Where and how often stats are served (`-a`, `-s`, `-i`).
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// `-a`: the address to listen on (a name or an IP literal).
    pub addr: String,
    /// `-s`: the port.
    pub port: u16,
    /// `-i`: nutcracker's aggregation interval in milliseconds. rustcracker
    /// serves live sums, so it is never later than this.
    pub interval_ms: u64,
}

/// The running stats listener; dropping it stops the thread.
pub struct StatsServer {
    stop: Arc<AtomicBool>,
    local: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl StatsServer {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for StatsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.local;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_millis(200)).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// What the stats thread needs besides the registry.
struct Context {
    registry: Arc<Registry>,
    hostname: String,
}

/// Binds the stats port and serves it from a thread of its own.
///
/// Errors carry nutcracker's wording: `address resolution of node '<addr>'
/// service '<port>' failed: …` or `bind on m <fd> to stats server addr
/// '<addr>:<port>' failed: …`.
pub fn start(registry: Arc<Registry>, options: &StatsOptions) -> io::Result<StatsServer> {
    let listener = bind(&options.addr, options.port)?;
    let local = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let context = Context {
        registry,
        hostname: hostname(),
    };
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("stats".to_owned())
            .spawn(move || serve(listener, &context, &stop))?
    };
    Ok(StatsServer {
        stop,
        local,
        thread: Some(thread),
    })
}

/// Resolves `addr:port` (first result, like nutcracker's `nc_resolve`) and
/// listens there with `SO_REUSEADDR` and a backlog of `SOMAXCONN`.
fn bind(addr: &str, port: u16) -> io::Result<TcpListener> {
    let target = (addr, port)
        .to_socket_addrs()
        .and_then(|mut found| {
            found
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address found"))
        })
        .map_err(|e| {
            let text = e.to_string();
            let reason = text
                .strip_prefix("failed to lookup address information: ")
                .unwrap_or(&text);
            io::Error::new(
                e.kind(),
                format!("address resolution of node '{addr}' service '{port}' failed: {reason}"),
            )
        })?;
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    let fd = socket.as_raw_fd();
    let failed = |what: &str, e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "{what} on m {fd} to stats server addr '{addr}:{port}' failed: {}",
                strerror(&e)
            ),
        )
    };
    socket
        .set_reuse_address(true)
        .map_err(|e| failed("set reuseaddr", e))?;
    socket.bind(&target.into()).map_err(|e| failed("bind", e))?;
    socket
        .listen(libc::SOMAXCONN)
        .map_err(|e| failed("listen", e))?;
    Ok(socket.into())
}

/// The host name for `source`, as `gethostname` returns it.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The accept loop: one connection at a time until `stop`.
fn serve(listener: TcpListener, context: &Context, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => {
                let _ = answer(stream, context);
            }
            // Out of descriptors or a connection reset before accept: try again shortly.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// Not HTTP: the bare JSON document.
    Plain,
    /// `GET /metrics`.
    Metrics,
    /// `GET` of another path: the JSON document over HTTP.
    HttpJson,
}

/// Classifies what a client sent so far; `None` while it may still become
/// an HTTP request.
fn classify(bytes: &[u8], complete: bool) -> Option<Request> {
    const GET: &[u8] = b"GET ";
    let n = bytes.len().min(GET.len());
    if bytes[..n] != GET[..n] {
        return Some(Request::Plain);
    }
    if bytes.len() < GET.len() {
        return complete.then_some(Request::Plain);
    }
    let head_done =
        bytes.windows(4).any(|w| w == b"\r\n\r\n") || bytes.windows(2).any(|w| w == b"\n\n");
    if !head_done && !complete {
        return None;
    }
    let target = bytes[GET.len()..]
        .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    Some(if path == b"/metrics" {
        Request::Metrics
    } else {
        Request::HttpJson
    })
}

/// Reads what the client sends within the sniffing window and decides.
/// Returns the request and whether the client already closed its side.
fn sniff(stream: &mut TcpStream) -> io::Result<(Request, bool)> {
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let wait = if bytes.starts_with(b"GET ") {
            HTTP_HEAD_WAIT
        } else {
            SNIFF_WAIT
        };
        let left = wait.saturating_sub(start.elapsed());
        if left.is_zero() || bytes.len() >= MAX_REQUEST {
            return Ok((classify(&bytes, true).unwrap_or(Request::Plain), false));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok((classify(&bytes, true).unwrap_or(Request::Plain), true)),
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                if let Some(request) = classify(&bytes, false) {
                    return Ok((request, false));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return Ok((classify(&bytes, true).unwrap_or(Request::Plain), false))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Serves one connection and closes it.
fn answer(mut stream: TcpStream, context: &Context) -> io::Result<()> {
    let (request, closed) = sniff(&mut stream)?;
    let totals = context.registry.totals();
    let uptime = i64::try_from(context.registry.started.elapsed().as_secs()).unwrap_or(i64::MAX);
    let mut body = String::with_capacity(4096);
    let content_type = match request {
        Request::Metrics => {
            let info = prometheus::Info {
                version: crate::VERSION,
                compat: json::VERSION,
                source: &context.hostname,
                uptime,
            };
            prometheus::render(&mut body, &info, &context.registry.config, &totals);
            prometheus::render_latency(
                &mut body,
                &context.registry.config,
                &context.registry.server_latency(),
                &context.registry.request_latency(),
                &context.registry.proxy_latency(),
            );
            prometheus::CONTENT_TYPE
        }
        Request::Plain | Request::HttpJson => {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            let header = json::Header {
                service: json::SERVICE,
                source: &context.hostname,
                version: json::VERSION,
                uptime,
                timestamp,
            };
            json::render(&mut body, &header, &context.registry.config, &totals);
            "application/json"
        }
    };
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    if request != Request::Plain {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
    }
    stream.write_all(body.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    if !closed {
        drain(&mut stream);
    }
    Ok(())
}

/// Reads and drops what the client still sends, briefly, until it closes.
fn drain(stream: &mut TcpStream) {
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    let mut total = 0usize;
    while total < 64 * 1024 {
        let left = DRAIN_WAIT.saturating_sub(start.elapsed());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests() {
        assert_eq!(classify(b"", true), Some(Request::Plain));
        assert_eq!(classify(b"", false), None);
        assert_eq!(classify(b"GE", false), None);
        assert_eq!(classify(b"GE", true), Some(Request::Plain));
        assert_eq!(classify(b"stats\r\n", false), Some(Request::Plain));
        assert_eq!(classify(b"GET /metrics HTTP/1.1\r\n", false), None);
        assert_eq!(
            classify(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false),
            Some(Request::Metrics)
        );
        assert_eq!(
            classify(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n", false),
            Some(Request::Metrics)
        );
        assert_eq!(
            classify(b"GET /metrics HTTP/1.1\r\n", true),
            Some(Request::Metrics)
        );
        assert_eq!(
            classify(b"GET / HTTP/1.0\r\n\r\n", false),
            Some(Request::HttpJson)
        );
        assert_eq!(
            classify(b"GET /metricsx HTTP/1.0\n\n", false),
            Some(Request::HttpJson)
        );
    }

    #[test]
    fn bind_errors_use_nutcracker_wording() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        // SO_REUSEADDR does not allow binding over a listening socket.
        let err = bind("127.0.0.1", port).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("bind on m "), "{text}");
        assert!(
            text.ends_with(&format!(
                " to stats server addr '127.0.0.1:{port}' failed: Address already in use"
            )),
            "{text}"
        );
        let err = bind("999.1.1.1", 1).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("address resolution of node '999.1.1.1' service '1' failed: "),
            "{err}"
        );
    }
}
