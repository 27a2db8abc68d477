//! One whole request/response exchange with an upstream, for integrations that need the
//! complete response before answering (functions, HTTP custom): send a buffered request,
//! read the head and the whole body (bounded). Uses the worker's pool; a pooled connection
//! that fails before any response byte is replaced once (the upstream never saw the request).

use super::{connect, Pool, UpConn};
use crate::config::plan::Upstream;
use crate::http::body::{Decoder, Step};
use crate::http::request::Field;
use crate::http::response;
use std::time::{Duration, Instant};

/// A complete upstream response.
pub struct Reply {
    pub status: u16,
    /// Header names and values as received (hop-by-hop ones included).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `req` (a complete HTTP/1.1 request) to upstream `idx` and reads the whole response.
/// Err: unreachable, reset, malformed, or a body over `max_body`. The caller bounds the time.
#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    pool: &Pool,
    up: &Upstream,
    idx: usize,
    connect_timeout: Duration,
    mut req: Vec<u8>,
    head_request: bool,
    max_body: usize,
    fields: &mut Vec<Field>,
    now: Instant,
) -> Result<Reply, ()> {
    let mut pooled = pool.take(idx, now);
    loop {
        let reused = pooled.is_some();
        let mut conn = match pooled.take() {
            Some(conn) => conn,
            None => connect(&up.addr, connect_timeout).await.map_err(|_| ())?,
        };
        let (res, buf) = conn.stream.write_all(req).await;
        req = buf;
        if res.is_err() {
            if reused {
                continue;
            }
            return Err(());
        }
        match read_reply(&mut conn, head_request, max_body, fields).await {
            Ok((reply, keep)) => {
                if keep {
                    pool.put(idx, conn, now);
                }
                return Ok(reply);
            }
            Err(None) if reused => continue,
            Err(_) => return Err(()),
        }
    }
}

/// Reads a whole response. Err(None): closed before any byte. The bool: the connection
/// may be reused.
async fn read_reply(
    conn: &mut UpConn,
    head_request: bool,
    max_body: usize,
    fields: &mut Vec<Field>,
) -> Result<(Reply, bool), Option<()>> {
    let mut got_any = false;
    let resp = loop {
        if !conn.buf.is_empty() {
            match response::parse(&conn.buf, head_request, fields) {
                Ok(Some(r)) if r.status < 200 => {
                    conn.buf.drain(..r.len);
                    continue;
                }
                Ok(Some(r)) => break r,
                Ok(None) if conn.buf.len() >= conn.buf.capacity() => return Err(Some(())),
                Ok(None) => {}
                Err(_) => return Err(Some(())),
            }
        }
        if !read_more(conn).await? {
            return Err(if got_any { Some(()) } else { None });
        }
        got_any = true;
    };
    let headers = fields
        .iter()
        .map(|f| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (text(f.name(&conn.buf)), text(f.value(&conn.buf)))
        })
        .collect();
    let mut body = Vec::new();
    let mut pos = resp.len;
    let mut clean = true;
    if let Some(mut d) = resp.body.clone() {
        loop {
            let (used, step) = d.step(&conn.buf[pos..]).map_err(|_| Some(()))?;
            let base = pos;
            pos += used;
            match step {
                Step::Data(r) => {
                    if body.len() + r.len() > max_body {
                        return Err(Some(()));
                    }
                    body.extend_from_slice(&conn.buf[base + r.start..base + r.end]);
                }
                Step::NeedMore => {
                    conn.buf.drain(..pos);
                    pos = 0;
                    if !read_more(conn).await? {
                        if matches!(d, Decoder::Eof) {
                            clean = false;
                            break;
                        }
                        return Err(Some(()));
                    }
                }
                Step::Done => break,
            }
        }
    }
    let keep = clean && resp.keep_alive && pos == conn.buf.len();
    conn.buf.clear();
    Ok((Reply { status: resp.status, headers, body }, keep))
}

/// Reads into the connection's buffer; false when the peer closed.
async fn read_more(conn: &mut UpConn) -> Result<bool, Option<()>> {
    if conn.buf.len() == conn.buf.capacity() {
        conn.buf.reserve(conn.buf.capacity().max(4096));
    }
    let buf = std::mem::take(&mut conn.buf);
    let len = buf.len();
    let (res, slice) = conn.stream.read(monoio::buf::IoBufMut::slice_mut(buf, len..)).await;
    conn.buf = slice.into_inner();
    match res {
        Ok(0) | Err(_) => Ok(false),
        Ok(_) => Ok(true),
    }
}
