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
//! each waits on this thread, so waiting stalls them all) makes the next `hold` waits plain,
//! twice as many after each further short one in a row. And only a loaded thread batches
//! (on a CPU for `loaded_percent` of a 2 ms window): a lighter one has CPU to spare for a
//! wakeup per completion, and a batched wait would only delay its requests.

use std::{
    cell::Cell,
    io,
    os::unix::io::RawFd,
    time::{Duration, Instant},
};

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
    /// connections were active to fill one, and waiting for it stalled them all. Each
    /// further short batch in a row doubles it, up to 64 × `hold`.
    pub hold: u32,
    /// Batching only while the thread is on a CPU at least this share (percent) of the wall
    /// time, measured over 2 ms windows. A lighter thread has CPU to spare for a wakeup per
    /// completion, and a batched wait would only delay its requests.
    pub loaded_percent: u32,
}

/// How long the load is measured over before it is judged again.
const WINDOW: Duration = Duration::from_millis(2);

/// A run of short batches doubles the hold each time, up to `hold << MAX_BACKOFF`.
const MAX_BACKOFF: u32 = 6;

/// One thread's batching state: plain data, so the policy can be driven (and tested)
/// without a ring.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchState {
    /// Completions (or events) the last wakeup reaped.
    last_batch: usize,
    /// Plain waits left before a batched one may be made again.
    hold: u32,
    /// Batched waits in a row that ended short; each doubles the next hold.
    short_streak: u32,
    /// Start of the current load window: wall time, and the thread's CPU time then.
    window: Option<(Instant, Duration)>,
    /// The last full window found the thread loaded.
    loaded: bool,
}

impl BatchState {
    /// Records how many completions (or events) a wakeup reaped.
    #[inline]
    pub fn reaped(&mut self, n: usize) {
        self.last_batch = n;
    }

    /// Whether the wait about to block should be batched: the thread is loaded, no hold is
    /// left, and the last wakeup was busy. `now` is the wall time; `cpu` reads the thread's
    /// CPU time and is called once per window.
    pub fn wants_batch(&mut self, b: &WaitBatching, now: Instant, cpu: impl FnOnce() -> Duration) -> bool {
        match self.window {
            Some((start, _)) if now.duration_since(start) < WINDOW => {}
            Some((start, cpu_then)) => {
                let cpu_now = cpu();
                let busy = cpu_now.saturating_sub(cpu_then);
                self.loaded = busy * 100 >= now.duration_since(start) * b.loaded_percent;
                self.window = Some((now, cpu_now));
            }
            None => self.window = Some((now, cpu())),
        }
        if !self.loaded {
            return false;
        }
        if self.hold > 0 {
            self.hold -= 1;
            return false;
        }
        self.last_batch >= b.busy && b.want > 1
    }

    /// After a batched wait and the reap that followed it: a batch short of `filled` (the
    /// count a full batch reaps) holds batching back for the next `hold` waits, doubled for
    /// each short batch in a row; a full one ends the run.
    pub fn batched_wait_ended(&mut self, b: &WaitBatching, filled: usize) {
        if self.last_batch < filled {
            self.hold = b.hold << self.short_streak;
            self.short_streak = (self.short_streak + 1).min(MAX_BACKOFF);
        } else {
            self.short_streak = 0;
        }
    }

    /// Plain waits left before batching may resume.
    pub fn held(&self) -> u32 {
        self.hold
    }

    /// Whether the last measured window found the thread loaded.
    pub fn loaded(&self) -> bool {
        self.loaded
    }
}

thread_local! {
    static BATCHING: Cell<Option<WaitBatching>> = const { Cell::new(None) };
    static STATE: Cell<BatchState> = Cell::new(BatchState::default());
}

fn with_state<R>(f: impl FnOnce(&mut BatchState) -> R) -> R {
    STATE.with(|c| {
        let mut s = c.get();
        let r = f(&mut s);
        c.set(s);
        r
    })
}

/// Sets (or with `None` clears) batched waits for the runtime of this thread.
pub fn set_wait_batching(b: Option<WaitBatching>) {
    BATCHING.with(|c| c.set(b));
}

/// Records how many completions the last wakeup reaped.
#[inline]
pub(crate) fn reaped(n: usize) {
    with_state(|s| s.reaped(n));
}

/// This thread's CPU time (a `clock_gettime` system call, made once per `WINDOW`).
fn thread_cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The batched wait to make now, if any.
#[inline]
pub(crate) fn wanted() -> Option<WaitBatching> {
    let b = BATCHING.with(|c| c.get())?;
    with_state(|s| s.wants_batch(&b, Instant::now(), thread_cpu)).then_some(b)
}

/// After a batched wait and the reap that followed it (see `BatchState::batched_wait_ended`).
#[inline]
pub(crate) fn batched_wait_ended(filled: usize) {
    if let Some(b) = BATCHING.with(|c| c.get()) {
        with_state(|s| s.batched_wait_ended(&b, filled));
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
