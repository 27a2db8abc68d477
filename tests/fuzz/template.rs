//! Mapping templates (VTL): compile errors point inside the source at a consistent line and
//! column; renders stay within their limits and leave the output untouched on error.

use crate::gen::Source;
use ringway::integration::template::{compile, Limits, Overrides, Scope};

const PIECES: &[&str] = &[
    "#if(",
    "#elseif(",
    "#else",
    "#end",
    "#foreach(",
    "$x in ",
    "[1..3]",
    "#set(",
    "$x = ",
    ")",
    "(",
    "$input.json('$.a')",
    "$input.path('$.items')",
    "$input.params('q')",
    "$input.params()",
    "$!{x}",
    "${y",
    "'",
    "\"",
    "\\",
    "\\$",
    "#*",
    "*#",
    "##",
    "\n",
    "#[[",
    "]]#",
    "$foreach.hasNext",
    "$util.escapeJavaScript(",
    "$util.parseJson('",
    "$util.urlDecode('%",
    "$util.base64Encode(",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " == ",
    " && ",
    "!",
    "-",
    "/ 0",
    "% 0",
    "9223372036854775807",
    "-9223372036854775808",
    " + ",
    "*",
    "$x.put('k', $x)",
    "$x.add($x)",
    "é",
    "😀",
    "#break",
    "#stop",
    "#{end}",
    "$x.substring(",
    "1",
    "-5",
    ".",
    "$x.size()",
    "$context.requestOverride.header.A",
    "$context.responseOverride.status",
    "$context.identity.sourceIp",
    "$stageVariables.v",
    "#macro(",
    "$x.split(','",
    "$x.get(",
    "true",
    "null",
    " ",
    "$x[0]",
    "$x['k']",
    "..",
    "$m.keySet()",
    "$util.toJson($x)",
    "$x.replaceAll('a*', 'b')",
    "$x.matches('(a+)+$')",
    "1.5e308",
    "0x10",
];

pub fn template(data: &[u8]) {
    let mut s = Source::new(data);
    let src: String = if s.bool() {
        String::from_utf8_lossy(s.rest()).into_owned()
    } else {
        let mut t = String::new();
        for _ in 0..1 + s.below(24) {
            t.push_str(s.pick(PIECES));
        }
        t
    };
    let t = match compile(&src) {
        Ok(t) => t,
        Err(e) => {
            assert!(e.offset <= src.len(), "offset {} past {} bytes", e.offset, src.len());
            let mut at = e.offset;
            while !src.is_char_boundary(at) {
                at -= 1;
            }
            let before = &src[..at];
            let line = before.matches('\n').count() + 1;
            let col = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
            assert_eq!((e.line as usize, e.column as usize), (line, col), "{src:?}: {e}");
            assert!(!e.message.is_empty());
            return;
        }
    };
    let ctx = serde_json::json!({"requestId": "r", "identity": {"sourceIp": "1.2.3.4"}});
    let vars = serde_json::json!({"v": "sv"});
    let qs = vec![("q".to_string(), "v".to_string())];
    let path = vec![("id".to_string(), "7".to_string())];
    let header = vec![("X-A".to_string(), "h".to_string())];
    let limits = Limits { max_output: 1 << 14, max_steps: 20_000 };
    for body in [&b"{\"a\":[1,{\"b\":2}],\"items\":[1,2]}"[..], b"", b"\xff\xfe not json", b"[[[[[[[[1]]]]]]]]"] {
        let scope =
            Scope { body, path: &path, querystring: &qs, header: &header, context: &ctx, stage_variables: &vars };
        let mut out = b"PREFIX".to_vec();
        let mut ov = Overrides::default();
        match t.render(&scope, &limits, &mut out, &mut ov) {
            Ok(()) => {
                assert!(out.starts_with(b"PREFIX"));
                assert!(out.len() - 6 <= limits.max_output, "{} bytes out", out.len() - 6);
            }
            Err(e) => {
                assert_eq!(out, b"PREFIX", "render error {e} changed the output");
                assert!(!e.message.is_empty());
            }
        }
        if let Some(st) = ov.status {
            assert!((100..=599).contains(&st));
        }
    }
}
