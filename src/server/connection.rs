//! One client connection: read a head, route it, run the integration, repeat.
//!
//! Phases per request: read head (idle timeout before the first byte, header timeout
//! after) -> parse and validate -> resolve stage and route -> integration -> write the
//! response -> keep the bytes read past this request (pipelining) and loop.
//! Buffers are per connection and reused for every request on it.

use crate::clock::unix_now;
use crate::config::plan::{Integration, Plan, NO_CORS};
use crate::http::gateway_response::Kind;
use crate::http::method::Method;
use crate::http::request::{self, BodyKind, Field, Head};
use crate::integration::{cached, custom, function, mock, proxy};
use crate::observe::metrics::ThrottleScope;
use crate::policy::throttle::{nanos_since_epoch, Verdict};
use crate::route::Captures;
use crate::server::outcome::Outcome;
use crate::server::stream::ClientStream;
use crate::server::timer::Timer;
use crate::server::worker::{Current, Worker};
use monoio::buf::IoBufMut;
use monoio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Starting size of a connection's read buffer; it grows up to the head limit.
const INITIAL_READ_BUF: usize = 4096;
/// While draining, how long a fresh connection may take to send its first request.
pub const DRAIN_FIRST_REQUEST: Duration = Duration::from_secs(2);
/// While draining, how long idle keep-alive connections stay open: a client that sends its
/// next request meanwhile gets it answered with `Connection: close` instead of racing a
/// close (the HTTP/1.1 keep-alive race), so busy clients leave without an error.
pub const DRAIN_IDLE: Duration = Duration::from_millis(1000);
/// Largest read buffer while streaming a request body.
const BODY_READ_BUF: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    KeepAlive,
    Close,
}

pub struct Conn {
    pub stream: ClientStream,
    /// Bounds each read and write of the request path (client and upstream).
    pub timer: Timer,
    /// Bytes read from the client; the current request starts at 0.
    pub rbuf: Vec<u8>,
    pub wbuf: Vec<u8>,
    pub fields: Vec<Field>,
    pub resp_fields: Vec<Field>,
    pub peer_ip: String,
    pub local_port: u16,
    /// Bytes of `rbuf` that belong to the current request (head and body read so far).
    pub consumed: usize,
    /// The current request's body has been read completely.
    pub body_done: bool,
    /// Length of the current request's head at the start of `rbuf`. `fill` compacts only
    /// what follows it, so the head's ranges stay valid for the whole request.
    head_len: usize,
    /// When the current request's head was complete: the base for its deadlines.
    pub now: Instant,
    /// When the last request was recorded (metrics or access log): the start of the idle
    /// wait for the next one, so that wait needs no clock read of its own. Taken once.
    pub ended: Option<Instant>,
    /// Seconds for a `Retry-After` header on the next gateway response (0: none).
    pub retry_after: u64,
    /// CORS policy that applies to the current response (NO_CORS: none) and the origin
    /// it answers (copied: the request's bytes may move while the body streams).
    pub cors: u32,
    pub origin: Vec<u8>,
    /// Headers the gateway adds to the current response (cache status, warnings).
    pub resp_extra: Vec<u8>,
    /// The current request's cache key (reused buffer).
    pub cache_key: Vec<u8>,
    /// Message for the next gateway response instead of its type's (e.g. which parameters
    /// are missing); empty: the type's own.
    pub error_message: String,
    /// `$context.error.validationErrorString` for the next gateway response.
    pub validation_error: String,
    /// What happened to the current request (metrics, access log).
    pub out: Outcome,
    /// What the route's authorizer established (claims, principal, context).
    pub auth: crate::policy::authorizer::AuthState,
    /// Note the head length and request id of responses (for the access log).
    detail: bool,
    /// Requests answered on this connection.
    served: u64,
    /// Bytes read from the client so far, and at the start of the current request.
    read_total: u64,
    read_mark: u64,
    busy: bool,
    /// Accepted, no byte received yet.
    fresh: bool,
}

/// How `Conn::run` ended.
enum Ended {
    Done,
    /// The worker moved to a reloaded plan: go on with the same connection on it.
    Switch,
}

/// Completes the TLS handshake (bounded by the header timeout), then serves the connection.
pub async fn serve_tls(
    current: Current,
    stream: TcpStream,
    peer: SocketAddr,
    local_port: u16,
    acceptor: monoio_rustls::TlsAcceptor,
) {
    let timeout = current.borrow().plan.limits.header_timeout;
    match monoio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            current.borrow().m().tls_handshake();
            serve(current, ClientStream::Tls(Box::new(tls)), peer, local_port).await
        }
        // A failed or slow handshake: nothing to answer over HTTP.
        _ => {
            let w = current.borrow().clone();
            w.m().tls_handshake_failed();
            w.set_fresh(false);
        }
    }
}

pub async fn serve(current: Current, stream: ClientStream, peer: SocketAddr, local_port: u16) {
    let mut w = current.borrow().clone();
    // The open-connections gauge belongs to the generation the connection opened on.
    let (metrics, id) = (w.metrics.clone(), w.id);
    metrics.worker(id).connection_opened();
    w.set_open(true);
    let mut c = Conn {
        stream,
        timer: Timer::new(),
        rbuf: Vec::with_capacity(INITIAL_READ_BUF),
        wbuf: Vec::with_capacity(INITIAL_READ_BUF),
        fields: Vec::with_capacity(32),
        resp_fields: Vec::with_capacity(32),
        peer_ip: crate::http::write::ip_text(peer.ip().to_canonical()),
        local_port,
        consumed: 0,
        body_done: true,
        head_len: 0,
        now: Instant::now(),
        ended: None,
        retry_after: 0,
        cors: NO_CORS,
        origin: Vec::new(),
        resp_extra: Vec::new(),
        cache_key: Vec::new(),
        error_message: String::new(),
        validation_error: String::new(),
        out: Outcome::default(),
        auth: Default::default(),
        detail: false,
        served: 0,
        read_total: 0,
        read_mark: 0,
        busy: false,
        fresh: true,
    };
    // A fresh connection (counted by the accept loop) counts until its first bytes arrive:
    // a drain gives it a moment (DRAIN_FIRST_REQUEST) instead of closing it unanswered.
    loop {
        let plan = w.plan.clone();
        c.detail = w.access_log.is_some();
        match c.run(&w, &plan, &current).await {
            Ended::Done => break,
            Ended::Switch => w = current.borrow().clone(),
        }
    }
    metrics.worker(id).connection_closed();
    w.set_open(false);
    if c.busy {
        w.set_busy(false);
    }
    if c.fresh {
        w.set_fresh(false);
    }
}

impl Conn {
    async fn run(&mut self, w: &Rc<Worker>, plan: &Plan, current: &Current) -> Ended {
        let mut caps = Captures::new();
        loop {
            let Some(head) = self.read_head(w, plan).await else { return Ended::Done };
            // The worker moved to a reloaded plan while this connection waited for the head
            // (an idle keep-alive connection usually does): the head stays in `rbuf` and is
            // parsed again and served on the new plan.
            if !Rc::ptr_eq(w, &current.borrow()) {
                return Ended::Switch;
            }
            self.consumed = head.len;
            self.body_done = head.body == BodyKind::None;
            self.head_len = head.len;
            self.out = Outcome::default();
            let flow = self.handle(w, plan, &head, &mut caps).await;
            self.served += 1;
            if plan.metrics.enabled || w.access_log.is_some() {
                let bytes_in = self.read_total - self.read_mark;
                self.read_mark = self.read_total;
                self.record(w, plan, &head, bytes_in);
            }
            if flow == Flow::Close {
                return Ended::Done;
            }
            self.rbuf.drain(..self.consumed.min(self.rbuf.len()));
            self.head_len = 0;
            if self.rbuf.is_empty() && self.busy {
                self.busy = false;
                w.set_busy(false);
            }
        }
    }

    /// Reads until `rbuf` starts with a complete, valid head. None: close the connection.
    async fn read_head(&mut self, w: &Worker, plan: &Plan) -> Option<Head> {
        let limits = &plan.limits;
        let mut deadline: Option<Instant> = None;
        loop {
            if !self.rbuf.is_empty() {
                if !self.busy {
                    self.busy = true;
                    w.set_busy(true);
                }
                if self.fresh {
                    self.fresh = false;
                    w.set_fresh(false);
                }
                match request::parse(&self.rbuf, limits.max_header_bytes, limits.max_uri_bytes, &mut self.fields) {
                    Ok(Some(h)) => {
                        self.now = Instant::now();
                        return Some(h);
                    }
                    // Part of a head: all of it is due within header_timeout from now.
                    Ok(None) => {
                        deadline.get_or_insert_with(|| Instant::now() + limits.header_timeout);
                    }
                    Err(e) => {
                        self.reject(w, e.status()).await;
                        return None;
                    }
                }
            }
            // Draining: a keep-alive client's next request (or a fresh connection's first)
            // is still answered, with `Connection: close`, if it comes soon.
            let by = match deadline {
                Some(d) => d,
                None if w.shutting_down() => {
                    let t = limits.idle_timeout.min(if self.served > 0 { DRAIN_IDLE } else { DRAIN_FIRST_REQUEST });
                    Instant::now() + t
                }
                None => self.ended.take().unwrap_or_else(Instant::now) + limits.idle_timeout,
            };
            let mut pos = 0;
            match self.fill_by(&mut pos, by, limits.max_header_bytes).await {
                Ok(n) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// One request, phase by phase: route -> CORS -> policies -> integration.
    async fn handle(&mut self, w: &Worker, plan: &Plan, head: &Head, caps: &mut Captures) -> Flow {
        let routed = self.route(plan, head, caps);
        self.cors = NO_CORS;
        self.resp_extra.clear();
        if !plan.cors_policies.is_empty() {
            if let Some(flow) = self.apply_cors(w, plan, head, &routed).await {
                return flow;
            }
        }
        let (stage, route) = match routed {
            Ok(r) => r,
            Err(stage) => {
                self.out.stage = stage;
                return self.gateway_error(w, plan, head, stage, Kind::MissingAuthenticationToken, false).await;
            }
        };
        self.out.stage = Some(stage);
        self.out.route = Some(route);
        self.auth.reset();
        if let Some(a) = plan.authorizer(stage, route) {
            if let Err(refused) =
                crate::policy::authorizer::authorize(self, w, plan, head, (stage, route), a, caps).await
            {
                return self.gateway_error(w, plan, head, Some(stage), refused, false).await;
            }
        }
        if let Err(refused) = self.policies(w, plan, stage, route) {
            return self.gateway_error(w, plan, head, Some(stage), refused, false).await;
        }
        if let Some(v) = plan.routes[route as usize].validation.as_deref() {
            match self.validate(plan, head, v, caps).await {
                Ok(()) => {}
                Err(Some(kind)) => return self.gateway_error(w, plan, head, Some(stage), kind, false).await,
                Err(None) => return Flow::Close,
            }
        }
        self.integrate(w, plan, head, stage, route, caps).await
    }

    /// Stage and route for the request; Err(stage if known) when nothing matches.
    /// Captures become offsets into `rbuf`.
    fn route(&self, plan: &Plan, head: &Head, caps: &mut Captures) -> Result<(usize, u32), Option<usize>> {
        let (stage, rest) = plan.stage_for(&self.rbuf[head.path.clone()]).ok_or(None)?;
        let route = head.method.and_then(|m| plan.trie.lookup(rest, m, caps)).ok_or(Some(stage))?;
        let rest_off = (rest.as_ptr() as usize - self.rbuf.as_ptr() as usize) as u32;
        for c in caps.iter_mut() {
            c.0 += rest_off;
            c.1 += rest_off;
        }
        Ok((stage, route))
    }

    /// API key, throttling, quota, in API Gateway's order. Err: the gateway response to send.
    #[inline]
    fn policies(&mut self, w: &Worker, plan: &Plan, stage: usize, route: u32) -> Result<(), Kind> {
        let key = if plan.routes[route as usize].api_key_required {
            Some(plan.api_keys.authorize(self.presented_api_key(plan), stage).ok_or(Kind::InvalidApiKey)?)
        } else {
            None
        };
        if let Some((wait, scope)) = self.throttled(plan, stage, route, key) {
            self.retry_after = wait.div_ceil(1_000_000_000).max(1);
            if plan.metrics.enabled {
                w.m().throttled(scope);
            }
            return Err(Kind::Throttled);
        }
        if let Some(q) = key.and_then(|k| plan.api_keys.keys[k as usize].quota.as_ref()) {
            if !q.take(unix_now()) {
                if plan.metrics.enabled {
                    w.m().quota_exceeded();
                }
                return Err(Kind::QuotaExceeded);
            }
        }
        Ok(())
    }

    /// Answers a CORS preflight (Some), or records which policy the response gets (None).
    async fn apply_cors(
        &mut self,
        w: &Worker,
        plan: &Plan,
        head: &Head,
        routed: &Result<(usize, u32), Option<usize>>,
    ) -> Option<Flow> {
        let origin = find_header(&self.fields, &self.rbuf, b"origin")?;
        let requested = find_header(&self.fields, &self.rbuf, b"access-control-request-method");
        if head.method == Some(Method::Options) {
            if let Some(requested) = requested {
                // A preflight asks about the request that will follow: route that one.
                let (stage, rest) = plan.stage_for(&self.rbuf[head.path.clone()])?;
                let mut caps = Captures::new();
                let route = plan.trie.lookup(rest, Method::from_bytes(requested)?, &mut caps)?;
                let policy = plan.route_cors[stage * plan.routes.len() + route as usize];
                if policy == NO_CORS || !plan.cors_policies[policy as usize].allows(origin) {
                    return None;
                }
                self.wbuf.clear();
                self.wbuf.extend_from_slice(b"HTTP/1.1 204 No Content\r\n");
                plan.cors_policies[policy as usize].write_preflight_headers(origin, &mut self.wbuf);
                let close = !head.keep_alive || w.shutting_down() || !self.discard_body(head, plan).await;
                w.common_headers(&mut self.wbuf, close, head.minor);
                let written = self.flush_by(self.now + plan.limits.idle_timeout).await;
                return Some(if written.is_err() || close { Flow::Close } else { Flow::KeepAlive });
            }
        }
        let policy = match routed {
            Ok((stage, route)) => plan.route_cors[stage * plan.routes.len() + *route as usize],
            Err(Some(stage)) => plan.stage_cors[*stage],
            Err(None) => NO_CORS,
        };
        if policy != NO_CORS && plan.cors_policies[policy as usize].allows(origin) {
            self.origin.clear();
            self.origin.extend_from_slice(origin);
            self.cors = policy;
        }
        None
    }

    /// The API key the request presents: `x-api-key`, or the authorizer's
    /// `usageIdentifierKey` with `[api] api_key_source = "authorizer"`.
    #[inline]
    pub fn presented_api_key(&self, plan: &Plan) -> Option<&[u8]> {
        if plan.api.api_key_from_authorizer {
            self.auth.usage_key()
        } else {
            self.header(b"x-api-key")
        }
    }

    /// The value of the first request header named `name` (ASCII case-insensitive).
    #[inline]
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        find_header(&self.fields, &self.rbuf, name)
    }

    /// Most specific limit first: the API key's plan limit for this route, the key's plan
    /// limit, the route's (else its stage's), then the box-wide one.
    /// Some(ns until a token is due, which limit) when the request must be refused.
    #[inline]
    fn throttled(&self, plan: &Plan, stage: usize, route: u32, key: Option<u32>) -> Option<(u64, ThrottleScope)> {
        let route_bucket = plan.throttle(stage, route);
        if route_bucket.is_none() && plan.global_throttle.is_none() && key.is_none() {
            return None;
        }
        let [key_route, key_plan] = match key {
            Some(k) => plan.api_keys.buckets(k, route),
            None => [None, None],
        };
        let now = nanos_since_epoch(self.now);
        let scoped = [
            (key_route, ThrottleScope::KeyRoute),
            (key_plan, ThrottleScope::Key),
            (route_bucket, ThrottleScope::Route),
            (plan.global_throttle.as_ref(), ThrottleScope::Global),
        ];
        for (b, scope) in scoped {
            if let Some(Verdict::Reject(wait)) = b.map(|b| b.take(now)) {
                return Some((wait, scope));
            }
        }
        None
    }

    async fn integrate(
        &mut self,
        w: &Worker,
        plan: &Plan,
        head: &Head,
        stage: usize,
        route: u32,
        caps: &Captures,
    ) -> Flow {
        match plan.integration(stage, route) {
            Integration::Mock(m) => mock::respond(self, w, plan, head, m).await,
            // Boxed: their futures (each holds a monoio `Sleep`, 640 bytes aligned to 128)
            // would otherwise set the size and alignment of every request's future.
            Integration::Function(f) => Box::pin(function::invoke(self, w, plan, head, (stage, route), f, caps)).await,
            Integration::Custom(x) => Box::pin(custom::respond(self, w, plan, head, (stage, route), x, caps)).await,
            Integration::HttpProxy(p) => match plan.cache_policy(stage, route) {
                None => proxy::forward(self, w, plan, head, stage, p, caps, None).await,
                Some(policy) => cached::respond(self, w, plan, head, stage, policy, p, caps).await,
            },
        }
    }

    /// Drops the consumed body bytes `rbuf[head..pos]` (never the current head), then reads
    /// more into `rbuf` (growing it up to `max_cap`). Returns the bytes read; 0 means the
    /// peer closed. `pos` moves back to the end of the head.
    pub async fn fill(&mut self, pos: &mut usize, timeout: Duration, max_cap: usize) -> io::Result<usize> {
        self.fill_by(pos, Instant::now() + timeout, max_cap).await
    }

    /// `fill` with a deadline.
    pub async fn fill_by(&mut self, pos: &mut usize, deadline: Instant, max_cap: usize) -> io::Result<usize> {
        let keep = self.head_len.min(*pos);
        if *pos > keep {
            self.rbuf.drain(keep..*pos);
            self.consumed = keep;
            *pos = keep;
        }
        let len = self.rbuf.len();
        if len == self.rbuf.capacity() {
            let target = (self.rbuf.capacity() * 2).clamp(INITIAL_READ_BUF, max_cap.max(len + 1));
            self.rbuf.reserve_exact(target - len);
        }
        let buf = std::mem::take(&mut self.rbuf);
        match self.timer.within(deadline, self.stream.read(buf.slice_mut(len..))).await {
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out")),
            Ok((res, slice)) => {
                self.rbuf = slice.into_inner();
                if let Ok(n) = res {
                    self.read_total += n as u64;
                }
                res
            }
        }
    }

    /// `fill` for request bodies: drops consumed bytes and reads with a body-sized buffer.
    pub async fn fill_body(&mut self, pos: &mut usize, timeout: Duration) -> io::Result<usize> {
        self.fill(pos, timeout, BODY_READ_BUF).await
    }

    /// Writes all of `wbuf` and clears it, within `timeout` from now.
    pub async fn flush(&mut self, timeout: Duration) -> io::Result<()> {
        self.flush_by(Instant::now() + timeout).await
    }

    /// Writes all of `wbuf` and clears it, by `deadline`.
    pub async fn flush_by(&mut self, deadline: Instant) -> io::Result<()> {
        self.out.wrote(&self.wbuf, self.detail);
        let buf = std::mem::take(&mut self.wbuf);
        match self.timer.within(deadline, self.stream.write_all(buf)).await {
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
            Ok((res, mut buf)) => {
                buf.clear();
                self.wbuf = buf;
                res.map(|_| ())
            }
        }
    }

    /// Reads the whole request body (up to `max_body_bytes`), for integrations that need it
    /// at once. Err(Some(kind)): answer with that gateway response; Err(None): close.
    pub async fn read_body(&mut self, head: &Head, plan: &Plan) -> Result<Vec<u8>, Option<Kind>> {
        use crate::http::body::{Chunk, Decoder, Step};
        let mut dec = match head.body {
            BodyKind::None => return Ok(Vec::new()),
            BodyKind::Length(n) if n > plan.limits.max_body_bytes => return Err(Some(Kind::RequestTooLarge)),
            BodyKind::Length(n) => Decoder::Length(n),
            BodyKind::Chunked => Decoder::Chunked(Chunk::Size),
        };
        let mut body = Vec::new();
        let mut pos = head.len;
        let mut sent_continue = false;
        loop {
            let (used, step) = dec.step(&self.rbuf[pos..]).map_err(|_| Some(Kind::BadRequestBody))?;
            let base = pos;
            pos += used;
            match step {
                Step::Data(r) => {
                    if (body.len() + r.len()) as u64 > plan.limits.max_body_bytes {
                        return Err(Some(Kind::RequestTooLarge));
                    }
                    body.extend_from_slice(&self.rbuf[base + r.start..base + r.end]);
                }
                Step::NeedMore => {
                    if head.expect_continue && !sent_continue {
                        sent_continue = true;
                        self.wbuf.clear();
                        self.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        self.flush(plan.limits.idle_timeout).await.map_err(|_| None)?;
                    }
                    match self.fill_body(&mut pos, plan.limits.idle_timeout).await {
                        Ok(n) if n > 0 => {}
                        _ => return Err(None),
                    }
                }
                Step::Done => {
                    self.consumed = pos;
                    self.body_done = true;
                    return Ok(body);
                }
            }
        }
    }

    /// Reads the whole request body into `rbuf` after the head, framing and all, without
    /// consuming it: the integration then reads it as if it had just arrived. Returns where
    /// it ends in `rbuf`. Err as for `read_body`.
    pub async fn buffer_body(&mut self, head: &Head, plan: &Plan) -> Result<usize, Option<Kind>> {
        use crate::http::body::{Chunk, Decoder, Step};
        let max = plan.limits.max_body_bytes;
        let mut dec = match head.body {
            BodyKind::None => return Ok(head.len),
            BodyKind::Length(n) if n > max => return Err(Some(Kind::RequestTooLarge)),
            BodyKind::Length(n) => Decoder::Length(n),
            BodyKind::Chunked => Decoder::Chunked(Chunk::Size),
        };
        // Chunk framing may add to the payload; bound the buffer all the same.
        let cap = head.len.saturating_add((max as usize).saturating_mul(2)).saturating_add(64 * 1024);
        let mut scan = head.len;
        let mut total = 0u64;
        let mut sent_continue = false;
        loop {
            let (used, step) = dec.step(&self.rbuf[scan..]).map_err(|_| Some(Kind::BadRequestBody))?;
            scan += used;
            match step {
                Step::Data(r) => {
                    total += r.len() as u64;
                    if total > max {
                        return Err(Some(Kind::RequestTooLarge));
                    }
                }
                Step::NeedMore => {
                    if head.expect_continue && !sent_continue {
                        sent_continue = true;
                        self.wbuf.clear();
                        self.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        self.flush(plan.limits.idle_timeout).await.map_err(|_| None)?;
                    }
                    if self.rbuf.len() >= cap {
                        return Err(Some(Kind::RequestTooLarge));
                    }
                    // Nothing past the head counts as consumed: `fill` keeps it all.
                    let mut pos = head.len;
                    match self.fill(&mut pos, plan.limits.idle_timeout, cap).await {
                        Ok(n) if n > 0 => {}
                        _ => return Err(None),
                    }
                }
                Step::Done => return Ok(scan),
            }
        }
    }

    /// Reads and drops the rest of the current request body so the connection can be
    /// reused. False when that is not possible or not worth it (then close).
    pub async fn discard_body(&mut self, head: &Head, plan: &Plan) -> bool {
        if self.body_done {
            return true;
        }
        let buffered = self.rbuf.len() - head.len;
        let mut dec = match head.body {
            BodyKind::None => return true,
            BodyKind::Length(n) if n > plan.limits.max_body_bytes => return false,
            // Waiting for a body the client holds back (100-continue) makes no sense.
            BodyKind::Length(n) if head.expect_continue && (buffered as u64) < n => return false,
            BodyKind::Chunked if head.expect_continue => return false,
            BodyKind::Length(n) => crate::http::body::Decoder::Length(n),
            BodyKind::Chunked => crate::http::body::Decoder::Chunked(crate::http::body::Chunk::Size),
        };
        let mut pos = head.len;
        let mut total = 0u64;
        loop {
            let Ok((used, step)) = dec.step(&self.rbuf[pos..]) else { return false };
            pos += used;
            match step {
                crate::http::body::Step::Data(r) => {
                    total += r.len() as u64;
                    if total > plan.limits.max_body_bytes {
                        return false;
                    }
                }
                crate::http::body::Step::NeedMore => match self.fill_body(&mut pos, plan.limits.idle_timeout).await {
                    Ok(n) if n > 0 => {}
                    _ => return false,
                },
                crate::http::body::Step::Done => {
                    self.consumed = pos;
                    self.body_done = true;
                    return true;
                }
            }
        }
    }
}

/// CORS headers for the current response, when a policy applies (see `Conn::apply_cors`).
#[inline]
pub fn write_cors(plan: &Plan, cors: u32, origin: &[u8], out: &mut Vec<u8>) {
    if cors != NO_CORS {
        plan.cors_policies[cors as usize].write_response_headers(origin, out);
    }
}

/// The value of the first header named `name` (ASCII case-insensitive) among `fields`.
#[inline]
fn find_header<'b>(fields: &[Field], buf: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    fields.iter().find(|f| f.name(buf).eq_ignore_ascii_case(name)).map(|f| f.value(buf))
}
