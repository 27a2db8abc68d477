//! Listening sockets: one SO_REUSEPORT listener per worker per address, after making
//! sure no other process already serves the port (SO_REUSEPORT would silently share it),
//! and the options every accepted connection takes from its listener.
//! Startup and reload only; nothing here runs per connection.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Fails with a clear message when another socket already listens on `addr`.
fn ensure_free(addr: SocketAddr) -> io::Result<()> {
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

/// `n` SO_REUSEPORT listeners on `addr`, one per worker, and no other process's. The probe
/// before binding catches a port already served; the check after binding catches another
/// process that probed and bound at the same moment (then both may fail, never both serve).
pub fn bind_all(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    ensure_free(addr)?;
    let ls = (0..n).map(|_| bind(addr)).collect::<io::Result<Vec<_>>>()?;
    let ours: Vec<u64> = ls.iter().filter_map(inode).collect();
    if foreign_listeners(addr, &ours).is_some_and(|n| n > 0) {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{addr} is already in use by another process (bound at the same time); refusing to share it"),
        ));
    }
    Ok(ls)
}

fn inode(l: &std::net::TcpListener) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid fd and a stat buffer the call fills.
    (unsafe { libc::fstat(l.as_raw_fd(), st.as_mut_ptr()) } == 0).then(|| unsafe { st.assume_init() }.st_ino)
}

/// Listening sockets on `addr`'s port that overlap it (same address, or either is the
/// wildcard) and are not in `ours`, from /proc/net/tcp{,6}. None when the table is unreadable.
fn foreign_listeners(addr: SocketAddr, ours: &[u64]) -> Option<usize> {
    let table = if addr.is_ipv4() { "/proc/net/tcp" } else { "/proc/net/tcp6" };
    let text = std::fs::read_to_string(table).ok()?;
    Some(
        text.lines()
            .skip(1)
            .filter_map(parse_listener)
            .filter(|(a, ino)| overlaps(*a, addr) && !ours.contains(ino))
            .count(),
    )
}

/// (local address, inode) of a LISTEN row of /proc/net/tcp or tcp6.
fn parse_listener(line: &str) -> Option<(SocketAddr, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 || f[3] != "0A" {
        return None;
    }
    let (ip, port) = f[1].split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // The kernel prints the address as native-endian 32-bit words of its network-order bytes.
    let mut bytes = Vec::with_capacity(16);
    for w in 0..ip.len() / 8 {
        bytes.extend_from_slice(&u32::from_str_radix(ip.get(w * 8..w * 8 + 8)?, 16).ok()?.to_ne_bytes());
    }
    let ip: std::net::IpAddr = match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok()?.into(),
        16 => <[u8; 16]>::try_from(bytes).ok()?.into(),
        _ => return None,
    };
    Some((SocketAddr::new(ip, port), f[9].parse().ok()?))
}

fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
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
    fn a_listener_bound_by_another_process_at_the_same_moment_is_refused() {
        // Stands in for the other process: a SO_REUSEPORT listener that ensure_free's probe
        // cannot see, because it is bound after the probe.
        let other = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = other.local_addr().unwrap();
        let ls = (0..2).map(|_| bind(addr)).collect::<io::Result<Vec<_>>>().unwrap();
        let ours: Vec<u64> = ls.iter().filter_map(inode).collect();
        assert_eq!(ours.len(), 2);
        assert_eq!(foreign_listeners(addr, &ours), Some(1), "the other listener is seen");
        assert_eq!(foreign_listeners(addr, &[ours[0], ours[1], inode(&other).unwrap()]), Some(0));
        let err = bind_all(addr, 2).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        drop((other, ls));
        let free = bind_all(addr, 2).expect("the port is free again");
        assert_eq!(free.len(), 2);
    }

    #[test]
    fn listen_rows_of_proc_net_tcp_parse() {
        let v4 = "   0: 0100007F:9925 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_listener(v4), Some(("127.0.0.1:39205".parse().unwrap(), 123456)));
        let v6 = "   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_listener(v6), Some(("[::1]:8080".parse().unwrap(), 77)));
        let established = v4.replace(" 0A ", " 01 ");
        assert_eq!(parse_listener(&established), None);
        assert!(overlaps("0.0.0.0:80".parse().unwrap(), "127.0.0.1:80".parse().unwrap()));
        assert!(!overlaps("127.0.0.2:80".parse().unwrap(), "127.0.0.1:80".parse().unwrap()));
        assert!(!overlaps("127.0.0.1:81".parse().unwrap(), "127.0.0.1:80".parse().unwrap()));
    }

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
