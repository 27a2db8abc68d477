//! Mock integration: a fixed response compiled from the config (status, headers, body).

use crate::config::plan::{Mock, Plan};
use crate::http::method::Method;
use crate::http::request::Head;
use crate::server::connection::{Conn, Flow};
use crate::server::worker::Worker;

pub async fn respond(c: &mut Conn, w: &Worker, plan: &Plan, head: &Head, m: &Mock) -> Flow {
    let close = !head.keep_alive || w.shutting_down() || !c.discard_body(head, plan).await;
    c.wbuf.clear();
    c.wbuf.extend_from_slice(&m.head);
    crate::server::connection::write_cors(plan, c.cors, &c.origin, &mut c.wbuf);
    w.common_headers(&mut c.wbuf, close, head.minor);
    if head.method != Some(Method::Head) {
        c.wbuf.extend_from_slice(&m.body);
    }
    if c.flush_by(c.now + plan.limits.idle_timeout).await.is_err() || close {
        return Flow::Close;
    }
    Flow::KeepAlive
}
