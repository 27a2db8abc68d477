//! Request body models: a compiled JSON Schema draft 4 validator (the subset API Gateway models use).
//!
//! Pure: touches only the schema and the instance it is given; no I/O, no globals.

use std::cmp::Ordering;
use std::collections::HashMap;

use regex_lite::Regex;
use serde_json::{Map, Number, Value};

/// Nesting bound for one inline schema at compile time (about 10 KB of stack a level in debug builds).
const MAX_COMPILE_DEPTH: usize = 64;
/// Bound on the validator's own recursion: one per instance level plus one per allOf/anyOf/oneOf/not
/// (about 3 KB of stack a level in debug builds). serde_json parses at most 128 levels.
const MAX_DEPTH: usize = 256;

// Type bits for `types`; 0 means any type.
const T_NULL: u8 = 1;
const T_BOOL: u8 = 2;
const T_INT: u8 = 4;
const T_NUM: u8 = 8;
const T_STR: u8 = 16;
const T_ARR: u8 = 32;
const T_OBJ: u8 = 64;
const TYPE_NAMES: [(&str, u8); 7] = [
    ("object", T_OBJ),
    ("array", T_ARR),
    ("string", T_STR),
    ("number", T_NUM),
    ("integer", T_INT),
    ("boolean", T_BOOL),
    ("null", T_NULL),
];

/// A compiled schema: an arena of nodes, `$ref`s are indices into it.
pub struct Schema {
    nodes: Vec<Node>,
    root: usize,
}

enum Node {
    /// Reserved for a `$ref` target not compiled yet (never left after compile).
    Pending,
    /// A `$ref` target that is itself a `$ref`: resolved away after compile.
    Alias(usize, String),
    Checks(Box<Checks>),
}

#[derive(Default)]
struct Checks {
    ptr: String, // where this schema sits in the document, for compile errors
    types: u8,
    enumeration: Option<Vec<Value>>,
    minimum: Option<Bound>,
    maximum: Option<Bound>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<(Regex, String)>,
    items: Items,
    additional_items: Extra,
    min_items: Option<u64>,
    max_items: Option<u64>,
    required: Vec<String>,
    properties: Vec<(String, usize)>, // sorted by name
    pattern_properties: Vec<(Regex, usize)>,
    additional: Extra,
    all_of: Vec<usize>,
    any_of: Vec<usize>,
    one_of: Vec<usize>,
    not: Option<usize>,
}

struct Bound {
    limit: Number,
    exclusive: bool,
}

#[derive(Default)]
enum Items {
    #[default]
    Any,
    One(usize),
    Tuple(Vec<usize>),
}

#[derive(Default)]
enum Extra {
    #[default]
    Allow,
    Deny,
    Schema(usize),
}

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

    /// Ok, or Err(first failure as "pointer: message", e.g. "/age: 7 is less than the minimum of 18")
    /// — the gateway exposes it as $context.error.validationErrorString.
    pub fn validate(&self, value: &Value) -> Result<(), String> {
        self.check(self.root, value, &Path::Root, 0)
    }

    fn check(&self, idx: usize, v: &Value, path: &Path, depth: usize) -> Result<(), String> {
        if depth >= MAX_DEPTH {
            return fail(path, format!("schema evaluation nested deeper than {MAX_DEPTH} levels"));
        }
        let c = match self.nodes.get(idx) {
            Some(Node::Checks(c)) => c,
            Some(Node::Alias(t, _)) => return self.check(*t, v, path, depth + 1),
            _ => return fail(path, "unresolved schema".into()),
        };
        if c.types != 0 {
            let have = type_bits(v);
            if have & c.types == 0 {
                return fail(path, format!("expected type {} but found {}", type_list(c.types), type_name(v)));
            }
        }
        if let Some(allowed) = &c.enumeration {
            if !allowed.iter().any(|a| json_eq(a, v)) {
                return fail(path, format!("{} is not one of {}", short(v), short(&Value::Array(allowed.clone()))));
            }
        }
        match v {
            Value::Number(n) => check_number(c, n, path)?,
            Value::String(s) => check_string(c, s, path)?,
            Value::Array(a) => self.check_array(c, a, path, depth)?,
            Value::Object(o) => self.check_object(c, o, path, depth)?,
            _ => {}
        }
        for &s in &c.all_of {
            self.check(s, v, path, depth + 1)?;
        }
        if !c.any_of.is_empty() && !c.any_of.iter().any(|&s| self.check(s, v, path, depth + 1).is_ok()) {
            return fail(path, "does not match any schema in anyOf".into());
        }
        if !c.one_of.is_empty() {
            let hits: Vec<usize> =
                (0..c.one_of.len()).filter(|&i| self.check(c.one_of[i], v, path, depth + 1).is_ok()).take(2).collect();
            match hits.as_slice() {
                [_] => {}
                [] => return fail(path, "does not match any schema in oneOf".into()),
                _ => {
                    return fail(
                        path,
                        format!("matches oneOf schemas {} and {}, must match exactly one", hits[0], hits[1]),
                    )
                }
            }
        }
        if let Some(n) = c.not {
            if self.check(n, v, path, depth + 1).is_ok() {
                return fail(path, "must not match the schema in not".into());
            }
        }
        Ok(())
    }

    fn check_array(&self, c: &Checks, a: &[Value], path: &Path, depth: usize) -> Result<(), String> {
        if let Some(min) = c.min_items {
            if (a.len() as u64) < min {
                return fail(path, format!("array has {} items, fewer than the minimum of {min}", a.len()));
            }
        }
        if let Some(max) = c.max_items {
            if a.len() as u64 > max {
                return fail(path, format!("array has {} items, more than the maximum of {max}", a.len()));
            }
        }
        for (i, item) in a.iter().enumerate() {
            let schema = match &c.items {
                Items::Any => None,
                Items::One(s) => Some(*s),
                Items::Tuple(t) => match t.get(i) {
                    Some(s) => Some(*s),
                    None => match c.additional_items {
                        Extra::Allow => None,
                        Extra::Deny => {
                            return fail(path, format!("array has {} items, at most {} are allowed", a.len(), t.len()))
                        }
                        Extra::Schema(s) => Some(s),
                    },
                },
            };
            if let Some(s) = schema {
                self.check(s, item, &Path::Index(path, i), depth + 1)?;
            }
        }
        Ok(())
    }

    fn check_object(&self, c: &Checks, o: &Map<String, Value>, path: &Path, depth: usize) -> Result<(), String> {
        for r in &c.required {
            if !o.contains_key(r) {
                return fail(path, format!("missing required property {}", Value::String(r.clone())));
            }
        }
        for (k, v) in o {
            let child = Path::Key(path, k);
            let mut matched = false;
            if let Ok(i) = c.properties.binary_search_by(|(name, _)| name.as_str().cmp(k)) {
                matched = true;
                self.check(c.properties[i].1, v, &child, depth + 1)?;
            }
            for (re, s) in &c.pattern_properties {
                if re.is_match(k) {
                    matched = true;
                    self.check(*s, v, &child, depth + 1)?;
                }
            }
            if !matched {
                match c.additional {
                    Extra::Allow => {}
                    Extra::Deny => {
                        return fail(path, format!("additional property {} is not allowed", Value::String(k.clone())))
                    }
                    Extra::Schema(s) => self.check(s, v, &child, depth + 1)?,
                }
            }
        }
        Ok(())
    }
}

fn check_number(c: &Checks, n: &Number, path: &Path) -> Result<(), String> {
    if let Some(b) = &c.minimum {
        match cmp_num(n, &b.limit) {
            Some(Ordering::Less) => return fail(path, format!("{n} is less than the minimum of {}", b.limit)),
            Some(Ordering::Equal) if b.exclusive => {
                return fail(path, format!("{n} is not greater than the exclusive minimum of {}", b.limit))
            }
            _ => {}
        }
    }
    if let Some(b) = &c.maximum {
        match cmp_num(n, &b.limit) {
            Some(Ordering::Greater) => return fail(path, format!("{n} is greater than the maximum of {}", b.limit)),
            Some(Ordering::Equal) if b.exclusive => {
                return fail(path, format!("{n} is not less than the exclusive maximum of {}", b.limit))
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_string(c: &Checks, s: &str, path: &Path) -> Result<(), String> {
    if c.min_length.is_some() || c.max_length.is_some() {
        let len = s.chars().count() as u64;
        if let Some(min) = c.min_length.filter(|&m| len < m) {
            return fail(path, format!("string length {len} is less than the minimum length of {min}"));
        }
        if let Some(max) = c.max_length.filter(|&m| len > m) {
            return fail(path, format!("string length {len} is greater than the maximum length of {max}"));
        }
    }
    if let Some((re, src)) = &c.pattern {
        if !re.is_match(s) {
            return fail(path, format!("{} does not match the pattern {}", short_str(s), Value::String(src.clone())));
        }
    }
    Ok(())
}

// ---- compile ----

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

// ---- values ----

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn type_bits(v: &Value) -> u8 {
    match v {
        Value::Null => T_NULL,
        Value::Bool(_) => T_BOOL,
        Value::Number(n) if is_integer(n) => T_INT | T_NUM,
        Value::Number(_) => T_NUM,
        Value::String(_) => T_STR,
        Value::Array(_) => T_ARR,
        Value::Object(_) => T_OBJ,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_list(bits: u8) -> String {
    let names: Vec<&str> = TYPE_NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| *n).collect();
    names.join(" or ")
}

/// Exact for integers, f64 otherwise.
fn cmp_num(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// JSON equality for `enum`: 1 and 1.0 are the same number.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => cmp_num(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => a == b,
    }
}

/// A value for a message, cut to keep error strings small.
fn short(v: &Value) -> String {
    cut(v.to_string())
}

fn short_str(s: &str) -> String {
    cut(Value::String(s.to_string()).to_string())
}

fn cut(mut s: String) -> String {
    const MAX: usize = 80;
    if s.len() > MAX {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

// ---- pointers ----

/// Instance location, built on the stack; rendered only when something fails.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

fn fail(path: &Path, msg: String) -> Result<(), String> {
    let mut segs = Vec::new();
    let mut p = path;
    loop {
        match p {
            Path::Root => break,
            Path::Key(up, k) => {
                segs.push(escape(k));
                p = up;
            }
            Path::Index(up, i) => {
                segs.push(i.to_string());
                p = up;
            }
        }
    }
    let mut ptr = String::new();
    for s in segs.iter().rev() {
        ptr.push('/');
        ptr.push_str(s);
    }
    Err(format!("{}: {msg}", show_ptr(&ptr)))
}

fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// The root pointer is "", which reads badly in a message.
fn show_ptr(p: &str) -> &str {
    if p.is_empty() {
        "(root)"
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(s: Value) -> Schema {
        Schema::compile(&s).unwrap_or_else(|e| panic!("compile failed: {e}"))
    }

    fn err(s: &Schema, v: Value) -> String {
        s.validate(&v).expect_err("expected a validation failure")
    }

    fn compile_err(s: Value) -> String {
        match Schema::compile(&s) {
            Ok(_) => panic!("expected a compile error"),
            Err(e) => e,
        }
    }

    #[test]
    fn schema_is_send_sync() {
        fn is<T: Send + Sync>() {}
        is::<Schema>();
    }

    #[test]
    fn empty_schema_accepts_everything() {
        let s = compile(json!({}));
        for v in [json!(null), json!(1), json!("x"), json!([1]), json!({"a": 1}), json!(true)] {
            assert!(s.validate(&v).is_ok());
        }
    }

    #[test]
    fn type_single() {
        let s = compile(json!({"type": "object"}));
        assert!(s.validate(&json!({})).is_ok());
        assert_eq!(err(&s, json!("x")), "(root): expected type object but found string");
        assert_eq!(err(&s, json!([])), "(root): expected type object but found array");
    }

    #[test]
    fn type_array_of_names() {
        let s = compile(json!({"type": ["string", "null"]}));
        assert!(s.validate(&json!(null)).is_ok());
        assert!(s.validate(&json!("a")).is_ok());
        assert_eq!(err(&s, json!(1.5)), "(root): expected type string or null but found number");
    }

    #[test]
    fn integer_accepts_zero_fraction() {
        let s = compile(json!({"type": "integer"}));
        assert!(s.validate(&json!(3)).is_ok());
        assert!(s.validate(&json!(-3)).is_ok());
        assert!(s.validate(&serde_json::from_str::<Value>("1.0").unwrap()).is_ok());
        assert_eq!(err(&s, json!(1.5)), "(root): expected type integer but found number");
        assert_eq!(err(&s, json!("1")), "(root): expected type integer but found string");
    }

    #[test]
    fn number_accepts_integers() {
        let s = compile(json!({"type": "number"}));
        assert!(s.validate(&json!(3)).is_ok());
        assert!(s.validate(&json!(3.25)).is_ok());
        assert_eq!(err(&s, json!(true)), "(root): expected type number but found boolean");
    }

    #[test]
    fn required_properties() {
        let s = compile(json!({"type": "object", "required": ["name", "age"]}));
        assert!(s.validate(&json!({"name": "a", "age": 1})).is_ok());
        assert_eq!(err(&s, json!({"name": "a"})), "(root): missing required property \"age\"");
        // required does not apply to non-objects
        assert!(compile(json!({"required": ["a"]})).validate(&json!(5)).is_ok());
    }

    #[test]
    fn properties_and_pointers() {
        let s = compile(json!({"properties": {"age": {"type": "integer", "minimum": 18}}}));
        assert!(s.validate(&json!({"age": 18, "other": "x"})).is_ok());
        assert_eq!(err(&s, json!({"age": 7})), "/age: 7 is less than the minimum of 18");
        assert_eq!(err(&s, json!({"age": "7"})), "/age: expected type integer but found string");
    }

    #[test]
    fn pointer_escaping_of_keys() {
        let s = compile(json!({"properties": {"a/b~c": {"type": "string"}}}));
        assert_eq!(err(&s, json!({"a/b~c": 1})), "/a~1b~0c: expected type string but found integer");
    }

    #[test]
    fn additional_properties_false() {
        let s = compile(json!({"properties": {"a": {}}, "additionalProperties": false}));
        assert!(s.validate(&json!({"a": 1})).is_ok());
        assert_eq!(err(&s, json!({"a": 1, "b": 2})), "(root): additional property \"b\" is not allowed");
    }

    #[test]
    fn additional_properties_schema() {
        let s = compile(json!({"properties": {"a": {}}, "additionalProperties": {"type": "number"}}));
        assert!(s.validate(&json!({"a": "x", "b": 2})).is_ok());
        assert_eq!(err(&s, json!({"a": "x", "b": "2"})), "/b: expected type number but found string");
    }

    #[test]
    fn pattern_properties_count_as_declared() {
        let s = compile(json!({"patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": false}));
        assert!(s.validate(&json!({"x-a": "1"})).is_ok());
        assert_eq!(err(&s, json!({"x-a": 1})), "/x-a: expected type string but found integer");
        assert!(err(&s, json!({"y": 1})).contains("additional property \"y\""));
    }

    #[test]
    fn enum_values() {
        let s = compile(json!({"enum": ["dog", "cat", 1, null, {"k": [1]}]}));
        for v in [json!("dog"), json!(1), json!(null), json!({"k": [1]})] {
            assert!(s.validate(&v).is_ok(), "{v}");
        }
        assert!(s.validate(&serde_json::from_str::<Value>("1.0").unwrap()).is_ok());
        assert_eq!(err(&s, json!("bird")), "(root): \"bird\" is not one of [\"dog\",\"cat\",1,null,{\"k\":[1]}]");
        assert!(s.validate(&json!({"k": [2]})).is_err());
    }

    #[test]
    fn minimum_maximum_inclusive() {
        let s = compile(json!({"minimum": 1, "maximum": 10}));
        assert!(s.validate(&json!(1)).is_ok());
        assert!(s.validate(&json!(10)).is_ok());
        assert!(s.validate(&json!(5.5)).is_ok());
        assert_eq!(err(&s, json!(0.5)), "(root): 0.5 is less than the minimum of 1");
        assert_eq!(err(&s, json!(11)), "(root): 11 is greater than the maximum of 10");
        // numeric keywords ignore other types
        assert!(s.validate(&json!("100")).is_ok());
    }

    #[test]
    fn minimum_maximum_exclusive_draft4() {
        let s = compile(json!({"minimum": 0, "exclusiveMinimum": true, "maximum": 1.5, "exclusiveMaximum": true}));
        assert!(s.validate(&json!(0.1)).is_ok());
        assert_eq!(err(&s, json!(0)), "(root): 0 is not greater than the exclusive minimum of 0");
        assert_eq!(err(&s, json!(1.5)), "(root): 1.5 is not less than the exclusive maximum of 1.5");
        let s = compile(json!({"minimum": 0, "exclusiveMinimum": false}));
        assert!(s.validate(&json!(0)).is_ok());
    }

    #[test]
    fn big_integers_compare_exactly() {
        let s = compile(json!({"maximum": 9007199254740993u64}));
        assert!(s.validate(&json!(9007199254740993u64)).is_ok());
        assert!(s.validate(&json!(9007199254740994u64)).is_err());
        assert!(s.validate(&json!(-1)).is_ok());
    }

    #[test]
    fn string_lengths_count_code_points() {
        let s = compile(json!({"minLength": 2, "maxLength": 3}));
        assert!(s.validate(&json!("héé")).is_ok()); // 3 code points, 5 bytes
        assert!(s.validate(&json!("日本")).is_ok());
        assert_eq!(err(&s, json!("é")), "(root): string length 1 is less than the minimum length of 2");
        assert_eq!(err(&s, json!("abcd")), "(root): string length 4 is greater than the maximum length of 3");
        assert!(s.validate(&json!(12345)).is_ok());
    }

    #[test]
    fn pattern_is_unanchored_search() {
        let s = compile(json!({"pattern": "[0-9]{3}"}));
        assert!(s.validate(&json!("ab123cd")).is_ok());
        assert_eq!(err(&s, json!("ab12")), "(root): \"ab12\" does not match the pattern \"[0-9]{3}\"");
        let anchored = compile(json!({"pattern": "^\\d+$"}));
        assert!(anchored.validate(&json!("123")).is_ok());
        assert!(anchored.validate(&json!("123a")).is_err());
    }

    #[test]
    fn items_single_schema() {
        let s = compile(json!({"type": "array", "items": {"type": "string"}}));
        assert!(s.validate(&json!(["a", "b"])).is_ok());
        assert!(s.validate(&json!([])).is_ok());
        assert_eq!(err(&s, json!(["a", 2])), "/1: expected type string but found integer");
    }

    #[test]
    fn items_tuple_and_additional_items() {
        let s = compile(json!({"items": [{"type": "string"}, {"type": "integer"}]}));
        assert!(s.validate(&json!(["a", 1, {"any": true}])).is_ok());
        assert!(s.validate(&json!(["a"])).is_ok());
        assert_eq!(err(&s, json!([1])), "/0: expected type string but found integer");
        let closed = compile(json!({"items": [{"type": "string"}], "additionalItems": false}));
        assert_eq!(err(&closed, json!(["a", "b"])), "(root): array has 2 items, at most 1 are allowed");
        let typed = compile(json!({"items": [{}], "additionalItems": {"type": "null"}}));
        assert_eq!(err(&typed, json!([1, 2])), "/1: expected type null but found integer");
    }

    #[test]
    fn min_max_items() {
        let s = compile(json!({"minItems": 1, "maxItems": 2}));
        assert!(s.validate(&json!([1])).is_ok());
        assert_eq!(err(&s, json!([])), "(root): array has 0 items, fewer than the minimum of 1");
        assert_eq!(err(&s, json!([1, 2, 3])), "(root): array has 3 items, more than the maximum of 2");
    }

    #[test]
    fn all_of() {
        let s = compile(json!({"allOf": [{"type": "integer"}, {"minimum": 3}]}));
        assert!(s.validate(&json!(4)).is_ok());
        assert_eq!(err(&s, json!(2)), "(root): 2 is less than the minimum of 3");
    }

    #[test]
    fn any_of() {
        let s = compile(json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}));
        assert!(s.validate(&json!("a")).is_ok());
        assert!(s.validate(&json!(2)).is_ok());
        assert_eq!(err(&s, json!(null)), "(root): does not match any schema in anyOf");
    }

    #[test]
    fn one_of() {
        let s = compile(json!({"oneOf": [{"type": "integer"}, {"minimum": 10}]}));
        assert!(s.validate(&json!(3)).is_ok());
        assert!(s.validate(&json!(10.5)).is_ok());
        assert_eq!(err(&s, json!(11)), "(root): matches oneOf schemas 0 and 1, must match exactly one");
        assert_eq!(err(&s, json!(2.5)), "(root): does not match any schema in oneOf");
    }

    #[test]
    fn not() {
        let s = compile(json!({"not": {"type": "null"}}));
        assert!(s.validate(&json!(0)).is_ok());
        assert_eq!(err(&s, json!(null)), "(root): must not match the schema in not");
    }

    #[test]
    fn ignored_and_unknown_keywords() {
        let s = compile(json!({
            "$schema": "http://json-schema.org/draft-04/schema#", "id": "x", "title": "T",
            "description": "d", "default": 5, "example": "e", "format": "email", "nullable": true,
            "x-vendor": {"type": 5}, "type": "string"
        }));
        assert!(s.validate(&json!("not an email")).is_ok());
        assert!(s.validate(&json!(null)).is_err());
    }

    #[test]
    fn ref_into_definitions() {
        let s = compile(json!({
            "definitions": {"Age": {"type": "integer", "minimum": 18}},
            "type": "object",
            "properties": {"age": {"$ref": "#/definitions/Age"}, "other": {"$ref": "#/definitions/Age"}}
        }));
        assert!(s.validate(&json!({"age": 20, "other": 30})).is_ok());
        assert_eq!(err(&s, json!({"age": 7})), "/age: 7 is less than the minimum of 18");
        // both properties share one compiled node
        assert_eq!(s.nodes.iter().filter(|n| matches!(n, Node::Checks(_))).count(), 2);
    }

    #[test]
    fn ref_siblings_are_ignored() {
        let s =
            compile(json!({"definitions": {"S": {"type": "string"}}, "$ref": "#/definitions/S", "type": "integer"}));
        assert!(s.validate(&json!("a")).is_ok());
        assert!(s.validate(&json!(1)).is_err());
    }

    #[test]
    fn ref_chain_and_escaped_names() {
        let s = compile(json!({
            "definitions": {"A": {"$ref": "#/definitions/B"}, "B": {"$ref": "#/definitions/a~1b%20c"},
                            "a/b c": {"type": "boolean"}},
            "$ref": "#/definitions/A"
        }));
        assert!(s.validate(&json!(true)).is_ok());
        assert_eq!(err(&s, json!(1)), "(root): expected type boolean but found integer");
    }

    #[test]
    fn petstore_new_pet_via_components_schemas() {
        // components and paths of the reference's section 15.3 document; the body model is a $ref
        let doc = json!({
            "components": {"schemas": {
                "NewPet": {"type": "object", "required": ["type", "price"],
                    "properties": {"type": {"type": "string", "enum": ["dog", "cat", "fish"]},
                                   "price": {"type": "number", "minimum": 25, "maximum": 500}}}
            }},
            "$ref": "#/components/schemas/NewPet"
        });
        let s = compile(doc);
        assert!(s.validate(&json!({"type": "dog", "price": 249.99})).is_ok());
        assert!(s.validate(&json!({"type": "cat", "price": 25, "name": "extra is fine"})).is_ok());
        assert_eq!(err(&s, json!({"type": "dog"})), "(root): missing required property \"price\"");
        assert_eq!(
            err(&s, json!({"type": "bird", "price": 30})),
            "/type: \"bird\" is not one of [\"dog\",\"cat\",\"fish\"]"
        );
        assert_eq!(err(&s, json!({"type": "fish", "price": 501})), "/price: 501 is greater than the maximum of 500");
        assert_eq!(err(&s, json!({})), "(root): missing required property \"type\"");
        assert_eq!(err(&s, json!([])), "(root): expected type object but found array");
    }

    fn tree_schema() -> Schema {
        compile(json!({
            "definitions": {"Node": {
                "type": "object", "required": ["value"],
                "properties": {"value": {"type": "integer"},
                               "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}}},
                "additionalProperties": false
            }},
            "$ref": "#/definitions/Node"
        }))
    }

    #[test]
    fn recursive_tree_schema() {
        let s = tree_schema();
        let ok =
            json!({"value": 1, "children": [{"value": 2}, {"value": 3, "children": [{"value": 4, "children": []}]}]});
        assert!(s.validate(&ok).is_ok());
        let bad = json!({"value": 1, "children": [{"value": 2}, {"value": 3, "children": [{"value": "4"}]}]});
        assert_eq!(err(&s, bad), "/children/1/children/0/value: expected type integer but found string");
        let extra = json!({"value": 1, "children": [{"value": 2, "x": 0}]});
        assert_eq!(err(&s, extra), "/children/0: additional property \"x\" is not allowed");
    }

    #[test]
    fn recursion_through_root_ref() {
        let s = compile(json!({"type": "object", "properties": {"next": {"$ref": "#"}}}));
        assert!(s.validate(&json!({"next": {"next": {}}})).is_ok());
        assert_eq!(err(&s, json!({"next": {"next": 1}})), "/next/next: expected type object but found integer");
    }

    #[test]
    fn deep_instance_stops_with_a_failure() {
        // deeper than serde_json would parse: built by hand
        let mut v = json!({"value": 0});
        for i in 0..400 {
            v = json!({"value": i, "children": [v]});
        }
        let e = err(&tree_schema(), v.clone());
        assert!(e.contains("nested deeper than"), "{e}");
        // the deepest tree serde_json parses (63 nodes, 126 levels) is fine
        let text = format!("{}{{\"value\":0}}{}", "{\"value\":1,\"children\":[".repeat(63), "]}".repeat(63));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(tree_schema().validate(&v).is_ok());
    }

    #[test]
    fn self_reference_cycles_are_compile_errors() {
        assert_eq!(compile_err(json!({"$ref": "#"})), "/$ref: $ref cycle: the schema refers to itself");
        let e =
            compile_err(json!({"definitions": {"A": {"$ref": "#/definitions/B"}, "B": {"$ref": "#/definitions/A"}},
                                   "$ref": "#/definitions/A"}));
        assert!(e.contains("$ref cycle"), "{e}");
        let e = compile_err(json!({"allOf": [{"$ref": "#"}]}));
        assert_eq!(e, "(root): $ref cycle through allOf/anyOf/oneOf/not: the schema applies itself to the same value");
        let e = compile_err(
            json!({"definitions": {"A": {"anyOf": [{"type": "string"}, {"not": {"$ref": "#/definitions/A"}}]}},
                                   "properties": {"a": {"$ref": "#/definitions/A"}}}),
        );
        assert!(e.starts_with("/definitions/A: $ref cycle"), "{e}");
    }

    #[test]
    fn malformed_keywords_name_their_pointer() {
        let cases = [
            (json!({"type": 5}), "/type: must be a type name"),
            (json!({"type": "text"}), "/type: must be a type name"),
            (json!({"type": []}), "/type: must be a type name"),
            (json!({"properties": {"age": {"minimum": "x"}}}), "/properties/age/minimum: must be a number"),
            (json!({"maximum": 1, "exclusiveMaximum": 0}), "/exclusiveMaximum: must be a boolean (draft 4)"),
            (json!({"exclusiveMinimum": true}), "/exclusiveMinimum: requires minimum"),
            (json!({"minLength": -1}), "/minLength: must be a non-negative integer"),
            (json!({"maxItems": 1.5}), "/maxItems: must be a non-negative integer"),
            (json!({"required": "a"}), "/required: must be an array of strings"),
            (json!({"required": ["a", 1]}), "/required: must be an array of strings"),
            (json!({"enum": []}), "/enum: must be a non-empty array"),
            (json!({"properties": []}), "/properties: must be an object"),
            (json!({"properties": {"a": 5}}), "/properties/a: a schema must be an object"),
            (json!({"items": "x"}), "/items: must be a schema or an array of schemas"),
            (json!({"items": [{}, {"type": 1}]}), "/items/1/type: must be a type name"),
            (json!({"additionalProperties": 1}), "/additionalProperties: must be a boolean or a schema"),
            (json!({"allOf": []}), "/allOf: must be a non-empty array of schemas"),
            (json!({"anyOf": [{}, {"minimum": null}]}), "/anyOf/1/minimum: must be a number"),
            (json!({"not": true}), "/not: a schema must be an object"),
            (json!({"$ref": 1}), "/$ref: must be a string"),
            (json!(true), "(root): a schema must be an object"),
        ];
        for (schema, want) in cases {
            let e = compile_err(schema.clone());
            assert!(e.starts_with(want), "{schema}: got {e:?}, want prefix {want:?}");
        }
    }

    #[test]
    fn bad_regex_is_a_compile_error() {
        let e = compile_err(json!({"properties": {"id": {"pattern": "(unclosed"}}}));
        assert!(e.starts_with("/properties/id/pattern: invalid regular expression"), "{e}");
        let e = compile_err(json!({"patternProperties": {"[": {}}}));
        assert!(e.starts_with("/patternProperties/[: invalid regular expression"), "{e}");
    }

    #[test]
    fn missing_and_remote_refs_are_compile_errors() {
        let e = compile_err(json!({"properties": {"p": {"$ref": "#/definitions/Pet"}}}));
        assert_eq!(e, "/properties/p/$ref: reference \"#/definitions/Pet\" does not resolve");
        let e = compile_err(json!({"$ref": "https://apigateway.amazonaws.com/restapis/x/models/Pet"}));
        assert!(e.starts_with("/$ref: unsupported reference"), "{e}");
        let e = compile_err(json!({"$ref": "#definitions"}));
        assert!(e.starts_with("/$ref: unsupported reference"), "{e}");
        // the bad schema is reported where it lives, not where it is referenced
        let e = compile_err(json!({"definitions": {"X": {"type": "nope"}}, "items": {"$ref": "#/definitions/X"}}));
        assert!(e.starts_with("/definitions/X/type: must be a type name"), "{e}");
    }

    #[test]
    fn deeply_nested_schema_is_a_compile_error() {
        let mut s = json!({});
        for _ in 0..100 {
            s = json!({"not": s});
        }
        assert!(compile_err(s).contains("schema nested deeper than 64 levels"));
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let s = compile(json!({"enum": ["a"]}));
        let e = err(&s, json!("x".repeat(1000)));
        assert!(e.len() < 200, "{e}");
        assert!(e.contains("..."));
    }

    #[test]
    fn first_failure_wins_in_document_order() {
        let s = compile(json!({"properties": {"a": {"type": "string"}, "b": {"type": "string"}}}));
        assert_eq!(err(&s, json!({"b": 1, "a": 2})), "/b: expected type string but found integer");
    }
}
