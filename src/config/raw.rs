//! The TOML file as written, with spans kept on every value we validate.
//! Only serde structs live here; meaning is given in `compile.rs`.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub upstream: RawUpstream,
    pub stages: Option<BTreeMap<Spanned<String>, RawStage>>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub gateway_responses: BTreeMap<Spanned<String>, Spanned<RawGatewayResponse>>,
    /// Box-wide limit over every routed request.
    pub throttle: Option<Spanned<RawThrottle>>,
    #[serde(default)]
    pub api_keys: Vec<Spanned<RawApiKey>>,
    #[serde(default)]
    pub usage_plans: BTreeMap<Spanned<String>, RawUsagePlan>,
    /// `[keys] file = "keys.toml"`: API keys and usage plans kept in a separate file.
    pub keys: Option<RawKeysRef>,
    /// The box-wide response cache store.
    #[serde(default)]
    pub cache: RawCacheStore,
    /// Settings of the API as a whole (ids in events, binary media types).
    #[serde(default)]
    pub api: RawApi,
    /// Lambda-style functions: invoke endpoints by name.
    #[serde(default)]
    pub functions: BTreeMap<Spanned<String>, Spanned<RawFunction>>,
    /// Named upstream groups: several targets behind one name.
    #[serde(default)]
    pub upstreams: BTreeMap<Spanned<String>, Spanned<RawUpstreamGroup>>,
    /// Prometheus metrics (on by default) and their histogram buckets.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// One line per request, in API Gateway's `$context` format language.
    pub access_log: Option<Spanned<RawAccessLog>>,
    /// Request body models: JSON Schema (draft 4), as JSON text or a TOML table.
    #[serde(default)]
    pub models: BTreeMap<Spanned<String>, Spanned<serde_json::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub enabled: Option<bool>,
    /// Histogram bucket edges in seconds, ascending.
    pub buckets: Option<Spanned<Vec<f64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    /// "stdout", "stderr" or a file path.
    pub target: Spanned<String>,
    /// "clf" (default), "json", or a format with `$context.*` variables.
    pub format: Option<Spanned<String>>,
}

/// `validate = { required = [...], body = "Model" | { "type" = "Model" } }` on a route.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    #[serde(default)]
    pub required: Vec<Spanned<String>>,
    pub body: Option<Spanned<RawBodyModels>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawBodyModels {
    /// One model for every content type.
    One(String),
    /// Model per content type; `$default` for the others.
    ByType(BTreeMap<String, String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamGroup {
    /// `host:port` or `unix:/path/to.sock`.
    pub targets: Vec<Spanned<String>>,
    pub balance: Option<Spanned<String>>,
    /// `Host` header sent to the targets (default: the group's name).
    pub host: Option<Spanned<String>>,
    pub max_fails: Option<Spanned<u64>>,
    pub eject_ms: Option<Spanned<u64>>,
    pub eject_max_ms: Option<Spanned<u64>>,
    /// For `https://` targets.
    pub tls: Option<Spanned<RawUpstreamTls>>,
}

/// `tls = { ... }` for `https://` upstreams.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamTls {
    /// PEM file of the CAs to trust instead of the system's.
    pub ca_file: Option<Spanned<String>>,
    pub insecure_skip_verification: Option<bool>,
    /// SNI and certificate name, instead of the URI's host.
    pub server_name: Option<Spanned<String>>,
}

/// `[[server.tls]]`: a TLS listener.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTlsListener {
    pub listen: Spanned<String>,
    pub certs: Spanned<Vec<Spanned<RawCert>>>,
    /// "1.2" (default) or "1.3".
    pub min_version: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCert {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
    #[serde(default)]
    pub server_names: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub id: Option<Spanned<String>>,
    pub account_id: Option<Spanned<String>>,
    #[serde(default)]
    pub binary_media_types: Vec<Spanned<String>>,
    /// `openapi = "api.yaml"`: this file is an overlay; the routes come from that OpenAPI /
    /// Swagger document (path relative to this file). See `config::openapi`.
    pub openapi: Option<Spanned<String>>,
    /// How the document's `basePath` (Swagger) or server URL path (OpenAPI 3) applies to its
    /// paths, as API Gateway's import: "ignore" (default), "prepend" or "split".
    pub base_path: Option<Spanned<String>>,
    /// Region in method ARNs (Lambda authorizers).
    pub region: Option<Spanned<String>>,
    /// Where API keys come from: "header" (`x-api-key`, default) or "authorizer"
    /// (a Lambda authorizer's `usageIdentifierKey`).
    pub api_key_source: Option<Spanned<String>>,
}

/// `authorizer = { type = "jwt" | "token" | "request" | "none", ... }` on a route or stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizer {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// `header.Authorization`; REQUEST: a list (or comma-separated string) of sources.
    pub identity_source: Option<Spanned<RawIdentitySource>>,
    // JWT
    pub issuer: Option<Spanned<String>>,
    pub audience: Option<Vec<Spanned<String>>>,
    pub jwks: Option<Spanned<String>>,
    /// HS256 shared secret (instead of `jwks`).
    pub secret: Option<Spanned<String>>,
    pub scopes: Option<Vec<Spanned<String>>>,
    pub clock_skew_s: Option<Spanned<u64>>,
    pub jwks_min_refresh_s: Option<Spanned<u64>>,
    pub jwks_max_refresh_s: Option<Spanned<u64>>,
    // Lambda-style
    pub function: Option<Spanned<String>>,
    pub validation_regex: Option<Spanned<String>>,
    pub ttl_s: Option<Spanned<u64>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub cache_max_entries: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawIdentitySource {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFunction {
    /// `host:port` of processes speaking the Lambda invoke protocol, one invocation each at a time.
    pub endpoints: Vec<Spanned<String>>,
    pub max_queue: Option<Spanned<u64>>,
    pub invoke_path: Option<Spanned<String>>,
    /// For `https://` endpoints.
    pub tls: Option<Spanned<RawUpstreamTls>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCacheStore {
    pub max_bytes: Option<Spanned<u64>>,
    pub max_entry_bytes: Option<Spanned<u64>>,
}

/// Response caching for a stage (default of its routes) or one route. A route's fields
/// override its stage's one by one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub enabled: Option<bool>,
    pub ttl_s: Option<Spanned<u64>>,
    pub key: Option<Vec<Spanned<String>>>,
    pub methods: Option<Vec<Spanned<String>>>,
    pub statuses: Option<Vec<Spanned<u64>>>,
    pub honor_upstream_cache_control: Option<bool>,
    pub invalidation: Option<Spanned<String>>,
    pub unauthorized: Option<Spanned<String>>,
    pub x_cache_header: Option<bool>,
    pub lock_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeysRef {
    /// Path of the keys file, relative to this config's folder.
    pub file: Spanned<String>,
}

/// The keys file: API keys and usage plans only.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    #[serde(default)]
    pub api_keys: Vec<Spanned<RawApiKey>>,
    #[serde(default)]
    pub usage_plans: BTreeMap<Spanned<String>, RawUsagePlan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub id: Spanned<String>,
    pub value: Spanned<String>,
    pub plan: Option<Spanned<String>>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUsagePlan {
    pub throttle: Option<Spanned<RawThrottle>>,
    /// Stages the plan covers; all when absent.
    pub stages: Option<Vec<Spanned<String>>>,
    /// Per-route limits inside the plan, keyed "/path/METHOD" as in API Gateway.
    #[serde(default)]
    pub routes: BTreeMap<Spanned<String>, Spanned<RawThrottle>>,
    pub quota: Option<Spanned<RawQuota>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub limit: Spanned<i64>,
    pub period: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    pub rate: Spanned<f64>,
    pub burst: Spanned<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Spanned<Vec<Spanned<String>>>>,
    pub workers: Option<Spanned<Workers>>,
    pub driver: Option<Spanned<String>>,
    pub admin_listen: Option<Spanned<String>>,
    pub shutdown_timeout_ms: Option<Spanned<u64>>,
    /// TCP_DEFER_ACCEPT on the listeners.
    pub defer_accept: Option<bool>,
    /// Where quota usage is persisted.
    pub state_dir: Option<Spanned<String>>,
    /// Unix socket over which a new process (`ringway run --upgrade`) takes the listeners.
    pub control_socket: Option<Spanned<String>>,
    /// TLS listeners.
    #[serde(default)]
    pub tls: Vec<Spanned<RawTlsListener>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum Workers {
    Count(i64),
    Word(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_header_bytes: Option<Spanned<u64>>,
    pub max_body_bytes: Option<Spanned<u64>>,
    pub max_uri_bytes: Option<Spanned<u64>>,
    pub header_timeout_ms: Option<Spanned<u64>>,
    pub idle_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub connect_timeout_ms: Option<Spanned<u64>>,
    pub pool_max_idle: Option<Spanned<u64>>,
    pub pool_idle_timeout_ms: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    #[serde(default)]
    pub variables: BTreeMap<Spanned<String>, Spanned<String>>,
    /// Default limit for each route of the stage.
    pub throttle: Option<Spanned<RawThrottle>>,
    /// Default CORS policy for each route of the stage (and its gateway errors).
    pub cors: Option<Spanned<RawCors>>,
    /// Default response caching for each route of the stage.
    pub cache: Option<Spanned<RawCache>>,
    /// Default authorizer for each route of the stage.
    pub authorizer: Option<Spanned<RawAuthorizer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Option<Vec<String>>,
    pub allow_headers: Option<Vec<String>>,
    pub expose_headers: Option<Vec<String>>,
    pub max_age_s: Option<u64>,
    #[serde(default)]
    pub allow_credentials: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub path: Spanned<String>,
    pub method: Spanned<String>,
    pub integration: Spanned<RawIntegration>,
    pub throttle: Option<Spanned<RawThrottle>>,
    #[serde(default)]
    pub api_key_required: bool,
    pub cors: Option<Spanned<RawCors>>,
    pub cache: Option<Spanned<RawCache>>,
    /// Request validation: required parameters and a body model.
    pub validate: Option<Spanned<RawValidate>>,
    /// Overrides the stage's authorizer (`{ type = "none" }`: no authorizer).
    pub authorizer: Option<Spanned<RawAuthorizer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntegration {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub uri: Option<Spanned<String>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub status: Option<Spanned<u64>>,
    pub headers: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub body: Option<Spanned<String>>,
    pub function: Option<Spanned<String>>,
    pub payload_format: Option<Spanned<String>>,
    /// Non-proxy (`http`, templated `mock`): the backend's method (default: the request's).
    pub http_method: Option<Spanned<String>>,
    /// `"integration.request.header.X" = "method.request.querystring.y"` and the like.
    pub request_parameters: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    /// Mapping templates by request content type (`$default` for the others).
    pub request_templates: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub passthrough_behavior: Option<Spanned<String>>,
    /// Integration responses, tried in order.
    pub responses: Option<Vec<Spanned<RawIntegrationResponse>>>,
    /// For an `https://` uri.
    pub tls: Option<Spanned<RawUpstreamTls>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntegrationResponse {
    /// Regex over the backend's status (whole match); absent or "default": the default.
    pub selection_pattern: Option<Spanned<String>>,
    pub status: Spanned<u64>,
    #[serde(default)]
    pub response_parameters: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub response_templates: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayResponse {
    pub status: Option<Spanned<u64>>,
    #[serde(default)]
    pub headers: BTreeMap<Spanned<String>, Spanned<String>>,
    pub body: Option<Spanned<String>>,
}
