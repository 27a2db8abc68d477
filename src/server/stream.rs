//! A client connection's socket: plain TCP or TLS. One branch per read or write; the
//! connection code above it is the same for both. The TLS futures (about 600 bytes) are
//! boxed: unboxed they made every future of the request path that reads or writes that
//! much larger, plain connections included (futures are moved when created).

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
            ClientStream::Tls(s) => Box::pin(s.read(buf)).await,
        }
    }

    #[inline]
    pub async fn write_all<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            ClientStream::Plain(s) => s.write_all(buf).await,
            ClientStream::Tls(s) => Box::pin(s.write_all(buf)).await,
        }
    }
}
