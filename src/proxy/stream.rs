//! One type for TCP and unix-domain sockets: [`Stream`] for server
//! connections (registered in the runtime, one task each) and
//! [`ClientSocket`] for clients (bare, in the worker's client hub).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;

use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

use rustcracker_config::ServerAddress;

/// A server connection's socket, of either family.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Waits until the socket is readable (or has an error / EOF to report).
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Unix(s) => s.readable().await,
        }
    }

    /// Waits until the socket is writable.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.writable().await,
            Stream::Unix(s) => s.writable().await,
        }
    }

    /// Reads what is available into the spare capacity of `buf` (a raw
    /// `recv`: see [`ClientSocket`] for why not std's).
    pub fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let recv = |fd: BorrowedFd<'_>, buf: &mut Vec<u8>| -> io::Result<usize> {
            let spare = rustix::buffer::spare_capacity(buf);
            Ok(rustix::net::recv(fd, spare, rustix::net::RecvFlags::empty())?.0)
        };
        match self {
            Stream::Tcp(s) => s.try_io(Interest::READABLE, || recv(s.as_fd(), buf)),
            Stream::Unix(s) => s.try_io(Interest::READABLE, || recv(s.as_fd(), buf)),
        }
    }

    /// Reads into the spare capacity of `buf`; when the read comes back short
    /// the socket is drained, so its readiness is cleared right away instead of
    /// finding out with one more `read` that fails with EAGAIN (a syscall saved
    /// per wake-up).
    pub fn read_available(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let room = buf.capacity() - buf.len();
        let n = self.try_read_buf(buf)?;
        if n > 0 && n < room {
            let drained = || -> io::Result<()> { Err(io::ErrorKind::WouldBlock.into()) };
            let _ = match self {
                Stream::Tcp(s) => s.try_io(Interest::READABLE, drained),
                Stream::Unix(s) => s.try_io(Interest::READABLE, drained),
            };
        }
        Ok(n)
    }

    /// Writes what the kernel takes now (a raw `send`, no SIGPIPE).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let send = |fd: BorrowedFd<'_>| -> io::Result<usize> {
            Ok(rustix::net::send(
                fd,
                buf,
                rustix::net::SendFlags::NOSIGNAL,
            )?)
        };
        match self {
            Stream::Tcp(s) => s.try_io(Interest::WRITABLE, || send(s.as_fd())),
            Stream::Unix(s) => s.try_io(Interest::WRITABLE, || send(s.as_fd())),
        }
    }

    /// Connects to a backend, resolving its host name anew (so DNS changes are
    /// picked up on reconnect, as nutcracker does). TCP gets `TCP_NODELAY` and,
    /// when asked, `SO_KEEPALIVE`.
    pub async fn connect(address: &ServerAddress, keepalive: bool) -> io::Result<Stream> {
        match address {
            ServerAddress::Tcp { host, port } => {
                let addr = match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(mut addrs) => addrs.next(),
                    Err(_) => None,
                };
                let Some(addr) = addr else {
                    crate::log_error!(
                        "address resolution of node '{host}' service '{port}' failed: Name or service not known"
                    );
                    return Err(io::Error::from_raw_os_error(libc::EHOSTDOWN));
                };
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                if keepalive {
                    socket2::SockRef::from(&stream).set_keepalive(true)?;
                }
                Ok(Stream::Tcp(stream))
            }
            ServerAddress::Unix(path) => Ok(Stream::Unix(connect_unix(path).await?)),
        }
    }
}

async fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    UnixStream::connect(path).await
}

/// A client's socket, of either family: non-blocking and without a runtime
/// registration (the worker's client hub watches it; see `hub.rs`).
pub enum ClientSocket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl ClientSocket {
    // Reads and writes are raw system calls (rustix), not std's: std goes
    // through glibc's `recv` / `send` / `writev`, which are cancellation
    // points, and in a multi-threaded process (the control and stats threads)
    // glibc wraps each such call in two more to switch cancellation on and off
    // (~1.5% of the proxy's CPU at 20,000 requests/s, `perf`; bench/HISTORY.md).

    /// Reads what is available into `buf`.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let (n, _) = rustix::net::recv(self.fd(), buf, rustix::net::RecvFlags::empty())?;
        Ok(n)
    }

    /// Writes what the kernel takes now (no SIGPIPE for a peer gone: an error instead).
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::net::send(
            self.fd(),
            buf,
            rustix::net::SendFlags::NOSIGNAL,
        )?)
    }

    /// Writes what the kernel takes now of `bufs`, in order (one `writev`).
    pub fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Ok(rustix::io::writev(self.fd(), bufs)?)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            ClientSocket::Tcp(s) => s.as_fd(),
            ClientSocket::Unix(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for ClientSocket {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            ClientSocket::Tcp(s) => s.as_raw_fd(),
            ClientSocket::Unix(s) => s.as_raw_fd(),
        }
    }
}
