//! Request body models: a compiled JSON Schema draft 4 validator (the subset API Gateway models use).
//!
//! Pure: touches only the schema and the instance it is given; no I/O, no globals.

mod compile;
mod path;
mod values;

use std::cmp::Ordering;

use regex_lite::Regex;
use serde_json::{Map, Number, Value};

use path::{fail, Path};
use values::{cmp_num, json_eq, short, short_str, type_bits, type_list, type_name};

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

// `Schema::compile` is in compile.rs.
impl Schema {
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

#[cfg(test)]
mod tests;
