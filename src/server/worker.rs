//! A worker: one thread, one monoio runtime, its own listeners, upstream pool, request-id
//! generator and date cache. Nothing here is shared with other workers except the
//! immutable plan and the shutdown flag. A reload gives the thread a new `Worker` built on the
//! new plan; connections move to it between two requests (see `reload.rs`).

use super::reload::{self, Generation};
use super::stream::ClientStream;
use super::{connection, shutdown};
use crate::config::plan::{Driver, Plan};
use crate::http::write::{DateCache, RequestIds};
use crate::observe::access_log::AccessLog;
use crate::observe::histogram::LatencyRecorder;
use crate::observe::metrics::{Metrics, WorkerMetrics};
use crate::policy::cache_store::Store;
use crate::upstream::balance::Balancer;
use crate::upstream::Pool;
use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every worker shares with the others and the admin thread.
pub struct Shared {
    pub gen: Arc<Generation>,
    pub cache: Arc<Store>,
}

/// The thread's current `Worker`; replaced on reload.
pub type Current = Rc<RefCell<Rc<Worker>>>;

/// Bumped on SIGUSR1: workers reopen their access log files.
pub static LOG_REOPEN: AtomicU64 = AtomicU64::new(0);

pub struct Worker {
    pub id: usize,
    /// The plan generation this worker serves.
    pub generation: u64,
    /// A newer generation this worker could not move to (its access log did not open): not
    /// retried, and new connections do not wait for it.
    declined: Cell<u64>,
    pub plan: Arc<Plan>,
    pub metrics: Arc<Metrics>,
    /// This worker's high-resolution latency histograms (published about once a second).
    pub latency: LatencyRecorder,
    /// This worker's access log writer, when `[access_log]` is set.
    pub access_log: Option<RefCell<AccessLog>>,
    pub pool: Pool,
    /// Health and rotation of upstream group targets, as this worker sees them.
    pub balancer: Balancer,
    pub ids: RequestIds,
    pub date: DateCache,
    /// The box-wide response cache (shared by every worker).
    pub cache: Arc<Store>,
    /// Connections with an unanswered request (drained on shutdown), across generations.
    busy: Rc<Cell<usize>>,
    /// Connections accepted that have sent nothing yet (a drain waits for them briefly).
    fresh: Rc<Cell<usize>>,
    /// Accept loops still running (a drain first lets them finish their last accept).
    accepting: Rc<Cell<usize>>,
    /// Client connections open on this thread (a drain gives idle ones a moment).
    open: Rc<Cell<usize>>,
}

impl Worker {
    /// A reload was published that this worker has not moved to yet (it does on its next tick).
    #[inline]
    fn switch_pending(&self) -> bool {
        let n = reload::number();
        n != self.generation && n != self.declined.get()
    }

    /// This worker's counters.
    #[inline]
    pub fn m(&self) -> &WorkerMetrics {
        self.metrics.worker(self.id)
    }

    #[inline]
    pub fn shutting_down(&self) -> bool {
        shutdown::requested()
    }

    pub fn set_fresh(&self, fresh: bool) {
        let f = self.fresh.get();
        self.fresh.set(if fresh { f + 1 } else { f.saturating_sub(1) });
    }

    pub fn set_open(&self, open: bool) {
        let o = self.open.get();
        self.open.set(if open { o + 1 } else { o.saturating_sub(1) });
    }

    pub fn set_busy(&self, busy: bool) {
        let b = self.busy.get();
        self.busy.set(if busy { b + 1 } else { b.saturating_sub(1) });
    }

    #[inline]
    pub fn new_id(&self) -> [u8; 36] {
        let mut id = [0u8; 36];
        self.ids.write(&mut id);
        id
    }

    /// Ends a response head: `Date`, `x-amzn-RequestId`, `Connection`, blank line.
    #[inline]
    pub fn common_headers(&self, out: &mut Vec<u8>, close: bool, minor: u8) {
        let id = self.new_id();
        self.end_head(out, &id, close, minor);
    }

    #[inline]
    pub fn end_head(&self, out: &mut Vec<u8>, id: &[u8; 36], close: bool, minor: u8) {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(&self.date.get());
        out.extend_from_slice(b"\r\nx-amzn-RequestId: ");
        out.extend_from_slice(id);
        if close {
            out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        } else if minor == 0 {
            out.extend_from_slice(b"\r\nConnection: keep-alive\r\n\r\n");
        } else {
            out.extend_from_slice(b"\r\n\r\n");
        }
    }
}

/// What a worker thread reports back once it has started (or failed to).
pub type Ready = Result<String, String>;

/// io_uring setup flags, tried in this order; each worker logs the set it got.
/// DEFER_TASKRUN (Linux 6.1) runs completion work only when the worker waits for completions
/// (`io_uring_enter` with GETEVENTS), in one batch, instead of through the task-work queue after
/// every wakeup. monoio waits that way whenever its run queue is empty, and no ringway task wakes
/// itself in a loop, so a completion is reaped at the latest when the queued tasks have run.
/// Each set: (label, COOP_TASKRUN + SINGLE_ISSUER, DEFER_TASKRUN).
const URING_FLAG_SETS: [(&str, bool, bool); 3] = [
    ("io_uring (coop_taskrun, single_issuer, defer_taskrun)", true, true),
    ("io_uring (coop_taskrun, single_issuer)", true, false),
    ("io_uring (no setup flags)", false, false),
];

/// How a busy io_uring worker waits (our monoio patch, vendor/monoio/RINGWAY.md). Only while
/// the worker is loaded (on the CPU 40 % or more of a 2 ms window) and after a wakeup that
/// reaped 8 or more completions: the next wait submits, then asks for 12 more completions than
/// the submission posted at once (sends that went out), and 200 µs into it settles for one.
/// Under load the worker then sleeps and wakes once per batch, not once per completion: -15.5 %
/// CPU per request at 64 connections (bench/ab, 9 rounds) against 6 completions and 50 µs,
/// with the same p50 and req/s. The cost is at most 200 µs added to a wait, and only for a
/// loaded worker; a lighter one (10,000 req/s here) waits for one completion, as without the
/// patch. A batched wait that ends short means too few connections are active to fill one
/// (each waits on this worker): the next 4 waits are plain, 8 after a second short one in a
/// row, and so on up to 256, so a client with a few connections is not slowed (8 and 16
/// connections: req/s within noise; 32: 13 % less CPU per request for 5 % fewer req/s).
const WAIT_BATCHING: monoio::WaitBatching =
    monoio::WaitBatching { busy: 8, want: 12, min_wait_us: 200, hold: 4, loaded_percent: 40 };

/// The same for an epoll worker: when loaded and after a wakeup with 8 or more events, a
/// worker about to block (nothing pending) sleeps 100 µs first, as `epoll_wait` has no
/// minimum batch, so it wakes to a batch instead of to one event; a sleep that gathers fewer
/// than 8 holds it back for 16 waits (then 32, ...). The sleep adds at most about 150 µs
/// (timer slack) to a request, and only under load. Longer sleeps did not help here: an epoll
/// worker already sleeps only about once per 15 requests at 64 connections, and its cost is
/// the 4.5 system calls per request.
const EPOLL_WAIT_BATCHING: monoio::WaitBatching =
    monoio::WaitBatching { busy: 8, want: 8, min_wait_us: 100, hold: 16, loaded_percent: 40 };

/// Whether the running kernel takes `min_wait_usec` (Linux 6.12; an older one ignores it when
/// the same call submits work, so the release is checked instead of waiting for an EINVAL).
fn kernel_has_min_wait() -> bool {
    // SAFETY: uname fills the utsname buffer we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return false;
    }
    // SAFETY: uname wrote a NUL-terminated release string into the buffer.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) };
    kernel_at_least(release.to_bytes(), (6, 12))
}

/// `release` ("6.18.44-fc-v1300") is at least `want` (major, minor).
fn kernel_at_least(release: &[u8], want: (u32, u32)) -> bool {
    let mut parts = release.split(|&c| c == b'.').map(|p| {
        let digits = p.iter().take_while(|c| c.is_ascii_digit()).count();
        std::str::from_utf8(&p[..digits]).ok().and_then(|d| d.parse::<u32>().ok())
    });
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => false,
    }
}

/// Runs one worker on the current thread until shutdown. `listeners` are already bound.
pub fn run(id: usize, shared: Shared, listeners: Vec<std::net::TcpListener>, ready: Sender<Ready>) {
    let plan = shared.gen.plan.clone();
    let force_epoll = std::env::var("MONOIO_FORCE_LEGACY_DRIVER").is_ok_and(|v| v == "1");
    let driver = if force_epoll { Driver::Epoll } else { plan.server.driver };
    if driver != Driver::Epoll {
        let mut last_err = String::new();
        for (i, (label, coop, defer)) in URING_FLAG_SETS.into_iter().enumerate() {
            let mut b = io_uring::IoUring::builder();
            if coop {
                b.setup_coop_taskrun().setup_single_issuer();
            }
            if defer {
                b.setup_defer_taskrun();
            }
            match RuntimeBuilder::<IoUringDriver>::new().uring_builder(b).with_entries(1024).enable_timer().build() {
                Ok(mut rt) => {
                    monoio::set_wait_batching(kernel_has_min_wait().then_some(WAIT_BATCHING));
                    return rt.block_on(main(id, shared, listeners, ready, label));
                }
                Err(e) => {
                    if i + 1 < URING_FLAG_SETS.len() {
                        log(&format!("worker {id}: {label} unavailable ({e}); trying fewer flags"));
                    }
                    last_err = e.to_string();
                }
            }
        }
        if driver == Driver::IoUring {
            let _ =
                ready.send(Err(format!("worker {id}: driver = \"io_uring\" but io_uring is unavailable: {last_err}")));
            return;
        }
        log(&format!("worker {id}: io_uring unavailable ({last_err}); falling back to epoll"));
    }
    match RuntimeBuilder::<LegacyDriver>::new().enable_timer().build() {
        Ok(mut rt) => {
            monoio::set_wait_batching(Some(EPOLL_WAIT_BATCHING));
            rt.block_on(main(id, shared, listeners, ready, "epoll"))
        }
        Err(e) => {
            let _ = ready.send(Err(format!("worker {id}: cannot start the epoll driver: {e}")));
        }
    }
}

/// A worker on `gen`'s plan. Err: the access log cannot be opened.
fn build(
    id: usize,
    gen: &Generation,
    cache: Arc<Store>,
    (busy, fresh, accepting, open): Counts,
) -> Result<Worker, String> {
    let plan = gen.plan.clone();
    let access_log = match &plan.access_log {
        None => None,
        Some(a) => match AccessLog::open(a.target.clone(), a.format.clone()) {
            Ok(l) => Some(RefCell::new(l)),
            Err(e) => return Err(format!("worker {id}: cannot open the access log {:?}: {e}", a.target)),
        },
    };
    let seed = (std::process::id() as u64) << 32 ^ (id as u64) ^ nanos();
    Ok(Worker {
        id,
        generation: gen.number,
        declined: Cell::new(gen.number),
        latency: gen.metrics.recorder(id),
        metrics: gen.metrics.clone(),
        access_log,
        pool: Pool::new(plan.upstreams.len(), plan.upstream.pool_max_idle, plan.upstream.pool_idle_timeout),
        balancer: Balancer::new(plan.upstreams.len(), plan.groups.len()),
        plan,
        ids: RequestIds::new(seed),
        date: DateCache::default(),
        cache,
        busy,
        fresh,
        accepting,
        open,
    })
}

/// The drain counters, shared by the worker of every generation on this thread.
type Counts = (Rc<Cell<usize>>, Rc<Cell<usize>>, Rc<Cell<usize>>, Rc<Cell<usize>>);

async fn main(id: usize, shared: Shared, listeners: Vec<std::net::TcpListener>, ready: Sender<Ready>, driver: &str) {
    let Shared { gen, cache } = shared;
    let cell = || Rc::new(Cell::new(0));
    let (busy, fresh, accepting, open) = (cell(), cell(), cell(), cell());
    let counts = || (busy.clone(), fresh.clone(), accepting.clone(), open.clone());
    let w = match build(id, &gen, cache.clone(), counts()) {
        Ok(w) => Rc::new(w),
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let current: Current = Rc::new(RefCell::new(w));
    // One stop signal per accept loop: shutdown fires them all, a reload those of the
    // addresses it removed.
    let mut loops: Vec<(std::net::SocketAddr, Rc<shutdown::LocalSignal>)> = Vec::new();
    let mut bound = Vec::new();
    for l in listeners {
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        match monoio::net::TcpListener::from_std(l) {
            Ok(l) => bound.push((l, port)),
            Err(e) => {
                let _ = ready.send(Err(format!("worker {id}: cannot register listener: {e}")));
                return;
            }
        }
    }
    for (l, port) in bound {
        loops.push(spawn_accept(&current, l, port));
    }
    let _ = ready.send(Ok(format!("worker {id}: driver {driver}")));
    drop(ready);

    let mut tick = 0u64;
    let mut reopen_seen = LOG_REOPEN.load(Ordering::Relaxed);
    while !shutdown::requested() {
        monoio::time::sleep(TICK).await;
        tick += 1;
        let w = current.borrow().clone();
        if w.switch_pending() {
            if let Some(g) = reload::current() {
                match build(id, &g, cache.clone(), counts()) {
                    Ok(nw) => {
                        w.latency.publish();
                        for l in reload::take_listeners(id) {
                            let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                            match monoio::net::TcpListener::from_std(l) {
                                Ok(l) => loops.push(spawn_accept(&current, l, port)),
                                Err(e) => log(&format!("worker {id}: cannot register a new listener: {e}")),
                            }
                        }
                        loops.retain(|(addr, stop)| {
                            let keep = nw.plan.server.listen.contains(addr);
                            if !keep {
                                stop.fire();
                            }
                            keep
                        });
                        // Idle upstream connections stay when the upstream is the same.
                        let (old, new) = (&w.plan.upstreams, &nw.plan.upstreams);
                        nw.pool.adopt(&w.pool, |i| {
                            new.iter().position(|u| u.name == old[i].name && u.addr == old[i].addr)
                        });
                        *current.borrow_mut() = Rc::new(nw);
                    }
                    Err(e) => {
                        log(&format!("{e}; staying on generation {}", w.generation));
                        w.declined.set(g.number);
                    }
                }
            }
        }
        let w = current.borrow().clone();
        housekeeping(&w, tick, &mut reopen_seen);
    }
    for (_, stop) in &loops {
        stop.fire();
    }
    let w = current.borrow().clone();
    let started = Instant::now();
    let deadline = started + w.plan.server.shutdown_timeout;
    let waiting = || {
        accepting.get() > 0
            || busy.get() > 0
            || (fresh.get() > 0 && started.elapsed() < connection::DRAIN_FIRST_REQUEST)
            || (open.get() > 0 && started.elapsed() < connection::DRAIN_IDLE)
    };
    while waiting() && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(5)).await;
    }
    if busy.get() > 0 {
        log(&format!("worker {id}: drain time over with {} requests in flight", busy.get()));
    }
    w.latency.publish();
    if let Some(l) = &w.access_log {
        l.borrow_mut().flush();
    }
}

/// Off the request path, every 50 ms tick: access log flush (200 ms) and reopen (SIGUSR1),
/// latency histograms published for the admin thread (1 s).
fn housekeeping(w: &Worker, tick: u64, reopen_seen: &mut u64) {
    if let Some(l) = &w.access_log {
        let mut l = l.borrow_mut();
        let gen = LOG_REOPEN.load(Ordering::Relaxed);
        if gen != *reopen_seen {
            *reopen_seen = gen;
            if let Err(e) = l.reopen() {
                log(&format!("worker {}: cannot reopen the access log: {e}", w.id));
            }
        }
        if tick % 4 == 0 {
            l.flush();
            w.m().access_log_dropped(l.dropped());
        }
    }
    if tick % 20 == 0 {
        w.latency.publish();
    }
}

/// Starts accepting on `l`; returns its address and the signal that stops it.
fn spawn_accept(
    current: &Current,
    l: monoio::net::TcpListener,
    port: u16,
) -> (std::net::SocketAddr, Rc<shutdown::LocalSignal>) {
    let addr = l.local_addr().unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], port)));
    let stop = Rc::new(shutdown::LocalSignal::default());
    let w = current.borrow().clone();
    w.accepting.set(w.accepting.get() + 1);
    let (current, signal) = (current.clone(), stop.clone());
    monoio::spawn(async move {
        accept_loop(current.clone(), l, addr, signal).await;
        let w = current.borrow().clone();
        w.accepting.set(w.accepting.get().saturating_sub(1));
    });
    (addr, stop)
}

/// Most connections an io_uring accept loop takes from the backlog after one accept.
const BACKLOG_TAKE: usize = 16;

/// Accepts on `listener` until `stop`. On an io_uring worker each completed accept
/// is followed by plain non-blocking `accept4` calls until the backlog is empty (at most
/// `BACKLOG_TAKE`): one accept is in flight per listener, and without this a burst of new
/// connections was taken one per `io_uring_enter`. An epoll worker's accept already does
/// that, as the listener stays readable until an accept fails with EAGAIN.
async fn accept_loop(
    current: Current,
    listener: monoio::net::TcpListener,
    addr: std::net::SocketAddr,
    stop: Rc<shutdown::LocalSignal>,
) {
    let stopped = stop.wait();
    let mut stopped = std::pin::pin!(stopped);
    // io_uring only: a std view of the socket for the backlog accepts, which must not block
    // (listener::bind makes it non-blocking already; made sure here). ManuallyDrop:
    // `listener` owns the fd.
    let backlog = (!monoio::utils::is_legacy())
        .then(|| {
            // SAFETY: the fd is open for as long as `listener` lives, which outlives the view.
            std::mem::ManuallyDrop::new(unsafe {
                <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(std::os::fd::AsRawFd::as_raw_fd(
                    &listener,
                ))
            })
        })
        .filter(|l| l.set_nonblocking(true).is_ok());
    // One canceller for the loop's life (an accept registers with it and leaves it again):
    // no allocation per accepted connection.
    let mut canceller = monoio::io::Canceller::new();
    loop {
        // On stop the accept is cancelled and then awaited: with io_uring it may already
        // have taken a connection, which is then served rather than dropped (the socket may
        // live on in another process after a handover).
        let accept = listener.cancelable_accept(canceller.handle());
        let mut accept = std::pin::pin!(accept);
        let (accepted, last) = monoio::select! {
            r = &mut accept => (r, false),
            _ = &mut stopped => {
                let _ = std::mem::take(&mut canceller).cancel();
                (accept.await, true)
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                serve_accepted(&current, stream, peer, addr).await;
                if let Some(backlog) = backlog.as_ref().filter(|_| !last) {
                    for _ in 0..BACKLOG_TAKE {
                        // WouldBlock ends it; another error (EMFILE) is met again by the next
                        // accept, which backs off.
                        let Ok((s, peer)) = backlog.accept() else { break };
                        match monoio::net::TcpStream::from_std(s) {
                            Ok(stream) => serve_accepted(&current, stream, peer, addr).await,
                            Err(e) => log(&format!("worker {}: accept failed: {e}", current.borrow().id)),
                        }
                    }
                }
            }
            Err(_) if last => {}
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning.
                log(&format!("worker {}: accept failed: {e}", current.borrow().id));
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if last {
            break;
        }
    }
}

/// Starts serving one accepted connection.
async fn serve_accepted(
    current: &Current,
    stream: monoio::net::TcpStream,
    peer: std::net::SocketAddr,
    addr: std::net::SocketAddr,
) {
    // TCP_NODELAY comes from the listener (listener::prepare).
    // A connection accepted after a reload was published is served on the new plan
    // (its certificates, routes): wait for this thread's switch, a tick at most.
    if current.borrow().switch_pending() {
        await_switch(current).await;
    }
    // Counted before the task runs: a drain must not end while it is queued.
    let w = current.borrow().clone();
    w.set_fresh(true);
    match w.plan.server.tls_for(addr) {
        None => {
            let stream = ClientStream::Plain(stream);
            monoio::spawn(connection::serve(current.clone(), stream, peer, addr.port()));
        }
        Some(tls) => {
            let acceptor = monoio_rustls::TlsAcceptor::from(tls.clone());
            monoio::spawn(connection::serve_tls(current.clone(), stream, peer, addr.port(), acceptor));
        }
    }
}

/// Waits until the worker tick has moved this thread to the published generation (or declined
/// it); bounded, so a stalled tick cannot hold the accept loop.
async fn await_switch(current: &Current) {
    let deadline = Instant::now() + SWITCH_WAIT;
    while current.borrow().switch_pending() && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The worker tick's period: how long a published reload may take to reach this thread.
const TICK: Duration = Duration::from_millis(50);
/// The longest a new connection waits for its thread to move to a published reload.
const SWITCH_WAIT: Duration = Duration::from_millis(200);

fn nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Operational log line on stderr (never on the request path).
pub fn log(msg: &str) {
    eprintln!("ringway: {msg}");
}

#[cfg(test)]
mod tests {
    use super::{kernel_at_least, EPOLL_WAIT_BATCHING, WAIT_BATCHING};
    use monoio::BatchState;
    use std::time::{Duration, Instant};

    /// Drives `s` through `windows` 2 ms windows in which the thread used `cpu_percent` of the
    /// wall time, one wait per 100 µs; returns the last answer.
    fn run_windows(s: &mut BatchState, start: Instant, windows: u32, cpu_percent: u32) -> bool {
        let mut wanted = false;
        for i in 0..=windows * 20 {
            let now = start + Duration::from_micros(100 * i as u64);
            let cpu = Duration::from_micros(100 * i as u64 * cpu_percent as u64 / 100);
            s.reaped(20);
            wanted = s.wants_batch(&WAIT_BATCHING, now, || cpu);
        }
        wanted
    }

    #[test]
    fn a_worker_batches_only_while_loaded() {
        let mut s = BatchState::default();
        let t0 = Instant::now();
        // 25 % busy (about 10,000 req/s here): busy wakeups, but every wait stays plain.
        assert!(!run_windows(&mut s, t0, 3, 25));
        assert!(!s.loaded());
        // 70 % busy (64 connections here): batched.
        let mut s = BatchState::default();
        assert!(run_windows(&mut s, t0, 3, 70));
        assert!(s.loaded());
        // Loaded, but the last wakeup reaped fewer than `busy`: plain.
        s.reaped(WAIT_BATCHING.busy - 1);
        assert!(!s.wants_batch(&WAIT_BATCHING, t0 + Duration::from_millis(6), || Duration::from_millis(5)));
    }

    #[test]
    fn short_batches_in_a_row_double_the_hold_and_a_full_one_ends_the_run() {
        for b in [WAIT_BATCHING, EPOLL_WAIT_BATCHING] {
            let mut s = BatchState::default();
            assert!(run_windows(&mut s, Instant::now(), 2, 90));
            let filled = 30;
            let mut expect = b.hold;
            for _ in 0..10 {
                s.reaped(filled - 1);
                s.batched_wait_ended(&b, filled);
                assert_eq!(s.held(), expect);
                expect = (expect * 2).min(b.hold << 6);
            }
            // Held waits are plain, even after busy wakeups; then batching resumes.
            let now = Instant::now();
            for _ in 0..b.hold << 6 {
                s.reaped(20);
                assert!(!s.wants_batch(&b, now, || Duration::ZERO));
            }
            s.reaped(20);
            assert!(s.wants_batch(&b, now, || Duration::ZERO));
            // A full batch ends the run: the next short one holds `hold` again.
            s.reaped(filled);
            s.batched_wait_ended(&b, filled);
            s.reaped(filled - 1);
            s.batched_wait_ended(&b, filled);
            assert_eq!(s.held(), b.hold);
        }
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(kernel_at_least(b"6.18.44-fc-v1300", (6, 12)));
        assert!(kernel_at_least(b"6.12.0", (6, 12)));
        assert!(kernel_at_least(b"7.0-rc1", (6, 12)));
        assert!(!kernel_at_least(b"6.11.9-generic", (6, 12)));
        assert!(!kernel_at_least(b"6.1.0-28-amd64", (6, 12)));
        assert!(!kernel_at_least(b"5.15.0", (6, 12)));
        assert!(!kernel_at_least(b"garbage", (6, 12)));
        assert!(!kernel_at_least(b"", (6, 12)));
    }
}
