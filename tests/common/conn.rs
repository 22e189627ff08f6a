//! A test client over TCP or a unix socket, reading until a reply matches.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a proxy (or a backend) listens.
#[derive(Clone, Debug)]
pub enum Target {
    Tcp(u16),
    Unix(PathBuf),
}

/// A client connection.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    /// Connects (TCP with `TCP_NODELAY`).
    pub fn open(target: &Target) -> Conn {
        match target {
            Target::Tcp(port) => {
                let s = TcpStream::connect(("127.0.0.1", *port)).unwrap();
                s.set_nodelay(true).unwrap();
                Conn::Tcp(s)
            }
            Target::Unix(path) => Conn::Unix(UnixStream::connect(path).unwrap()),
        }
    }

    /// Writes all of `bytes`; a peer that closes early (after a protocol
    /// error) may reset a long write, which is not an error here.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = match self {
            Conn::Tcp(s) => s.write_all(bytes),
            Conn::Unix(s) => s.write_all(bytes),
        };
    }

    /// Reads until `done` holds for what arrived (then keeps reading for
    /// `linger`, to catch anything extra), or until the peer is quiet for 2 s
    /// or closes; 10 s at most.
    pub fn read_until(
        &mut self,
        done: impl Fn(&[u8]) -> bool,
        linger: Option<Duration>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if done(&out) {
                let Some(linger) = linger else {
                    return out;
                };
                self.set_timeout(Some(linger));
                while let Ok(n) = self.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                return out;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            self.set_timeout(Some(left.min(Duration::from_millis(2000))));
            match self.read(&mut buf) {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn set_timeout(&mut self, t: Option<Duration>) {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(t).unwrap(),
            Conn::Unix(s) => s.set_read_timeout(t).unwrap(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}
