//! Whole-template tests: realistic API Gateway templates, limits, overrides and a no-panic fuzz.

use super::testkit::{r, rb, rerr, run, BODY};
use super::*;

#[test]
fn petstore_template() {
    let src = r#"#set($inputRoot = $input.path('$'))
{
  "pets": [
#foreach($pet in $inputRoot.items)
    {"id": $pet.id, "name": "$util.escapeJavaScript($pet.name)"}#if($foreach.hasNext),#end

#end
  ],
  "requestId": "$context.requestId",
  "q": "$input.params('q')"
}"#;
    let want = r#"{
  "pets": [
    {"id": 1, "name": "Rex"},
    {"id": 2, "name": "O\'Malley \"the cat\""}
  ],
  "requestId": "req-1",
  "q": "cats"
}"#;
    assert_eq!(r(src), want);
}

#[test]
fn mock_status_template() {
    let src = r#"#if($input.params('scope') == "internal") {"statusCode": 200} #else {"statusCode": 500} #end"#;
    assert_eq!(r(src), r#" {"statusCode": 200} "#);
    let src2 = src.replace("internal", "external");
    assert_eq!(r(&src2), r#" {"statusCode": 500} "#);
}

#[test]
fn response_override_status() {
    let (out, ov) = run("#set($context.responseOverride.status = 201)\n{}", BODY, &Limits::default()).unwrap();
    assert_eq!(out, "{}");
    assert_eq!(ov.status, Some(201));
}

#[test]
fn request_overrides_and_read_back() {
    let src = "#set($context.requestOverride.header.X-Trace = \"t-$context.requestId\")\n\
               #set($context.requestOverride.querystring.page = 2)\n\
               #set($context.requestOverride.path['id'] = 'p')\n\
               #set($context.responseOverride.header.Cache-Control = 'no-store')\n\
               $context.requestOverride.header.X-Trace|$context.requestOverride.querystring.page|\
               $context.responseOverride.header.get('Cache-Control')";
    let (out, ov) = run(src, BODY, &Limits::default()).unwrap();
    assert_eq!(out, "t-req-1|2|no-store");
    assert_eq!(ov.request_header, vec![("X-Trace".to_string(), "t-req-1".to_string())]);
    assert_eq!(ov.request_querystring, vec![("page".to_string(), "2".to_string())]);
    assert_eq!(ov.request_path, vec![("id".to_string(), "p".to_string())]);
    assert_eq!(ov.response_header, vec![("Cache-Control".to_string(), "no-store".to_string())]);
    assert_eq!(ov.status, None);
}

#[test]
fn override_twice_is_error() {
    let e = rerr("#set($context.requestOverride.header.A = 1)#set($context.requestOverride.header.a = 2)");
    assert!(e.contains("more than once"), "{e}");
    let e = rerr("#set($context.responseOverride.status = 200)#set($context.responseOverride.status = 201)");
    assert!(e.contains("more than once"), "{e}");
}

#[test]
fn status_out_of_range_ignored() {
    for v in ["99", "600", "'abc'", "-1", "'404'"] {
        let (_, ov) = run(&format!("#set($context.responseOverride.status = {v})"), BODY, &Limits::default()).unwrap();
        assert_eq!(ov.status, if v == "'404'" { Some(404) } else { None }, "{v}");
    }
    let (out, _) = run("$!context.responseOverride.status|", BODY, &Limits::default()).unwrap();
    assert_eq!(out, "|");
}

#[test]
fn context_and_stage_variables() {
    assert_eq!(r("$context.identity.sourceIp $context.stage $context.nope"), "1.2.3.4 prod $context.nope");
    assert_eq!(r("$stageVariables.env $stageVariables['my-var'] $stageVariables.my-var"), "test mv mv");
}

#[test]
fn render_error_keeps_out_unchanged() {
    let t = compile("abc$util.base64Decode('!!')").unwrap();
    let empty = serde_json::json!({});
    let scope = Scope { body: b"", path: &[], querystring: &[], header: &[], context: &empty, stage_variables: &empty };
    let mut out = b"keep".to_vec();
    let mut ov = Overrides::default();
    assert!(t.render(&scope, &Limits::default(), &mut out, &mut ov).is_err());
    assert_eq!(out, b"keep");
    let t = compile("x").unwrap();
    t.render(&scope, &Limits::default(), &mut out, &mut ov).unwrap();
    assert_eq!(out, b"keepx");
}

#[test]
fn template_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Template>();
    check::<jsonpath::Path>();
}

#[test]
fn output_limit() {
    let limits = Limits { max_output: 10, ..Limits::default() };
    assert!(run("0123456789", BODY, &limits).is_ok());
    let e = run("0123456789x", BODY, &limits).unwrap_err();
    assert!(e.contains("output exceeds 10 bytes"), "{e}");
    let e = run("#foreach($i in [1..100])$i#end", BODY, &limits).unwrap_err();
    assert!(e.contains("output exceeds"), "{e}");
}

#[test]
fn step_limit_stops_nested_loops() {
    let src = "#foreach($i in [1..1000])#foreach($j in [1..1000])#set($x = $j)#end#end";
    let t0 = std::time::Instant::now();
    let e = run(src, BODY, &Limits::default()).unwrap_err();
    assert!(e.contains("steps"), "{e}");
    assert!(t0.elapsed().as_secs() < 10);
    let limits = Limits { max_steps: 50, ..Limits::default() };
    assert!(run("#foreach($i in [1..100])x#end", BODY, &limits).is_err());
}

#[test]
fn string_doubling_is_bounded() {
    let src = "#set($s = 'xxxxxxxxxxxxxxxx')#foreach($i in [1..40])#set($s = \"$s$s\")#end$s.length()";
    let e = run(src, BODY, &Limits::default()).unwrap_err();
    assert!(e.contains("bytes") || e.contains("steps"), "{e}");
    let src = "#set($s = 'xxxxxxxxxxxxxxxx')#foreach($i in [1..40])#set($s = $s + $s)#end";
    assert!(run(src, BODY, &Limits::default()).is_err());
    let src = "#set($s = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')#foreach($i in [1..30])#set($s = $s.replace('a', $s))#end";
    assert!(run(src, BODY, &Limits::default()).is_err());
}

#[test]
fn self_nesting_values_are_bounded() {
    let src = "#set($m = {})#foreach($i in [1..1000])#set($m = {'a': $m})#end";
    assert!(rerr(src).contains("nested too deeply"));
    let src = "#set($l = [])#foreach($i in [1..1000])#set($l = [$l, $l])#end";
    assert!(rerr(src).contains("nested too deeply"));
    let src = "#set($m = {})#foreach($i in [1..1000])#set($m.a = $m)#end";
    assert!(rerr(src).contains("nested too deeply"));
    let src = "#set($m = {})#foreach($i in [1..1000])#set($x = $m.put('a', $m))#end";
    assert!(rerr(src).contains("nested too deeply"));
    let src = "#set($l = [])#foreach($i in [1..60])#set($l = [$l, $l])#end$l";
    assert!(rerr(src).contains("output exceeds"));
}

#[test]
fn deep_nesting_is_compile_error() {
    let src = "#if(true)".repeat(100) + &"#end".repeat(100);
    assert!(compile(&src).unwrap_err().message.contains("nesting deeper"));
    let src = format!("#set($x = {}1{})", "(".repeat(200), ")".repeat(200));
    assert!(compile(&src).unwrap_err().message.contains("nesting deeper"));
    let src = format!("#set($x = {}true)", "!".repeat(500));
    assert!(compile(&src).unwrap_err().message.contains("nesting deeper"));
    let src = format!("#set($x = {}1{})", "[".repeat(200), "]".repeat(200));
    assert!(compile(&src).unwrap_err().message.contains("nesting deeper"));
    let src = format!("$a{}", ".b".repeat(100));
    assert!(compile(&src).unwrap_err().message.contains("longer than"));
    let src = "#if(true)".repeat(60) + &"#end".repeat(60);
    assert!(compile(&src).is_ok());
}

#[test]
fn compile_error_display_and_position() {
    let e = compile("ok\n  #if($a)\nx").unwrap_err();
    assert_eq!((e.line, e.column, e.offset), (2, 3, 5));
    assert_eq!(e.to_string(), "line 2, column 3: unterminated #if: missing #end");
    let e = compile("é #foreach($x $y)#end").unwrap_err();
    assert_eq!((e.line, e.column), (1, 15));
    assert!(e.message.contains("'in'"));
    // An error found inside a multi-byte character points at that character (found by
    // the template fuzz target: the column was one past it).
    let src = "$util.escapeJavaScript(\"\"\"$input.json('$.a')\\é${y'\"\"#if(\"\\$é\"";
    let e = compile(src).unwrap_err();
    assert!(src.is_char_boundary(e.offset), "offset {} inside a character", e.offset);
    assert_eq!((e.line, e.column), (1, src[..e.offset].chars().count() as u32 + 1), "{e}");
}

/// Deterministic xorshift, so the fuzz is reproducible.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn fuzz_never_panics() {
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
        "$context.requestOverride.header.A",
        "$context.responseOverride.status",
        "#macro(",
        "$x.split(','",
        "$x.get(",
        "true",
        "null",
        "$velocityCount",
        " ",
        "$util.base64Decode('",
        "$x[0]",
        "$x['k']",
        "..",
        "$m.keySet()",
        "$m.entrySet()",
        "$util.toJson($x)",
    ];
    let empty = serde_json::json!({});
    let ctx = serde_json::json!({"requestId": "r", "identity": {"sourceIp": "1"}});
    let qs = vec![("q".to_string(), "v".to_string())];
    let limits = Limits { max_output: 1 << 16, max_steps: 20_000 };
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut compiled = 0;
    for _ in 0..4000 {
        let n = (rng(&mut state) % 14) as usize + 1;
        let mut src = String::new();
        for _ in 0..n {
            src.push_str(PIECES[(rng(&mut state) % PIECES.len() as u64) as usize]);
        }
        let Ok(t) = compile(&src) else { continue };
        compiled += 1;
        for body in [&b"{\"a\":[1,{\"b\":2}],\"items\":[1,2]}"[..], b"", b"\xff\xfe not json"] {
            let scope =
                Scope { body, path: &[], querystring: &qs, header: &[], context: &ctx, stage_variables: &empty };
            let mut out = Vec::new();
            let mut ov = Overrides::default();
            let _ = t.render(&scope, &limits, &mut out, &mut ov);
            assert!(out.len() <= limits.max_output);
        }
    }
    assert!(compiled > 200, "only {compiled} fuzz templates compiled");
}

#[test]
fn fuzz_random_bytes_never_panic() {
    let mut state = 42u64;
    for _ in 0..2000 {
        let n = (rng(&mut state) % 40) as usize;
        const ALPHA: &[u8] = b"#$!{}()[]'\"\\.*=a1 \nin";
        let bytes: Vec<u8> = (0..n).map(|_| ALPHA[(rng(&mut state) % ALPHA.len() as u64) as usize]).collect();
        let src = String::from_utf8_lossy(&bytes);
        if let Ok(t) = compile(&src) {
            let _ = run(&src, BODY, &Limits { max_output: 4096, max_steps: 10_000 });
            drop(t);
        }
    }
    assert_eq!(rb("x", "y"), "x");
}

#[test]
fn deepest_allowed_nesting_renders() {
    let ifs = "#if(true)".repeat(62) + "x" + &"#end".repeat(62);
    assert_eq!(r(&ifs), "x");
    let sum = format!("#set($x = {}1{})$x", "1 + (".repeat(60), ")".repeat(60));
    assert_eq!(r(&sum), "61");
    let calls = format!("{}'a'{}", "$util.toJson(".repeat(12), ")".repeat(12));
    assert!(r(&calls).len() > 4000);
    let calls = format!("{}'a'{}", "$util.toJson(".repeat(40), ")".repeat(40));
    assert!(rerr(&calls).contains("longer than"));
    let loops = "#foreach($i in [1])".repeat(60) + "$i" + &"#end".repeat(60);
    assert_eq!(r(&loops), "1");
}
