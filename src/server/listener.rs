//! Listening sockets: one SO_REUSEPORT listener per worker per address, after making
//! sure no other process already serves the port (SO_REUSEPORT would silently share it).

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Fails with a clear message when another socket already listens on `addr`.
pub fn ensure_free(addr: SocketAddr) -> io::Result<()> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    match s.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{addr} is already in use by another process; refusing to share it"),
        )),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot bind {addr}: {e}"))),
    }
}

/// A non-blocking listener with SO_REUSEPORT, ready for `monoio::net::TcpListener::from_std`.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into()).map_err(|e| io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
    s.listen(4096)?;
    Ok(s.into())
}
