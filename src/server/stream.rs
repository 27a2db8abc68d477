//! A client connection's socket: plain TCP or TLS. One branch per read or write; the
//! connection code above it is the same for both.

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::BufResult;

pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ServerTlsStream<TcpStream>>),
}

impl ClientStream {
    #[inline]
    pub async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Plain(s) => s.read(buf).await,
            ClientStream::Tls(s) => s.read(buf).await,
        }
    }

    #[inline]
    pub async fn write_all<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Plain(s) => s.write_all(buf).await,
            ClientStream::Tls(s) => s.write_all(buf).await,
        }
    }
}
