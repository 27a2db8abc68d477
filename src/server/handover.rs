//! Zero-downtime upgrade: the running process hands its listening sockets to a new one over
//! a Unix socket (`server.control_socket`) with SCM_RIGHTS, then drains and exits. The
//! sockets, and the connections queued on them, never close, so no connection is refused.
//! A listener is never closed to hand over (closing a SO_REUSEPORT listener drops its queue).
//! Sockets passed by systemd socket activation are taken the same way.
//! Touches only the control socket and copies (dups) of the listening sockets.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Mutex;

/// Copies of every listening socket of this process, kept for a handover.
static LISTENERS: Mutex<Vec<(SocketAddr, TcpListener)>> = Mutex::new(Vec::new());

/// A copy of the admin listener, handed over too (marked `admin=` in the address list).
static ADMIN: Mutex<Option<(SocketAddr, TcpListener)>> = Mutex::new(None);

pub fn register_admin(addr: SocketAddr, l: &TcpListener) {
    if let Ok(dup) = l.try_clone() {
        *ADMIN.lock().unwrap_or_else(|e| e.into_inner()) = Some((addr, dup));
    }
}

/// What a handover delivers: data listeners by address, and the admin listener.
pub struct Inherited {
    pub listeners: Vec<(SocketAddr, TcpListener)>,
    pub admin: Option<(SocketAddr, TcpListener)>,
    /// One socket per address for all workers (systemd socket activation), rather than one
    /// per worker (a handover).
    pub shared: bool,
}

/// Listening sockets passed by systemd socket activation (`LISTEN_PID`, `LISTEN_FDS`, fds
/// from 3): a restart under systemd then refuses no connection, since systemd holds them.
pub fn from_systemd() -> Inherited {
    let mut out = Inherited { listeners: Vec::new(), admin: None, shared: true };
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    let (Some(pid), Some(n)) = (var("LISTEN_PID"), var("LISTEN_FDS")) else { return out };
    if pid != std::process::id() {
        return out;
    }
    for fd in 3..3 + n.min(MAX_FDS as u32) as RawFd {
        // SAFETY: systemd passes these descriptors to this process for it to own.
        let l = unsafe { TcpListener::from_raw_fd(fd) };
        match l.local_addr() {
            Ok(addr) if l.set_nonblocking(true).is_ok() => out.listeners.push((addr, l)),
            _ => std::mem::forget(l), // not a TCP listener: leave it alone
        }
    }
    out
}

/// Keeps a copy of `l` (listening on `addr`) for a later handover.
pub fn register(addr: SocketAddr, l: &TcpListener) {
    if let Ok(dup) = l.try_clone() {
        LISTENERS.lock().unwrap_or_else(|e| e.into_inner()).push((addr, dup));
    }
}

/// Runs `f` on every listening socket of this process (a reload that changes their options).
pub fn each(f: impl Fn(&TcpListener)) {
    for (_, l) in LISTENERS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        f(l);
    }
}

/// Forgets (and closes) the copies for `addr`: it was removed from the config.
pub fn unregister(addr: SocketAddr) {
    LISTENERS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(a, _)| *a != addr);
}

/// Serves `path`: a new process that sends `TAKEOVER` gets every listening socket, then this
/// process shuts down as on SIGTERM.
pub fn serve_control(path: &Path) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::thread::Builder::new().name("ringway-control".into()).spawn(move || {
        for s in listener.incoming().flatten() {
            if handle(s).is_ok() {
                super::worker::log("listening sockets handed over to the new process; draining");
                // SAFETY: signalling our own process; the signal thread starts the drain.
                unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
                return;
            }
        }
    })?;
    Ok(())
}

fn handle(mut s: UnixStream) -> io::Result<()> {
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf)?;
    if &buf[..n] != b"TAKEOVER\n" {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "unknown control request"));
    }
    let all = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
    let admin = ADMIN.lock().unwrap_or_else(|e| e.into_inner());
    let mut text: Vec<String> = all.iter().map(|(a, _)| a.to_string()).collect();
    let mut fds: Vec<RawFd> = all.iter().map(|(_, l)| l.as_raw_fd()).collect();
    if let Some((a, l)) = admin.as_ref() {
        text.push(format!("admin={a}"));
        fds.push(l.as_raw_fd());
    }
    send_fds(&s, format!("OK {}\n", text.join(" ")).as_bytes(), &fds)?;
    // Wait for the new process to confirm it holds them (it closes its end).
    let mut ack = [0u8; 8];
    let _ = s.read(&mut ack);
    Ok(())
}

/// Asks the process serving `path` for its listening sockets.
pub fn take_over(path: &Path) -> io::Result<Inherited> {
    let mut s = UnixStream::connect(path).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot reach the running process at {}: {e}", path.display()))
    })?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.write_all(b"TAKEOVER\n")?;
    let (text, fds) = recv_fds(&s)?;
    let addrs: Vec<&str> = text.trim().strip_prefix("OK").unwrap_or("").split_whitespace().collect();
    if addrs.len() != fds.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("handover sent {} sockets for {text:?}", fds.len()),
        ));
    }
    let mut out = Inherited { listeners: Vec::new(), admin: None, shared: false };
    for (a, fd) in addrs.iter().zip(fds) {
        // SAFETY: the fd was just received and belongs to nothing else in this process.
        let l = unsafe { TcpListener::from_raw_fd(fd) };
        let (is_admin, a) = match a.strip_prefix("admin=") {
            Some(rest) => (true, rest),
            None => (false, *a),
        };
        let addr = a.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad address {a}")))?;
        if is_admin {
            out.admin = Some((addr, l));
        } else {
            l.set_nonblocking(true)?;
            out.listeners.push((addr, l));
        }
    }
    let _ = s.write_all(b"ACK\n");
    Ok(out)
}

const MAX_FDS: usize = 250;

fn send_fds(s: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::other("too many listening sockets to hand over"));
    }
    let bytes = std::mem::size_of_val(fds) as u32;
    // SAFETY: msghdr and the control buffer are built per cmsg(3); sizes come from CMSG_SPACE.
    unsafe {
        let mut cbuf = vec![0u8; libc::CMSG_SPACE(bytes) as usize];
        let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = cbuf.len() as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(c), bytes as usize);
        }
        if libc::sendmsg(s.as_raw_fd(), &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn recv_fds(s: &UnixStream) -> io::Result<(String, Vec<RawFd>)> {
    let mut data = vec![0u8; 64 * 1024];
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    let mut fds = Vec::new();
    // SAFETY: as in send_fds; the kernel fills at most the lengths given.
    let n = unsafe {
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.len() as _;
        let n = libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let count = len / std::mem::size_of::<RawFd>();
                let p = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..count {
                    fds.push(std::ptr::read_unaligned(p.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        n as usize
    };
    Ok((String::from_utf8_lossy(&data[..n]).into_owned(), fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_pass_over_a_unix_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        send_fds(&a, b"OK x\n", &[l.as_raw_fd()]).unwrap();
        let (text, fds) = recv_fds(&b).unwrap();
        assert_eq!(text, "OK x\n");
        assert_eq!(fds.len(), 1);
        let got = unsafe { TcpListener::from_raw_fd(fds[0]) };
        assert_eq!(got.local_addr().unwrap(), addr, "the same listening socket");
        drop(l);
        // Still listening through the received copy.
        let _c = std::net::TcpStream::connect(addr).unwrap();
        assert!(got.accept().is_ok());
    }
}
