//! Lambda-style function integration (`aws_proxy`): read the request body, build the
//! event, take a free endpoint of the function (each runs one invocation at a time, as the
//! Lambda Runtime Interface Emulator does), POST the event to its invoke path, turn the
//! answer into the response.
//!
//! Endpoint slots are box-wide atomics in the plan: a request takes a free one with a CAS;
//! when all are busy it waits in a bounded queue (429 when full), polling every
//! millisecond until the integration deadline (504).

use super::{function_event as event, function_result as result};
use crate::config::plan::{Function, FunctionCall, PayloadFormat, Plan};
use crate::http::gateway_response::Kind;
use crate::http::request::Head;
use crate::http::write::{put_u64, status_line};
use crate::route::Captures;
use crate::server::connection::{write_cors, Conn, Flow};
use crate::server::worker::Worker;
use crate::upstream::exchange::{exchange, Reply};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Largest answer read from a function (Lambda's synchronous payload limit).
const MAX_ANSWER: usize = 6 * 1024 * 1024;
const WAIT_POLL: Duration = Duration::from_millis(1);

pub async fn invoke(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    (stage, route): (usize, u32),
    call: &FunctionCall,
    caps: &Captures,
) -> Flow {
    let body = match c.read_body(head, plan).await {
        Ok(b) => b,
        Err(Some(kind)) => return c.gateway_error(w, plan, head, Some(stage), kind, true).await,
        Err(None) => return Flow::Close,
    };
    let id = w.new_id();
    let mut ev = Vec::with_capacity(2048 + body.len() * 4 / 3);
    build_event(c, plan, head, (stage, route), call, caps, &body, &id, &mut ev);
    let f = &plan.functions[call.function as usize];
    let deadline = c.now + call.timeout;

    let answer = match take_endpoint(f, deadline).await {
        Err(kind) => Err(kind),
        Ok(slot) => {
            let up = f.endpoints[slot.index] as usize;
            let started = Instant::now();
            let res = monoio::time::timeout_at(deadline.into(), post(c, w, plan, up, &f.invoke_path, &ev)).await;
            drop(slot);
            c.out.integration_ns = Some(crate::server::outcome::since(started));
            c.out.upstream = Some(up as u32);
            match res {
                Err(_) => Err(Kind::IntegrationTimeout),
                Ok(Err(kind)) => Err(kind),
                Ok(Ok(payload)) => {
                    let answer = match call.payload {
                        PayloadFormat::V1 => {
                            let binary = result::accepts_binary(c.header(b"accept"), &plan.api.binary_media_types);
                            result::v1(&payload, binary)
                        }
                        PayloadFormat::V2 => result::v2(&payload),
                    };
                    answer.map_err(|_| Kind::IntegrationFailure)
                }
            }
        }
    };
    match answer {
        Ok(a) => respond(c, w, plan, head, &id, a).await,
        Err(kind) => c.gateway_error(w, plan, head, Some(stage), kind, false).await,
    }
}

#[allow(clippy::too_many_arguments)]
fn build_event(
    c: &Conn,
    plan: &Plan,
    head: &Head,
    (stage, route): (usize, u32),
    call: &FunctionCall,
    caps: &Captures,
    body: &[u8],
    id: &[u8; 36],
    out: &mut Vec<u8>,
) {
    let r = &plan.routes[route as usize];
    let st = &plan.stages[stage];
    let full = &c.rbuf[head.path.clone()];
    let path = if plan.staged { &full[1 + st.name.len()..] } else { full };
    let path = if path.is_empty() { &b"/"[..] } else { path };
    let api_key = if r.api_key_required {
        plan.api_keys.authorize(c.presented_api_key(plan), stage).map(|k| {
            let key = &plan.api_keys.keys[k as usize];
            (key.id.as_str(), c.presented_api_key(plan).unwrap_or_default())
        })
    } else {
        None
    };
    let content_type = c.header(b"content-type");
    let base64_body =
        result::is_binary(content_type, &plan.api.binary_media_types) || std::str::from_utf8(body).is_err();
    let epoch_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut authorizer = Vec::new();
    c.auth.event_json(call.payload == PayloadFormat::V2, &mut authorizer);
    let input = event::Input {
        buf: &c.rbuf,
        head,
        fields: &c.fields,
        stage: &st.name,
        resource: &r.path,
        path,
        params: &r.params,
        caps,
        stage_vars: &st.variables,
        source_ip: &c.peer_ip,
        local_port: c.local_port,
        request_id: id,
        epoch_ms,
        body,
        base64_body,
        api_key,
        api_id: &plan.api.id,
        account_id: &plan.api.account_id,
        authorizer: &authorizer,
    };
    match call.payload {
        PayloadFormat::V1 => event::v1(out, &input),
        PayloadFormat::V2 => event::v2(out, &input),
    }
}

/// A function endpoint held by this request; released on drop.
pub(crate) struct Slot<'f> {
    f: &'f Function,
    pub(crate) index: usize,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.f.busy[self.index].store(false, Ordering::Release);
    }
}

fn try_take(f: &Function) -> Option<Slot<'_>> {
    let n = f.busy.len();
    let start = f.next.fetch_add(1, Ordering::Relaxed);
    (0..n).map(|k| (start + k) % n).find_map(|i| {
        f.busy[i]
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            // Lazily: a Slot built for a failed CAS would free another request's endpoint on drop.
            .then(|| Slot { f, index: i })
    })
}

/// A free endpoint, waiting in the function's bounded queue when all are busy.
pub(crate) async fn take_endpoint(f: &Function, deadline: Instant) -> Result<Slot<'_>, Kind> {
    if let Some(s) = try_take(f) {
        return Ok(s);
    }
    if f.waiting.fetch_add(1, Ordering::AcqRel) >= f.max_queue {
        f.waiting.fetch_sub(1, Ordering::AcqRel);
        return Err(Kind::Throttled);
    }
    struct Queued<'f>(&'f Function);
    impl Drop for Queued<'_> {
        fn drop(&mut self) {
            self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _queued = Queued(f);
    loop {
        if Instant::now() >= deadline {
            return Err(Kind::IntegrationTimeout);
        }
        monoio::time::sleep(WAIT_POLL).await;
        if let Some(s) = try_take(f) {
            return Ok(s);
        }
    }
}

/// POSTs the event and returns the answer's body. A function error (`X-Amz-Function-Error`)
/// or a non-2xx invoke status is an error.
async fn post(c: &mut Conn, w: &Worker, plan: &Plan, up: usize, path: &[u8], ev: &[u8]) -> Result<Vec<u8>, Kind> {
    let reply = post_event(c, w, plan, up, path, ev, MAX_ANSWER).await.map_err(|_| Kind::IntegrationFailure)?;
    if reply.header("x-amz-function-error").is_some() || !(200..300).contains(&reply.status) {
        return Err(Kind::IntegrationFailure);
    }
    Ok(reply.body)
}

/// POSTs the JSON event `ev` to `path` on function endpoint `up` (an upstream index) and
/// reads the whole answer, at most `max_answer` bytes. Shared by `aws_proxy` integrations
/// and Lambda authorizers; the caller holds the endpoint's slot and bounds the time.
pub(crate) async fn post_event(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    up: usize,
    path: &[u8],
    ev: &[u8],
    max_answer: usize,
) -> Result<Reply, ()> {
    let upstream = &plan.upstreams[up];
    let mut req = Vec::with_capacity(ev.len() + 256);
    req.extend_from_slice(b"POST ");
    req.extend_from_slice(path);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    req.extend_from_slice(&upstream.host_header);
    req.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
    put_u64(&mut req, ev.len() as u64);
    req.extend_from_slice(b"\r\n\r\n");
    req.extend_from_slice(ev);
    let connect_timeout = plan.upstream.connect_timeout;
    exchange(&w.pool, upstream, up, connect_timeout, req, false, max_answer, &mut c.resp_fields, c.now).await
}

/// Writes the function's response.
async fn respond(c: &mut Conn, w: &Worker, plan: &Plan, head: &Head, id: &[u8; 36], a: result::Answer) -> Flow {
    let close = !head.keep_alive || w.shutting_down() || !c.body_done;
    let out = &mut c.wbuf;
    out.clear();
    status_line(out, a.status);
    let mut has_type = false;
    for (n, v) in &a.headers {
        let skip = ["content-length", "transfer-encoding", "connection", "keep-alive", "date", "x-amzn-requestid"];
        if skip.iter().any(|s| n.eq_ignore_ascii_case(s)) || !valid_header(n, v) {
            continue;
        }
        has_type |= n.eq_ignore_ascii_case("content-type");
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodyless = (100..200).contains(&a.status) || a.status == 204 || a.status == 304;
    if !has_type && !bodyless {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    if !bodyless {
        out.extend_from_slice(b"Content-Length: ");
        put_u64(out, a.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    write_cors(plan, c.cors, &c.origin, out);
    w.end_head(out, id, close, head.minor);
    if !bodyless && head.method != Some(crate::http::method::Method::Head) {
        out.extend_from_slice(&a.body);
    }
    if c.flush_by(c.now + plan.limits.idle_timeout).await.is_err() || close {
        return Flow::Close;
    }
    Flow::KeepAlive
}

/// A header a function may set: a token name and a value without control characters.
fn valid_header(n: &str, v: &str) -> bool {
    !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && v.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f))
}
