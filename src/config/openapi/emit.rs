//! Writes TOML text line by line, remembering for each line the JSON path of the document
//! it came from, so errors found by the native compiler point back into the document.

use serde_json::Value;
use std::fmt::Write as _;

#[derive(Default)]
pub struct Emitter {
    pub text: String,
    /// (first line, JSON path): lines from `first line` on came from that path. 1-based.
    pub origins: Vec<(usize, String)>,
    lines: usize,
}

impl Emitter {
    /// Lines written from now on come from `path`.
    pub fn from(&mut self, path: &str) {
        self.origins.push((self.lines + 1, path.to_string()));
    }

    pub fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
        self.lines += 1 + s.matches('\n').count();
    }

    /// `key = value`
    pub fn kv(&mut self, key: &str, value: &str) {
        self.line(&format!("{} = {}", bare_or_quoted(key), value));
    }

    /// The JSON path that produced 1-based line `line` of the text.
    pub fn origin(&self, line: usize) -> Option<&str> {
        self.origins.iter().rev().find(|(l, _)| *l <= line).map(|(_, p)| p.as_str())
    }
}

pub fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        key.to_string()
    } else {
        basic(key)
    }
}

/// A TOML basic string with escapes.
pub fn basic(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The most readable TOML form of a string: a literal (`'2\d{2}'`), a multi-line literal
/// for templates, else a basic string.
pub fn string(s: &str) -> String {
    let plain = |c: char| c == '\t' || (c >= ' ' && c != '\u{7f}');
    if !s.contains('\'') && s.chars().all(plain) {
        return format!("'{s}'");
    }
    if s.contains('\n') && !s.contains("'''") && !s.ends_with('\'') && s.chars().all(|c| c == '\n' || plain(c)) {
        return format!("'''\n{s}'''");
    }
    basic(s)
}

/// `{ "k" = "v", ... }` of strings.
pub fn inline_strings<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let items: Vec<String> =
        pairs.into_iter().map(|(k, v)| format!("{} = {}", bare_or_quoted(k), string(&v))).collect();
    if items.is_empty() {
        "{}".to_string()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

pub fn string_list<S: AsRef<str>>(items: &[S]) -> String {
    let v: Vec<String> = items.iter().map(|s| basic(s.as_ref())).collect();
    format!("[{}]", v.join(", "))
}

/// A JSON value's text for a TOML string field (numbers and booleans as written).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_toml() {
        for s in ["plain", "2\\d{2}", "it's", "{\"a\": 1}\n#if($x)\n'q'\n#end", "a\u{1}b", "'''", "x'"] {
            let t = format!("k = {}\n", string(s));
            let v: toml::Table = toml::from_str(&t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(v["k"].as_str(), Some(s), "{t}");
        }
        assert_eq!(bare_or_quoted("application/json"), "\"application/json\"");
        let mut e = Emitter::default();
        e.from("paths./a");
        e.line("x = 1");
        e.from("paths./b");
        e.kv("y", &string("a\nb"));
        e.line("z = 2");
        assert_eq!((e.origin(1), e.origin(4)), (Some("paths./a"), Some("paths./b")));
    }
}
