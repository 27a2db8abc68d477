//! Upstream side: connection pools and connecting.

pub mod pool;

pub use pool::{Pool, UpConn};

use std::net::SocketAddr;
use std::time::Duration;

/// Opens a new upstream connection within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<UpConn> {
    // monoio 0.2.4 can leak the fd if a connect that already completed is dropped by the
    // timeout; that needs the timer and the completion to race, and only on this error path.
    let stream = match monoio::time::timeout(timeout, monoio::net::TcpStream::connect_addr(addr)).await {
        Ok(s) => s?,
        Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")),
    };
    let _ = stream.set_nodelay(true);
    Ok(UpConn::new(stream))
}
