//! Process-wide shutdown flag (set by the signal thread) and a per-worker local signal
//! that wakes the accept loops. The flag is the only shared state; it is an atomic.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

static REQUESTED: AtomicBool = AtomicBool::new(false);

pub fn request() {
    REQUESTED.store(true, Ordering::Release);
}

#[inline]
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// A one-shot, single-thread broadcast: `fire` wakes every `wait`.
#[derive(Default)]
pub struct LocalSignal {
    fired: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl LocalSignal {
    pub fn fire(&self) {
        self.fired.set(true);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    pub fn wait(&self) -> Wait<'_> {
        Wait { signal: self, slot: None }
    }
}

pub struct Wait<'a> {
    signal: &'a LocalSignal,
    slot: Option<usize>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.fired.get() {
            return Poll::Ready(());
        }
        let mut wakers = self.signal.wakers.borrow_mut();
        match self.slot {
            Some(i) if i < wakers.len() => {
                if !wakers[i].will_wake(cx.waker()) {
                    wakers[i] = cx.waker().clone();
                }
            }
            _ => {
                wakers.push(cx.waker().clone());
                let i = wakers.len() - 1;
                drop(wakers);
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}
