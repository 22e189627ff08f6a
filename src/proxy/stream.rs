//! One type for TCP and unix-domain sockets, clients' and server
//! connections' alike: bare, non-blocking, and without a runtime
//! registration (the worker's hub watches them; see `hub.rs`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use rustcracker_config::ServerAddress;

/// A connected socket, of either family.
pub enum Socket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Socket {
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

    /// Reads what is available into the spare capacity of `buf`.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let spare = rustix::buffer::spare_capacity(buf);
        Ok(rustix::net::recv(self.fd(), spare, rustix::net::RecvFlags::empty())?.0)
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
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }

    /// Connects to a backend, resolving its host name anew (so DNS changes are
    /// picked up on reconnect, as nutcracker does). TCP gets `TCP_NODELAY` and,
    /// when asked, `SO_KEEPALIVE`. The connect waits in the runtime; the
    /// socket then leaves it, for the worker's hub.
    pub async fn connect(address: &ServerAddress, keepalive: bool) -> io::Result<Socket> {
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
                let stream = tokio::net::TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                if keepalive {
                    socket2::SockRef::from(&stream).set_keepalive(true)?;
                }
                Ok(Socket::Tcp(stream.into_std()?))
            }
            ServerAddress::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok(Socket::Unix(stream.into_std()?))
            }
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }
}
