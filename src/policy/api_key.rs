//! API keys and usage plans: which keys may call which stages, and each key's own limits.
//!
//! Keys are found by a keyed hash of the presented value (the process-random SipHash key
//! hides which bucket a guess lands in), then compared in constant time. Key values never
//! leave this module: logs and errors use the key id.

use super::quota::Quota;
use super::throttle::Bucket;
use std::collections::HashMap;
use std::hash::BuildHasher;

pub struct ApiKey {
    pub id: String,
    value: Box<[u8]>,
    pub enabled: bool,
    /// Usage plan index; a key in no plan is refused, as in API Gateway.
    pub plan: Option<u32>,
    /// The plan's per-key limit.
    pub bucket: Option<Bucket>,
    /// The plan's request quota, counted per key. Shared with the previous plan's key
    /// across a reload (same id, same limits), so workers that switch later count on it too.
    pub quota: Option<std::sync::Arc<Quota>>,
}

pub struct UsagePlan {
    pub name: String,
    /// Stage indexes the plan covers; None: every stage.
    pub stages: Option<Vec<usize>>,
}

#[derive(Default)]
pub struct ApiKeys {
    hasher: std::collections::hash_map::RandomState,
    by_digest: HashMap<u64, Vec<u32>>,
    pub keys: Vec<ApiKey>,
    pub plans: Vec<UsagePlan>,
    /// A plan's per-route limit, one bucket per (key, route).
    route_buckets: HashMap<(u32, u32), Bucket>,
}

impl ApiKeys {
    pub fn add_plan(&mut self, name: String, stages: Option<Vec<usize>>) -> u32 {
        self.plans.push(UsagePlan { name, stages });
        (self.plans.len() - 1) as u32
    }

    /// Adds a key; Err(existing id) when the value is already taken.
    pub fn add_key(
        &mut self,
        id: String,
        value: &[u8],
        enabled: bool,
        plan: Option<u32>,
        bucket: Option<Bucket>,
        quota: Option<Quota>,
    ) -> Result<u32, String> {
        if let Some(k) = self.find(value) {
            return Err(self.keys[k as usize].id.clone());
        }
        let idx = self.keys.len() as u32;
        self.by_digest.entry(self.hasher.hash_one(value)).or_default().push(idx);
        let quota = quota.map(std::sync::Arc::new);
        self.keys.push(ApiKey { id, value: value.into(), enabled, plan, bucket, quota });
        Ok(idx)
    }

    pub fn add_route_bucket(&mut self, key: u32, route: u32, bucket: Bucket) {
        self.route_buckets.insert((key, route), bucket);
    }

    fn find(&self, presented: &[u8]) -> Option<u32> {
        let candidates = self.by_digest.get(&self.hasher.hash_one(presented))?;
        candidates.iter().copied().find(|&i| constant_time_eq(&self.keys[i as usize].value, presented))
    }

    /// The key allowed to call `stage`, or None (missing, unknown, disabled, not in a plan
    /// for this stage): the caller answers 403 Forbidden.
    pub fn authorize(&self, presented: Option<&[u8]>, stage: usize) -> Option<u32> {
        let idx = self.find(presented?)?;
        let key = &self.keys[idx as usize];
        let plan = &self.plans[key.plan? as usize];
        let stage_ok = plan.stages.as_ref().is_none_or(|s| s.contains(&stage));
        (key.enabled && stage_ok).then_some(idx)
    }

    /// The key's limits for `route`, most specific first.
    #[inline]
    pub fn buckets(&self, key: u32, route: u32) -> [Option<&Bucket>; 2] {
        let per_route = if self.route_buckets.is_empty() { None } else { self.route_buckets.get(&(key, route)) };
        [per_route, self.keys[key as usize].bucket.as_ref()]
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Compares without an early exit, so the time taken does not say how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        let mut k = ApiKeys::default();
        let all = k.add_plan("all".into(), None);
        let only1 = k.add_plan("stage1".into(), Some(vec![1]));
        k.add_key("a".into(), b"aaaaaaaaaaaaaaaaaaaa", true, Some(all), None, None).unwrap();
        k.add_key("b".into(), b"bbbbbbbbbbbbbbbbbbbb", false, Some(all), None, None).unwrap();
        k.add_key("c".into(), b"cccccccccccccccccccc", true, Some(only1), None, None).unwrap();
        k.add_key("d".into(), b"dddddddddddddddddddd", true, None, None, None).unwrap();
        k
    }

    #[test]
    fn authorize_rules() {
        let k = keys();
        assert_eq!(k.authorize(Some(b"aaaaaaaaaaaaaaaaaaaa"), 0), Some(0));
        assert_eq!(k.authorize(None, 0), None, "missing");
        assert_eq!(k.authorize(Some(b"aaaaaaaaaaaaaaaaaaab"), 0), None, "unknown");
        assert_eq!(k.authorize(Some(b"bbbbbbbbbbbbbbbbbbbb"), 0), None, "disabled");
        assert_eq!(k.authorize(Some(b"cccccccccccccccccccc"), 0), None, "plan not for this stage");
        assert_eq!(k.authorize(Some(b"cccccccccccccccccccc"), 1), Some(2));
        assert_eq!(k.authorize(Some(b"dddddddddddddddddddd"), 0), None, "in no plan");
    }

    #[test]
    fn duplicate_values_are_refused() {
        let mut k = keys();
        assert_eq!(k.add_key("z".into(), b"aaaaaaaaaaaaaaaaaaaa", true, None, None, None), Err("a".to_string()));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
