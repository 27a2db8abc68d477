//! OpenAPI 3.0 / Swagger 2.0 documents with API Gateway's `x-amazon-apigateway-*`
//! extensions, run as they are.
//!
//! The document is converted into native TOML text (with `# paths./pets.get` comments),
//! which `ringway import` prints and `run` / `check` compile with the ordinary compiler, so
//! every native check applies. An overlay TOML (`[api] openapi = "api.yaml"`) supplies
//! what an export lacks (listeners, stages and variables, upstream groups, functions,
//! keys); the generated routes are appended to it. Errors the compiler finds in generated
//! lines are reported at the document position they came from.
//!
//! One idea per file: `document` (reading JSON/YAML, positions), `emit` (TOML text),
//! `convert` (root extensions, paths and operations), `integration`
//! (`x-amazon-apigateway-integration`), `request` (security, validators, models).

mod convert;
mod document;
mod emit;
mod integration;
mod request;

use super::compile;
use super::error::ConfigError;
use super::plan::Plan;
use super::raw::RawConfig;
use std::collections::BTreeMap;
use std::fmt;

pub use document::looks_like_openapi;

/// Something the document uses that ringway does not support (or supports only in part).
#[derive(Debug, Clone)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// JSON path in the document: `paths./pets.get.x-amazon-apigateway-integration`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: warning: {}: {}", self.file, self.line, self.col, self.path, self.message)
    }
}

/// How the document's base path applies to its paths (API Gateway's `basepath` import mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BasePath {
    /// Paths as written (API Gateway's default: the base path is the stage).
    #[default]
    Ignore,
    /// The whole base path goes before every path.
    Prepend,
    /// The base path's first segment is dropped (the stage), the rest goes before every path.
    Split,
}

/// What the overlay offers the conversion.
#[derive(Default)]
pub(crate) struct Env {
    /// Stage name, variables, whether the stage turns caching on.
    pub stages: Vec<(String, BTreeMap<String, String>, bool)>,
    pub functions: Vec<String>,
    pub groups: Vec<String>,
    pub gateway_responses: Vec<String>,
    pub has_models: bool,
    pub base_path: BasePath,
}

/// A converted document: the TOML text to compile, and what to say about it.
pub struct Converted {
    /// The file the text is compiled as (the overlay, else the document): relative paths in
    /// it resolve from there.
    pub file: String,
    pub toml: String,
    pub warnings: Vec<Warning>,
    doc: document::Document,
    emitter: emit::Emitter,
    /// Lines of `toml` before the generated part.
    prefix_lines: usize,
}

/// Converts `path` when it is an OpenAPI document or an overlay naming one; `None` for an
/// ordinary TOML config.
pub fn convert(path: &str, src: &str) -> Result<Option<Converted>, ConfigError> {
    if looks_like_openapi(path, src) {
        let doc = document::parse(path, src.to_string())?;
        return convert_document(doc, Env::default(), None).map(Some);
    }
    // An overlay: a TOML config whose [api] names a document. A TOML error is left to the
    // compiler, which reports it the usual way.
    let Ok(raw) = toml::from_str::<RawConfig>(src) else { return Ok(None) };
    let Some(doc_ref) = raw.api.openapi.as_ref() else {
        if let Some(b) = &raw.api.base_path {
            return Err(ConfigError::at(path, src, b.span().start, "base_path applies only with [api] openapi"));
        }
        return Ok(None);
    };
    let base = std::path::Path::new(path).parent().unwrap_or(std::path::Path::new(""));
    let doc_path = base.join(doc_ref.get_ref()).display().to_string();
    let doc_src = std::fs::read_to_string(&doc_path).map_err(|e| {
        ConfigError::at(path, src, doc_ref.span().start, format!("cannot read OpenAPI document {doc_path}: {e}"))
    })?;
    let doc = document::parse(&doc_path, doc_src)?;
    let base_path = match raw.api.base_path.as_ref().map(|b| (b.get_ref().as_str(), b.span())) {
        None | Some(("ignore", _)) => BasePath::Ignore,
        Some(("prepend", _)) => BasePath::Prepend,
        Some(("split", _)) => BasePath::Split,
        Some((other, span)) => {
            return Err(ConfigError::at(
                path,
                src,
                span.start,
                format!("base_path must be \"ignore\", \"prepend\" or \"split\", got \"{other}\""),
            ))
        }
    };
    let mut env = Env { base_path, ..Env::default() };
    for (name, st) in raw.stages.iter().flatten() {
        let vars = st.variables.iter().map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone())).collect();
        let cache = st.cache.as_ref().is_some_and(|c| c.get_ref().enabled != Some(false));
        env.stages.push((name.get_ref().clone(), vars, cache));
    }
    env.functions = raw.functions.keys().map(|k| k.get_ref().clone()).collect();
    env.groups = raw.upstreams.keys().map(|k| k.get_ref().clone()).collect();
    env.gateway_responses = raw.gateway_responses.keys().map(|k| k.get_ref().clone()).collect();
    env.has_models = !raw.models.is_empty();
    let overlay = Overlay { file: path, src, raw: &raw };
    convert_document(doc, env, Some(overlay)).map(Some)
}

struct Overlay<'a> {
    file: &'a str,
    src: &'a str,
    raw: &'a RawConfig,
}

fn convert_document(doc: document::Document, env: Env, overlay: Option<Overlay>) -> Result<Converted, ConfigError> {
    let mut cv = convert::Conv::new(&doc, &env);
    cv.run()?;
    let convert::Conv { out: emitter, warnings, binary_media_types, .. } = cv;
    let warnings: Vec<Warning> = warnings
        .into_iter()
        .map(|(path, message)| {
            let (line, col) = doc.position(&path);
            Warning { file: doc.file.clone(), line, col, path, message }
        })
        .collect();
    let (file, prefix) = match &overlay {
        None => {
            let mut p = format!(
                "# Converted by ringway from {} ({} {}).\n",
                doc.file,
                if doc.swagger() { "Swagger" } else { "OpenAPI" },
                doc.version
            );
            for w in &warnings {
                p.push_str(&format!("# warning: {}: {}\n", w.path, w.message.replace('\n', " ")));
            }
            if !binary_media_types.is_empty() {
                p.push_str(&format!("[api]\nbinary_media_types = {}\n", emit::string_list(&binary_media_types)));
            }
            (doc.file.clone(), p)
        }
        Some(o) => (o.file.to_string(), overlay_text(o, &doc, &binary_media_types, &warnings)?),
    };
    let prefix_lines = prefix.matches('\n').count();
    let toml = format!("{prefix}{}", emitter.text);
    Ok(Converted { file, toml, warnings, doc, emitter, prefix_lines })
}

/// The overlay's text with its `openapi` / `base_path` lines commented out (so the merged
/// text, printed by `import`, is a plain config), the document's binary media types put on
/// the `openapi` line when the overlay has none, and a separator. Line numbers are kept.
fn overlay_text(
    o: &Overlay,
    doc: &document::Document,
    bin: &[String],
    warnings: &[Warning],
) -> Result<String, ConfigError> {
    let mut text = o.src.to_string();
    let api = &o.raw.api;
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for (key, v) in [("openapi", api.openapi.as_ref()), ("base_path", api.base_path.as_ref())] {
        let Some(v) = v else { continue };
        let start = text[..v.span().start].rfind('\n').map_or(0, |i| i + 1);
        let end = text[v.span().end..].find('\n').map_or(text.len(), |i| v.span().end + i);
        let line = &text[start..end];
        if !line.trim_start().starts_with(key) {
            return Err(ConfigError::at(
                o.file,
                o.src,
                v.span().start,
                format!("write {key} = \"...\" on its own line of the [api] table"),
            ));
        }
        let mut new = String::new();
        if key == "openapi" && !bin.is_empty() && api.binary_media_types.is_empty() {
            new.push_str(&format!("binary_media_types = {}  ", emit::string_list(bin)));
        }
        new.push_str(&format!("# {} (imported below)", line.trim()));
        edits.push((start..end, new));
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    for (r, new) in edits {
        text.replace_range(r, &new);
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "\n# ---- imported from {} ({}) ----\n",
        doc.file,
        if doc.swagger() { "Swagger 2.0" } else { "OpenAPI 3" }
    ));
    for w in warnings {
        text.push_str(&format!("# warning: {}: {}\n", w.path, w.message.replace('\n', " ")));
    }
    Ok(text)
}

impl Converted {
    /// Compiles the text; an error in a generated line is reported where it came from in
    /// the document.
    pub fn compile(&self) -> Result<Plan, ConfigError> {
        compile::compile(&self.file, &self.toml).map_err(|e| self.remap(e))
    }

    fn remap(&self, e: ConfigError) -> ConfigError {
        if e.file != self.file || e.line <= self.prefix_lines {
            return e;
        }
        let line = e.line - self.prefix_lines;
        match self.emitter.origin(line) {
            Some(path) => self.doc.err(path, format!("{} (line {} of `ringway import`)", e.message, e.line)),
            None => e,
        }
    }
}

/// Reads `path`; an OpenAPI document or an overlay is converted and compiled (with its
/// warnings), anything else compiled as TOML.
pub fn load(path: &str, src: &str) -> Result<(Plan, Vec<Warning>), ConfigError> {
    match convert(path, src)? {
        Some(c) => {
            let plan = c.compile()?;
            Ok((plan, c.warnings))
        }
        None => Ok((compile::compile(path, src)?, Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_file(path: &str) -> Result<(Plan, Vec<Warning>), ConfigError> {
        let src = std::fs::read_to_string(path).unwrap();
        load(path, &src)
    }

    #[test]
    fn shipped_openapi_examples_compile() {
        let (plan, warnings) = load_file("conf/openapi/petstore.toml").unwrap();
        assert_eq!((plan.routes.len(), plan.functions.len(), plan.models.len()), (7, 1, 1));
        assert!(warnings.iter().all(|w| !w.message.contains("500")), "{warnings:?}");
        let (plan, warnings) = load_file("conf/openapi/orders.toml").unwrap();
        assert_eq!(plan.routes.len(), 7);
        assert_eq!(plan.routes[0].path, "/legacy/orders", "basePath prepended");
        let paths: Vec<&str> =
            warnings.iter().filter(|w| w.message.contains("answers 500")).map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "paths./queue.post.x-amazon-apigateway-integration",
                "paths./admin.get.security",
                "paths./reports.get.security"
            ]
        );
        let (plan, _) = load_file("conf/openapi/status.yaml").unwrap();
        assert_eq!(plan.routes.len(), 2);
    }

    #[test]
    fn base_path_modes() {
        let doc = "swagger: '2.0'\nbasePath: /prod/v1\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: mock\n        responses: {default: {statusCode: 200}}\n";
        let dir = std::env::temp_dir().join(format!("ringway-openapi-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("api.yaml"), doc).unwrap();
        for (mode, want) in [("ignore", "/a"), ("prepend", "/prod/v1/a"), ("split", "/v1/a")] {
            let overlay = format!("[api]\nopenapi = \"api.yaml\"\nbase_path = \"{mode}\"\n");
            let path = dir.join(format!("{mode}.toml")).display().to_string();
            let (plan, _) = load(&path, &overlay).unwrap();
            assert_eq!(plan.routes[0].path, want, "{mode}");
        }
        let e = load(&dir.join("x.toml").display().to_string(), "[api]\nopenapi = \"api.yaml\"\nbase_path = \"cut\"\n");
        assert!(e.err().unwrap().to_string().contains("x.toml:3:13: base_path must be"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
