//! One timer per client connection, re-armed for each read or write of the request path
//! (client and upstream) instead of a new `monoio::time::timeout` each time.
//!
//! A monoio `Sleep` is 640 bytes aligned to 128 (tokio's cache padding), registers in the
//! timer wheel on first poll and deregisters on drop. Inside every I/O future it made the
//! request's futures kilobytes larger (each one is moved into its parent when created) and
//! cost a wheel insert and remove per read or write. Re-arming this one only moves its
//! expiry when the new deadline is later (the wheel notices when it gets there).
//! Touches only the monoio timer it owns.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use monoio::time::Sleep;

/// The deadline passed before the operation finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

pub struct Timer {
    sleep: Pin<Box<Sleep>>,
}

impl Default for Timer {
    fn default() -> Timer {
        Timer::new()
    }
}

impl Timer {
    pub fn new() -> Timer {
        // Not registered until first polled; `within` sets the real deadline.
        Timer { sleep: Box::pin(monoio::time::sleep(Duration::from_secs(86_400))) }
    }

    /// Runs `op` until it finishes or `deadline` passes (the op is then dropped, which
    /// cancels its I/O).
    #[inline]
    pub fn within<F: Future>(&mut self, deadline: Instant, op: F) -> Within<'_, F> {
        self.sleep.as_mut().reset(deadline.into());
        Within { sleep: self.sleep.as_mut(), op }
    }

    /// `within` a duration from now.
    #[inline]
    pub fn within_for<F: Future>(&mut self, timeout: Duration, op: F) -> Within<'_, F> {
        self.within(Instant::now() + timeout, op)
    }
}

pub struct Within<'a, F> {
    sleep: Pin<&'a mut Sleep>,
    op: F,
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `op` is never moved out of `self` (structural pinning); `sleep` is a
        // `Pin<&mut>` already and is Unpin as a reference.
        let this = unsafe { self.get_unchecked_mut() };
        let op = unsafe { Pin::new_unchecked(&mut this.op) };
        if let Poll::Ready(v) = op.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future>(f: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap().block_on(f)
    }

    #[test]
    fn finishes_before_the_deadline() {
        run(async {
            let mut t = Timer::new();
            assert_eq!(t.within_for(Duration::from_secs(5), async { 7 }).await, Ok(7));
        });
    }

    #[test]
    fn times_out_then_rearms_earlier_and_later() {
        run(async {
            let mut t = Timer::new();
            let start = Instant::now();
            let never = std::future::pending::<()>;
            assert_eq!(t.within_for(Duration::from_millis(30), never()).await, Err(Elapsed));
            assert!(start.elapsed() >= Duration::from_millis(30));
            // Later than the fired one, then earlier than a still-armed later one.
            let at = Instant::now();
            assert_eq!(t.within_for(Duration::from_millis(40), never()).await, Err(Elapsed));
            assert!(at.elapsed() >= Duration::from_millis(40));
            let _ = t.within_for(Duration::from_secs(60), async {}).await;
            let at = Instant::now();
            assert_eq!(t.within_for(Duration::from_millis(20), never()).await, Err(Elapsed));
            let took = at.elapsed();
            assert!(took >= Duration::from_millis(20) && took < Duration::from_secs(5), "{took:?}");
        });
    }

    #[test]
    fn a_real_sleep_inside_is_cut_at_the_deadline() {
        run(async {
            let mut t = Timer::new();
            let r = t.within_for(Duration::from_millis(20), monoio::time::sleep(Duration::from_secs(3))).await;
            assert_eq!(r, Err(Elapsed));
            let r = t.within_for(Duration::from_secs(3), monoio::time::sleep(Duration::from_millis(10))).await;
            assert_eq!(r, Ok(()));
        });
    }
}
