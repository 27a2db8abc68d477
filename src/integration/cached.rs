//! Cached proxy: answer from the response cache, wait for a fill already in flight, or
//! fetch through the proxy and store what comes back.
//!
//! Phases: key -> invalidation check -> lookup -> hit (write the stored response) | wait
//! (poll the fill every millisecond, bounded by `lock_timeout_ms`) | lead (proxy with a
//! `Capture` that records the client-bound head and body, then publishes).

use crate::clock::unix_now;
use crate::config::plan::{Plan, Proxy};
use crate::http::gateway_response::Kind;
use crate::http::request::Head;
use crate::http::write::put_u64;
use crate::integration::proxy;
use crate::observe::metrics::CacheResult;
use crate::policy::cache::{wants_refresh, CachePolicy, Invalidation, Unauthorized, IGNORED_HEADER};
use crate::policy::cache_store::{Entry, FillState, Lead, Lookup};
use crate::route::Captures;
use crate::server::connection::{write_cors, Conn, Flow};
use crate::server::worker::Worker;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bodies up to this size are copied behind the head and sent in one write.
const INLINE_BODY: usize = 64 * 1024;
/// How often a waiting miss checks the fill it waits for. nginx's cache lock polls
/// every 500 ms; one millisecond keeps a waiter's added latency below that of the fetch.
const WAIT_POLL: Duration = Duration::from_millis(1);

#[allow(clippy::too_many_arguments)]
pub async fn respond(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    stage: usize,
    policy: &CachePolicy,
    p: &Proxy,
    caps: &Captures,
) -> Flow {
    let cached_method = head.method.is_some_and(|m| policy.caches(m));
    if !cached_method {
        c.out.cache = Some(CacheResult::Bypass);
        return proxy::forward(c, w, plan, head, stage, p, caps, None).await;
    }
    let mut refresh = false;
    if wants_refresh(&c.rbuf, &c.fields) {
        let allowed = match policy.invalidation {
            Invalidation::Anyone => true,
            Invalidation::ApiKey => plan.api_keys.authorize(c.header(b"x-api-key"), stage).is_some(),
            Invalidation::Deny => false,
        };
        if allowed {
            refresh = true;
        } else {
            match policy.unauthorized {
                Unauthorized::FailWith403 => {
                    return c.gateway_error(w, plan, head, Some(stage), Kind::AccessDenied, false).await
                }
                Unauthorized::SucceedWithResponseHeader => c.resp_extra.extend_from_slice(IGNORED_HEADER),
                Unauthorized::SucceedWithoutResponseHeader => {}
            }
        }
    }
    let mut key = std::mem::take(&mut c.cache_key);
    policy.write_key(&mut key, &c.rbuf, head, &c.fields, caps);
    let now = unix_now() as u64;
    let found = w.cache.lookup(&key, now, refresh);
    c.cache_key = key;
    match found {
        Lookup::Hit(e) => {
            c.out.cache = Some(CacheResult::Hit);
            serve(c, w, plan, head, policy, &e, now).await
        }
        Lookup::Lead(lead) => {
            c.out.cache = Some(if refresh { CacheResult::Stale } else { CacheResult::Miss });
            miss_header(c, policy);
            let cap = Capture::new(lead, policy, now);
            proxy::forward(c, w, plan, head, stage, p, caps, Some(cap)).await
        }
        Lookup::Wait(fill) => {
            let deadline = c.now + policy.lock_timeout;
            loop {
                match fill.state() {
                    FillState::Done(e) => {
                        c.out.cache = Some(CacheResult::Hit);
                        return serve(c, w, plan, head, policy, &e, unix_now() as u64).await;
                    }
                    FillState::Abandoned => break,
                    FillState::Pending if Instant::now() >= deadline => break,
                    // Boxed: a `Sleep` is 640 bytes aligned to 128; inline it would grow every request's future.
                    FillState::Pending => Box::pin(monoio::time::sleep(WAIT_POLL)).await,
                }
            }
            c.out.cache = Some(CacheResult::Miss);
            miss_header(c, policy);
            proxy::forward(c, w, plan, head, stage, p, caps, None).await
        }
    }
}

fn miss_header(c: &mut Conn, policy: &CachePolicy) {
    if policy.x_cache {
        c.resp_extra.extend_from_slice(b"X-Cache: Miss\r\n");
    }
}

/// Writes a stored response: its head, then length, `Age`, per-request headers, body.
async fn serve(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    policy: &CachePolicy,
    e: &Arc<Entry>,
    now: u64,
) -> Flow {
    let close = !head.keep_alive || w.shutting_down() || !c.discard_body(head, plan).await;
    let out = &mut c.wbuf;
    out.clear();
    out.extend_from_slice(&e.head);
    let bodyless = (100..200).contains(&e.status) || e.status == 204 || e.status == 304;
    if !bodyless {
        out.extend_from_slice(b"Content-Length: ");
        put_u64(out, e.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Age: ");
    put_u64(out, now.saturating_sub(e.stored_at));
    out.extend_from_slice(b"\r\n");
    if policy.x_cache {
        out.extend_from_slice(b"X-Cache: Hit\r\n");
    }
    out.extend_from_slice(&c.resp_extra);
    write_cors(plan, c.cors, &c.origin, out);
    w.common_headers(out, close, head.minor);
    let send_body = head.method != Some(crate::http::method::Method::Head) && !bodyless;
    let deadline = c.now + plan.limits.idle_timeout;
    if send_body && e.body.len() <= INLINE_BODY {
        c.wbuf.extend_from_slice(&e.body);
    }
    if c.flush_by(deadline).await.is_err() {
        return Flow::Close;
    }
    if send_body && e.body.len() > INLINE_BODY {
        let body = Body(e.clone());
        c.out.bytes_out += e.body.len() as u64;
        match c.timer.within(deadline, c.stream.write_all(body)).await {
            Ok((Ok(_), _)) => {}
            _ => return Flow::Close,
        }
    }
    if close {
        Flow::Close
    } else {
        Flow::KeepAlive
    }
}

/// A stored body handed to the kernel without a copy.
struct Body(Arc<Entry>);

// SAFETY: the bytes live in the entry's heap allocation, which the Arc keeps alive and
// nothing mutates; the pointer stays the same however `Body` moves.
unsafe impl monoio::buf::IoBuf for Body {
    fn read_ptr(&self) -> *const u8 {
        self.0.body.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.0.body.len()
    }
}

/// Records the response the proxy sends to the client, for the store. Dropped without
/// `finish` (upstream failure, client gone, response not cacheable), it abandons the fill.
pub struct Capture<'s> {
    lead: Lead<'s>,
    policy: &'s CachePolicy,
    started: u64,
    status: u16,
    head: Vec<u8>,
    body: Vec<u8>,
}

impl<'s> Capture<'s> {
    pub fn new(lead: Lead<'s>, policy: &'s CachePolicy, now: u64) -> Capture<'s> {
        Capture { lead, policy, started: now, status: 0, head: Vec::new(), body: Vec::new() }
    }

    /// Whether this response may be stored: status, upstream Cache-Control and cookies
    /// (unless the route ignores them), announced length. `client_head`: status line and
    /// headers as sent, without framing and per-request headers.
    pub fn admits(&mut self, status: u16, forbidden: impl FnOnce() -> bool, announced: Option<u64>) -> bool {
        self.status = status;
        self.policy.status_ok(status)
            && announced.is_none_or(|n| n <= self.policy.max_entry_bytes as u64)
            && !(self.policy.honor_upstream && forbidden())
    }

    pub fn set_head(&mut self, client_head: &[u8]) {
        self.head.extend_from_slice(client_head);
    }

    /// Appends body bytes; false once the body outgrows the entry limit (stop capturing).
    pub fn body(&mut self, data: &[u8]) -> bool {
        if self.body.len() + data.len() > self.policy.max_entry_bytes {
            return false;
        }
        self.body.extend_from_slice(data);
        true
    }

    /// The whole response was received: store it and wake the waiters.
    pub fn finish(self) {
        let key: Box<[u8]> = self.lead.key().into();
        let e = Entry::new(key, self.status, self.head.into(), self.body.into(), self.started, self.policy.ttl_s);
        self.lead.publish(e);
    }
}
