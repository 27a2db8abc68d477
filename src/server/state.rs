//! Policy state that outlives the process: quota usage, restored at startup, written by a
//! background thread at most once a second when it changed, and once more at shutdown.

use super::{shutdown, worker::log};
use crate::clock::unix_now;
use crate::config::Plan;
use crate::policy::quota;
use std::time::Duration;

fn has_quotas(plan: &Plan) -> bool {
    plan.api_keys.keys.iter().any(|k| k.quota.is_some())
}

fn encode(plan: &Plan) -> String {
    let entries: Vec<(&str, (u64, u64))> =
        plan.api_keys.keys.iter().filter_map(|k| Some((k.id.as_str(), k.quota.as_ref()?.snapshot()))).collect();
    quota::encode(&entries)
}

/// Loads persisted quota usage into the plan's counters.
pub fn restore(plan: &Plan) {
    if !has_quotas(plan) {
        return;
    }
    let path = quota::state_path(&plan.server.state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => return log(&format!("cannot read {}: {e}; quotas start from zero", path.display())),
    };
    let now = unix_now();
    for (id, window, used) in quota::decode(&text) {
        if let Some(q) = plan.api_keys.keys.iter().find(|k| k.id == id).and_then(|k| k.quota.as_ref()) {
            q.restore(window, used, now);
        }
    }
}

/// Writes the current usage; `last` holds what was written before (skips unchanged state).
fn persist(plan: &Plan, last: &mut String) {
    let text = encode(plan);
    if text == *last {
        return;
    }
    let dir = &plan.server.state_dir;
    let result = std::fs::create_dir_all(dir).and_then(|_| quota::write_atomic(&quota::state_path(dir), &text));
    match result {
        Ok(()) => *last = text,
        Err(e) => log(&format!("cannot persist quota usage in {}: {e}", dir.display())),
    }
}

/// Starts the persister; it follows the current plan across reloads. Call `finish` with
/// the handle at shutdown.
pub fn start() -> Option<std::thread::JoinHandle<String>> {
    std::thread::Builder::new()
        .name("ringway-state".into())
        .spawn(move || {
            let mut last = String::new();
            while !shutdown::requested() {
                std::thread::sleep(Duration::from_millis(200));
                if let Some(g) = super::reload::current().filter(|g| has_quotas(&g.plan)) {
                    persist(&g.plan, &mut last);
                }
                for _ in 0..4 {
                    if shutdown::requested() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            last
        })
        .ok()
}

/// Final write after the workers have stopped.
pub fn finish(persister: Option<std::thread::JoinHandle<String>>) {
    if let Some(h) = persister {
        let mut last = h.join().unwrap_or_default();
        if let Some(g) = super::reload::current().filter(|g| has_quotas(&g.plan)) {
            persist(&g.plan, &mut last);
        }
    }
}
