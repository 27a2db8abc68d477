//! Java-style methods on values: strings, lists and maps (what real mapping templates call).
//! String indexes count Unicode scalar values (Java counts UTF-16 units; equal for BMP text).
//! An unknown method is a render error naming it (Velocity would print the reference as is).

use serde_json::Value;

use super::eval::{fail, Ctx, R};
use super::value::{loose_eq, Str, Val};

pub(crate) fn call<'a>(cx: &mut Ctx<'a>, v: Val<'a>, name: &str, args: &[Val<'a>]) -> R<Val<'a>> {
    match &v {
        Val::Str(s) => string(cx, s.clone(), name, args),
        Val::List(_) | Val::Json(Value::Array(_)) => list(cx, v, name, args),
        Val::Map(_) | Val::Json(Value::Object(_)) => map(cx, v, name, args),
        Val::Loop { .. } if args.is_empty() && matches!(name, "index" | "count" | "hasNext" | "first" | "last") => {
            Ok(v.get_key(name))
        }
        _ => common(cx, &v, name, args),
    }
}

/// Methods every value has.
fn common<'a>(cx: &mut Ctx<'a>, v: &Val<'a>, name: &str, args: &[Val<'a>]) -> R<Val<'a>> {
    match (name, args) {
        ("toString", []) => {
            let t = cx.text(v)?.into_owned();
            cx.owned(t)
        }
        ("equals", [x]) => Ok(Val::Bool(loose_eq(v, x))),
        _ => fail(format!("unknown method '{name}' with {} argument(s) on {}", args.len(), v.type_name())),
    }
}

fn str_arg<'v, 'a>(cx: &Ctx<'a>, name: &str, a: &'v Val<'a>) -> R<std::borrow::Cow<'v, str>> {
    if matches!(a, Val::Null) {
        return fail(format!("null argument to {name}()"));
    }
    cx.text(a)
}

fn int_arg(name: &str, a: &Val<'_>) -> R<i64> {
    match a {
        Val::Int(i) => Ok(*i),
        Val::Str(s) => s.trim().parse().or_else(|_| fail(format!("{name}() expects an integer argument"))),
        _ => fail(format!("{name}() expects an integer argument")),
    }
}

/// Byte offset of char index `i` in `s` (`i == char count` gives `s.len()`).
fn char_offset(s: &str, i: i64) -> Option<usize> {
    let i = usize::try_from(i).ok()?;
    s.char_indices().map(|(b, _)| b).chain(std::iter::once(s.len())).nth(i)
}

fn char_index(s: &str, byte: Option<usize>) -> Val<'static> {
    Val::Int(byte.map_or(-1, |b| s.get(..b).map_or(0, |p| p.chars().count()) as i64))
}

/// A sub-slice of a string value, borrowed when the value is.
fn sub<'a>(s: &Str<'a>, start: usize, end: usize) -> Val<'a> {
    match s {
        Str::B(b) => Val::Str(Str::B(b.get(start..end).unwrap_or(""))),
        Str::O(o) => Val::string(o.get(start..end).unwrap_or("").to_owned()),
    }
}

fn string<'a>(cx: &mut Ctx<'a>, s: Str<'a>, name: &str, args: &[Val<'a>]) -> R<Val<'a>> {
    let st: &str = &s;
    let arg = |i: usize| str_arg(cx, name, &args[i]);
    Ok(match (name, args.len()) {
        ("length" | "size", 0) => Val::Int(st.chars().count() as i64),
        ("isEmpty", 0) => Val::Bool(st.is_empty()),
        ("toLowerCase", 0) => return cx.owned(st.to_lowercase()),
        ("toUpperCase", 0) => return cx.owned(st.to_uppercase()),
        ("trim", 0) => {
            let t = st.trim_matches(|c: char| c <= ' ');
            let start = t.as_ptr() as usize - st.as_ptr() as usize;
            sub(&s, start, start + t.len())
        }
        ("contains", 1) => Val::Bool(st.contains(&*arg(0)?)),
        ("startsWith", 1) => Val::Bool(st.starts_with(&*arg(0)?)),
        ("endsWith", 1) => Val::Bool(st.ends_with(&*arg(0)?)),
        ("equals", 1) => Val::Bool(matches!(&args[0], Val::Str(o) if **o == *st)),
        ("equalsIgnoreCase", 1) => Val::Bool(matches!(&args[0], Val::Str(o) if o.to_lowercase() == st.to_lowercase())),
        ("indexOf", 1) => char_index(st, st.find(&*arg(0)?)),
        ("lastIndexOf", 1) => char_index(st, st.rfind(&*arg(0)?)),
        ("concat", 1) => {
            let a = arg(0)?;
            cx.charge(st.len().saturating_add(a.len()))?;
            Val::string(format!("{st}{a}"))
        }
        // `replaceAll` takes a regex in Java; here both replace literal text.
        ("replace" | "replaceAll", 2) => {
            let (from, to) = (arg(0)?, arg(1)?);
            let n = if from.is_empty() { st.chars().count() + 1 } else { st.matches(&*from).count() };
            cx.charge(st.len().saturating_add(n.saturating_mul(to.len())))?;
            Val::string(st.replace(&*from, &to))
        }
        ("substring", 1 | 2) => {
            let a = int_arg(name, &args[0])?;
            let b = match args.get(1) {
                Some(x) => int_arg(name, x)?,
                None => st.chars().count() as i64,
            };
            match (char_offset(st, a), char_offset(st, b)) {
                (Some(x), Some(y)) if x <= y => sub(&s, x, y),
                _ => return fail(format!("substring({a}, {b}) out of range for length {}", st.chars().count())),
            }
        }
        ("charAt", 1) => {
            let i = int_arg(name, &args[0])?;
            let c = usize::try_from(i).ok().and_then(|i| st.chars().nth(i));
            match c {
                Some(c) => Val::string(c.to_string()),
                None => return fail(format!("charAt({i}) out of range")),
            }
        }
        // Java's `split` takes a regex; here the separator is literal text. Like Java, trailing
        // empty strings are dropped and an empty separator splits into characters.
        ("split", 1) => {
            let sep = arg(0)?;
            let mut parts: Vec<Val<'a>> = if sep.is_empty() {
                st.char_indices().map(|(i, c)| sub(&s, i, i + c.len_utf8())).collect()
            } else {
                let mut v = Vec::new();
                let mut at = 0;
                for (i, m) in st.match_indices(&*sep) {
                    v.push(sub(&s, at, i));
                    at = i + m.len();
                }
                v.push(sub(&s, at, st.len()));
                v
            };
            while parts.len() > 1 && matches!(parts.last(), Some(Val::Str(p)) if p.is_empty()) {
                parts.pop();
            }
            if st.is_empty() {
                parts = vec![Val::Str(Str::B(""))];
            }
            return cx.list(parts);
        }
        ("toString", 0) => Val::Str(s),
        _ => return common(cx, &Val::Str(s.clone()), name, args),
    })
}

fn list<'a>(cx: &mut Ctx<'a>, v: Val<'a>, name: &str, args: &[Val<'a>]) -> R<Val<'a>> {
    let n = v.len().unwrap_or(0);
    Ok(match (name, args) {
        ("size", []) => Val::Int(n as i64),
        ("isEmpty", []) => Val::Bool(n == 0),
        ("get", [i]) => {
            let i = int_arg(name, i)?;
            match usize::try_from(i).ok().filter(|i| *i < n).and_then(|i| v.get_index(i as i64)) {
                Some(x) => x,
                None => return fail(format!("get({i}) out of range for a list of {n}")),
            }
        }
        ("contains", [x]) => {
            cx.charge(n)?;
            Val::Bool((0..n).any(|i| v.get_index(i as i64).is_some_and(|it| loose_eq(&it, x))))
        }
        // Adding to a temporary list (not a variable) has no lasting effect.
        ("add", [_]) => Val::Bool(true),
        _ => return common(cx, &v, name, args),
    })
}

fn map<'a>(cx: &mut Ctx<'a>, v: Val<'a>, name: &str, args: &[Val<'a>]) -> R<Val<'a>> {
    let key = |k: &Val<'a>| cx.text(k).map(|t| t.into_owned());
    Ok(match (name, args) {
        ("size", []) => Val::Int(v.len().unwrap_or(0) as i64),
        ("isEmpty", []) => Val::Bool(v.len() == Some(0)),
        ("get", [k]) => v.get_key(&key(k)?),
        ("containsKey", [k]) => {
            let k = key(k)?;
            Val::Bool(match &v {
                Val::Json(j) => j.as_object().is_some_and(|o| o.contains_key(&k)),
                Val::Map(m) => m.get(&k).is_some(),
                _ => false,
            })
        }
        ("keySet", []) => {
            let keys = match &v {
                Val::Json(j) => {
                    let j: &'a Value = j;
                    j.as_object().map(|o| o.keys().map(|k| Val::Str(Str::B(k))).collect()).unwrap_or_default()
                }
                Val::Map(m) => m.entries.iter().map(|(k, _)| Val::Str(k.clone())).collect(),
                _ => Vec::new(),
            };
            return cx.list(keys);
        }
        ("values", []) => return cx.list(v.items().unwrap_or_default()),
        ("entrySet", []) => {
            let pairs: Vec<(Str<'a>, Val<'a>)> = match &v {
                Val::Json(j) => {
                    let j: &'a Value = j;
                    j.as_object()
                        .map(|o| o.iter().map(|(k, x)| (Str::B(k.as_str()), Val::from_json(x))).collect())
                        .unwrap_or_default()
                }
                Val::Map(m) => m.entries.clone(),
                _ => Vec::new(),
            };
            let mut entries = Vec::with_capacity(pairs.len());
            for (k, x) in pairs {
                entries.push(cx.map(vec![(Str::B("key"), Val::Str(k)), (Str::B("value"), x)])?);
            }
            return cx.list(entries);
        }
        // Putting into a temporary map (not a variable) has no lasting effect.
        ("put", [_, _]) => Val::Null,
        _ => return common(cx, &v, name, args),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{r, rerr};

    #[test]
    fn string_methods() {
        let s = "#set($s = ' Hello, World ')";
        assert_eq!(
            r(&format!("{s}$s.length() $s.size() $s.isEmpty() '$s.trim()' $s.toLowerCase()$s.toUpperCase()")),
            "14 14 false 'Hello, World'  hello, world  HELLO, WORLD "
        );
        assert_eq!(r(&format!("{s}$s.contains('World') $s.startsWith(' H') $s.endsWith('x') $s.indexOf('o') $s.lastIndexOf('o') $s.indexOf('z')")),
            "true true false 5 9 -1");
        assert_eq!(
            r(&format!(
                "{s}$s.replace('o', '0') $s.replaceAll('l', '') $s.substring(1, 6) $s.substring(8) $s.charAt(1)"
            )),
            " Hell0, W0rld   Heo, Word  Hello World  H"
        );
        assert_eq!(
            r("#set($s = 'a,b,,c,,')$s.split(',') $s.split(',').size() $s.concat('!')"),
            r#"["a","b","","c"] 4 a,b,,c,,!"#
        );
        assert_eq!(r("'abc'.split('')"), "'abc'.split('')");
        assert_eq!(
            r("#set($s = 'abc')$s.split('') $s.equals('abc') $s.equalsIgnoreCase('ABC') $s.equals(1) $s.toString()"),
            r#"["a","b","c"] true true false abc"#
        );
        assert_eq!(r("#set($s = 'héllo')$s.length() $s.substring(1, 2) $s.indexOf('l')"), "5 é 2");
        assert_eq!(r("#set($s = '')$s.split(',') $s.isEmpty()"), r#"[""] true"#);
    }

    #[test]
    fn string_method_errors() {
        assert!(rerr("#set($s = 'abc')$s.substring(2, 1)").contains("out of range"));
        assert!(rerr("#set($s = 'abc')$s.substring(4)").contains("out of range"));
        assert!(rerr("#set($s = 'abc')$s.substring(-1)").contains("out of range"));
        assert!(rerr("#set($s = 'abc')$s.charAt(3)").contains("out of range"));
        assert!(rerr("#set($s = 'abc')$s.substring('x')").contains("integer argument"));
        assert!(rerr("#set($s = 'abc')$s.contains($nope)").contains("null argument to contains()"));
        assert!(rerr("#set($s = 'abc')$s.matches('a.*')").contains("unknown method 'matches'"));
        assert!(rerr("#set($s = 'abc')$s.length(1)").contains("unknown method 'length'"));
    }

    #[test]
    fn list_methods() {
        let l = "#set($l = $input.path('$.items'))";
        assert_eq!(r(&format!("{l}$l.size() $l.isEmpty() $l.get(1).id $l.get(0).name")), "2 false 2 Rex");
        assert_eq!(
            r("#set($l = [1, 'a'])$l.contains('a') $l.contains(2) $l.contains('1') [].isEmpty()"),
            "true false true [].isEmpty()"
        );
        assert!(rerr("#set($l = [1])$l.get(1)").contains("out of range"));
        assert!(rerr("#set($l = [1])$l.get(-1)").contains("out of range"));
        assert!(rerr("#set($l = [1])$l.frob()").contains("unknown method 'frob'"));
        assert_eq!(r("#set($l = [1])#set($x = $l.toString())$x"), "[1]");
    }

    #[test]
    fn map_methods() {
        let m = "#set($m = $input.path('$.items[0]'))";
        assert_eq!(
            r(&format!("{m}$m.size() $m.isEmpty() $m.get('name') $m.containsKey('id') $m.containsKey('x')")),
            "2 false Rex true false"
        );
        assert_eq!(r(&format!("{m}$m.keySet() $m.values()")), r#"["id","name"] [1,"Rex"]"#);
        assert_eq!(r(&format!("{m}#foreach($e in $m.entrySet())$e.key=$e.value;#end")), "id=1;name=Rex;");
        assert_eq!(
            r("#set($m = {'a': 1})$m.keySet() $m.values() $m.entrySet() $m.containsKey('a') $m.get('z')"),
            r#"["a"] [1] [{"key":"a","value":1}] true $m.get('z')"#
        );
        assert!(rerr("#set($m = {})$m.nope()").contains("unknown method 'nope' with 0 argument(s) on map"));
    }

    #[test]
    fn other_values() {
        assert_eq!(r("#set($n = 5)$n.toString() #set($b = true)$b.equals(true)"), "5 true");
        assert!(rerr("#set($n = 5)$n.size()").contains("on integer"));
        assert_eq!(r("$nope.size()"), "$nope.size()");
        assert!(rerr("#foreach($i in [1])$foreach.parent()#end").contains("on $foreach"));
    }
}
