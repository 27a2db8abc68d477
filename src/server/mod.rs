//! Server: listeners, worker threads, connections, shutdown.

pub mod connection;
pub mod handover;
pub mod listener;
pub mod notify;
pub mod outcome;
pub mod reload;
pub mod respond;
pub mod shutdown;
pub mod state;
pub mod stream;
pub mod timer;
pub mod tls;
pub mod validation;
pub mod worker;

use crate::config::Plan;
use crate::policy::cache_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Reloads the config and logs the outcome (SIGHUP, `POST /reload`).
pub fn reload_now() -> Result<String, String> {
    let result = reload::reload(new_metrics);
    match &result {
        Ok(summary) => worker::log(summary),
        Err(e) => worker::log(&format!("reload failed, still serving the previous config: {e}")),
    }
    result
}

/// The process's metrics, labelled from the plan.
fn new_metrics(plan: &Plan) -> crate::observe::metrics::Metrics {
    let forced_epoll = std::env::var("MONOIO_FORCE_LEGACY_DRIVER").is_ok_and(|v| v == "1");
    let labels = crate::observe::metrics::Labels {
        stages: plan.stages.iter().map(|s| s.name.clone()).collect(),
        routes: plan.route_ids(),
        upstreams: plan.upstreams.iter().map(|u| u.name.clone()).collect(),
        buckets: plan.metrics.buckets.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        driver: if forced_epoll { "epoll".into() } else { plan.server.driver.as_str().into() },
    };
    crate::observe::metrics::Metrics::new(labels, plan.server.workers)
}

/// Binds, starts every worker, waits for SIGTERM/SIGINT, drains, returns.
/// `upgrade`: take the listening sockets of the running process (over `control_socket`)
/// instead of binding them; that process then drains and exits.
pub fn serve(plan: Plan, upgrade: bool) -> Result<(), String> {
    let mut inherited = match (&plan.server.control_socket, upgrade) {
        (Some(path), true) => handover::take_over(path).map_err(|e| format!("upgrade: {e}"))?,
        (None, true) => return Err("--upgrade needs server.control_socket in the config".into()),
        (_, false) => handover::from_systemd(),
    };
    let n = plan.server.workers;
    // Addresses not inherited: n listeners each, bound now so that a port another process
    // serves fails the start before any worker runs.
    let mut fresh = Vec::new();
    for addr in &plan.server.listen {
        if !inherited.listeners.iter().any(|(a, _)| a == addr) {
            fresh.push((*addr, listener::bind_all(*addr, n).map_err(|e| e.to_string())?));
        }
    }
    state::restore(&plan);
    // JWKS keys load before any worker takes traffic; a thread refreshes them from then on.
    crate::policy::authorizer::jwks::start();
    let plan = Arc::new(plan);
    let cache = Arc::new(Store::new(plan.cache.max_bytes));
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gen = reload::install(plan.clone(), Arc::new(new_metrics(&plan)));
    if let Some(addr) = plan.server.admin_listen {
        let admin = crate::observe::admin::Admin { cache: cache.clone(), ready: ready.clone() };
        let handed = inherited.admin.take().filter(|(a, _)| *a == addr).map(|(_, l)| l);
        crate::observe::admin::start(addr, admin, handed)?;
    }
    let mut per_worker: Vec<Vec<std::net::TcpListener>> = (0..n).map(|_| Vec::new()).collect();
    for ls in per_worker.iter_mut() {
        for addr in &plan.server.listen {
            // A socket handed over keeps its queue; bind only what is missing. A systemd
            // socket is one for all workers.
            let l = match inherited.listeners.iter().position(|(a, _)| a == addr) {
                Some(i) if inherited.shared => inherited.listeners[i].1.try_clone().map_err(|e| e.to_string())?,
                Some(i) => inherited.listeners.swap_remove(i).1,
                None => match fresh.iter_mut().find(|(a, _)| a == addr).and_then(|(_, ls)| ls.pop()) {
                    Some(l) => l,
                    None => return Err(format!("{addr}: no listener left for a worker")),
                },
            };
            prepare(&l, *addr, plan.server.defer_accept);
            handover::register(*addr, &l);
            ls.push(l);
        }
    }
    // More sockets handed over than this process has workers: accept on them too.
    let extra = if inherited.shared { Vec::new() } else { inherited.listeners };
    for (i, (addr, l)) in extra.into_iter().enumerate() {
        if plan.server.listen.contains(&addr) {
            prepare(&l, addr, plan.server.defer_accept);
            handover::register(addr, &l);
            per_worker[i % n].push(l);
        }
    }
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGUSR1, SIGHUP])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    let (tx, rx) = std::sync::mpsc::channel();
    let mut threads = Vec::with_capacity(n);
    for (id, ls) in per_worker.into_iter().enumerate() {
        let shared = worker::Shared { gen: gen.clone(), cache: cache.clone() };
        let tx = tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("ringway-w{id}"))
            .spawn(move || worker::run(id, shared, ls, tx))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        threads.push(t);
    }
    drop(tx);
    for _ in 0..n {
        match rx.recv() {
            Ok(Ok(line)) => worker::log(&line),
            Ok(Err(e)) => {
                shutdown::request();
                return Err(e);
            }
            Err(_) => {
                shutdown::request();
                return Err("a worker exited during startup".into());
            }
        }
    }
    ready.store(true, std::sync::atomic::Ordering::Release);
    notify::ready();
    let persister = state::start();
    let addrs: Vec<String> = plan.server.listen.iter().map(|a| a.to_string()).collect();
    if let Some(path) = &plan.server.control_socket {
        handover::serve_control(path).map_err(|e| format!("control_socket {}: {e}", path.display()))?;
    }
    worker::log(&format!("ready: {n} workers on {}", addrs.join(", ")));

    // SIGUSR1: workers reopen their access log files (logrotate); SIGHUP: reload the config.
    // Then wait on.
    let sig = signals.forever().find(|&s| match s {
        SIGUSR1 => {
            worker::LOG_REOPEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }
        SIGHUP => {
            let _ = reload_now();
            false
        }
        _ => true,
    });
    worker::log(&format!(
        "shutting down (signal {}; draining up to {} ms)",
        sig.unwrap_or(0),
        plan.server.shutdown_timeout.as_millis()
    ));
    notify::stopping();
    shutdown::request();
    let limit = std::time::Instant::now() + plan.server.shutdown_timeout + Duration::from_secs(2);
    for t in threads {
        while !t.is_finished() && std::time::Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
    state::finish(persister);
    worker::log("stopped");
    Ok(())
}

/// Listener options (listener::prepare); a failure costs a little speed, not the listener.
pub(crate) fn prepare(l: &std::net::TcpListener, addr: std::net::SocketAddr, defer_accept: bool) {
    if let Err(e) = listener::prepare(l, defer_accept) {
        worker::log(&format!("{addr}: cannot set TCP_NODELAY/TCP_DEFER_ACCEPT on the listener: {e}"));
    }
}
