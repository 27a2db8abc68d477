//! HTTP proxy integration: pass the whole request to the upstream and its response back.
//!
//! Phases, in order: build the upstream head -> send it with the request body (streamed,
//! re-framed, bounded buffers) -> read the response head (integration timeout) -> send
//! the client head -> stream the body -> return the connection to the worker's pool.
//! A Content-Length response of at most 64 KiB reaches the client in one write even when
//! the origin sent its head and body apart.
//! A reused pooled connection that fails before any response byte is retried once when
//! the request is idempotent or its body was not yet sent. With an upstream group, a target
//! that refuses the connection is reported to the worker's balancer and the next one tried.

use crate::config::plan::{Plan, Proxy, Target, Upstream};
use crate::http::body::{write_chunk_header, Chunk, Decoder, Step};
use crate::http::gateway_response::Kind;
use crate::http::request::{name_is, BodyKind, Field, Head};
use crate::http::response::{self, ResponseHead};
use crate::http::write::{put_u64, reason};
use crate::integration::cached::Capture;
use crate::observe::metrics::UpstreamError;
use crate::policy::cache::upstream_forbids;
use crate::route::Captures;
use crate::server::connection::{Conn, Flow};
use crate::server::timer::Timer;
use crate::server::worker::Worker;
use crate::upstream::{self, UpConn};
use monoio::buf::IoBufMut;
use std::io;
use std::time::{Duration, Instant};

/// Flush the outgoing buffer once it holds this much.
const FLUSH_AT: usize = 64 * 1024;
/// Upstream writes up to this size go out without a timer (see `send`).
const SMALL_WRITE: usize = 16 * 1024;

enum Fail {
    /// Nothing has been sent to the client: answer with this gateway response.
    Gateway(Kind),
    /// The client is gone or the response is half sent: close.
    Close,
}

/// The upstream a request goes to, and the group it was picked from.
struct Pick {
    target: u32,
    group: Option<u32>,
}

impl Pick {
    /// Reports a failed attempt to the balancer (groups only).
    fn failed(&self, w: &Worker, plan: &Plan) {
        if let Some(g) = self.group {
            w.balancer.failed(&plan.groups[g as usize], self.target, Instant::now());
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn forward(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    stage: usize,
    p: &Proxy,
    caps: &Captures,
    cap: Option<Capture<'_>>,
) -> Flow {
    match p.target {
        Target::One(t) => forward_to(c, w, plan, head, stage, p, caps, cap, &mut Pick { target: t, group: None }).await,
        Target::Group(g) => {
            let target = w.balancer.pick(&plan.groups[g as usize], g as usize, c.now, None);
            let mut pick = Pick { target, group: Some(g) };
            w.balancer.started(target);
            let flow = forward_to(c, w, plan, head, stage, p, caps, cap, &mut pick).await;
            w.balancer.finished(pick.target);
            flow
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn forward_to(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    stage: usize,
    p: &Proxy,
    caps: &Captures,
    cap: Option<Capture<'_>>,
    pick: &mut Pick,
) -> Flow {
    let deadline = c.now + p.timeout;
    if let BodyKind::Length(n) = head.body {
        if n > plan.limits.max_body_bytes {
            return c.gateway_error(w, plan, head, Some(stage), Kind::RequestTooLarge, true).await;
        }
    }
    c.wbuf.clear();
    write_upstream_head(c, head, p, &plan.upstreams[pick.target as usize], caps);

    let mut up: Option<UpConn> = None;
    let mut pos = head.len;
    let streamed = match send_request(c, w, plan, head, pick, deadline, &mut up, &mut pos).await {
        Ok(s) => s,
        // Nothing of the response was sent: a request without a body leaves the client
        // connection in sync, so it stays open (as nginx keeps it after a 502). With a body,
        // `consumed` does not cover the bytes read so far: close.
        Err(Fail::Gateway(k)) => {
            return c.gateway_error(w, plan, head, Some(stage), k, head.body != BodyKind::None).await
        }
        Err(Fail::Close) => return Flow::Close,
    };
    c.consumed = pos;
    let Some(mut conn) = up else { return Flow::Close };

    // Read the response head; retry once on a stale pooled connection.
    let resp = match read_head(&mut conn, head, deadline, &mut c.resp_fields, &mut c.timer).await {
        Ok(r) => r,
        Err(ReadErr::Empty)
            if conn.reused
                && !streamed
                && (head.method.is_some_and(|m| m.is_idempotent()) || head.body == BodyKind::None) =>
        {
            drop(conn);
            let addr = &plan.upstreams[pick.target as usize].addr;
            let retried = async {
                let mut fresh = upstream::connect(addr, plan.upstream.connect_timeout.min(remaining(deadline)))
                    .await
                    .map_err(|_| ReadErr::Empty)?;
                let buf = std::mem::take(&mut c.wbuf);
                let (res, buf) = fresh.stream.write_all(buf).await;
                c.wbuf = buf;
                res.map_err(|_| ReadErr::Empty)?;
                let r = read_head(&mut fresh, head, deadline, &mut c.resp_fields, &mut c.timer).await?;
                Ok::<_, ReadErr>((fresh, r))
            };
            // Cold (a stale pooled connection): boxed with its timeout (a `Sleep` is 640
            // bytes aligned to 128), so the hot path's future stays small.
            match Box::pin(monoio::time::timeout(remaining(deadline), retried)).await {
                Ok(Ok((fresh, r))) => {
                    conn = fresh;
                    r
                }
                Ok(Err(ReadErr::Timeout)) | Err(_) => {
                    pick.failed(w, plan);
                    upstream_error(w, plan, pick.target, UpstreamError::Timeout);
                    return c.gateway_error(w, plan, head, Some(stage), Kind::IntegrationTimeout, true).await;
                }
                Ok(Err(_)) => {
                    pick.failed(w, plan);
                    upstream_error(w, plan, pick.target, UpstreamError::Reset);
                    return c.gateway_error(w, plan, head, Some(stage), Kind::IntegrationFailure, true).await;
                }
            }
        }
        Err(ReadErr::Timeout) => {
            pick.failed(w, plan);
            upstream_error(w, plan, pick.target, UpstreamError::Timeout);
            return c.gateway_error(w, plan, head, Some(stage), Kind::IntegrationTimeout, true).await;
        }
        Err(e) => {
            pick.failed(w, plan);
            let kind = if matches!(e, ReadErr::Empty) { UpstreamError::Reset } else { UpstreamError::Invalid };
            upstream_error(w, plan, pick.target, kind);
            return c.gateway_error(w, plan, head, Some(stage), Kind::IntegrationFailure, !c.body_done).await;
        }
    };
    if pick.group.is_some() {
        w.balancer.succeeded(pick.target);
    }
    if plan.metrics.enabled || w.access_log.is_some() {
        c.out.integration_ns = Some(crate::server::outcome::since(c.now));
        c.out.integration_status = Some(resp.status);
        c.out.upstream = Some(pick.target);
    }
    relay_response(c, w, plan, head, stage, p, pick.target as usize, conn, resp, cap).await
}

#[inline]
fn upstream_error(w: &Worker, plan: &Plan, target: u32, e: UpstreamError) {
    if plan.metrics.enabled {
        w.m().upstream_error(target as usize, e);
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Request line and headers for the upstream, written into `c.wbuf`.
fn write_upstream_head(c: &mut Conn, head: &Head, p: &Proxy, upstream: &Upstream, caps: &Captures) {
    let rbuf = &c.rbuf;
    let out = &mut c.wbuf;
    out.extend_from_slice(&rbuf[head.method_range.clone()]);
    out.push(b' ');
    crate::integration::uri::render(out, &p.path, rbuf, caps);
    if !p.query.is_empty() {
        out.push(b'?');
        crate::integration::uri::render(out, &p.query, rbuf, caps);
        if let Some(q) = &head.query {
            if !q.is_empty() {
                out.push(b'&');
                out.extend_from_slice(&rbuf[q.clone()]);
            }
        }
    } else if let Some(q) = &head.query {
        out.push(b'?');
        out.extend_from_slice(&rbuf[q.clone()]);
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(&upstream.host_header);
    out.extend_from_slice(b"\r\n");
    for (i, f) in c.fields.iter().enumerate() {
        let name = f.name(rbuf);
        if head.xff.contains(&(i as u16)) || skip_request_header(name) || named_in(name, &head.conn_tokens, rbuf) {
            continue;
        }
        out.extend_from_slice(f.line(rbuf));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for &i in &head.xff {
        let v = c.fields[i as usize].value(rbuf);
        if !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(c.peer_ip.as_bytes());
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ");
    put_u64(out, c.local_port as u64);
    out.extend_from_slice(b"\r\n");
    match head.body {
        BodyKind::None => {}
        BodyKind::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            put_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Hop-by-hop and gateway-managed request headers (RFC 9110 section 7.6.1).
#[inline]
fn skip_request_header(n: &[u8]) -> bool {
    let eq = |s: &[u8]| name_is(n, s);
    match n.len() {
        2 => eq(b"te"),
        4 => eq(b"host"),
        6 => eq(b"expect"),
        7 => eq(b"trailer") || eq(b"upgrade"),
        10 => eq(b"connection") || eq(b"keep-alive"),
        14 => eq(b"content-length"),
        16 => eq(b"x-forwarded-port") || is_proxy_header(n),
        17 => eq(b"transfer-encoding") || eq(b"x-forwarded-proto") || is_proxy_header(n),
        _ => is_proxy_header(n),
    }
}

#[inline]
fn is_proxy_header(n: &[u8]) -> bool {
    n.len() > 6 && name_is(&n[..6], b"proxy-")
}

#[inline]
fn named_in(name: &[u8], tokens: &[(u32, u32)], buf: &[u8]) -> bool {
    tokens.iter().any(|&(a, b)| buf[a as usize..b as usize].eq_ignore_ascii_case(name))
}

/// Sends head and body; returns whether bytes went out before the final write (then the
/// request cannot be replayed). `pos` ends after the request body in `c.rbuf`.
#[allow(clippy::too_many_arguments)]
async fn send_request(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    pick: &mut Pick,
    deadline: Instant,
    up: &mut Option<UpConn>,
    pos: &mut usize,
) -> Result<bool, Fail> {
    let chunked = head.body == BodyKind::Chunked;
    let mut dec = match head.body {
        BodyKind::None => {
            c.body_done = true;
            None
        }
        BodyKind::Length(n) => Some(Decoder::Length(n)),
        BodyKind::Chunked => Some(Decoder::Chunked(Chunk::Size)),
    };
    let mut streamed = false;
    let mut total = 0u64;
    let mut sent_continue = false;
    if let Some(d) = dec.as_mut() {
        loop {
            let (used, step) = d.step(&c.rbuf[*pos..]).map_err(|_| Fail::Gateway(Kind::BadRequestBody))?;
            let base = *pos;
            *pos += used;
            match step {
                Step::Data(r) => {
                    total += r.len() as u64;
                    if total > plan.limits.max_body_bytes {
                        *up = None;
                        return Err(Fail::Gateway(Kind::RequestTooLarge));
                    }
                    if chunked {
                        write_chunk_header(&mut c.wbuf, r.len());
                    }
                    c.wbuf.extend_from_slice(&c.rbuf[base + r.start..base + r.end]);
                    if chunked {
                        c.wbuf.extend_from_slice(b"\r\n");
                    }
                    if c.wbuf.len() >= FLUSH_AT {
                        send(c, w, plan, pick, deadline, up, streamed, false).await?;
                        streamed = true;
                    }
                }
                Step::NeedMore => {
                    if !c.wbuf.is_empty() {
                        send(c, w, plan, pick, deadline, up, streamed, false).await?;
                        streamed = true;
                    }
                    if head.expect_continue && !sent_continue {
                        sent_continue = true;
                        c.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        c.flush(plan.limits.idle_timeout).await.map_err(|_| Fail::Close)?;
                    }
                    match c.fill_body(pos, plan.limits.idle_timeout).await {
                        Ok(n) if n > 0 => {}
                        _ => return Err(Fail::Close),
                    }
                }
                Step::Done => {
                    if chunked {
                        c.wbuf.extend_from_slice(b"0\r\n\r\n");
                    }
                    c.body_done = true;
                    break;
                }
            }
        }
    }
    // The final write keeps its bytes in `c.wbuf`: a stale-connection retry resends them.
    send(c, w, plan, pick, deadline, up, streamed, true).await?;
    Ok(streamed)
}

/// Writes `c.wbuf` to the upstream, connecting first if needed. A reused connection that
/// fails on the first write is replaced once (nothing of the request has gone out yet).
/// `keep`: leave the written bytes in `c.wbuf` (for a replay) instead of clearing it.
#[allow(clippy::too_many_arguments)]
async fn send(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    pick: &mut Pick,
    deadline: Instant,
    up: &mut Option<UpConn>,
    streamed: bool,
    keep: bool,
) -> Result<(), Fail> {
    let mut fresh_tried = false;
    // Targets of the group tried so far (a refused connect moves on to the next one).
    let mut tried = 1;
    loop {
        if up.is_none() {
            *up = match w.pool.take(pick.target as usize, c.now) {
                Some(conn) => {
                    if plan.metrics.enabled {
                        w.m().upstream_connection(pick.target as usize, true);
                    }
                    Some(conn)
                }
                None => {
                    fresh_tried = true;
                    let t = plan.upstream.connect_timeout.min(remaining(deadline));
                    match upstream::connect(&plan.upstreams[pick.target as usize].addr, t).await {
                        Ok(conn) => {
                            if plan.metrics.enabled {
                                w.m().upstream_connection(pick.target as usize, false);
                            }
                            Some(conn)
                        }
                        Err(e) => {
                            pick.failed(w, plan);
                            upstream_error(w, plan, pick.target, UpstreamError::Connect);
                            if e.kind() == io::ErrorKind::TimedOut && remaining(deadline).is_zero() {
                                return Err(Fail::Gateway(Kind::IntegrationTimeout));
                            }
                            match pick.group {
                                Some(g) if !streamed && tried < plan.groups[g as usize].targets.len() => {
                                    tried += 1;
                                    let next =
                                        w.balancer.pick(&plan.groups[g as usize], g as usize, c.now, Some(pick.target));
                                    w.balancer.finished(pick.target);
                                    w.balancer.started(next);
                                    pick.target = next;
                                    fresh_tried = false;
                                    continue;
                                }
                                _ => return Err(Fail::Gateway(Kind::IntegrationFailure)),
                            }
                        }
                    }
                }
            };
        }
        let conn = up.as_mut().expect("connected above");
        let buf = std::mem::take(&mut c.wbuf);
        // A small request on a connection whose previous response was read completely
        // cannot block (the socket buffer is empty): skip the timer. Larger writes are
        // bounded by the integration deadline.
        let res = if buf.len() <= SMALL_WRITE {
            Ok(conn.stream.write_all(buf).await)
        } else {
            c.timer.within(deadline, conn.stream.write_all(buf)).await
        };
        match res {
            Ok((Ok(_), mut buf)) => {
                if !keep {
                    buf.clear();
                }
                c.wbuf = buf;
                return Ok(());
            }
            Ok((Err(_), buf)) => {
                c.wbuf = buf;
                let reused = conn.reused;
                *up = None;
                if reused && !streamed && !fresh_tried {
                    // Stale pooled connection: go around once with a new one.
                    fresh_tried = true;
                    let t = plan.upstream.connect_timeout.min(remaining(deadline));
                    *up =
                        Some(upstream::connect(&plan.upstreams[pick.target as usize].addr, t).await.map_err(|_| {
                            pick.failed(w, plan);
                            Fail::Gateway(Kind::IntegrationFailure)
                        })?);
                    continue;
                }
                return Err(Fail::Gateway(Kind::IntegrationFailure));
            }
            Err(_) => return Err(Fail::Gateway(Kind::IntegrationTimeout)),
        }
    }
}

enum ReadErr {
    /// The connection closed or failed before any response byte.
    Empty,
    /// Failed after some bytes, or the head was invalid.
    Broken,
    Timeout,
}

async fn read_head(
    conn: &mut UpConn,
    head: &Head,
    deadline: Instant,
    fields: &mut Vec<Field>,
    timer: &mut Timer,
) -> Result<ResponseHead, ReadErr> {
    let head_req = head.method == Some(crate::http::method::Method::Head);
    let mut got_any = false;
    loop {
        if !conn.buf.is_empty() {
            match response::parse(&conn.buf, head_req, fields) {
                Ok(Some(r)) if (100..200).contains(&r.status) && r.status != 101 => {
                    // Interim response (e.g. 100 Continue): drop it and read on.
                    conn.buf.drain(..r.len);
                    continue;
                }
                Ok(Some(r)) if r.status == 101 || r.status < 100 => return Err(ReadErr::Broken),
                Ok(Some(r)) => return Ok(r),
                Ok(None) if conn.buf.len() >= conn.buf.capacity() => return Err(ReadErr::Broken),
                Ok(None) => {}
                Err(_) => return Err(ReadErr::Broken),
            }
        }
        let buf = std::mem::take(&mut conn.buf);
        let len = buf.len();
        match timer.within(deadline, conn.stream.read(buf.slice_mut(len..))).await {
            Err(_) => return Err(ReadErr::Timeout),
            Ok((res, slice)) => {
                conn.buf = slice.into_inner();
                match res {
                    Ok(0) | Err(_) if !got_any => return Err(ReadErr::Empty),
                    Ok(0) | Err(_) => return Err(ReadErr::Broken),
                    Ok(_) => got_any = true,
                }
            }
        }
    }
}

/// Sends the response head and streams the body to the client.
#[allow(clippy::too_many_arguments)]
async fn relay_response(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    stage: usize,
    p: &Proxy,
    upstream_idx: usize,
    mut conn: UpConn,
    resp: ResponseHead,
    cap: Option<Capture<'_>>,
) -> Flow {
    let head_req = head.method == Some(crate::http::method::Method::Head);
    let mut dec = resp.body.clone();
    let client_chunked = head.minor == 1 && matches!(dec, Some(Decoder::Chunked(_)) | Some(Decoder::Eof));
    let close = !head.keep_alive
        || w.shutting_down()
        || !c.body_done
        || (head.minor == 0 && matches!(dec, Some(Decoder::Chunked(_)) | Some(Decoder::Eof)));
    let stored_head = write_client_head(c, w, plan, &conn.buf, &resp, head_req, client_chunked, close, head.minor);
    let mut cap = cap.filter(|_| !head_req);
    if let Some(k) = cap.as_mut() {
        let announced = match &resp.body {
            Some(Decoder::Length(n)) => Some(*n),
            _ => None,
        };
        if k.admits(resp.status, || upstream_forbids(&conn.buf, &c.resp_fields), announced) {
            k.set_head(&c.wbuf[..stored_head]);
        } else {
            cap = None;
        }
    }

    let mut upos = resp.len;
    let mut clean = true;
    let mut streamed = false;
    // Whether any of the response went to the client yet (the head may be held, below).
    let mut sent = false;
    if let Some(d) = dec.as_mut() {
        loop {
            let (used, step) = match d.step(&conn.buf[upos..]) {
                Ok(x) => x,
                Err(_) => return Flow::Close,
            };
            let base = upos;
            upos += used;
            match step {
                Step::Data(r) => {
                    if client_chunked {
                        write_chunk_header(&mut c.wbuf, r.len());
                    }
                    let data = &conn.buf[base + r.start..base + r.end];
                    c.wbuf.extend_from_slice(data);
                    if client_chunked {
                        c.wbuf.extend_from_slice(b"\r\n");
                    }
                    if cap.as_mut().is_some_and(|k| !k.body(data)) {
                        cap = None;
                    }
                    if c.wbuf.len() >= FLUSH_AT {
                        sent = true;
                        if c.flush(plan.limits.idle_timeout).await.is_err() {
                            return Flow::Close;
                        }
                    }
                }
                Step::NeedMore => {
                    streamed = true;
                    // Origins often write the head and the body separately (nginx's
                    // sendfile does). When the rest of a Content-Length body fits in one
                    // flush, hold what we have for it: the client gets one write instead of
                    // two (like nginx's `postpone_output`). Chunked and close-delimited
                    // bodies, and long ones, go out as they come.
                    let hold =
                        matches!(*d, Decoder::Length(rem) if rem <= FLUSH_AT.saturating_sub(c.wbuf.len()) as u64);
                    if !hold && !c.wbuf.is_empty() {
                        sent = true;
                        if c.flush(plan.limits.idle_timeout).await.is_err() {
                            return Flow::Close;
                        }
                    }
                    // Keep only unconsumed bytes (a partial chunk line) and read more.
                    conn.buf.drain(..upos);
                    upos = 0;
                    let buf = std::mem::take(&mut conn.buf);
                    let len = buf.len();
                    let cut = match c.timer.within_for(p.timeout, conn.stream.read(buf.slice_mut(len..))).await {
                        Err(_) => (UpstreamError::Timeout, Kind::IntegrationTimeout),
                        Ok((res, slice)) => {
                            conn.buf = slice.into_inner();
                            match res {
                                Ok(0) if matches!(d, Decoder::Eof) => {
                                    clean = false;
                                    break;
                                }
                                Ok(0) | Err(_) => (UpstreamError::Reset, Kind::IntegrationFailure),
                                Ok(_) => continue,
                            }
                        }
                    };
                    // The upstream response broke off. Once part of it went out, closing is
                    // the only way to tell the client; with nothing sent yet, it gets the
                    // gateway error instead (502, or 504 for a body past the timeout).
                    if sent {
                        return Flow::Close;
                    }
                    upstream_error(w, plan, upstream_idx as u32, cut.0);
                    // Boxed: cold, and inline it would grow the hot path's future.
                    return Box::pin(c.gateway_error(w, plan, head, Some(stage), cut.1, close)).await;
                }
                Step::Done => break,
            }
        }
    }
    if client_chunked {
        c.wbuf.extend_from_slice(b"0\r\n\r\n");
    }
    // The whole body arrived: store it before the client's last write, so waiters on
    // other connections do not wait for this client.
    if let Some(k) = cap {
        k.finish();
    }
    // One clock read saved on the common path: a response that needed no extra upstream
    // reads is written by a deadline derived from the request's start.
    let written = if streamed {
        c.flush(plan.limits.idle_timeout).await
    } else {
        c.flush_by(c.now + p.timeout + plan.limits.idle_timeout).await
    };
    if written.is_err() {
        return Flow::Close;
    }
    if clean && resp.keep_alive && upos == conn.buf.len() {
        conn.buf.clear();
        w.pool.put(upstream_idx, conn, c.now);
    }
    if close || (head.minor == 0 && !client_chunked && matches!(resp.body, Some(Decoder::Eof))) {
        Flow::Close
    } else {
        Flow::KeepAlive
    }
}

/// Writes the client's response head into `c.wbuf`. Returns where the status line and
/// headers end (before framing and per-request headers): what a cache entry keeps.
#[allow(clippy::too_many_arguments)]
fn write_client_head(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    ubuf: &[u8],
    resp: &ResponseHead,
    head_req: bool,
    chunked: bool,
    close: bool,
    minor: u8,
) -> usize {
    let out = &mut c.wbuf;
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    put_u64(out, resp.status as u64);
    out.push(b' ');
    if resp.reason.1 > resp.reason.0 {
        out.extend_from_slice(&ubuf[resp.reason.0 as usize..resp.reason.1 as usize]);
    } else {
        out.extend_from_slice(reason(resp.status).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let mut upstream_len: Option<(u32, u32)> = None;
    for f in c.resp_fields.iter() {
        let name = f.name(ubuf);
        match classify_response_header(name) {
            RespHeader::Drop => continue,
            RespHeader::Length => {
                upstream_len = Some(f.value);
                continue;
            }
            RespHeader::Remap => out.extend_from_slice(b"x-amzn-Remapped-"),
            RespHeader::Pass => {
                // The gateway's CORS policy replaces the upstream's own CORS headers.
                let upstream_cors = c.cors != crate::config::plan::NO_CORS
                    && name.len() > 15
                    && name_is(&name[..15], b"access-control-");
                if upstream_cors || named_in(name, &resp.conn_tokens, ubuf) {
                    continue;
                }
            }
        }
        out.extend_from_slice(f.line(ubuf));
        out.extend_from_slice(b"\r\n");
    }
    let bodyless_status = (100..200).contains(&resp.status) || resp.status == 204 || resp.status == 304;
    if !resp.has_content_type && !bodyless_status {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    let stored_head = out.len();
    match &resp.body {
        Some(Decoder::Length(n)) => {
            out.extend_from_slice(b"Content-Length: ");
            put_u64(out, *n);
            out.extend_from_slice(b"\r\n");
        }
        Some(_) if chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Some(_) => {}
        None => {
            // HEAD: repeat the length the upstream announced.
            if let (true, Some((a, b))) = (head_req, upstream_len) {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(&ubuf[a as usize..b as usize]);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(&c.resp_extra);
    crate::server::connection::write_cors(plan, c.cors, &c.origin, out);
    w.common_headers(out, close, minor);
    stored_head
}

enum RespHeader {
    Pass,
    Drop,
    Remap,
    Length,
}

/// Response headers: hop-by-hop dropped, gateway-owned ones renamed `x-amzn-Remapped-*`.
#[inline]
fn classify_response_header(n: &[u8]) -> RespHeader {
    let eq = |s: &[u8]| name_is(n, s);
    let drop = match n.len() {
        2 => eq(b"te"),
        4 => {
            if eq(b"date") {
                return RespHeader::Remap;
            }
            false
        }
        6 => {
            if eq(b"server") {
                return RespHeader::Remap;
            }
            false
        }
        7 => eq(b"trailer") || eq(b"upgrade"),
        10 => eq(b"connection") || eq(b"keep-alive"),
        14 => {
            if eq(b"content-length") {
                return RespHeader::Length;
            }
            false
        }
        16 => {
            if eq(b"x-amzn-requestid") {
                return RespHeader::Remap;
            }
            is_proxy_header(n)
        }
        17 => eq(b"transfer-encoding") || is_proxy_header(n),
        _ => is_proxy_header(n),
    };
    if drop {
        RespHeader::Drop
    } else {
        RespHeader::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_filter() {
        for n in [
            "Connection",
            "keep-alive",
            "TE",
            "Trailer",
            "Upgrade",
            "Proxy-Authorization",
            "proxy-connection",
            "Host",
            "Content-Length",
            "Transfer-Encoding",
            "Expect",
            "X-Forwarded-Proto",
            "X-Forwarded-Port",
        ] {
            assert!(skip_request_header(n.as_bytes()), "{n}");
        }
        for n in ["Accept", "Content-Type", "Authorization", "X-Custom", "Date", "proxy"] {
            assert!(!skip_request_header(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn response_header_filter() {
        assert!(matches!(classify_response_header(b"Connection"), RespHeader::Drop));
        assert!(matches!(classify_response_header(b"Proxy-Authenticate"), RespHeader::Drop));
        assert!(matches!(classify_response_header(b"transfer-encoding"), RespHeader::Drop));
        assert!(matches!(classify_response_header(b"Date"), RespHeader::Remap));
        assert!(matches!(classify_response_header(b"Server"), RespHeader::Remap));
        assert!(matches!(classify_response_header(b"x-amzn-RequestId"), RespHeader::Remap));
        assert!(matches!(classify_response_header(b"Content-Length"), RespHeader::Length));
        assert!(matches!(classify_response_header(b"Content-Type"), RespHeader::Pass));
        assert!(matches!(classify_response_header(b"Set-Cookie"), RespHeader::Pass));
    }
}
