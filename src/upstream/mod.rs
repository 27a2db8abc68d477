//! Upstream side: addresses (TCP or Unix socket), connecting, per-worker pools and the
//! choice of a target within an upstream group.

pub mod balance;
pub mod exchange;
pub mod pool;
pub mod tls;

pub use pool::{Pool, UpConn};

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpStream, UnixStream};
use monoio::BufResult;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tls::UpstreamTls;

/// Where an upstream listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    /// A private backend on a Unix domain socket.
    Unix(PathBuf),
    /// TCP with TLS (`https://`).
    Tls(SocketAddr, Arc<UpstreamTls>),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(a) => write!(f, "{a}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Tls(a, _) => write!(f, "https:{a}"),
        }
    }
}

/// An upstream connection's socket.
/// TLS reads and writes are boxed as in `server::stream` (their futures are large).
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

impl Stream {
    #[inline]
    pub async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Tcp(s) => s.read(buf).await,
            Stream::Unix(s) => s.read(buf).await,
            Stream::Tls(s) => Box::pin(s.read(buf)).await,
        }
    }

    #[inline]
    pub async fn write_all<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Tcp(s) => s.write_all(buf).await,
            Stream::Unix(s) => s.write_all(buf).await,
            Stream::Tls(s) => Box::pin(s.write_all(buf)).await,
        }
    }
}

/// Opens a new upstream connection within `timeout`. Boxed: the connect and TLS handshake
/// futures are kilobytes, and every request future that may connect would carry them
/// (one allocation per new connection instead).
pub fn connect(addr: &Addr, timeout: Duration) -> Pin<Box<dyn Future<Output = std::io::Result<UpConn>> + '_>> {
    Box::pin(open(addr, timeout))
}

async fn open(addr: &Addr, timeout: Duration) -> std::io::Result<UpConn> {
    // monoio 0.2.4 can leak the fd if a connect that already completed is dropped by the
    // timeout; that needs the timer and the completion to race, and only on this error path.
    let stream = match addr {
        Addr::Tcp(a) => match monoio::time::timeout(timeout, TcpStream::connect_addr(*a)).await {
            Ok(s) => {
                let s = s?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
            Err(_) => return Err(timed_out()),
        },
        Addr::Unix(p) => match monoio::time::timeout(timeout, UnixStream::connect(p)).await {
            Ok(s) => Stream::Unix(s?),
            Err(_) => return Err(timed_out()),
        },
        // The connect timeout bounds the TCP connect and the handshake together.
        Addr::Tls(a, tls) => {
            let handshake = async {
                let s = TcpStream::connect_addr(*a).await?;
                let _ = s.set_nodelay(true);
                tls.connector.connect(tls.server_name.clone(), s).await.map_err(std::io::Error::from)
            };
            match monoio::time::timeout(timeout, handshake).await {
                Ok(s) => Stream::Tls(Box::new(s?)),
                Err(_) => return Err(timed_out()),
            }
        }
    };
    Ok(UpConn::new(stream))
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
}
