//! Picks a target of an upstream group, per worker: round-robin or least-outstanding over
//! the targets that are not ejected. Passive health: `max_fails` consecutive failures eject
//! a target for a backoff that doubles with each ejection in a row (up to a ceiling).
//! State is per worker (cells, no sharing, no locks); the group itself is plan data.

use std::cell::Cell;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastOutstanding,
}

/// `[upstreams.NAME]`: several targets behind one name.
pub struct Group {
    pub name: String,
    /// Upstream indexes.
    pub targets: Vec<u32>,
    pub balance: Balance,
    pub max_fails: u32,
    pub eject: Duration,
    pub eject_max: Duration,
}

#[derive(Default)]
struct Health {
    outstanding: Cell<u32>,
    fails: Cell<u32>,
    /// Ejections in a row (the backoff doubles with each).
    ejections: Cell<u32>,
    ejected_until: Cell<Option<Instant>>,
}

/// One worker's view of every upstream's health and each group's rotation.
pub struct Balancer {
    health: Vec<Health>,
    next: Vec<Cell<usize>>,
}

impl Balancer {
    pub fn new(upstreams: usize, groups: usize) -> Balancer {
        Balancer {
            health: (0..upstreams).map(|_| Health::default()).collect(),
            next: (0..groups).map(|_| Cell::new(0)).collect(),
        }
    }

    /// The target for the next request to group `gi`, never `exclude` unless it is the only
    /// one. When every target is ejected, the one whose ejection ends first (better a likely
    /// failure than a certain one).
    pub fn pick(&self, g: &Group, gi: usize, now: Instant, exclude: Option<u32>) -> u32 {
        let n = g.targets.len();
        let start = self.next[gi].get();
        let usable = |t: u32| Some(t) != exclude && self.eligible(t, now);
        let mut chosen: Option<(usize, u32)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let t = g.targets[i];
            if !usable(t) {
                continue;
            }
            match g.balance {
                Balance::RoundRobin => {
                    chosen = Some((i, t));
                    break;
                }
                Balance::LeastOutstanding => {
                    let load = self.health[t as usize].outstanding.get();
                    if chosen.is_none_or(|(_, c)| load < self.health[c as usize].outstanding.get()) {
                        chosen = Some((i, t));
                    }
                }
            }
        }
        let (i, t) = chosen.unwrap_or_else(|| {
            let i = (0..n)
                .filter(|&i| n == 1 || Some(g.targets[i]) != exclude)
                .min_by_key(|&i| self.health[g.targets[i] as usize].ejected_until.get())
                .unwrap_or(0);
            (i, g.targets[i])
        });
        self.next[gi].set((i + 1) % n);
        t
    }

    fn eligible(&self, t: u32, now: Instant) -> bool {
        self.health[t as usize].ejected_until.get().is_none_or(|u| u <= now)
    }

    /// A request to `t` starts (least-outstanding counts it until `finished`).
    #[inline]
    pub fn started(&self, t: u32) {
        let h = &self.health[t as usize];
        h.outstanding.set(h.outstanding.get() + 1);
    }

    #[inline]
    pub fn finished(&self, t: u32) {
        let h = &self.health[t as usize];
        h.outstanding.set(h.outstanding.get().saturating_sub(1));
    }

    /// The target answered: it is healthy again.
    #[inline]
    pub fn succeeded(&self, t: u32) {
        let h = &self.health[t as usize];
        if h.fails.get() != 0 || h.ejections.get() != 0 {
            h.fails.set(0);
            h.ejections.set(0);
            h.ejected_until.set(None);
        }
    }

    /// The target refused, reset or timed out. Returns true when this ejected it.
    pub fn failed(&self, g: &Group, t: u32, now: Instant) -> bool {
        let h = &self.health[t as usize];
        let fails = h.fails.get() + 1;
        h.fails.set(fails);
        if fails < g.max_fails.max(1) {
            return false;
        }
        let k = h.ejections.get().min(20);
        let backoff = g.eject.saturating_mul(1 << k).min(g.eject_max);
        h.ejections.set(k + 1);
        h.ejected_until.set(Some(now + backoff));
        // After the ejection one more failure is enough to eject it again.
        h.fails.set(g.max_fails.saturating_sub(1));
        true
    }

    pub fn is_ejected(&self, t: u32, now: Instant) -> bool {
        !self.eligible(t, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(balance: Balance, n: u32) -> Group {
        Group {
            name: "g".into(),
            targets: (0..n).collect(),
            balance,
            max_fails: 2,
            eject: Duration::from_secs(1),
            eject_max: Duration::from_secs(3),
        }
    }

    #[test]
    fn round_robin_rotates() {
        let g = group(Balance::RoundRobin, 3);
        let b = Balancer::new(3, 1);
        let now = Instant::now();
        let picks: Vec<u32> = (0..6).map(|_| b.pick(&g, 0, now, None)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_outstanding_prefers_idle_targets() {
        let g = group(Balance::LeastOutstanding, 3);
        let b = Balancer::new(3, 1);
        let now = Instant::now();
        b.started(0);
        b.started(0);
        b.started(1);
        assert_eq!(b.pick(&g, 0, now, None), 2);
        b.started(2);
        b.started(2);
        assert_eq!(b.pick(&g, 0, now, None), 1);
        b.finished(0);
        b.finished(0);
        assert_eq!(b.pick(&g, 0, now, None), 0);
    }

    #[test]
    fn consecutive_failures_eject_with_doubling_backoff() {
        let g = group(Balance::RoundRobin, 2);
        let b = Balancer::new(2, 1);
        let t0 = Instant::now();
        assert!(!b.failed(&g, 0, t0));
        assert!(b.failed(&g, 0, t0), "second failure in a row ejects");
        assert!(b.is_ejected(0, t0));
        assert!((0..4).all(|_| b.pick(&g, 0, t0, None) == 1));
        // Back after 1 s; one more failure ejects again, for 2 s, then capped at 3 s.
        let t1 = t0 + Duration::from_secs(1);
        assert!(!b.is_ejected(0, t1));
        assert!(b.failed(&g, 0, t1));
        assert!(b.is_ejected(0, t1 + Duration::from_millis(1999)));
        assert!(!b.is_ejected(0, t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        assert!(b.failed(&g, 0, t2));
        assert!(b.is_ejected(0, t2 + Duration::from_millis(2999)));
        assert!(!b.is_ejected(0, t2 + Duration::from_secs(3)));
        // A success clears everything.
        b.succeeded(0);
        assert!(!b.failed(&g, 0, t2));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let g = group(Balance::RoundRobin, 2);
        let b = Balancer::new(2, 1);
        let now = Instant::now();
        assert!(!b.failed(&g, 1, now));
        b.succeeded(1);
        assert!(!b.failed(&g, 1, now));
        assert!(!b.is_ejected(1, now));
    }

    #[test]
    fn all_ejected_picks_the_soonest_back() {
        let g = group(Balance::RoundRobin, 2);
        let b = Balancer::new(2, 1);
        let now = Instant::now();
        b.failed(&g, 1, now);
        b.failed(&g, 1, now);
        let later = now + Duration::from_millis(10);
        b.failed(&g, 0, later);
        b.failed(&g, 0, later);
        assert_eq!(b.pick(&g, 0, later, None), 1);
    }

    #[test]
    fn exclude_skips_the_target_that_just_failed() {
        let g = group(Balance::RoundRobin, 2);
        let b = Balancer::new(2, 1);
        let now = Instant::now();
        assert_eq!(b.pick(&g, 0, now, Some(0)), 1);
        assert_eq!(b.pick(&g, 0, now, Some(1)), 0);
        let single = group(Balance::RoundRobin, 1);
        assert_eq!(b.pick(&single, 0, now, Some(0)), 0);
    }
}
