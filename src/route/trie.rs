//! The route trie: compiled once from the config, read-only afterwards.
//!
//! Precedence per segment is static > `{param}` > `{greedy+}`; an explicit method beats
//! `ANY` on the same resource; the method takes part in matching, so a path whose resource
//! lacks the method backtracks to a shallower greedy resource (API Gateway's recorded
//! behaviour). Matching allocates nothing: captures go into a caller-owned `Captures`.

use crate::http::method::{Method, RouteMethod, ANY_SLOT};
use smallvec::SmallVec;

const NONE: u32 = u32::MAX;

/// Byte ranges of path parameter values within the request path, in template order.
pub type Captures = SmallVec<[(u32, u32); 8]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    Param(String),
    Greedy(String),
}

#[derive(Default)]
struct Node {
    param: u32,
    greedy: u32,
    methods: [u32; 8],
    /// Name of the parameter this node captures (compile-time conflict checks only).
    name: String,
}

impl Node {
    fn new(name: String) -> Node {
        Node { param: NONE, greedy: NONE, methods: [NONE; 8], name }
    }

    #[inline]
    fn route_for(&self, method: Method) -> Option<u32> {
        let explicit = self.methods[method as usize];
        if explicit != NONE {
            return Some(explicit);
        }
        let any = self.methods[ANY_SLOT];
        (any != NONE).then_some(any)
    }
}

pub struct Trie {
    nodes: Vec<Node>,
    statics: StaticIndex,
}

/// Why a route could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The same resource and method already has route `.0`.
    Duplicate(u32),
    /// Two sibling parameters with different names, e.g. `/pets/{id}` and `/pets/{petId}`.
    ParamConflict { existing: String, new: String },
}

impl Default for Trie {
    fn default() -> Self {
        Trie { nodes: vec![Node::new(String::new())], statics: StaticIndex::default() }
    }
}

impl Trie {
    pub fn insert(&mut self, segments: &[Segment], method: RouteMethod, route: u32) -> Result<(), InsertError> {
        let mut at = 0usize;
        for seg in segments {
            at = match seg {
                Segment::Static(s) => match self.statics.get(at as u32, s.as_bytes()) {
                    Some(n) => n as usize,
                    None => {
                        let n = self.push(String::new());
                        self.statics.insert(at as u32, s.as_bytes(), n as u32);
                        n
                    }
                },
                Segment::Param(name) => self.child(at, name, false)?,
                Segment::Greedy(name) => self.child(at, name, true)?,
            };
        }
        let slot = &mut self.nodes[at].methods[method.slot()];
        if *slot != NONE {
            return Err(InsertError::Duplicate(*slot));
        }
        *slot = route;
        Ok(())
    }

    fn push(&mut self, name: String) -> usize {
        self.nodes.push(Node::new(name));
        self.nodes.len() - 1
    }

    fn child(&mut self, at: usize, name: &str, greedy: bool) -> Result<usize, InsertError> {
        let existing = if greedy { self.nodes[at].greedy } else { self.nodes[at].param };
        if existing != NONE {
            let node = &self.nodes[existing as usize];
            if node.name != name {
                return Err(InsertError::ParamConflict { existing: node.name.clone(), new: name.to_string() });
            }
            return Ok(existing as usize);
        }
        let n = self.push(name.to_string());
        if greedy {
            self.nodes[at].greedy = n as u32;
        } else {
            self.nodes[at].param = n as u32;
        }
        Ok(n)
    }

    /// Finds the route for `path` (the part after the stage, starting with `/` or empty).
    /// Leading and trailing slashes are ignored; captures are ranges into `path`.
    #[inline]
    pub fn lookup(&self, path: &[u8], method: Method, caps: &mut Captures) -> Option<u32> {
        caps.clear();
        let mut start = 0;
        let mut end = path.len();
        while start < end && path[start] == b'/' {
            start += 1;
        }
        while end > start && path[end - 1] == b'/' {
            end -= 1;
        }
        self.walk(0, path, start, end, method, caps)
    }

    fn walk(&self, at: usize, path: &[u8], pos: usize, end: usize, method: Method, caps: &mut Captures) -> Option<u32> {
        let node = &self.nodes[at];
        if pos >= end {
            return node.route_for(method);
        }
        // Segments are short: a plain scan beats memchr's call and dispatch here.
        let seg_end = path[pos..end].iter().position(|&b| b == b'/').map_or(end, |i| pos + i);
        let seg = &path[pos..seg_end];
        let next = if seg_end < end { seg_end + 1 } else { end };
        if let Some(child) = self.statics.get(at as u32, seg) {
            if let Some(r) = self.walk(child as usize, path, next, end, method, caps) {
                return Some(r);
            }
        }
        if node.param != NONE && !seg.is_empty() {
            caps.push((pos as u32, seg_end as u32));
            if let Some(r) = self.walk(node.param as usize, path, next, end, method, caps) {
                return Some(r);
            }
            caps.pop();
        }
        if node.greedy != NONE {
            if let Some(r) = self.nodes[node.greedy as usize].route_for(method) {
                caps.push((pos as u32, end as u32));
                return Some(r);
            }
        }
        None
    }
}

/// Static children of every node in one open-addressing table keyed by (parent, segment):
/// one hash and one comparison per segment, however many siblings there are.
#[derive(Default)]
struct StaticIndex {
    slots: Vec<Slot>,
    keys: Vec<u8>,
    len: usize,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    /// 0 marks an empty slot.
    hash: u64,
    parent: u32,
    child: u32,
    key_start: u32,
    key_len: u32,
}

impl StaticIndex {
    #[inline]
    fn hash(parent: u32, seg: &[u8]) -> u64 {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = (parent as u64 + 1).wrapping_mul(K);
        let mut chunks = seg.chunks_exact(8);
        for c in &mut chunks {
            h = (h.rotate_left(5) ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(K);
        }
        // The last 0-7 bytes, little-endian, without a memcpy call for the variable length.
        let tail = chunks.remainder().iter().rev().fold(0u64, |t, &b| (t << 8) | b as u64);
        h = (h.rotate_left(5) ^ tail ^ seg.len() as u64).wrapping_mul(K);
        // murmur3's fmix64: similar keys ("res1", "res2") must not cluster.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        h | 1
    }

    #[inline]
    fn get(&self, parent: u32, seg: &[u8]) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let h = Self::hash(parent, seg);
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let s = &self.slots[i];
            if s.hash == 0 {
                return None;
            }
            if s.hash == h && s.parent == parent {
                let key = &self.keys[s.key_start as usize..(s.key_start + s.key_len) as usize];
                if key == seg {
                    return Some(s.child);
                }
            }
            i = (i + 1) & mask;
        }
    }

    fn insert(&mut self, parent: u32, seg: &[u8], child: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let key_start = self.keys.len() as u32;
        self.keys.extend_from_slice(seg);
        let slot = Slot { hash: Self::hash(parent, seg), parent, child, key_start, key_len: seg.len() as u32 };
        self.place(slot);
        self.len += 1;
    }

    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = slot.hash as usize & mask;
        while self.slots[i].hash != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots = vec![Slot::default(); (old.len() * 2).max(16)];
        for s in old.into_iter().filter(|s| s.hash != 0) {
            self.place(s);
        }
    }
}

/// Parses a path template such as `/pets/{petId}` or `/{proxy+}`.
pub fn parse_template(path: &str) -> Result<Vec<Segment>, String> {
    if !path.starts_with('/') {
        return Err("route path must start with '/'".into());
    }
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("empty segment in route path '{path}'"));
        }
        if let Some(inner) = part.strip_prefix('{') {
            let inner = inner
                .strip_suffix('}')
                .ok_or_else(|| format!("path parameter '{part}' must be a whole segment like {{name}}"))?;
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._$-".contains(&b)) {
                return Err(format!("invalid path parameter name '{name}' (allowed: letters, digits, . _ $ -)"));
            }
            if greedy {
                if i + 1 != parts.len() {
                    return Err(format!("greedy path parameter {{{name}+}} must be the last segment"));
                }
                out.push(Segment::Greedy(name.to_string()));
            } else {
                out.push(Segment::Param(name.to_string()));
            }
        } else {
            if part.contains(['{', '}']) {
                return Err(format!("path parameter in '{part}' must be a whole segment like {{name}}"));
            }
            if !part.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:,@!$&'()*+;=%".contains(&b)) {
                return Err(format!("invalid character in path segment '{part}'"));
            }
            out.push(Segment::Static(part.to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;

    fn trie(routes: &[(&str, &str)]) -> Trie {
        let mut t = Trie::default();
        for (i, (p, m)) in routes.iter().enumerate() {
            t.insert(&parse_template(p).unwrap(), RouteMethod::parse(m).unwrap(), i as u32).unwrap();
        }
        t
    }

    fn find(t: &Trie, m: Method, p: &str) -> Option<(u32, Vec<String>)> {
        let mut caps = Captures::new();
        let r = t.lookup(p.as_bytes(), m, &mut caps)?;
        Some((r, caps.iter().map(|&(a, b)| p[a as usize..b as usize].to_string()).collect()))
    }

    #[test]
    fn static_beats_param_beats_greedy() {
        let t = trie(&[("/pets/mine", "GET"), ("/pets/{id}", "GET"), ("/{proxy+}", "GET")]);
        assert_eq!(find(&t, Get, "/pets/mine").unwrap().0, 0);
        assert_eq!(find(&t, Get, "/pets/7"), Some((1, vec!["7".into()])));
        assert_eq!(find(&t, Get, "/pets/7/toys"), Some((2, vec!["pets/7/toys".into()])));
    }

    #[test]
    fn method_participates_and_falls_back_to_greedy() {
        let t = trie(&[("/pets/{petId}", "GET"), ("/{proxy+}", "ANY")]);
        assert_eq!(find(&t, Get, "/pets/7").unwrap().0, 0);
        assert_eq!(find(&t, Delete, "/pets/7"), Some((1, vec!["pets/7".into()])));
    }

    #[test]
    fn recorded_aws_sibling_backtracking() {
        let t = trie(&[("/part1", "GET"), ("/part1/hardcoded-value", "GET"), ("/{param+}", "GET")]);
        assert_eq!(find(&t, Get, "/part1/random-value").unwrap().0, 2);
        let t = trie(&[("/test", "POST"), ("/test/any", "ANY"), ("/{proxy+}", "OPTIONS")]);
        assert_eq!(find(&t, Options, "/test").unwrap().0, 2);
        assert_eq!(find(&t, Options, "/test/any").unwrap().0, 1);
        assert_eq!(find(&t, Get, "/test/any").unwrap().0, 1);
    }

    #[test]
    fn explicit_method_beats_any() {
        let t = trie(&[("/a", "ANY"), ("/a", "POST")]);
        assert_eq!(find(&t, Post, "/a").unwrap().0, 1);
        assert_eq!(find(&t, Put, "/a").unwrap().0, 0);
    }

    #[test]
    fn greedy_needs_a_segment_and_no_implicit_head() {
        let t = trie(&[("/{proxy+}", "ANY"), ("/x", "GET")]);
        assert_eq!(find(&t, Get, "/"), None);
        assert_eq!(find(&t, Get, ""), None);
        let t = trie(&[("/x", "GET")]);
        assert_eq!(find(&t, Head, "/x"), None);
    }

    #[test]
    fn trailing_slash_ignored_double_slash_kept_in_greedy() {
        let t = trie(&[("/pets", "GET"), ("/{proxy+}", "GET")]);
        assert_eq!(find(&t, Get, "/pets/").unwrap().0, 0);
        assert_eq!(find(&t, Get, "/a//b"), Some((1, vec!["a//b".into()])));
        assert_eq!(find(&t, Get, "//pets").unwrap().0, 0);
    }

    #[test]
    fn param_needs_nonempty_segment() {
        let t = trie(&[("/a/{id}/b", "GET")]);
        assert_eq!(find(&t, Get, "/a//b"), None);
        assert_eq!(find(&t, Get, "/a/1/b").unwrap().1, vec!["1".to_string()]);
    }

    #[test]
    fn many_siblings_are_found() {
        let routes: Vec<(String, &str)> = (0..100).map(|i| (format!("/r{i}/{{id}}"), "GET")).collect();
        let refs: Vec<(&str, &str)> = routes.iter().map(|(p, m)| (p.as_str(), *m)).collect();
        let t = trie(&refs);
        for i in [0u32, 7, 50, 99] {
            assert_eq!(find(&t, Get, &format!("/r{i}/x")).unwrap().0, i);
        }
        assert_eq!(find(&t, Get, "/r100/x"), None);
    }

    #[test]
    fn root_route() {
        let t = trie(&[("/", "GET")]);
        assert_eq!(find(&t, Get, "/").unwrap().0, 0);
        assert_eq!(find(&t, Get, "").unwrap().0, 0);
        assert_eq!(find(&t, Get, "/x"), None);
    }

    #[test]
    fn insert_errors() {
        let mut t = Trie::default();
        t.insert(&parse_template("/p/{id}").unwrap(), RouteMethod::Any, 0).unwrap();
        assert_eq!(t.insert(&parse_template("/p/{id}/").unwrap(), RouteMethod::Any, 1), Err(InsertError::Duplicate(0)));
        assert!(matches!(
            t.insert(&parse_template("/p/{petId}").unwrap(), RouteMethod::Any, 2),
            Err(InsertError::ParamConflict { .. })
        ));
    }

    #[test]
    fn template_errors() {
        assert!(parse_template("/{proxy+}/x").unwrap_err().contains("last"));
        assert!(parse_template("/a{id}").is_err());
        assert!(parse_template("pets").is_err());
        assert!(parse_template("/a//b").is_err());
        assert_eq!(parse_template("/").unwrap(), vec![]);
    }
}
