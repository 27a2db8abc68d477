//! Per-worker keep-alive pools of upstream connections, one LIFO stack per upstream.
//! Owned by one worker thread: no locks, no sharing. Touches only sockets it holds.

use super::Stream;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Receive buffer size for an upstream connection (response heads must fit).
pub const UPSTREAM_BUF: usize = 32 * 1024;

pub struct UpConn {
    pub stream: Stream,
    /// Bytes read from the upstream; empty whenever the connection is idle.
    pub buf: Vec<u8>,
    /// Served a request before (a failure may be a stale keep-alive race).
    pub reused: bool,
    idle_since: Instant,
}

impl UpConn {
    pub fn new(stream: Stream) -> UpConn {
        UpConn { stream, buf: Vec::with_capacity(UPSTREAM_BUF), reused: false, idle_since: Instant::now() }
    }
}

pub struct Pool {
    idle: RefCell<Vec<Vec<UpConn>>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub fn new(upstreams: usize, max_idle: usize, idle_timeout: Duration) -> Pool {
        Pool { idle: RefCell::new((0..upstreams).map(|_| Vec::new()).collect()), max_idle, idle_timeout }
    }

    /// The most recently used live connection to `upstream`, if any. `now` is the
    /// request's start time (one clock read per request, not per pool operation).
    pub fn take(&self, upstream: usize, now: Instant) -> Option<UpConn> {
        let mut idle = self.idle.borrow_mut();
        let stack = idle.get_mut(upstream)?;
        while let Some(mut c) = stack.pop() {
            if now.duration_since(c.idle_since) < self.idle_timeout {
                c.reused = true;
                return Some(c);
            }
            // Everything below is older still.
            stack.clear();
        }
        None
    }

    /// Returns a connection whose last response was fully read; `now` as for `take`
    /// (an earlier time only makes the connection expire sooner).
    pub fn put(&self, upstream: usize, mut conn: UpConn, now: Instant) {
        debug_assert!(conn.buf.is_empty());
        let mut idle = self.idle.borrow_mut();
        let Some(stack) = idle.get_mut(upstream) else { return };
        if stack.first().is_some_and(|c| now.duration_since(c.idle_since) >= self.idle_timeout) {
            stack.remove(0);
        }
        if stack.len() >= self.max_idle {
            return;
        }
        conn.idle_since = now;
        stack.push(conn);
    }

    /// Takes over another pool's idle connections (a reloaded plan): `map` gives the new
    /// index of each old upstream, None when it is gone (its connections are closed).
    pub fn adopt(&self, old: &Pool, map: impl Fn(usize) -> Option<usize>) {
        let mut mine = self.idle.borrow_mut();
        for (i, stack) in old.idle.borrow_mut().iter_mut().enumerate() {
            if let Some(dst) = map(i).and_then(|n| mine.get_mut(n)) {
                dst.append(stack);
                dst.truncate(self.max_idle);
            }
        }
    }

    pub fn idle_count(&self) -> usize {
        self.idle.borrow().iter().map(Vec::len).sum()
    }
}
