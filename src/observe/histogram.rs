//! Exact latency quantiles for `GET /debug/latency`: per-worker hdr histograms per route slot,
//! recorded locally by the worker and published about once a second to a locked snapshot that
//! the admin thread merges. Touches only its own state; no lock on the request path.

use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError, TryLockError};

/// Highest trackable latency in microseconds (60 s); longer requests count as 60 s. With
/// [`SIGFIG`] this makes 20 buckets of 128 counts: 20 KiB per histogram.
pub const HIGH_US: u64 = 60_000_000;
/// Significant figures kept: values are exact to within 1% (in fact 1/128 here).
pub const SIGFIG: u8 = 2;

type Slots = Vec<Option<Box<Histogram<u64>>>>;

fn new_histogram() -> Box<Histogram<u64>> {
    Box::new(Histogram::new_with_bounds(1, HIGH_US, SIGFIG).expect("constant hdr bounds are valid"))
}

/// One worker's published histograms, one per (stage, route) slot, allocated on a slot's first
/// publish and cumulative since start. Shared by the worker's [`LatencyRecorder`] (writer, once a
/// second, never blocking) and the admin thread (reader, at request time).
pub struct LatencySnapshot {
    slots: Mutex<Slots>,
}

impl LatencySnapshot {
    pub(crate) fn new(slots: usize) -> LatencySnapshot {
        LatencySnapshot { slots: Mutex::new((0..slots).map(|_| None).collect()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The worker-local half: hdr histograms (microseconds) per slot, allocated lazily on a slot's
/// first request. Owned by one worker thread; `!Sync` (a `RefCell` inside), never borrowed across
/// an await: `record` and `publish` are plain synchronous calls.
pub struct LatencyRecorder {
    local: RefCell<Slots>,
    snapshot: Arc<LatencySnapshot>,
}

impl LatencyRecorder {
    pub(crate) fn new(snapshot: Arc<LatencySnapshot>) -> LatencyRecorder {
        let n = snapshot.lock().len();
        LatencyRecorder { local: RefCell::new((0..n).map(|_| None).collect()), snapshot }
    }

    /// Records one request of `slot` (= stage * routes + route) lasting `total_ns`. Allocates the
    /// slot's histogram (20 KiB) on its first request only; out-of-range slots are ignored.
    #[inline]
    pub fn record(&self, slot: usize, total_ns: u64) {
        let mut local = self.local.borrow_mut();
        if let Some(h) = local.get_mut(slot) {
            h.get_or_insert_with(new_histogram).saturating_record(total_ns / 1_000);
        }
    }

    /// Merges the local histograms into this worker's snapshot and resets them. Call it off the
    /// request path, about once a second. Never blocks: when the admin thread holds the snapshot
    /// it returns false and the local counts wait for the next call.
    pub fn publish(&self) -> bool {
        let mut snap = match self.snapshot.slots.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let mut local = self.local.borrow_mut();
        for (l, s) in local.iter_mut().zip(snap.iter_mut()) {
            let Some(l) = l.as_mut().filter(|h| !h.is_empty()) else { continue };
            // Same bounds on both sides, so `add` cannot fail.
            let _ = s.get_or_insert_with(new_histogram).add(&**l);
            l.reset();
        }
        true
    }

    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.local.borrow().iter().filter(|h| h.is_some()).count()
    }
}

/// Writes `{"routes":[...]}` over all workers' snapshots: one entry per slot with traffic, in slot
/// order. `name(slot)` gives (stage, route) names for a slot.
pub(crate) fn latency_json<'a>(
    snapshots: &[Arc<LatencySnapshot>],
    name: impl Fn(usize) -> (&'a str, &'a str),
    out: &mut String,
) {
    // Locked in index order by the admin side only; workers only try_lock their own: no deadlock.
    let guards: Vec<_> = snapshots.iter().map(|s| s.lock()).collect();
    let slots = guards.iter().map(|g| g.len()).min().unwrap_or(0);
    let mut merged = new_histogram();
    let mut first = true;
    out.push_str(r#"{"routes":["#);
    for slot in 0..slots {
        merged.reset();
        for g in &guards {
            if let Some(h) = &g[slot] {
                let _ = merged.add(&**h);
            }
        }
        if merged.is_empty() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let (stage, route) = name(slot);
        let ms = |us: u64| us as f64 / 1_000.0;
        let _ = write!(
            out,
            r#"{{"stage":{},"route":{},"count":{},"p50_ms":{},"p90_ms":{},"p99_ms":{},"p999_ms":{},"max_ms":{}}}"#,
            json_str(stage),
            json_str(route),
            merged.len(),
            ms(merged.value_at_quantile(0.5)),
            ms(merged.value_at_quantile(0.9)),
            ms(merged.value_at_quantile(0.99)),
            ms(merged.value_at_quantile(0.999)),
            ms(merged.max()),
        );
    }
    out.push_str("]}");
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(slot: usize) -> (&'static str, &'static str) {
        (["prod", "dev"][slot / 2], ["GET /pets", "GET /pets/{petId}"][slot % 2])
    }

    fn json(snaps: &[Arc<LatencySnapshot>]) -> serde_json::Value {
        let mut out = String::new();
        latency_json(snaps, names, &mut out);
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn lazy_allocation() {
        let snap = Arc::new(LatencySnapshot::new(4));
        let r = LatencyRecorder::new(snap.clone());
        assert_eq!(r.allocated(), 0);
        r.record(1, 5_000);
        r.record(1, 7_000);
        r.record(99, 1_000); // out of range: ignored
        assert_eq!(r.allocated(), 1);
        assert!(r.local.borrow()[0].is_none() && r.local.borrow()[1].is_some());
        assert!(r.publish());
        assert_eq!(snap.lock().iter().filter(|h| h.is_some()).count(), 1);
        assert_eq!(json(&[snap])["routes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn publish_merges_and_resets() {
        let snap = Arc::new(LatencySnapshot::new(4));
        let r = LatencyRecorder::new(snap.clone());
        r.record(2, 1_000_000);
        assert!(r.publish());
        assert!(r.local.borrow()[2].as_ref().unwrap().is_empty());
        r.record(2, 3_000_000);
        r.record(2, 3_000_000);
        assert!(r.publish());
        let g = snap.lock();
        let h = g[2].as_ref().unwrap();
        assert_eq!(h.len(), 3);
        assert!(h.equivalent(h.max(), 3_000));
        drop(g);
        // Nothing new: publishing again changes nothing.
        assert!(r.publish());
        assert_eq!(snap.lock()[2].as_ref().unwrap().len(), 3);
    }

    #[test]
    fn publish_skips_when_admin_holds_the_snapshot() {
        let snap = Arc::new(LatencySnapshot::new(1));
        let r = LatencyRecorder::new(snap.clone());
        r.record(0, 2_000);
        let held = snap.lock();
        assert!(!r.publish());
        drop(held);
        assert!(r.publish());
        assert_eq!(snap.lock()[0].as_ref().unwrap().len(), 1);
    }

    #[test]
    fn quantiles_over_workers() {
        // 1..=1000 µs split over two workers, on slot 3 ("dev", "GET /pets/{petId}").
        let snaps: Vec<_> = (0..2).map(|_| Arc::new(LatencySnapshot::new(4))).collect();
        let recs: Vec<_> = snaps.iter().map(|s| LatencyRecorder::new(s.clone())).collect();
        for us in 1..=1000u64 {
            recs[(us % 2) as usize].record(3, us * 1_000);
        }
        recs.iter().for_each(|r| assert!(r.publish()));
        let v = json(&snaps);
        let routes = v["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 1);
        let r = &routes[0];
        assert_eq!(r["stage"], "dev");
        assert_eq!(r["route"], "GET /pets/{petId}");
        assert_eq!(r["count"], 1000);
        let near = |k: &str, want: f64| {
            let got = r[k].as_f64().unwrap();
            assert!((got - want).abs() <= want * 0.01, "{k}: {got} vs {want}");
        };
        near("p50_ms", 0.5);
        near("p90_ms", 0.9);
        near("p99_ms", 0.99);
        near("p999_ms", 0.999);
        near("max_ms", 1.0);
    }

    #[test]
    fn saturates_above_the_bound_and_escapes_names() {
        let snap = Arc::new(LatencySnapshot::new(1));
        let r = LatencyRecorder::new(snap.clone());
        r.record(0, u64::MAX);
        assert!(r.publish());
        let mut out = String::new();
        latency_json(&[snap], |_| ("a\"b", "GET /x\\y"), &mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["routes"][0]["stage"], "a\"b");
        assert_eq!(v["routes"][0]["route"], "GET /x\\y");
        assert!(v["routes"][0]["max_ms"].as_f64().unwrap() >= 59_000.0);
    }

    #[test]
    fn histogram_size() {
        assert_eq!(new_histogram().distinct_values() * std::mem::size_of::<u64>(), 20 * 1024);
        assert_eq!(std::mem::size_of::<Option<Box<Histogram<u64>>>>(), 8);
    }

    #[test]
    fn empty_json() {
        let mut out = String::new();
        latency_json(&[Arc::new(LatencySnapshot::new(3))], names, &mut out);
        assert_eq!(out, r#"{"routes":[]}"#);
    }
}
