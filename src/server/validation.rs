//! Runs a route's request validation on the connection: required parameters from the head,
//! then the body (buffered whole in `rbuf`, not consumed) against its model. Failures leave
//! the message for the gateway response in `Conn::error_message`/`validation_error`.

use super::connection::Conn;
use crate::config::plan::Plan;
use crate::http::body::{Chunk, Decoder, Step};
use crate::http::gateway_response::Kind;
use crate::http::request::{BodyKind, Head};
use crate::policy::validate::{check_body, missing_parameters, Validation};
use crate::route::Captures;

impl Conn {
    /// Err(Some(kind)): answer with that gateway response; Err(None): close.
    pub async fn validate(
        &mut self,
        plan: &Plan,
        head: &Head,
        v: &Validation,
        caps: &Captures,
    ) -> Result<(), Option<Kind>> {
        if !v.required.is_empty() {
            let mut msg = std::mem::take(&mut self.error_message);
            msg.clear();
            let rbuf = &self.rbuf;
            let query = head.query.clone().map_or(&[][..], |q| &rbuf[q]);
            let missing = missing_parameters(
                v,
                query,
                |n| self.header(n),
                |i| caps.get(i as usize).map_or(&[][..], |&(a, b)| &rbuf[a as usize..b as usize]),
                &mut msg,
            );
            self.error_message = msg;
            if missing {
                return Err(Some(Kind::BadRequestParameters));
            }
        }
        if v.validates_body() {
            let Some(model) = v.model_for(self.header(b"content-type")) else { return Ok(()) };
            let end = self.buffer_body(head, plan).await?;
            let raw = &self.rbuf[head.len..end];
            let checked = match head.body {
                BodyKind::Chunked => check_body(&plan.models[model as usize], &dechunk(raw)),
                _ => check_body(&plan.models[model as usize], raw),
            };
            if let Err(detail) = checked {
                self.validation_error = detail;
                return Err(Some(Kind::BadRequestBody));
            }
        }
        Ok(())
    }
}

/// The payload of a complete chunked body (already checked by `buffer_body`).
fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut dec = Decoder::Chunked(Chunk::Size);
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    while let Ok((used, step)) = dec.step(&raw[pos..]) {
        match step {
            Step::Data(r) => out.extend_from_slice(&raw[pos + r.start..pos + r.end]),
            Step::NeedMore | Step::Done => break,
        }
        pos += used;
    }
    out
}
