//! API Gateway mapping templates: a safe subset of Apache Velocity (VTL 1.7) compiled once at
//! config load and rendered per request against `$input`, `$context`, `$stageVariables`, `$util`.
//! Touches nothing but the `Scope` it is given, the output buffer and the `Overrides`.
//!
//! Choices where Velocity or API Gateway leave room:
//! * only null and `false` are false (an empty string is true, as in Velocity 1.7);
//! * `#set($x = <null>)` makes `$x` null (Velocity 2 style; 1.7 would keep the old value);
//! * lists and maps print as JSON, not Java's `{a=1}`;
//! * an unknown method is a render error naming it;
//! * `$input.json(...)` on a body that is not JSON (or a missing path) gives `null`;
//! * root variable names have no `-`, property names may (`$context.requestOverride.header.X-Id`);
//! * a directive eats blanks and one newline right after it (Velocity 1.7); alone on its line it
//!   also loses its indentation (Velocity 2 "lines" gobbling), so templates print clean JSON;
//! * `\$` and `\#` always print the bare sign; in `"..."` strings `\"` and `""` stand for a quote;
//! * on a render error `out` is left as it was before the call.

mod ast;
mod eval;
mod expr;
mod input;
pub mod jsonpath;
mod methods;
mod parse;
mod util;
mod value;

use std::cell::OnceCell;

/// A compiled template: immutable, shareable between threads.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<ast::Node>,
    slots: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    /// 1-based line within the template text.
    pub line: u32,
    /// 1-based column (in characters) within the line.
    pub column: u32,
    /// Byte offset within the template text.
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for CompileError {}

/// Compiles template text (no I/O, no global state).
pub fn compile(src: &str) -> Result<Template, CompileError> {
    let (nodes, slots) = parse::template(src)?;
    Ok(Template { nodes, slots })
}

/// Everything a template can read. Built per request by the caller.
pub struct Scope<'a> {
    /// `$input.body` (raw, lossy UTF-8 when rendered).
    pub body: &'a [u8],
    /// Method request path parameters.
    pub path: &'a [(String, String)],
    /// Query parameters, last value per name.
    pub querystring: &'a [(String, String)],
    /// Headers as sent; `$input.params('x')` finds them case-insensitively.
    pub header: &'a [(String, String)],
    /// Object read by `$context.*` (nested objects: `$context.identity.sourceIp`).
    pub context: &'a serde_json::Value,
    /// Object of strings read by `$stageVariables.*`.
    pub stage_variables: &'a serde_json::Value,
}

/// What `#set($context.requestOverride...)` / `$context.responseOverride...` produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Overrides {
    pub request_header: Vec<(String, String)>,
    pub request_querystring: Vec<(String, String)>,
    pub request_path: Vec<(String, String)>,
    /// `responseOverride.status`; values outside 100..=599 are ignored (not set).
    pub status: Option<u16>,
    pub response_header: Vec<(String, String)>,
}

/// Bounds of one render.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most output bytes (also the longest string a template may build).
    pub max_output: usize,
    /// Most evaluation steps (nodes, expressions, iterations, and 1 per 256 bytes built).
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_output: 10 << 20, max_steps: 1_000_000 }
    }
}

#[derive(Debug)]
pub struct RenderError {
    pub message: String,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RenderError {}

impl Template {
    /// Appends the output to `out`. Never panics, whatever the input; bounded by `limits`.
    pub fn render(
        &self,
        scope: &Scope,
        limits: &Limits,
        out: &mut Vec<u8>,
        overrides: &mut Overrides,
    ) -> Result<(), RenderError> {
        let start = out.len();
        let body = OnceCell::new();
        let mut cx = eval::Ctx::new(scope, &body, limits, self.slots, std::mem::take(out), std::mem::take(overrides));
        let r = cx.block(&self.nodes);
        *out = std::mem::take(&mut cx.out);
        *overrides = std::mem::take(&mut cx.ov);
        drop(cx);
        if r.is_err() {
            out.truncate(start);
        }
        r.map(|_| ())
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    use super::*;

    pub(crate) const BODY: &str = r#"{"items":[{"id":1,"name":"Rex"},{"id":2,"name":"O'Malley \"the cat\""}],"n":3,"s":"hi","nested":{"a":{"b":true}}}"#;

    pub(crate) fn run(src: &str, body: &str, limits: &Limits) -> Result<(String, Overrides), String> {
        let t = compile(src).map_err(|e| format!("compile: {e}"))?;
        let path = vec![("id".to_string(), "42".to_string())];
        let qs = vec![("q".to_string(), "cats".to_string()), ("scope".to_string(), "internal".to_string())];
        let header =
            vec![("X-Api-Key".to_string(), "k1".to_string()), ("Content-Type".into(), "application/json".into())];
        let context = serde_json::json!({"requestId": "req-1", "identity": {"sourceIp": "1.2.3.4"}, "stage": "prod"});
        let stage = serde_json::json!({"env": "test", "my-var": "mv"});
        let scope = Scope {
            body: body.as_bytes(),
            path: &path,
            querystring: &qs,
            header: &header,
            context: &context,
            stage_variables: &stage,
        };
        let mut out = Vec::new();
        let mut ov = Overrides::default();
        t.render(&scope, limits, &mut out, &mut ov).map_err(|e| e.message)?;
        Ok((String::from_utf8(out).expect("utf8"), ov))
    }

    /// Renders with the fixture body; panics on error.
    pub(crate) fn r(src: &str) -> String {
        rb(src, BODY)
    }

    pub(crate) fn rb(src: &str, body: &str) -> String {
        run(src, body, &Limits::default()).unwrap_or_else(|e| panic!("{src:?}: {e}")).0
    }

    /// The render error message; panics when rendering succeeds.
    pub(crate) fn rerr(src: &str) -> String {
        match run(src, BODY, &Limits::default()) {
            Ok((s, _)) => panic!("{src:?} rendered {s:?}"),
            Err(e) => {
                assert!(!e.starts_with("compile:"), "{e}");
                e
            }
        }
    }

    pub(crate) fn cerr(src: &str) -> CompileError {
        match compile(src) {
            Ok(_) => panic!("{src:?} compiled"),
            Err(e) => e,
        }
    }
}

#[cfg(test)]
mod tests;
