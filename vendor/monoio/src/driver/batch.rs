//! ringway patch: batched waits. When the last wakeup found a busy batch of completions
//! (io_uring) or events (epoll), the next wait lets more gather before the thread sleeps
//! and wakes again. Under load the thread then sleeps and wakes once per batch instead of
//! once per completion; when idle or lightly loaded it waits for one as before.
//!
//! - io_uring: the thread submits first, then asks the kernel for `want` completions beyond
//!   those the submission posted at once (a send to a socket with room completes inline;
//!   counting it would fill a batch with the thread's own work), and settles for one after
//!   `min_wait_us` (IORING_ENTER_EXT_ARG with `min_wait_usec`, Linux 6.12+). A kernel that
//!   refuses `min_wait_usec` (EINVAL) turns batching off for the thread.
//! - epoll: `epoll_wait` has no minimum batch, so a thread that would block sleeps
//!   `min_wait_us` first and then waits as before.
//!
//! A batched wait that ends short of a full batch (too few active connections to fill one:
//! each waits on this thread, so waiting stalls them all) makes the next `hold` waits plain.

use std::{cell::Cell, io, os::unix::io::RawFd, time::Duration};

/// How a thread waits for completions when it is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBatching {
    /// A wakeup that reaped at least this many completions (or epoll events) counts as busy.
    pub busy: usize,
    /// Completions a busy io_uring thread waits for, beyond those its submission posted at
    /// once; with epoll, the events a sleep must gather to count as filled.
    pub want: u32,
    /// io_uring: longest wait for `want` (microseconds); after it one completion ends the
    /// wait. epoll: how long a busy thread sleeps before it waits.
    pub min_wait_us: u32,
    /// Waits made plainly after a batched wait that ended short of a full batch: too few
    /// connections were active to fill one, and waiting for it stalled them all.
    pub hold: u32,
}

thread_local! {
    static BATCHING: Cell<Option<WaitBatching>> = const { Cell::new(None) };
    static LAST_BATCH: Cell<usize> = const { Cell::new(0) };
    static HOLD: Cell<u32> = const { Cell::new(0) };
}

/// Sets (or with `None` clears) batched waits for the runtime of this thread.
pub fn set_wait_batching(b: Option<WaitBatching>) {
    BATCHING.with(|c| c.set(b));
}

/// Records how many completions the last wakeup reaped.
#[inline]
pub(crate) fn reaped(n: usize) {
    LAST_BATCH.with(|c| c.set(n));
}

/// The batched wait to make now, if any.
#[inline]
pub(crate) fn wanted() -> Option<WaitBatching> {
    let b = BATCHING.with(|c| c.get())?;
    let held = HOLD.with(|h| {
        let n = h.get();
        h.set(n.saturating_sub(1));
        n > 0
    });
    (!held && LAST_BATCH.with(|c| c.get()) >= b.busy && b.want > 1).then_some(b)
}

/// After a batched wait and the reap that followed it: a batch short of `filled` (the count a
/// full batch reaps) holds batching back for the next `hold` waits.
#[inline]
pub(crate) fn batched_wait_ended(filled: usize) {
    if let Some(b) = BATCHING.with(|c| c.get()) {
        if LAST_BATCH.with(|c| c.get()) < filled {
            HOLD.with(|h| h.set(b.hold));
        }
    }
}

/// `struct io_uring_getevents_arg` (the `pad` of older headers is `min_wait_usec`).
#[repr(C)]
struct GetEventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

const IORING_ENTER_GETEVENTS: u32 = 1;
const IORING_ENTER_EXT_ARG: u32 = 8;

/// Waits for `wait_nr` completions, settling for one after `b.min_wait_us`, at most `timeout`.
/// Ok(false): the kernel does not take `min_wait_usec`; batching is now off for this thread
/// and nothing was done.
pub(crate) fn wait(
    fd: RawFd,
    wait_nr: u32,
    b: WaitBatching,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let ts = timeout.map(|d| KernelTimespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    });
    let arg = GetEventsArg {
        sigmask: 0,
        sigmask_sz: 0,
        min_wait_usec: b.min_wait_us,
        ts: ts.as_ref().map_or(0, |t| t as *const KernelTimespec as u64),
    };
    // SAFETY: `arg` and the timespec it points to live across the call; the kernel only
    // reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd,
            0,
            wait_nr,
            IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
            &arg as *const GetEventsArg,
            std::mem::size_of::<GetEventsArg>(),
        )
    };
    if r >= 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) => {
            set_wait_batching(None);
            Ok(false)
        }
        // A timeout or a signal ends the wait like any wakeup.
        Some(libc::ETIME) | Some(libc::EINTR) => Ok(true),
        _ => Err(e),
    }
}
