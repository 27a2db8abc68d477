//! Hot reload: the process's current plan and its metrics, swapped as a whole. SIGHUP (or
//! `POST /reload` on the admin listener) reads, validates and compiles the config file again;
//! an invalid one is logged as `file:line:col: message` and the running plan stays. A valid
//! one takes over the quota counters and throttle buckets whose identity is unchanged, then
//! is published; each worker picks it up on its next tick (a connection accepted after the
//! publication waits for that tick), and each open connection between two requests, so a
//! request always finishes on the plan it started with. Listen addresses
//! added by the reload are bound here; removed ones are closed by the workers.

use crate::config::plan::Plan;
use crate::observe::metrics::Metrics;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// One generation: a plan and the metrics labelled for it.
pub struct Generation {
    pub number: u64,
    pub plan: Arc<Plan>,
    pub metrics: Arc<Metrics>,
}

struct Current {
    gen: Mutex<Arc<Generation>>,
    number: AtomicU64,
}

static CURRENT: OnceLock<Current> = OnceLock::new();

/// Listeners bound for addresses a reload added, by worker; each worker takes its own when
/// it moves to the new generation.
static NEW_LISTENERS: Mutex<Vec<(usize, std::net::TcpListener)>> = Mutex::new(Vec::new());

/// The listeners bound for worker `id` by reloads since it last looked.
pub fn take_listeners(id: usize) -> Vec<std::net::TcpListener> {
    let mut all = NEW_LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
    let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|(w, _)| *w == id);
    *all = rest;
    mine.into_iter().map(|(_, l)| l).collect()
}

/// Installs the first generation (at startup).
pub fn install(plan: Arc<Plan>, metrics: Arc<Metrics>) -> Arc<Generation> {
    let g = Arc::new(Generation { number: 0, plan, metrics });
    let cur = CURRENT.get_or_init(|| Current { gen: Mutex::new(g.clone()), number: AtomicU64::new(0) });
    *cur.gen.lock().unwrap_or_else(|e| e.into_inner()) = g.clone();
    cur.number.store(0, Ordering::Release);
    g
}

/// The current generation's number: cheap, for polling.
#[inline]
pub fn number() -> u64 {
    CURRENT.get().map_or(0, |c| c.number.load(Ordering::Acquire))
}

/// The current generation (off the request path: takes a lock).
pub fn current() -> Option<Arc<Generation>> {
    CURRENT.get().map(|c| c.gen.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

/// Reloads the config the current plan came from. Ok: a summary line; Err: why not (the
/// running plan stays).
pub fn reload(new_metrics: impl Fn(&Plan) -> Metrics) -> Result<String, String> {
    let cur = CURRENT.get().ok_or("not running")?;
    // One reload at a time: hold the lock while compiling (reloads are rare).
    let mut slot = cur.gen.lock().unwrap_or_else(|e| e.into_inner());
    let old = slot.clone();
    let source = old.plan.source.clone();
    if source.starts_with('<') {
        old.metrics.config_reload(false);
        return Err(format!("{source} cannot be reloaded (start with --config FILE)"));
    }
    let mut plan = match crate::config::load(&source) {
        Ok(p) => p,
        Err(e) => {
            old.metrics.config_reload(false);
            return Err(e.to_string());
        }
    };
    // Every worker opens the access log when it moves to the plan: a target it cannot open
    // fails the reload here rather than leaving the workers on the old plan.
    if let Some(a) = &plan.access_log {
        if let Err(e) = crate::observe::access_log::check_target(&a.target) {
            old.metrics.config_reload(false);
            return Err(format!("{source}: cannot open the access log {:?}: {e}", a.target));
        }
    }
    let mut notes = Vec::new();
    // New addresses are bound now (one SO_REUSEPORT listener per running worker), so a port
    // that cannot be bound fails the reload instead of half-applying it. Removed addresses
    // are closed by each worker when it moves to the new plan.
    let workers = old.plan.server.workers;
    let mut bound = Vec::new();
    for addr in plan.server.listen.iter().filter(|a| !old.plan.server.listen.contains(a)) {
        match super::listener::bind_all(*addr, workers) {
            Ok(ls) => {
                for l in &ls {
                    super::prepare(l, *addr, plan.server.defer_accept);
                    super::handover::register(*addr, l);
                }
                bound.extend(ls.into_iter().enumerate());
            }
            Err(e) => {
                old.metrics.config_reload(false);
                return Err(format!("{source}: cannot listen on {addr}: {e}"));
            }
        }
    }
    if plan.server.workers != old.plan.server.workers {
        notes.push("a new worker count takes effect on restart");
    }
    if plan.server.defer_accept != old.plan.server.defer_accept {
        let defer = plan.server.defer_accept;
        super::handover::each(|l| {
            if let Ok(addr) = l.local_addr() {
                super::prepare(l, addr, defer);
            }
        });
    }
    if plan.server.admin_listen != old.plan.server.admin_listen {
        notes.push("admin_listen changes take effect on restart");
    }
    carry_state(&old.plan, &mut plan);
    let metrics = Arc::new(new_metrics(&plan));
    metrics.carry_reloads(&old.metrics);
    metrics.config_reload(true);
    let number = old.number + 1;
    let summary = format!(
        "reloaded {} (generation {number}, {} routes, checksum {}){}{}",
        plan.source,
        plan.routes.len(),
        plan.checksum,
        if notes.is_empty() { "" } else { "; " },
        notes.join("; ")
    );
    for addr in old.plan.server.listen.iter().filter(|a| !plan.server.listen.contains(a)) {
        super::handover::unregister(*addr);
    }
    *slot = Arc::new(Generation { number, plan: Arc::new(plan), metrics });
    NEW_LISTENERS.lock().unwrap_or_else(|e| e.into_inner()).extend(bound);
    cur.number.store(number, Ordering::Release);
    Ok(summary)
}

/// Quota usage by API key id and throttle buckets by (stage, route) move to the new plan
/// when their limits are the same. A quota is shared, not copied: until every worker has
/// switched, requests still served with the old plan count on the same counter.
fn carry_state(old: &Plan, new: &mut Plan) {
    for k in &mut new.api_keys.keys {
        let Some(q) = &k.quota else { continue };
        let prev = old.api_keys.keys.iter().find(|o| o.id == k.id).and_then(|o| o.quota.as_ref());
        if let Some(p) = prev.filter(|p| p.limit == q.limit && p.period == q.period) {
            k.quota = Some(p.clone());
        }
    }
    for (si, st) in new.stages.iter().enumerate() {
        let Some(osi) = old.stages.iter().position(|o| o.name == st.name) else { continue };
        for (ri, r) in new.routes.iter().enumerate() {
            let Some(ori) = old.routes.iter().position(|o| o.path == r.path && o.method == r.method) else { continue };
            if let (Some(b), Some(ob)) = (new.throttle(si, ri as u32), old.throttle(osi, ori as u32)) {
                b.carry_from(ob);
            }
        }
    }
    if let (Some(b), Some(ob)) = (&new.global_throttle, &old.global_throttle) {
        b.carry_from(ob);
    }
}
