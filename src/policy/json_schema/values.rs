//! JSON value helpers for checks and messages: type bits and names, number order, equality, cut-down
//! renderings. Pure: touches only the values it is given.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::{TYPE_NAMES, T_ARR, T_BOOL, T_INT, T_NULL, T_NUM, T_OBJ, T_STR};

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

pub(super) fn type_bits(v: &Value) -> u8 {
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

pub(super) fn type_name(v: &Value) -> &'static str {
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

pub(super) fn type_list(bits: u8) -> String {
    let names: Vec<&str> = TYPE_NAMES.iter().filter(|(_, b)| bits & b != 0).map(|(n, _)| *n).collect();
    names.join(" or ")
}

/// Exact for integers, f64 otherwise.
pub(super) fn cmp_num(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// JSON equality for `enum`: 1 and 1.0 are the same number.
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
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
pub(super) fn short(v: &Value) -> String {
    cut(v.to_string())
}

pub(super) fn short_str(s: &str) -> String {
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
