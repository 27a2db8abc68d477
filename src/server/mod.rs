//! Server: listeners, worker threads, connections, shutdown.

pub mod connection;
pub mod listener;
pub mod notify;
pub mod outcome;
pub mod reload;
pub mod respond;
pub mod shutdown;
pub mod state;
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
pub fn serve(plan: Plan) -> Result<(), String> {
    for addr in &plan.server.listen {
        listener::ensure_free(*addr).map_err(|e| e.to_string())?;
    }
    state::restore(&plan);
    let plan = Arc::new(plan);
    let cache = Arc::new(Store::new(plan.cache.max_bytes));
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gen = reload::install(plan.clone(), Arc::new(new_metrics(&plan)));
    if let Some(addr) = plan.server.admin_listen {
        let admin = crate::observe::admin::Admin { cache: cache.clone(), ready: ready.clone() };
        crate::observe::admin::start(addr, admin)?;
    }
    let n = plan.server.workers;
    let mut per_worker = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ls = Vec::new();
        for addr in &plan.server.listen {
            ls.push(listener::bind(*addr).map_err(|e| e.to_string())?);
        }
        per_worker.push(ls);
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
