//! systemd readiness notification (`Type=notify`): `READY=1` once every worker listens,
//! `STOPPING=1` when draining starts. A datagram to the socket named by `$NOTIFY_SOCKET`
//! (a path, or an abstract name when it starts with `@`); a no-op when the variable is
//! unset, so running outside systemd is unaffected. Failures are logged, never fatal.

use std::os::unix::net::UnixDatagram;

/// Tells systemd the service is up.
pub fn ready() {
    notify("READY=1");
}

/// Tells systemd the service is shutting down.
pub fn stopping() {
    notify("STOPPING=1");
}

fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send(&socket.to_string_lossy(), state) {
        eprintln!("ringway: sd_notify {state} to {}: {e}", socket.to_string_lossy());
    }
}

/// Sends `state` to the notify socket `socket` (`/run/...` or `@abstract`).
pub fn send(socket: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = socket.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else if socket.starts_with('/') {
        sock.send_to(state.as_bytes(), socket)?;
    } else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an absolute path or @name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_reaches_the_notify_socket() {
        let dir = std::env::temp_dir().join(format!("ringway-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        // The only test that touches NOTIFY_SOCKET: set, notify, unset.
        std::env::set_var("NOTIFY_SOCKET", &path);
        ready();
        stopping();
        std::env::remove_var("NOTIFY_SOCKET");
        assert_eq!(recv(&sock), "READY=1");
        assert_eq!(recv(&sock), "STOPPING=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abstract_socket_names_start_with_at() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("ringway-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), "READY=1").unwrap();
        assert_eq!(recv(&sock), "READY=1");
    }

    #[test]
    fn relative_socket_names_are_refused() {
        assert!(send("relative/path", "READY=1").is_err());
    }
}
