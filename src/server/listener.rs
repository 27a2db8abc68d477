//! Listening sockets: one SO_REUSEPORT listener per worker per address, after making
//! sure no other process already serves the port (SO_REUSEPORT would silently share it),
//! and the options every accepted connection takes from its listener.

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

/// Sets on the listener what its connections should have, so no accepted connection costs
/// a syscall for it. Linux copies TCP_NODELAY to every socket `accept` returns. With
/// `defer_accept` (TCP_DEFER_ACCEPT, 1 s as nginx's `deferred`), a connection is accepted
/// once its first bytes are in (or after about a second without any), so the first read
/// finds the request instead of waiting for it. Also for sockets from systemd or a handover.
pub fn prepare(l: &std::net::TcpListener, defer_accept: bool) -> io::Result<()> {
    socket2::SockRef::from(l).set_nodelay(true)?;
    set_int(l, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, defer_accept as libc::c_int)
}

fn set_int(l: &std::net::TcpListener, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket and a pointer to an int that outlives the call.
    let r = unsafe { libc::setsockopt(l.as_raw_fd(), level, name, (&v as *const libc::c_int).cast(), len) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn accepted_connections_inherit_nodelay() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        l.set_nonblocking(false).unwrap();
        let addr = l.local_addr().unwrap();
        let _c = TcpStream::connect(addr).unwrap();
        let (plain, _) = l.accept().unwrap();
        assert!(!plain.nodelay().unwrap(), "without prepare the kernel default (Nagle on) applies");
        prepare(&l, false).unwrap();
        let _c = TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        assert!(s.nodelay().unwrap(), "TCP_NODELAY must come from the listener");
    }

    fn defer_secs(l: &TcpListener) -> libc::c_int {
        use std::os::fd::AsRawFd;
        let (mut v, mut len) = (-1 as libc::c_int, std::mem::size_of::<libc::c_int>() as libc::socklen_t);
        let r = unsafe {
            libc::getsockopt(
                l.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        v
    }

    #[test]
    fn defer_accept_holds_a_silent_connection_back() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        prepare(&l, true).unwrap();
        assert!(defer_secs(&l) > 0);
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let mut silent = TcpStream::connect(addr).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(l.accept().err().map(|e| e.kind()), Some(io::ErrorKind::WouldBlock), "accepted before any byte");
        use std::io::Write;
        silent.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match l.accept() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("not accepted after its first bytes: {e}"),
            }
        }
        prepare(&l, false).unwrap();
        assert_eq!(defer_secs(&l), 0);
        let _c = TcpStream::connect(addr).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(l.accept().is_ok(), "without defer_accept a silent connection is accepted at once");
    }
}
