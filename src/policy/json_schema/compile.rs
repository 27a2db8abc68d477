//! `Schema::compile`: turns a schema document into the node arena, resolving `$ref`s and rejecting cycles.
//! Pure: touches only the schema document it is given.

use std::collections::HashMap;

use regex_lite::Regex;
use serde_json::{Map, Value};

use super::path::{escape, show_ptr};
use super::values::short_str;
use super::{Bound, Checks, Extra, Items, Node, Schema, MAX_COMPILE_DEPTH, TYPE_NAMES};

impl Schema {
    /// Compiles a draft 4 schema; errors name the JSON pointer of the bad keyword.
    pub fn compile(schema: &Value) -> Result<Schema, String> {
        let mut c = Compiler { root: schema, nodes: Vec::new(), refs: HashMap::new(), pending: Vec::new() };
        let root = c.reference("#", "")?;
        while let Some((slot, key)) = c.pending.pop() {
            let target = resolve_pointer(schema, &key).ok_or_else(|| format!("{key}: cannot resolve"))?;
            c.nodes[slot] = match target.get("$ref") {
                Some(r) if target.is_object() => {
                    let ptr = format!("{key}/$ref");
                    let r = r.as_str().ok_or_else(|| format!("{ptr}: must be a string"))?;
                    Node::Alias(c.reference(r, &ptr)?, ptr)
                }
                _ => Node::Checks(Box::new(c.checks(target, &key, 0)?)),
            };
        }
        let mut nodes = c.nodes;
        let root = collapse_aliases(&mut nodes, root)?;
        check_in_place_cycles(&nodes)?;
        Ok(Schema { nodes, root })
    }
}

struct Compiler<'a> {
    root: &'a Value,
    nodes: Vec<Node>,
    refs: HashMap<String, usize>, // canonical pointer -> arena slot
    pending: Vec<(usize, String)>,
}

impl Compiler<'_> {
    /// A subschema: a `$ref` (siblings ignored, as draft 4 says) or an inline schema.
    fn node(&mut self, v: &Value, ptr: &str, depth: usize) -> Result<usize, String> {
        if let Some(r) = v.get("$ref") {
            let ptr = format!("{ptr}/$ref");
            let r = r.as_str().ok_or_else(|| format!("{ptr}: must be a string"))?;
            return self.reference(r, &ptr);
        }
        let c = self.checks(v, ptr, depth)?;
        self.nodes.push(Node::Checks(Box::new(c)));
        Ok(self.nodes.len() - 1)
    }

    /// Slot for a `$ref` target: compiled once, later (the worklist keeps compile recursion flat).
    fn reference(&mut self, r: &str, ptr: &str) -> Result<usize, String> {
        let key = canonical_ref(r).ok_or_else(|| {
            format!("{ptr}: unsupported reference {} (only \"#...\" inside this document)", short_str(r))
        })?;
        if let Some(&slot) = self.refs.get(&key) {
            return Ok(slot);
        }
        if resolve_pointer(self.root, &key).is_none() {
            return Err(format!("{ptr}: reference {} does not resolve", short_str(r)));
        }
        self.nodes.push(Node::Pending);
        let slot = self.nodes.len() - 1;
        self.refs.insert(key.clone(), slot);
        self.pending.push((slot, key));
        Ok(slot)
    }

    fn checks(&mut self, v: &Value, ptr: &str, depth: usize) -> Result<Checks, String> {
        if depth > MAX_COMPILE_DEPTH {
            return Err(format!("{}: schema nested deeper than {MAX_COMPILE_DEPTH} levels", show_ptr(ptr)));
        }
        let o = v.as_object().ok_or_else(|| format!("{}: a schema must be an object", show_ptr(ptr)))?;
        let mut c = Checks { ptr: ptr.to_string(), ..Checks::default() };
        let at = |k: &str| format!("{ptr}/{}", escape(k));
        let sub = |this: &mut Self, k: &str, v: &Value| this.node(v, &at(k), depth + 1);

        if let Some(t) = o.get("type") {
            c.types = parse_types(t).ok_or_else(|| {
                format!("{}: must be a type name or a non-empty array of type names (object, array, string, number, integer, boolean, null)", at("type"))
            })?;
        }
        if let Some(e) = o.get("enum") {
            match e.as_array() {
                Some(a) if !a.is_empty() => c.enumeration = Some(a.clone()),
                _ => return Err(format!("{}: must be a non-empty array", at("enum"))),
            }
        }
        c.minimum = bound(o, "minimum", "exclusiveMinimum", &at)?;
        c.maximum = bound(o, "maximum", "exclusiveMaximum", &at)?;
        c.min_length = count(o, "minLength", &at)?;
        c.max_length = count(o, "maxLength", &at)?;
        if let Some(p) = o.get("pattern") {
            let src = p.as_str().ok_or_else(|| format!("{}: must be a string", at("pattern")))?;
            c.pattern = Some((regex(src, &at("pattern"))?, src.to_string()));
        }
        match o.get("items") {
            None => {}
            Some(s @ Value::Object(_)) => c.items = Items::One(sub(self, "items", s)?),
            Some(Value::Array(a)) => {
                let mut t = Vec::with_capacity(a.len());
                for (i, s) in a.iter().enumerate() {
                    t.push(self.node(s, &format!("{ptr}/items/{i}"), depth + 1)?);
                }
                c.items = Items::Tuple(t);
            }
            Some(_) => return Err(format!("{}: must be a schema or an array of schemas", at("items"))),
        }
        c.additional_items = self.extra(o, "additionalItems", ptr, depth)?;
        c.min_items = count(o, "minItems", &at)?;
        c.max_items = count(o, "maxItems", &at)?;
        if let Some(r) = o.get("required") {
            let names = r.as_array().and_then(|a| a.iter().map(|n| n.as_str().map(String::from)).collect());
            c.required = names.ok_or_else(|| format!("{}: must be an array of strings", at("required")))?;
        }
        if let Some(p) = o.get("properties") {
            let p = p.as_object().ok_or_else(|| format!("{}: must be an object", at("properties")))?;
            for (name, s) in p {
                let idx = self.node(s, &format!("{}/{}", at("properties"), escape(name)), depth + 1)?;
                c.properties.push((name.clone(), idx));
            }
            c.properties.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if let Some(p) = o.get("patternProperties") {
            let p = p.as_object().ok_or_else(|| format!("{}: must be an object", at("patternProperties")))?;
            for (src, s) in p {
                let here = format!("{}/{}", at("patternProperties"), escape(src));
                let re = regex(src, &here)?;
                c.pattern_properties.push((re, self.node(s, &here, depth + 1)?));
            }
        }
        c.additional = self.extra(o, "additionalProperties", ptr, depth)?;
        c.all_of = self.list(o, "allOf", ptr, depth)?;
        c.any_of = self.list(o, "anyOf", ptr, depth)?;
        c.one_of = self.list(o, "oneOf", ptr, depth)?;
        if let Some(n) = o.get("not") {
            c.not = Some(sub(self, "not", n)?);
        }
        Ok(c)
    }

    fn extra(&mut self, o: &Map<String, Value>, k: &str, ptr: &str, depth: usize) -> Result<Extra, String> {
        let here = format!("{ptr}/{k}");
        Ok(match o.get(k) {
            None | Some(Value::Bool(true)) => Extra::Allow,
            Some(Value::Bool(false)) => Extra::Deny,
            Some(s @ Value::Object(_)) => Extra::Schema(self.node(s, &here, depth + 1)?),
            Some(_) => return Err(format!("{here}: must be a boolean or a schema")),
        })
    }

    fn list(&mut self, o: &Map<String, Value>, k: &str, ptr: &str, depth: usize) -> Result<Vec<usize>, String> {
        let Some(v) = o.get(k) else { return Ok(Vec::new()) };
        let a = match v.as_array() {
            Some(a) if !a.is_empty() => a,
            _ => return Err(format!("{ptr}/{k}: must be a non-empty array of schemas")),
        };
        a.iter().enumerate().map(|(i, s)| self.node(s, &format!("{ptr}/{k}/{i}"), depth + 1)).collect()
    }
}

fn parse_types(t: &Value) -> Option<u8> {
    let one = |v: &Value| TYPE_NAMES.iter().find(|(n, _)| Some(*n) == v.as_str()).map(|(_, b)| *b);
    match t {
        Value::String(_) => one(t),
        Value::Array(a) if !a.is_empty() => a.iter().try_fold(0, |acc, v| one(v).map(|b| acc | b)),
        _ => None,
    }
}

fn bound(o: &Map<String, Value>, k: &str, ex: &str, at: &dyn Fn(&str) -> String) -> Result<Option<Bound>, String> {
    let exclusive = match o.get(ex) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(format!("{}: must be a boolean (draft 4)", at(ex))),
    };
    match o.get(k) {
        Some(Value::Number(n)) => Ok(Some(Bound { limit: n.clone(), exclusive })),
        Some(_) => Err(format!("{}: must be a number", at(k))),
        None if exclusive => Err(format!("{}: requires {k}", at(ex))),
        None => Ok(None),
    }
}

fn count(o: &Map<String, Value>, k: &str, at: &dyn Fn(&str) -> String) -> Result<Option<u64>, String> {
    match o.get(k) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) => Ok(Some(n)),
            // 2.0 is an integer in draft 4
            None => match v.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
                _ => Err(format!("{}: must be a non-negative integer", at(k))),
            },
        },
    }
}

fn regex(src: &str, ptr: &str) -> Result<Regex, String> {
    Regex::new(src).map_err(|e| {
        let first = e.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        format!("{ptr}: invalid regular expression: {first}")
    })
}

/// `#`, `#/definitions/X`, `#/components/schemas/X` (any pointer inside this document, really),
/// percent-decoded, as a canonical pointer ("" is the root).
fn canonical_ref(r: &str) -> Option<String> {
    let frag = percent_decode(r.strip_prefix('#')?)?;
    if frag.is_empty() || frag.starts_with('/') {
        Some(frag)
    } else {
        None
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn resolve_pointer<'v>(root: &'v Value, ptr: &str) -> Option<&'v Value> {
    if ptr.is_empty() {
        return Some(root);
    }
    let mut cur = root;
    for seg in ptr.strip_prefix('/')?.split('/') {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        cur = match cur {
            Value::Object(o) => o.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Follows `$ref`-to-`$ref` chains so every index names a real schema; a chain that loops is an error.
fn collapse_aliases(nodes: &mut [Node], root: usize) -> Result<usize, String> {
    let target = |nodes: &[Node], mut i: usize| -> Result<usize, String> {
        for _ in 0..=nodes.len() {
            match &nodes[i] {
                Node::Alias(t, _) => i = *t,
                _ => return Ok(i),
            }
        }
        let ptr = match &nodes[i] {
            Node::Alias(_, p) => p.clone(),
            _ => String::new(),
        };
        Err(format!("{}: $ref cycle: the schema refers to itself", show_ptr(&ptr)))
    };
    let root = target(nodes, root)?;
    for i in 0..nodes.len() {
        if let Node::Checks(_) = &nodes[i] {
            let Node::Checks(mut c) = std::mem::replace(&mut nodes[i], Node::Pending) else { continue };
            for_each_child(&mut c, &mut |x: &mut usize| {
                *x = target(nodes, *x)?;
                Ok(())
            })?;
            nodes[i] = Node::Checks(c);
        }
    }
    Ok(root)
}

fn for_each_child(c: &mut Checks, f: &mut dyn FnMut(&mut usize) -> Result<(), String>) -> Result<(), String> {
    match &mut c.items {
        Items::Any => {}
        Items::One(s) => f(s)?,
        Items::Tuple(t) => t.iter_mut().try_for_each(&mut *f)?,
    }
    for e in [&mut c.additional_items, &mut c.additional] {
        if let Extra::Schema(s) = e {
            f(s)?;
        }
    }
    c.properties.iter_mut().try_for_each(|(_, s)| f(s))?;
    c.pattern_properties.iter_mut().try_for_each(|(_, s)| f(s))?;
    for l in [&mut c.all_of, &mut c.any_of, &mut c.one_of] {
        l.iter_mut().try_for_each(&mut *f)?;
    }
    if let Some(s) = &mut c.not {
        f(s)?;
    }
    Ok(())
}

/// allOf/anyOf/oneOf/not evaluate the same instance: a cycle through them alone never terminates.
fn check_in_place_cycles(nodes: &[Node]) -> Result<(), String> {
    let in_place = |i: usize| -> Vec<usize> {
        match &nodes[i] {
            Node::Checks(c) => c.all_of.iter().chain(&c.any_of).chain(&c.one_of).chain(&c.not).copied().collect(),
            _ => Vec::new(),
        }
    };
    // iterative three-colour DFS: 0 new, 1 on stack, 2 done
    let mut colour = vec![0u8; nodes.len()];
    for start in 0..nodes.len() {
        if colour[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, in_place(start), 0usize)];
        colour[start] = 1;
        while let Some((node, kids, next)) = stack.last_mut() {
            if let Some(&k) = kids.get(*next) {
                *next += 1;
                match colour[k] {
                    0 => {
                        colour[k] = 1;
                        stack.push((k, in_place(k), 0));
                    }
                    1 => {
                        let ptr = match &nodes[k] {
                            Node::Checks(c) => c.ptr.clone(),
                            _ => String::new(),
                        };
                        return Err(format!(
                            "{}: $ref cycle through allOf/anyOf/oneOf/not: the schema applies itself to the same value",
                            show_ptr(&ptr)
                        ));
                    }
                    _ => {}
                }
            } else {
                colour[*node] = 2;
                stack.pop();
            }
        }
    }
    Ok(())
}
