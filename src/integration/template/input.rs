//! `$input`: the request body (raw, by JSONPath as JSON text or as values) and the parameters.
//! A body that is not JSON makes `$input.json(...)` give `null` and `$input.path(...)` give null.

use std::borrow::Cow;

use super::eval::{fail, Ctx, R};
use super::jsonpath;
use super::value::{Map, Str, Val};

/// `$input.body`: the raw body (lossy UTF-8); `{}` when empty, as API Gateway and LocalStack do.
pub(crate) fn prop<'a>(cx: &mut Ctx<'a>, name: &str) -> Val<'a> {
    if name != "body" {
        return Val::Null;
    }
    let b = cx.scope.body;
    if b.is_empty() {
        return Val::Str(Str::B("{}"));
    }
    match std::str::from_utf8(b) {
        Ok(s) => Val::Str(Str::B(s)),
        Err(_) => Val::string(String::from_utf8_lossy(b).into_owned()),
    }
}

fn path_arg<'a>(cx: &Ctx<'a>, a: &Val<'a>) -> R<jsonpath::Path> {
    let p = cx.text(a)?;
    jsonpath::parse(&p).or_else(|e| fail(format!("invalid JSONPath: {e}")))
}

/// Later pairs win (the caller may pass repeated names).
fn kv<'a>(pairs: &'a [(String, String)]) -> Val<'a> {
    let mut m = Map { depth: 1, entries: Vec::with_capacity(pairs.len()) };
    for (k, v) in pairs {
        m.put(Str::B(k), Val::Str(Str::B(v)));
    }
    Val::Map(std::rc::Rc::new(m))
}

pub(crate) fn call<'a>(cx: &mut Ctx<'a>, name: &str, args: &[Val<'a>]) -> R<Val<'a>> {
    match (name, args) {
        ("json", [p]) => {
            let path = path_arg(cx, p)?;
            let Some(sel) = cx.body_json().and_then(|root| path.select(root)) else {
                return Ok(Val::Str(Str::B("null")));
            };
            let s = serde_json::to_string(&*sel).unwrap_or_else(|_| "null".into());
            cx.owned(s)
        }
        ("path", [p]) => {
            let path = path_arg(cx, p)?;
            Ok(match cx.body_json().and_then(|root| path.select(root)) {
                Some(Cow::Borrowed(v)) => Val::from_json(v),
                Some(Cow::Owned(v)) => {
                    cx.charge(v.as_array().map_or(0, Vec::len).saturating_mul(16))?;
                    Val::from_owned_json(v)
                }
                None => Val::Null,
            })
        }
        ("params", []) => {
            let s = cx.scope;
            cx.map(vec![
                (Str::B("path"), kv(s.path)),
                (Str::B("querystring"), kv(s.querystring)),
                (Str::B("header"), kv(s.header)),
            ])
        }
        ("params", [n]) => {
            let n = cx.text(n)?;
            let s = cx.scope;
            let hit = s
                .path
                .iter()
                .rev()
                .find(|(k, _)| *k == *n)
                .or_else(|| s.querystring.iter().rev().find(|(k, _)| *k == *n))
                .or_else(|| s.header.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(&n)));
            Ok(Val::Str(Str::B(hit.map_or("", |(_, v)| v.as_str()))))
        }
        _ => fail(format!("unknown method '$input.{name}' with {} argument(s)", args.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{r, rb, rerr};

    #[test]
    fn body_raw_and_empty() {
        assert_eq!(rb("$input.body", "plain text"), "plain text");
        assert_eq!(rb("$input.body", ""), "{}");
        assert_eq!(rb("[$input.body]", "\u{fffd}ok"), "[\u{fffd}ok]");
    }

    #[test]
    fn json_paths() {
        assert_eq!(r("$input.json('$.nested')"), r#"{"a":{"b":true}}"#);
        assert_eq!(r("$input.json('$.s')"), r#""hi""#);
        assert_eq!(r("$input.json('$.items[*].id')"), "[1,2]");
        assert_eq!(r("$input.json('$.missing')"), "null");
        assert_eq!(rb("$input.json('$')", ""), "{}");
        assert_eq!(rb("$input.json('$.a')", "not json"), "null");
    }

    #[test]
    fn json_path_invalid_is_error() {
        assert!(rerr("$input.json('a.b')").contains("invalid JSONPath"));
        assert!(rerr("$input.path('$[')").contains("invalid JSONPath"));
    }

    #[test]
    fn path_values() {
        assert_eq!(r("$input.path('$.n')"), "3");
        assert_eq!(r("$input.path('$.items').size()"), "2");
        assert_eq!(r("$input.path('$.items')[0].name"), "Rex");
        assert_eq!(r("$input.path('$.items[*].name')"), r#"["Rex","O'Malley \"the cat\""]"#);
        assert_eq!(r("$!input.path('$.nope')|"), "|");
        assert_eq!(rb("$!input.path('$.a')|", "{bad"), "|");
    }

    #[test]
    fn params() {
        assert_eq!(r("$input.params('id')/$input.params('q')/$input.params('x-api-key')"), "42/cats/k1");
        assert_eq!(r("[$input.params('nope')]"), "[]");
        assert_eq!(r("$input.params().path.id $input.params().querystring.get('q')"), "42 cats");
        assert_eq!(r("$input.params().header.get('X-Api-Key')"), "k1");
        assert_eq!(r("$input.params().header.size()"), "2");
        assert_eq!(r("$input.params().keySet()"), r#"["path","querystring","header"]"#);
    }

    #[test]
    fn unknown_input_method() {
        assert!(rerr("$input.nope()").contains("$input.nope"));
        assert_eq!(r("$input.nope"), "$input.nope");
    }
}
