//! Request quotas per API key over UTC calendar windows (DAY, WEEK from Sunday, MONTH).
//!
//! Each key's usage is two atomics (window id, count) shared by all workers. A background
//! thread persists the counts at most once a second (write a temp file, rename) and once
//! more at shutdown; startup reads them back, so usage survives a restart.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        match s.to_ascii_uppercase().as_str() {
            "DAY" => Some(Period::Day),
            "WEEK" => Some(Period::Week),
            "MONTH" => Some(Period::Month),
            _ => None,
        }
    }

    /// The window that `unix_secs` falls in: days, Sunday-started weeks, or months since 1970.
    pub fn window(self, unix_secs: i64) -> u64 {
        let days = unix_secs.div_euclid(86_400);
        match self {
            Period::Day => days as u64,
            // 1970-01-01 was a Thursday; the first Sunday is day 3.
            Period::Week => (days + 4).div_euclid(7) as u64,
            Period::Month => {
                let (y, m, _) = crate::clock::civil_from_days(days);
                (y * 12 + m - 1 - 1970 * 12) as u64
            }
        }
    }
}

#[derive(Debug)]
pub struct Quota {
    pub limit: u64,
    pub period: Period,
    window: AtomicU64,
    used: AtomicU64,
}

impl Quota {
    pub fn new(limit: u64, period: Period) -> Quota {
        Quota { limit, period, window: AtomicU64::new(u64::MAX), used: AtomicU64::new(0) }
    }

    /// Counts one request at `unix_secs`; false when the window's quota is used up.
    #[inline]
    pub fn take(&self, unix_secs: i64) -> bool {
        let now = self.period.window(unix_secs);
        let seen = self.window.load(Ordering::Acquire);
        if seen != now && self.window.compare_exchange(seen, now, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // A new window: the worker that moved it resets the count.
            self.used.store(0, Ordering::Release);
        }
        if self.used.fetch_add(1, Ordering::AcqRel) < self.limit {
            return true;
        }
        self.used.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// (window, used) for persisting.
    pub fn snapshot(&self) -> (u64, u64) {
        (self.window.load(Ordering::Acquire), self.used.load(Ordering::Acquire))
    }

    /// Restores persisted usage if it belongs to the current window.
    pub fn restore(&self, window: u64, used: u64, unix_secs: i64) {
        if window == self.period.window(unix_secs) {
            self.window.store(window, Ordering::Release);
            self.used.store(used.min(self.limit), Ordering::Release);
        }
    }
}

/// The state file: one line per key, `id window used`. Key ids only, never key values.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("quota.state")
}

pub fn encode(entries: &[(&str, (u64, u64))]) -> String {
    let mut out = String::from("# ringway quota usage: key-id window used\n");
    for (id, (window, used)) in entries {
        if *window != u64::MAX {
            out.push_str(&format!("{id} {window} {used}\n"));
        }
    }
    out
}

pub fn decode(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split(' ');
            let (id, w, u) = (it.next()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
            Some((id.to_string(), w, u))
        })
        .collect()
}

/// Writes `text` to `path` atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("state.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        // 2026-11-21 (Saturday) 12:00 UTC and neighbours.
        let sat = 1_795_262_400;
        assert_eq!(Period::Day.window(sat), Period::Day.window(sat + 11 * 3600));
        assert_ne!(Period::Day.window(sat), Period::Day.window(sat + 12 * 3600));
        let sun = sat + 86_400 - 12 * 3600; // 2026-11-22 00:00 Sunday
        assert_ne!(Period::Week.window(sun - 1), Period::Week.window(sun), "weeks start on Sunday");
        assert_eq!(Period::Week.window(sun), Period::Week.window(sun + 6 * 86_400));
        let dec1 = 1_796_083_200; // 2026-12-01 00:00
        assert_ne!(Period::Month.window(dec1 - 1), Period::Month.window(dec1));
        assert_eq!(Period::Month.window(0), 0);
        assert_eq!(Period::Month.window(31 * 86_400), 1, "1970-02-01");
    }

    #[test]
    fn limit_and_reset() {
        let q = Quota::new(2, Period::Day);
        let t = 1_795_262_400;
        assert!(q.take(t) && q.take(t));
        assert!(!q.take(t));
        assert_eq!(q.snapshot().1, 2, "refused requests are not counted");
        assert!(q.take(t + 86_400), "a new day resets the count");
    }

    #[test]
    fn persist_round_trip() {
        let q = Quota::new(5, Period::Month);
        let t = 1_795_262_400;
        q.take(t);
        q.take(t);
        let text = encode(&[("k1", q.snapshot()), ("k2", Quota::new(1, Period::Day).snapshot())]);
        let back = decode(&text);
        assert_eq!(back.len(), 1, "unused quotas are not written");
        let r = Quota::new(5, Period::Month);
        r.restore(back[0].1, back[0].2, t);
        assert_eq!(r.snapshot().1, 2);
        let stale = Quota::new(5, Period::Month);
        stale.restore(back[0].1, back[0].2, t + 40 * 86_400);
        assert_eq!(stale.snapshot().1, 0, "usage of an old window is dropped");
    }
}
