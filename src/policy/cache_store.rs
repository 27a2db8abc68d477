//! The response cache store: one per box, shared by every worker.
//!
//! A hit is lock-free: a lookup in a concurrent hash map (papaya) and one relaxed store to
//! the entry's `visited` bit. Misses, fills and evictions take one mutex, once per upstream
//! fetch. Eviction is CLOCK (FIFO with a second chance): a hit only sets a bit, so hits
//! never reorder a shared list the way LRU does; the hand evicts the oldest entry not hit
//! since it last passed. One-hit wonders leave first, which is what web traces reward
//! (the SIEVE and S3-FIFO papers measure this family beating LRU on them).
//!
//! Stampede protection: the first miss for a key puts a `Fill` in the map; later misses,
//! on any worker, wait for it (bounded by the caller) and take its entry.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes charged per entry on top of key, head and body (map slot, Arc, queue slot).
const ENTRY_OVERHEAD: usize = 128;

pub struct Entry {
    pub key: Box<[u8]>,
    pub status: u16,
    /// Status line and headers, without framing, CORS or per-response headers.
    pub head: Box<[u8]>,
    pub body: Box<[u8]>,
    /// Unix seconds when stored; `Age` counts from here.
    pub stored_at: u64,
    pub expires_at: u64,
    visited: AtomicBool,
    /// Removed from the map (flushed, replaced or evicted).
    dead: AtomicBool,
}

impl Entry {
    pub fn new(key: Box<[u8]>, status: u16, head: Box<[u8]>, body: Box<[u8]>, stored_at: u64, ttl_s: u64) -> Entry {
        Entry {
            key,
            status,
            head,
            body,
            stored_at,
            expires_at: stored_at + ttl_s,
            visited: AtomicBool::new(false),
            dead: AtomicBool::new(false),
        }
    }

    fn size(&self) -> usize {
        self.key.len() + self.head.len() + self.body.len() + ENTRY_OVERHEAD
    }

    #[inline]
    fn fresh(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

const PENDING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// An upstream fetch in progress for one key.
pub struct Fill {
    state: AtomicU8,
    entry: OnceLock<Arc<Entry>>,
}

pub enum FillState {
    Pending,
    Done(Arc<Entry>),
    /// The fetch failed or its response may not be cached: fetch on your own.
    Abandoned,
}

impl Fill {
    pub fn state(&self) -> FillState {
        match self.state.load(Ordering::Acquire) {
            PENDING => FillState::Pending,
            DONE => match self.entry.get() {
                Some(e) => FillState::Done(e.clone()),
                None => FillState::Abandoned,
            },
            _ => FillState::Abandoned,
        }
    }
}

#[derive(Clone)]
enum Slot {
    Ready(Arc<Entry>),
    Filling(Arc<Fill>),
}

pub enum Lookup<'s> {
    Hit(Arc<Entry>),
    /// Another request is fetching this key: wait on it.
    Wait(Arc<Fill>),
    /// This request fetches the key; publish or drop the `Lead`.
    Lead(Lead<'s>),
}

/// The right (and duty) to fill one key. Dropping it unpublished abandons the fill, so
/// waiters never hang on a request that died.
pub struct Lead<'s> {
    store: &'s Store,
    key: Box<[u8]>,
    fill: Arc<Fill>,
    published: bool,
}

struct Clock {
    queue: VecDeque<Arc<Entry>>,
    bytes: usize,
}

pub struct Store {
    map: papaya::HashMap<Box<[u8]>, Slot>,
    clock: Mutex<Clock>,
    /// Bytes of entries still in the clock but no longer in the map (replaced, expired
    /// and refetched). The clock is compacted when they reach half of what it holds.
    dead_bytes: AtomicUsize,
    pub max_bytes: usize,
}

impl Store {
    pub fn new(max_bytes: usize) -> Store {
        Store {
            map: papaya::HashMap::new(),
            clock: Mutex::new(Clock { queue: VecDeque::new(), bytes: 0 }),
            dead_bytes: AtomicUsize::new(0),
            max_bytes,
        }
    }

    /// A fresh entry, a fill to wait on, or the lead on a new fill. `refresh`: skip a
    /// stored entry (client invalidation) and fetch anew.
    pub fn lookup(&self, key: &[u8], now: u64, refresh: bool) -> Lookup<'_> {
        let map = self.map.pin();
        match map.get(key) {
            Some(Slot::Ready(e)) if !refresh && e.fresh(now) => {
                if !e.visited.load(Ordering::Relaxed) {
                    e.visited.store(true, Ordering::Relaxed);
                }
                return Lookup::Hit(e.clone());
            }
            Some(Slot::Filling(f)) => return Lookup::Wait(f.clone()),
            _ => {}
        }
        let fill = Arc::new(Fill { state: AtomicU8::new(PENDING), entry: OnceLock::new() });
        let outcome = map.compute(key.into(), |cur| match cur {
            Some((_, Slot::Ready(e))) if !refresh && e.fresh(now) => papaya::Operation::Abort(Slot::Ready(e.clone())),
            Some((_, Slot::Filling(f))) => papaya::Operation::Abort(Slot::Filling(f.clone())),
            _ => papaya::Operation::Insert(Slot::Filling(fill.clone())),
        });
        match outcome {
            papaya::Compute::Aborted(Slot::Ready(e)) => Lookup::Hit(e),
            papaya::Compute::Aborted(Slot::Filling(f)) => Lookup::Wait(f),
            papaya::Compute::Updated { old: (_, Slot::Ready(old)), .. } => {
                self.kill(old);
                Lookup::Lead(Lead { store: self, key: key.into(), fill, published: false })
            }
            _ => Lookup::Lead(Lead { store: self, key: key.into(), fill, published: false }),
        }
    }

    /// Removes every entry whose key starts with `prefix`; returns how many.
    pub fn flush(&self, prefix: &[u8]) -> usize {
        let map = self.map.pin();
        let mut removed = 0;
        map.retain(|k, v| {
            if !k.starts_with(prefix) {
                return true;
            }
            if let Slot::Ready(e) = v {
                self.kill(e);
                removed += 1;
            }
            false
        });
        let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        self.compact(&mut clock);
        removed
    }

    /// Marks an entry that left the map; its bytes stay charged until the clock drops it.
    fn kill(&self, e: &Entry) {
        if !e.dead.swap(true, Ordering::Relaxed) {
            self.dead_bytes.fetch_add(e.size(), Ordering::Relaxed);
        }
    }

    /// Drops every dead entry from the clock.
    fn compact(&self, clock: &mut Clock) {
        let mut freed = 0;
        clock.queue.retain(|e| {
            let dead = e.dead.load(Ordering::Relaxed);
            if dead {
                freed += e.size();
            }
            !dead
        });
        clock.bytes -= freed;
        self.dead_bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Entries and bytes held (for tests and the admin endpoint).
    pub fn usage(&self) -> (usize, usize) {
        let clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        (clock.queue.len(), clock.bytes)
    }

    /// Adds a published entry to the clock and evicts until the store fits.
    fn admit(&self, e: Arc<Entry>) {
        let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
        clock.bytes += e.size();
        clock.queue.push_back(e);
        if self.dead_bytes.load(Ordering::Relaxed) * 2 > clock.bytes {
            self.compact(&mut clock);
        }
        let mut spins = 0usize;
        while clock.bytes > self.max_bytes {
            let Some(victim) = clock.queue.pop_front() else { break };
            let size = victim.size();
            clock.bytes -= size;
            if victim.dead.load(Ordering::Relaxed) {
                self.dead_bytes.fetch_sub(size, Ordering::Relaxed);
                continue;
            }
            // Bounded second chances: after a full lap everything left is evictable.
            spins += 1;
            let lap = spins > clock.queue.len() + 1;
            if !lap && victim.visited.swap(false, Ordering::Relaxed) {
                clock.bytes += size;
                clock.queue.push_back(victim);
                continue;
            }
            if victim.dead.swap(true, Ordering::Relaxed) {
                // Killed meanwhile: it was counted as dead.
                self.dead_bytes.fetch_sub(size, Ordering::Relaxed);
            } else {
                let map = self.map.pin();
                let _ = map.remove_if(&victim.key[..], |_, v| matches!(v, Slot::Ready(e) if Arc::ptr_eq(e, &victim)));
            }
        }
    }
}

impl Lead<'_> {
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Stores the response and hands it to every waiter. The entry is stored only if this
    /// fill still owns the key (a flush in between drops it; waiters still get it).
    pub fn publish(mut self, e: Entry) {
        self.published = true;
        let e = Arc::new(e);
        let fits = e.size() <= self.store.max_bytes;
        let map = self.store.map.pin();
        let ours =
            |cur: Option<(&Box<[u8]>, &Slot)>| matches!(cur, Some((_, Slot::Filling(f))) if Arc::ptr_eq(f, &self.fill));
        let stored = matches!(
            map.compute(self.key.clone(), |cur| match (ours(cur), fits) {
                (true, true) => papaya::Operation::Insert(Slot::Ready(e.clone())),
                (true, false) => papaya::Operation::Remove,
                (false, _) => papaya::Operation::Abort(()),
            }),
            papaya::Compute::Updated { .. }
        );
        drop(map);
        let _ = self.fill.entry.set(e.clone());
        self.fill.state.store(DONE, Ordering::Release);
        if stored {
            self.store.admit(e);
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        self.fill.state.store(ABANDONED, Ordering::Release);
        let map = self.store.map.pin();
        let _ = map.remove_if(&self.key[..], |_, v| matches!(v, Slot::Filling(f) if Arc::ptr_eq(f, &self.fill)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &[u8], body_len: usize, now: u64, ttl: u64) -> Entry {
        Entry::new(key.into(), 200, b"HTTP/1.1 200 OK\r\n".to_vec().into(), vec![b'x'; body_len].into(), now, ttl)
    }

    fn fill(s: &Store, key: &[u8], body_len: usize, now: u64) {
        match s.lookup(key, now, false) {
            Lookup::Lead(l) => l.publish(entry(key, body_len, now, 300)),
            _ => panic!("expected to lead {:?}", String::from_utf8_lossy(key)),
        }
    }

    fn is_hit(s: &Store, key: &[u8], now: u64) -> bool {
        matches!(s.lookup(key, now, false), Lookup::Hit(_))
    }

    #[test]
    fn first_miss_leads_second_waits_then_hit() {
        let s = Store::new(1 << 20);
        let Lookup::Lead(lead) = s.lookup(b"k", 10, false) else { panic!("lead") };
        let Lookup::Wait(f) = s.lookup(b"k", 10, false) else { panic!("wait") };
        assert!(matches!(f.state(), FillState::Pending));
        lead.publish(entry(b"k", 5, 10, 300));
        assert!(matches!(f.state(), FillState::Done(e) if e.body.len() == 5));
        assert!(is_hit(&s, b"k", 11));
    }

    #[test]
    fn dropped_lead_abandons_and_frees_the_key() {
        let s = Store::new(1 << 20);
        let Lookup::Lead(lead) = s.lookup(b"k", 10, false) else { panic!("lead") };
        let Lookup::Wait(f) = s.lookup(b"k", 10, false) else { panic!("wait") };
        drop(lead);
        assert!(matches!(f.state(), FillState::Abandoned));
        assert!(matches!(s.lookup(b"k", 10, false), Lookup::Lead(_)));
    }

    #[test]
    fn expired_and_refreshed_entries_are_fetched_again() {
        let s = Store::new(1 << 20);
        fill(&s, b"k", 5, 10);
        assert!(is_hit(&s, b"k", 309));
        assert!(matches!(s.lookup(b"k", 310, false), Lookup::Lead(_)));
        fill(&s, b"k", 5, 400);
        let Lookup::Lead(lead) = s.lookup(b"k", 401, true) else { panic!("refresh leads") };
        lead.publish(entry(b"k", 7, 401, 300));
        let Lookup::Hit(e) = s.lookup(b"k", 402, false) else { panic!("hit") };
        assert_eq!(e.body.len(), 7);
        assert_eq!(s.usage().0, 1, "the replaced entry left the clock");
    }

    #[test]
    fn clock_keeps_visited_entries_and_evicts_the_rest() {
        let per = entry(b"k0", 1000, 0, 300).size();
        let s = Store::new(per * 4);
        for k in [b"k0", b"k1", b"k2", b"k3"] {
            fill(&s, k, 1000, 0);
        }
        assert!(is_hit(&s, b"k0", 1));
        assert!(is_hit(&s, b"k2", 1));
        fill(&s, b"k4", 1000, 1);
        fill(&s, b"k5", 1000, 1);
        assert!(is_hit(&s, b"k0", 2), "visited survives");
        assert!(is_hit(&s, b"k2", 2), "visited survives");
        assert!(!is_hit(&s, b"k1", 2), "unvisited goes first");
        let (n, bytes) = s.usage();
        assert!(bytes <= per * 4, "{bytes} > {}", per * 4);
        assert!(n <= 4);
    }

    #[test]
    fn too_large_for_the_store_is_served_to_waiters_but_not_kept() {
        let s = Store::new(100);
        let Lookup::Lead(lead) = s.lookup(b"k", 0, false) else { panic!("lead") };
        let Lookup::Wait(f) = s.lookup(b"k", 0, false) else { panic!("wait") };
        lead.publish(entry(b"k", 1000, 0, 300));
        assert!(matches!(f.state(), FillState::Done(_)));
        assert!(matches!(s.lookup(b"k", 0, false), Lookup::Lead(_)));
        assert_eq!(s.usage(), (0, 0));
    }

    #[test]
    fn flush_by_prefix() {
        let s = Store::new(1 << 20);
        for k in [&b"prod GET /a"[..], b"prod GET /b", b"test GET /a"] {
            fill(&s, k, 10, 0);
        }
        assert_eq!(s.flush(b"prod GET /a"), 1);
        assert!(!is_hit(&s, b"prod GET /a", 1));
        assert!(is_hit(&s, b"prod GET /b", 1));
        assert_eq!(s.flush(b"prod "), 1);
        assert!(is_hit(&s, b"test GET /a", 1));
        assert_eq!(s.usage().0, 1);
    }

    #[test]
    fn concurrent_misses_across_threads_make_one_leader() {
        let s = Arc::new(Store::new(1 << 20));
        let leaders = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (s, leaders, barrier) = (s.clone(), leaders.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    match s.lookup(b"hot", 0, false) {
                        Lookup::Lead(l) => {
                            leaders.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            l.publish(entry(b"hot", 3, 0, 300));
                            3
                        }
                        Lookup::Wait(f) => loop {
                            match f.state() {
                                FillState::Done(e) => break e.body.len(),
                                FillState::Pending => std::thread::yield_now(),
                                FillState::Abandoned => panic!("abandoned"),
                            }
                        },
                        Lookup::Hit(e) => e.body.len(),
                    }
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 3);
        }
        assert_eq!(leaders.load(Ordering::SeqCst), 1);
    }
}
