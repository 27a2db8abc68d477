//! JSONPath subset for `$input.json/path` and `method.request.body.*` mappings: `$`, `.key`,
//! `['key']`, `[n]` (negative from the end), `[*]`/`.*` and `..key`/`..*`.

use std::borrow::Cow;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
    Wild,
    /// `..key` (or `..*` when `None`): every descendant.
    Desc(Option<String>),
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    steps: Vec<Step>,
}

/// Parses `$`, `$.a.b`, `$['a b'].c[0]`, `$.items[*].name`, `$..name`.
pub fn parse(expr: &str) -> Result<Path, String> {
    let e = expr.trim();
    match e.strip_prefix('$') {
        Some(rest) => steps(rest),
        None => Err(format!("JSONPath must start with '$': {expr:?}")),
    }
}

/// Parses the mapping form without `$.` (`petstore.pets[0].name`); a leading `$` is accepted too.
pub fn parse_relative(expr: &str) -> Result<Path, String> {
    let e = expr.trim();
    if e.starts_with('$') {
        return parse(e);
    }
    if e.is_empty() {
        return Err("empty JSONPath".into());
    }
    if e.starts_with('[') {
        return steps(e);
    }
    steps(&format!(".{e}"))
}

/// A key after `.`: up to the next `.` or `[`.
fn name_at(s: &str, i: usize) -> Result<(String, usize), String> {
    let b = s.as_bytes();
    let mut j = i;
    while j < b.len() && b[j] != b'.' && b[j] != b'[' {
        j += 1;
    }
    if j == i {
        return Err(format!("empty key at offset {i} in JSONPath"));
    }
    Ok((s[i..j].to_owned(), j))
}

fn steps(s: &str) -> Result<Path, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' if b.get(i + 1) == Some(&b'.') => {
                i += 2;
                if b.get(i) == Some(&b'*') {
                    i += 1;
                    out.push(Step::Desc(None));
                } else {
                    let (name, j) = name_at(s, i)?;
                    out.push(Step::Desc(Some(name)));
                    i = j;
                }
            }
            b'.' => {
                i += 1;
                if b.get(i) == Some(&b'*') {
                    i += 1;
                    out.push(Step::Wild);
                } else {
                    let (name, j) = name_at(s, i)?;
                    out.push(Step::Key(name));
                    i = j;
                }
            }
            b'[' => {
                i += 1;
                while b.get(i) == Some(&b' ') {
                    i += 1;
                }
                match b.get(i) {
                    Some(b'*') => {
                        i += 1;
                        out.push(Step::Wild);
                    }
                    Some(&q @ (b'\'' | b'"')) => {
                        let Some(k) = memchr::memchr(q, &b[i + 1..]) else {
                            return Err("unterminated quoted key in JSONPath".into());
                        };
                        out.push(Step::Key(s[i + 1..i + 1 + k].to_owned()));
                        i += k + 2;
                    }
                    Some(c) if c.is_ascii_digit() || *c == b'-' => {
                        let mut j = i + 1;
                        while b.get(j).is_some_and(u8::is_ascii_digit) {
                            j += 1;
                        }
                        let n = s[i..j].parse().map_err(|_| format!("bad index {:?} in JSONPath", &s[i..j]))?;
                        out.push(Step::Index(n));
                        i = j;
                    }
                    _ => return Err(format!("unsupported bracket at offset {i} in JSONPath")),
                }
                while b.get(i) == Some(&b' ') {
                    i += 1;
                }
                if b.get(i) != Some(&b']') {
                    return Err(format!("expected ']' at offset {i} in JSONPath"));
                }
                i += 1;
            }
            _ => return Err(format!("unexpected character at offset {i} in JSONPath")),
        }
    }
    Ok(Path { steps: out })
}

fn index(v: &Value, i: i64) -> Option<&Value> {
    let a = v.as_array()?;
    let i = if i < 0 { i.checked_add(a.len() as i64)? } else { i };
    a.get(usize::try_from(i).ok()?)
}

fn descend<'v>(v: &'v Value, name: Option<&str>, out: &mut Vec<&'v Value>) {
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                if name.is_none_or(|n| n == k) {
                    out.push(c);
                }
                descend(c, name, out);
            }
        }
        Value::Array(a) => {
            for c in a {
                if name.is_none() {
                    out.push(c);
                }
                descend(c, name, out);
            }
        }
        _ => {}
    }
}

impl Path {
    /// The value at the path (borrowed), or for wildcard paths an array of all matches;
    /// `None` when a plain path leads nowhere.
    pub fn select<'v>(&self, root: &'v Value) -> Option<Cow<'v, Value>> {
        if self.steps.iter().all(|s| matches!(s, Step::Key(_) | Step::Index(_))) {
            let mut cur = root;
            for s in &self.steps {
                cur = match s {
                    Step::Key(k) => cur.as_object()?.get(k)?,
                    Step::Index(i) => index(cur, *i)?,
                    _ => return None,
                };
            }
            return Some(Cow::Borrowed(cur));
        }
        let mut cur = vec![root];
        for s in &self.steps {
            let mut next = Vec::new();
            for v in cur {
                match s {
                    Step::Key(k) => next.extend(v.as_object().and_then(|o| o.get(k))),
                    Step::Index(i) => next.extend(index(v, *i)),
                    Step::Wild => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(o) => next.extend(o.values()),
                        _ => {}
                    },
                    Step::Desc(n) => descend(v, n.as_deref(), &mut next),
                }
            }
            cur = next;
        }
        Some(Cow::Owned(Value::Array(cur.into_iter().cloned().collect())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"a": {"b": 1}, "a b": {"c": [10, 20, 30]}, "items": [{"name": "x"}, {"name": "y", "k": {"name": "z"}}]})
    }

    fn sel(p: &str) -> Option<Value> {
        parse(p).unwrap().select(&doc()).map(Cow::into_owned)
    }

    #[test]
    fn plain_paths_borrow() {
        let d = doc();
        assert!(matches!(parse("$.a.b").unwrap().select(&d), Some(Cow::Borrowed(_))));
        assert_eq!(sel("$"), Some(doc()));
        assert_eq!(sel("$.a.b"), Some(json!(1)));
        assert_eq!(sel("$['a b'].c[0]"), Some(json!(10)));
        assert_eq!(sel("$[\"a b\"].c[-1]"), Some(json!(30)));
        assert_eq!(sel("$.a.missing"), None);
        assert_eq!(sel("$.a.b.c"), None);
        assert_eq!(sel("$['a b'].c[3]"), None);
    }

    #[test]
    fn wildcards_give_arrays() {
        assert_eq!(sel("$.items[*].name"), Some(json!(["x", "y"])));
        assert_eq!(sel("$.a.*"), Some(json!([1])));
        assert_eq!(sel("$..name"), Some(json!(["x", "y", "z"])));
        assert_eq!(sel("$.nothing[*]"), Some(json!([])));
        assert_eq!(sel("$['a b'].c[*]"), Some(json!([10, 20, 30])));
    }

    #[test]
    fn relative_form() {
        let d = json!({"petstore": {"pets": [{"name": "rex"}]}});
        let p = parse_relative("petstore.pets[0].name").unwrap();
        assert_eq!(p.select(&d).map(Cow::into_owned), Some(json!("rex")));
        assert_eq!(parse_relative("$.petstore").unwrap(), parse("$.petstore").unwrap());
        assert_eq!(parse_relative("['petstore']").unwrap(), parse("$.petstore").unwrap());
    }

    #[test]
    fn errors() {
        for bad in ["a.b", "$.", "$..", "$[", "$['x", "$[x]", "$[1", "$a", "$.a[99999999999999999999]"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse_relative("").is_err());
        assert!(parse_relative("a..").is_err());
    }
}
