//! Token-bucket throttling, exact across workers: GCRA on one atomic per bucket.
//!
//! A bucket of `burst` tokens refilled at `rate` per second admits `burst + rate * t`
//! requests over `t` seconds, however requests spread over workers. The state is the
//! theoretical arrival time (TAT) in nanoseconds since the process epoch; admitting a
//! request is one compare-and-swap. No lock, no per-worker share of the rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

#[derive(Debug)]
pub struct Bucket {
    /// Nanoseconds between tokens (1e9 / rate); 0 when the bucket admits nothing.
    interval: u64,
    /// How far TAT may run ahead of now: (burst - 1) * interval.
    tolerance: u64,
    tat: AtomicU64,
    pub rate: f64,
    pub burst: u64,
}

/// Outcome of `Bucket::take`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// Rejected; a token is due in this many nanoseconds.
    Reject(u64),
}

impl Bucket {
    /// Takes over another bucket's state (a reloaded config) when the limits are the same.
    pub fn carry_from(&self, old: &Bucket) {
        if self.interval == old.interval && self.tolerance == old.tolerance {
            self.tat.store(old.tat.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    pub fn new(rate: f64, burst: u64) -> Bucket {
        let (interval, tolerance) = if rate <= 0.0 || burst == 0 {
            (0, 0)
        } else {
            let interval = ((1e9 / rate).round() as u64).max(1);
            (interval, interval.saturating_mul(burst - 1))
        };
        Bucket { interval, tolerance, tat: AtomicU64::new(0), rate, burst }
    }

    /// Takes a token at `now` (nanoseconds since the epoch, see `nanos_since_epoch`).
    #[inline]
    pub fn take(&self, now: u64) -> Verdict {
        if self.interval == 0 {
            return Verdict::Reject(1_000_000_000);
        }
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > self.tolerance {
                return Verdict::Reject(start - now - self.tolerance);
            }
            match self.tat.compare_exchange_weak(tat, start + self.interval, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Verdict::Admit,
                Err(actual) => tat = actual,
            }
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `t` as nanoseconds since the process-wide throttle epoch (the same for every worker).
#[inline]
pub fn nanos_since_epoch(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let b = Bucket::new(10.0, 5);
        let t0 = 1_000_000_000;
        let admitted = (0..20).filter(|_| b.take(t0) == Verdict::Admit).count();
        assert_eq!(admitted, 5, "a full bucket admits exactly the burst at one instant");
        // 300 ms at 10/s refill exactly 3 tokens.
        let t1 = t0 + 300_000_000;
        let admitted = (0..50).filter(|_| b.take(t1) == Verdict::Admit).count();
        assert_eq!(admitted, 3);
        match b.take(t1) {
            Verdict::Reject(wait) => assert!(wait > 0 && wait <= 100_000_000, "{wait}"),
            Verdict::Admit => panic!("bucket should be empty"),
        }
    }

    #[test]
    fn refill_is_capped_at_the_burst() {
        let b = Bucket::new(10.0, 5);
        assert_eq!((0..20).filter(|_| b.take(1) == Verdict::Admit).count(), 5);
        // A long idle time refills the bucket to its size, never beyond.
        let later = 1 + 60_000_000_000;
        assert_eq!((0..50).filter(|_| b.take(later) == Verdict::Admit).count(), 5);
    }

    #[test]
    fn steady_rate_over_time() {
        let b = Bucket::new(100.0, 1);
        let mut admitted = 0;
        // 10 s of attempts every millisecond: 100/s * 10 s, plus the one-token burst.
        for ms in 0..10_000u64 {
            if b.take(1 + ms * 1_000_000) == Verdict::Admit {
                admitted += 1;
            }
        }
        assert!((1000..=1001).contains(&admitted), "{admitted}");
    }

    #[test]
    fn zero_rate_or_burst_admits_nothing() {
        assert!(matches!(Bucket::new(0.0, 10).take(5), Verdict::Reject(_)));
        assert!(matches!(Bucket::new(10.0, 0).take(5), Verdict::Reject(_)));
    }

    #[test]
    fn exact_across_threads() {
        let b = std::sync::Arc::new(Bucket::new(1.0, 1000));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || (0..1000).filter(|_| b.take(7) == Verdict::Admit).count())
            })
            .collect();
        let total: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000, "four threads share one bucket exactly");
    }
}
