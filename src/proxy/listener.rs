//! Pool listeners: TCP (with `backlog`, `SO_REUSEADDR`, optional
//! `SO_REUSEPORT`) and unix sockets (stale file removed, permissions set).

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use socket2::{Domain, Socket, Type};

use rustcracker_config::{Listen, Pool};

/// A bound, listening socket not yet attached to a runtime.
pub enum BoundListener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// Why a listener could not be set up (names the pool and the address).
#[derive(Debug, thiserror::Error)]
#[error("bind on pool '{pool}' to addr '{listen}' failed: {source}")]
pub struct ListenError {
    pub pool: String,
    pub listen: String,
    #[source]
    pub source: io::Error,
}

/// Binds `pool`'s listener. `reuseport` is set when the pool asks for it or
/// when several workers each bind the same TCP address.
pub fn bind(pool: &Pool, reuseport: bool) -> Result<BoundListener, ListenError> {
    let err = |source| ListenError {
        pool: pool.name.clone(),
        listen: describe(&pool.listen),
        source,
    };
    match &pool.listen {
        Listen::Tcp { addr, .. } => bind_tcp(*addr, pool.backlog, reuseport)
            .map(BoundListener::Tcp)
            .map_err(err),
        Listen::Unix { path, permissions } => bind_unix(path, *permissions, pool.backlog)
            .map(BoundListener::Unix)
            .map_err(err),
    }
}

/// The listen address as written in the config.
pub fn describe(listen: &Listen) -> String {
    match listen {
        Listen::Tcp { host, port, .. } => format!("{host}:{port}"),
        Listen::Unix { path, .. } => path.display().to_string(),
    }
}

fn bind_tcp(addr: SocketAddr, backlog: u32, reuseport: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuseport {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

fn bind_unix(
    path: &Path,
    permissions: Option<u32>,
    backlog: u32,
) -> io::Result<std::os::unix::net::UnixListener> {
    // As nutcracker: a stale socket file from an earlier run is removed first.
    let _ = std::fs::remove_file(path);
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    if let Some(mode) = permissions {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

impl BoundListener {
    /// Another listener for one more worker: a second `SO_REUSEPORT` socket for
    /// TCP (the kernel spreads connections), the same socket for unix.
    pub fn for_worker(&self, pool: &Pool) -> Result<BoundListener, ListenError> {
        match self {
            BoundListener::Tcp(_) => bind(pool, true),
            BoundListener::Unix(l) => {
                l.try_clone()
                    .map(BoundListener::Unix)
                    .map_err(|source| ListenError {
                        pool: pool.name.clone(),
                        listen: describe(&pool.listen),
                        source,
                    })
            }
        }
    }
}
