//! What happened to one request, noted along the way (status and bytes from the writes,
//! integration latency, errors, cache result) and, once the response is out, turned into
//! this worker's metrics and access log line. Per connection; no allocation, no syscall.

use super::connection::Conn;
use super::worker::Worker;
use crate::config::plan::Plan;
use crate::http::gateway_response::Kind;
use crate::http::request::Head;
use crate::observe::access_log::Record;
use crate::observe::metrics::{CacheResult, METHOD_OTHER};
use std::time::Instant;

pub const NO_UPSTREAM: u32 = u32::MAX;

#[derive(Default)]
pub struct Outcome {
    /// Status of the final response head written (0: none yet).
    pub status: u16,
    pub bytes_out: u64,
    /// Length of that head, to tell body bytes from head bytes (only with an access log).
    pub head_len: u64,
    pub request_id: Option<[u8; 36]>,
    pub stage: Option<usize>,
    pub route: Option<u32>,
    pub integration_ns: Option<u64>,
    pub integration_status: Option<u16>,
    pub integration_timed_out: bool,
    pub error: Option<Kind>,
    pub upstream: Option<u32>,
    pub cache: Option<CacheResult>,
}

impl Outcome {
    /// Notes a write to the client: the first final status line, its head length and id.
    #[inline]
    pub fn wrote(&mut self, buf: &[u8], detail: bool) {
        if self.status == 0 && buf.len() >= 12 && buf.starts_with(b"HTTP/1.") {
            let d = &buf[9..12];
            if d.iter().all(u8::is_ascii_digit) {
                let status = (d[0] - b'0') as u16 * 100 + (d[1] - b'0') as u16 * 10 + (d[2] - b'0') as u16;
                if status >= 200 {
                    self.status = status;
                    if detail {
                        self.note_head(buf);
                    }
                }
            }
        }
        self.bytes_out += buf.len() as u64;
    }

    fn note_head(&mut self, buf: &[u8]) {
        let end = memchr::memmem::find(buf, b"\r\n\r\n").map_or(buf.len(), |i| i + 4);
        self.head_len = self.bytes_out + end as u64;
        const ID: &[u8] = b"\r\nx-amzn-RequestId: ";
        if let Some(i) = memchr::memmem::find(&buf[..end], ID) {
            if let Some(id) = buf.get(i + ID.len()..i + ID.len() + 36) {
                self.request_id = id.try_into().ok();
            }
        }
    }
}

impl Conn {
    /// Records the finished request in the worker's metrics and access log.
    pub fn record(&mut self, w: &Worker, plan: &Plan, head: &Head, bytes_in: u64) {
        let end = Instant::now();
        self.ended = Some(end);
        let total = end.saturating_duration_since(self.now);
        let total_ns = total.as_nanos() as u64;
        let o = &self.out;
        if plan.metrics.enabled {
            let m = w.m();
            let slot = o.stage.zip(o.route).map(|(s, r)| s * plan.routes.len() + r as usize);
            let method = head.method.map_or(METHOD_OTHER, |m| m as usize);
            m.request(o.stage.unwrap_or(0), slot, method, o.status, total_ns, o.integration_ns);
            m.bytes(bytes_in, o.bytes_out);
            if let Some(s) = slot {
                w.latency.record(s, total_ns);
            }
            if let Some(c) = o.cache {
                m.cache(c);
            }
        }
        if let Some(log) = &w.access_log {
            self.log_line(w, plan, head, total, &mut log.borrow_mut());
        }
    }

    fn log_line(
        &self,
        w: &Worker,
        plan: &Plan,
        head: &Head,
        total: std::time::Duration,
        log: &mut crate::observe::access_log::AccessLog,
    ) {
        let o = &self.out;
        let route = o.route.map(|r| &plan.routes[r as usize]);
        let stage = o.stage.map_or("", |s| plan.stages[s].name.as_str());
        let api_key_id = match (route, o.stage) {
            (Some(r), Some(s)) if r.api_key_required => plan
                .api_keys
                .authorize(self.presented_api_key(plan), s)
                .map(|k| plan.api_keys.keys[k as usize].id.as_str()),
            _ => None,
        };
        let started = std::time::SystemTime::now() - total;
        let epoch_ms = started.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let info = o.error.map(|k| k.info());
        let id = o.request_id.unwrap_or([b'-'; 36]);
        let record = Record {
            authorizer: Some(&self.auth),
            request_id: if o.request_id.is_some() { &id } else { b"" },
            source_ip: &self.peer_ip,
            user_agent: self.header(b"user-agent"),
            api_key_id,
            method: &self.rbuf[head.method_range.clone()],
            path: &self.rbuf[head.path.clone()],
            resource_path: route.map(|r| r.path.as_str()),
            protocol: if head.minor == 0 { "HTTP/1.0" } else { "HTTP/1.1" },
            status: o.status,
            response_length: o.bytes_out.saturating_sub(o.head_len),
            request_time_ms: epoch_ms,
            response_latency_us: total.as_micros() as u64,
            integration_latency_us: o.integration_ns.map(|n| n / 1000),
            integration_status: o.integration_status,
            integration_timed_out: o.integration_timed_out,
            error_message: info.map(|i| i.message),
            error_type: info.map(|i| i.name),
            stage,
            domain_name: self.header(b"host"),
            api_id: &plan.api.id,
            upstream: o.upstream.map(|u| plan.upstreams[u as usize].name.as_str()),
            cache: o.cache.map(|c| match c {
                CacheResult::Hit => "hit",
                CacheResult::Miss => "miss",
                CacheResult::Bypass => "bypass",
                CacheResult::Stale => "stale",
            }),
        };
        log.log(&record);
        let _ = w;
    }
}

/// Nanoseconds since `start`, for integration latencies.
#[inline]
pub fn since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}
