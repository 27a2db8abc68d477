//! Runtime values of one render: borrowed request data and JSON, or lists/maps the template built.
//! Also how values print (text and JSON), compare and test true.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::io::Write;
use std::rc::Rc;

use serde_json::{Number, Value};

/// Deepest list/map nesting a template may build (bounds recursion when printing and dropping).
pub(crate) const MAX_VALUE_DEPTH: u32 = 200;

#[derive(Clone, Debug)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Str<'a>),
    /// A JSON array or object borrowed from the request (scalars are converted on access).
    Json(&'a Value),
    List(Rc<List<'a>>),
    Map(Rc<Map<'a>>),
    Input,
    Util,
    /// `$foreach` of the innermost loop.
    Loop {
        index: usize,
        len: usize,
    },
}

#[derive(Clone, Debug)]
pub(crate) enum Str<'a> {
    B(&'a str),
    O(Rc<str>),
}

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Str::B(s) => s,
            Str::O(s) => s,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct List<'a> {
    /// Upper bound of the nesting below and including this list.
    pub depth: u32,
    pub items: Vec<Val<'a>>,
}

/// Insertion-ordered map (`serde_json::Map` only holds `Value`s).
#[derive(Clone, Debug, Default)]
pub(crate) struct Map<'a> {
    pub depth: u32,
    pub entries: Vec<(Str<'a>, Val<'a>)>,
}

impl<'a> Map<'a> {
    pub(crate) fn get(&self, k: &str) -> Option<&Val<'a>> {
        self.entries.iter().find(|(key, _)| &**key == k).map(|(_, v)| v)
    }

    /// Inserts or replaces; returns the previous value.
    pub(crate) fn put(&mut self, k: Str<'a>, v: Val<'a>) -> Option<Val<'a>> {
        self.depth = self.depth.max(v.depth() + 1);
        match self.entries.iter_mut().find(|(key, _)| **key == *k) {
            Some((_, old)) => Some(std::mem::replace(old, v)),
            None => {
                self.entries.push((k, v));
                None
            }
        }
    }
}

pub(crate) fn num<'a>(n: &Number) -> Val<'a> {
    match n.as_i64() {
        Some(i) => Val::Int(i),
        None => Val::Float(n.as_f64().unwrap_or(0.0)),
    }
}

impl<'a> Val<'a> {
    pub(crate) fn string(s: String) -> Val<'a> {
        Val::Str(Str::O(s.into()))
    }

    pub(crate) fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => num(n),
            Value::String(s) => Val::Str(Str::B(s)),
            _ => Val::Json(v),
        }
    }

    /// Converts an owned JSON value (from `$util.parseJson`, wildcard paths) into template values.
    pub(crate) fn from_owned_json(v: Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(b),
            Value::Number(n) => num(&n),
            Value::String(s) => Val::string(s),
            Value::Array(a) => {
                let items: Vec<Val<'a>> = a.into_iter().map(Val::from_owned_json).collect();
                let depth = 1 + items.iter().map(Val::depth).max().unwrap_or(0);
                Val::List(Rc::new(List { depth, items }))
            }
            Value::Object(o) => {
                let entries: Vec<(Str<'a>, Val<'a>)> =
                    o.into_iter().map(|(k, v)| (Str::O(k.into()), Val::from_owned_json(v))).collect();
                let depth = 1 + entries.iter().map(|(_, v)| v.depth()).max().unwrap_or(0);
                Val::Map(Rc::new(Map { depth, entries }))
            }
        }
    }

    /// A template-made list; `None` when it would nest deeper than `MAX_VALUE_DEPTH`.
    pub(crate) fn list(items: Vec<Val<'a>>) -> Option<Val<'a>> {
        let depth = 1 + items.iter().map(Val::depth).max().unwrap_or(0);
        (depth <= MAX_VALUE_DEPTH).then(|| Val::List(Rc::new(List { depth, items })))
    }

    pub(crate) fn map(entries: Vec<(Str<'a>, Val<'a>)>) -> Option<Val<'a>> {
        let depth = 1 + entries.iter().map(|(_, v)| v.depth()).max().unwrap_or(0);
        (depth <= MAX_VALUE_DEPTH).then(|| Val::Map(Rc::new(Map { depth, entries })))
    }

    pub(crate) fn depth(&self) -> u32 {
        match self {
            Val::List(l) => l.depth,
            Val::Map(m) => m.depth,
            Val::Json(_) => 1,
            _ => 0,
        }
    }

    /// Velocity 1.7 truthiness: only null and `false` are false (an empty string is true).
    pub(crate) fn truthy(&self) -> bool {
        !matches!(self, Val::Null | Val::Bool(false))
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Int(_) => "integer",
            Val::Float(_) => "number",
            Val::Str(_) => "string",
            Val::Json(Value::Array(_)) | Val::List(_) => "list",
            Val::Json(_) | Val::Map(_) => "map",
            Val::Input => "$input",
            Val::Util => "$util",
            Val::Loop { .. } => "$foreach",
        }
    }

    /// Number of items of a list or map.
    pub(crate) fn len(&self) -> Option<usize> {
        match self {
            Val::Json(Value::Array(a)) => Some(a.len()),
            Val::Json(Value::Object(o)) => Some(o.len()),
            Val::List(l) => Some(l.items.len()),
            Val::Map(m) => Some(m.entries.len()),
            _ => None,
        }
    }

    /// `$v.k`: a map entry or a `$foreach` property; null otherwise.
    pub(crate) fn get_key(&self, k: &str) -> Val<'a> {
        match self {
            Val::Json(j) => {
                let j: &'a Value = j;
                j.as_object().and_then(|o| o.get(k)).map_or(Val::Null, Val::from_json)
            }
            Val::Map(m) => m.get(k).cloned().unwrap_or(Val::Null),
            &Val::Loop { index, len } => match k {
                "index" => Val::Int(index as i64),
                "count" => Val::Int(index as i64 + 1),
                "hasNext" => Val::Bool(index + 1 < len),
                "first" => Val::Bool(index == 0),
                "last" => Val::Bool(index + 1 == len),
                _ => Val::Null,
            },
            _ => Val::Null,
        }
    }

    /// Item `i` of a list (negative counts from the end).
    pub(crate) fn get_index(&self, i: i64) -> Option<Val<'a>> {
        let n = self.len()?;
        let i = if i < 0 { i.checked_add(n as i64)? } else { i };
        let i = usize::try_from(i).ok()?;
        match self {
            Val::Json(j) => {
                let j: &'a Value = j;
                j.as_array().and_then(|a| a.get(i)).map(Val::from_json)
            }
            Val::List(l) => l.items.get(i).cloned(),
            _ => None,
        }
    }

    /// `$v[k]`: list index by integer, map entry by text.
    pub(crate) fn index(&self, k: &Val<'a>) -> Val<'a> {
        match (self, k) {
            (_, Val::Int(i)) if !matches!(self, Val::Map(_)) => self.get_index(*i).unwrap_or(Val::Null),
            (_, Val::Str(s)) => self.get_key(s),
            (Val::Map(_) | Val::Json(Value::Object(_)), _) => match text(k, 4096) {
                Some(t) => self.get_key(&t),
                None => Val::Null,
            },
            _ => Val::Null,
        }
    }

    /// The items iterated by `#foreach` (map values, like Velocity); `None` for anything else.
    pub(crate) fn items(&self) -> Option<Vec<Val<'a>>> {
        Some(match self {
            Val::Json(j) => {
                let j: &'a Value = j;
                match j {
                    Value::Array(a) => a.iter().map(Val::from_json).collect(),
                    Value::Object(o) => o.values().map(Val::from_json).collect(),
                    _ => return None,
                }
            }
            Val::List(l) => l.items.clone(),
            Val::Map(m) => m.entries.iter().map(|(_, v)| v.clone()).collect(),
            _ => return None,
        })
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// Turns a borrowed JSON array/object into an owned shallow list/map (children stay borrowed).
pub(crate) fn own<'a>(v: &mut Val<'a>) {
    if let Val::Json(j) = v {
        let j: &'a Value = j;
        *v = match j {
            Value::Array(a) => Val::List(Rc::new(List { depth: 2, items: a.iter().map(Val::from_json).collect() })),
            Value::Object(o) => Val::Map(Rc::new(Map {
                depth: 2,
                entries: o.iter().map(|(k, c)| (Str::B(k.as_str()), Val::from_json(c))).collect(),
            })),
            _ => Val::from_json(j),
        };
    }
}

fn write_float(f: f64, out: &mut Vec<u8>, json: bool) {
    match Number::from_f64(f) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None if json => out.extend_from_slice(b"null"),
        None if f.is_nan() => out.extend_from_slice(b"NaN"),
        None if f > 0.0 => out.extend_from_slice(b"Infinity"),
        None => out.extend_from_slice(b"-Infinity"),
    }
}

/// Writes `v` as JSON; false once `out` grows past `limit` (then stops early).
pub(crate) fn write_json(v: &Val<'_>, out: &mut Vec<u8>, limit: usize) -> bool {
    match v {
        Val::Null | Val::Input | Val::Util | Val::Loop { .. } => out.extend_from_slice(b"null"),
        Val::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Float(f) => write_float(*f, out, true),
        Val::Str(s) => {
            let _ = serde_json::to_writer(&mut *out, &**s);
        }
        Val::Json(j) => {
            let _ = serde_json::to_writer(&mut *out, j);
        }
        Val::List(l) => {
            out.push(b'[');
            for (i, x) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_json(x, out, limit) {
                    return false;
                }
            }
            out.push(b']');
        }
        Val::Map(m) => {
            out.push(b'{');
            for (i, (k, x)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, &**k);
                out.push(b':');
                if !write_json(x, out, limit) {
                    return false;
                }
            }
            out.push(b'}');
        }
    }
    out.len() <= limit
}

/// Writes `v` as template output: strings raw, numbers and booleans plainly, lists and maps as JSON.
/// (API Gateway prints maps Java-style, `{a=1}`; JSON is what templates producing JSON want.)
/// Null writes nothing. False once `out` grows past `limit`.
pub(crate) fn write_text(v: &Val<'_>, out: &mut Vec<u8>, limit: usize) -> bool {
    match v {
        Val::Null | Val::Input | Val::Util | Val::Loop { .. } => {}
        Val::Str(s) => out.extend_from_slice(s.as_bytes()),
        Val::Float(f) => write_float(*f, out, false),
        _ => return write_json(v, out, limit),
    }
    out.len() <= limit
}

/// `v` as text (see `write_text`); `None` when longer than `limit`.
pub(crate) fn text<'v>(v: &'v Val<'_>, limit: usize) -> Option<Cow<'v, str>> {
    if let Val::Str(s) = v {
        return (s.len() <= limit).then_some(Cow::Borrowed(&**s));
    }
    let mut out = Vec::new();
    if !write_text(v, &mut out, limit) {
        return None;
    }
    Some(Cow::Owned(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
}

/// Velocity `==`: numbers by value, same kinds by value, otherwise by their text.
pub(crate) fn loose_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Null, _) | (_, Val::Null) => false,
        (Val::Int(x), Val::Int(y)) => x == y,
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => a.as_f64() == b.as_f64(),
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => **x == **y,
        _ => match (text(a, 1 << 20), text(b, 1 << 20)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// Ordering for `< > <= >=`: numbers only (Velocity 1.7); anything else compares as false.
pub(crate) fn compare(a: &Val<'_>, b: &Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        let s = |v: Val| text(&v, 1000).map(|c| c.into_owned());
        assert_eq!(s(Val::Int(-3)).as_deref(), Some("-3"));
        assert_eq!(s(Val::Float(1.5)).as_deref(), Some("1.5"));
        assert_eq!(s(Val::Float(f64::NAN)).as_deref(), Some("NaN"));
        assert_eq!(s(Val::Float(f64::NEG_INFINITY)).as_deref(), Some("-Infinity"));
        assert_eq!(s(Val::Bool(true)).as_deref(), Some("true"));
        assert_eq!(s(Val::Null).as_deref(), Some(""));
        let l = Val::list(vec![Val::Int(1), Val::string("a\"".into()), Val::Float(f64::INFINITY)]).unwrap();
        assert_eq!(s(l).as_deref(), Some(r#"[1,"a\"",null]"#));
    }

    #[test]
    fn json_stops_at_limit() {
        let mut l = Val::list(vec![Val::string("x".repeat(10))]).unwrap();
        for _ in 0..40 {
            l = Val::list(vec![l.clone(), l]).unwrap();
        }
        let mut out = Vec::new();
        assert!(!write_json(&l, &mut out, 1000));
        assert!(out.len() < 2000);
    }

    #[test]
    fn depth_is_capped() {
        let mut l = Val::list(Vec::new()).unwrap();
        for _ in 1..MAX_VALUE_DEPTH {
            l = Val::list(vec![l]).unwrap();
        }
        assert!(Val::list(vec![l]).is_none());
    }

    #[test]
    fn equality_and_order() {
        assert!(loose_eq(&Val::Int(2), &Val::Float(2.0)));
        assert!(loose_eq(&Val::string("5".into()), &Val::Int(5)));
        assert!(!loose_eq(&Val::Null, &Val::Int(0)));
        assert!(loose_eq(&Val::Null, &Val::Null));
        assert_eq!(compare(&Val::Int(1), &Val::Float(1.5)), Some(Ordering::Less));
        assert_eq!(compare(&Val::string("a".into()), &Val::Int(1)), None);
    }

    #[test]
    fn index_negative_and_own() {
        let j = serde_json::json!([1, 2, 3]);
        let v = Val::from_json(&j);
        assert!(matches!(v.get_index(-1), Some(Val::Int(3))));
        assert!(v.get_index(-4).is_none());
        let mut w = v.clone();
        own(&mut w);
        assert!(matches!(w, Val::List(_)));
        assert_eq!(w.len(), Some(3));
    }
}
