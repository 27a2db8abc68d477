//! Responses ringway makes itself: gateway responses (API Gateway's error types, with the
//! config's overrides) and protocol rejections for requests that cannot be parsed.

use super::connection::{Conn, Flow};
use super::worker::Worker;
use crate::config::plan::Plan;
use crate::http::gateway_response::{Context, Kind};
use crate::http::request::Head;
use crate::http::write::{put_u64, status_line};

impl Conn {
    /// Answers with the gateway response for `kind`. `close` forces the connection shut
    /// (e.g. the request body was not read).
    pub async fn gateway_error(
        &mut self,
        w: &Worker,
        plan: &Plan,
        head: &Head,
        stage: Option<usize>,
        kind: Kind,
        close: bool,
    ) -> Flow {
        let r = plan.gateway_response(kind);
        let id = w.new_id();
        self.out.error = Some(kind);
        if kind == Kind::IntegrationTimeout {
            self.out.integration_timed_out = true;
        }
        // Render while the head's ranges still point into rbuf.
        let mut body = Vec::with_capacity(64);
        {
            let path = std::str::from_utf8(self.rbuf.get(head.path.clone()).unwrap_or_default()).unwrap_or("");
            let stage_ref = stage.map(|s| &plan.stages[s]);
            let lookup = |name: &str| stage_ref.and_then(|s| s.variables.get(name)).map(String::as_str);
            let ctx = Context {
                request_id: std::str::from_utf8(&id).unwrap_or(""),
                stage: stage_ref.map_or("", |s| s.name.as_str()),
                method: head.method.map_or("", |m| m.as_str()),
                resource_path: "",
                path,
                source_ip: &self.peer_ip,
                stage_variable: &lookup,
                message: (!self.error_message.is_empty()).then_some(self.error_message.as_str()),
                validation_error: &self.validation_error,
            };
            r.render_body(&ctx, &mut body);
        }
        self.error_message.clear();
        self.validation_error.clear();
        let close = close || !head.keep_alive || w.shutting_down() || !self.discard_body(head, plan).await;
        let out = &mut self.wbuf;
        out.clear();
        status_line(out, r.status);
        let mut has_type = false;
        for (k, v) in &r.headers {
            has_type |= k.eq_ignore_ascii_case("content-type");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !has_type {
            out.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        super::connection::write_cors(plan, self.cors, &self.origin, out);
        if kind == Kind::Unauthorized {
            self.auth.write_challenge(out);
        }
        if self.retry_after > 0 {
            out.extend_from_slice(b"Retry-After: ");
            put_u64(out, self.retry_after);
            out.extend_from_slice(b"\r\n");
            self.retry_after = 0;
        }
        out.extend_from_slice(b"x-amzn-ErrorType: ");
        out.extend_from_slice(r.error_type.as_bytes());
        out.extend_from_slice(b"\r\nContent-Length: ");
        put_u64(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
        w.end_head(out, &id, close, head.minor);
        if head.method != Some(crate::http::method::Method::Head) {
            out.extend_from_slice(&body);
        }
        if self.flush_by(self.now + plan.limits.idle_timeout).await.is_err() || close {
            return Flow::Close;
        }
        Flow::KeepAlive
    }

    /// Rejects an unparseable or over-limit request head and closes the connection.
    pub async fn reject(&mut self, w: &Worker, status: u16) {
        let msg: &[u8] = match status {
            431 => b"{\"message\":\"Request Header Fields Too Large\"}",
            414 => b"{\"message\":\"Request-URI Too Long\"}",
            417 => b"{\"message\":\"Expectation Failed\"}",
            501 => b"{\"message\":\"Not Implemented\"}",
            _ => b"{\"message\":\"Bad Request\"}",
        };
        let out = &mut self.wbuf;
        out.clear();
        status_line(out, status);
        out.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: ");
        put_u64(out, msg.len() as u64);
        out.extend_from_slice(b"\r\n");
        w.common_headers(out, true, 1);
        out.extend_from_slice(msg);
        let _ = self.flush(w.plan.limits.idle_timeout).await;
    }
}
