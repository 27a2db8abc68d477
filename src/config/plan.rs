//! The compiled, immutable plan every worker reads. Built once by `compile.rs`;
//! nothing here changes after startup (reload will swap a whole new `Plan`).

use crate::http::gateway_response::{Kind, Resolved};
use crate::http::method::RouteMethod;
use crate::integration::custom::Custom;
use crate::integration::uri::Piece;
use crate::policy::api_key::ApiKeys;
use crate::policy::cache::CachePolicy;
use crate::policy::cors::Cors;
use crate::policy::json_schema::Schema;
use crate::policy::throttle::Bucket;
use crate::policy::validate::Validation;
use crate::route::Trie;
use crate::upstream::balance::Group;
use crate::upstream::Addr;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Auto,
    IoUring,
    Epoll,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

pub struct Server {
    /// Every listening address, the TLS ones included.
    pub listen: Vec<SocketAddr>,
    /// The listeners of `listen` that speak TLS.
    pub tls: Vec<TlsListener>,
    pub workers: usize,
    pub driver: Driver,
    pub admin_listen: Option<SocketAddr>,
    pub shutdown_timeout: Duration,
    /// Accept a connection only once its first bytes are in (TCP_DEFER_ACCEPT).
    pub defer_accept: bool,
    pub state_dir: std::path::PathBuf,
    /// For zero-downtime upgrades (`ringway run --upgrade`); None: off.
    pub control_socket: Option<std::path::PathBuf>,
}

pub struct TlsListener {
    pub addr: SocketAddr,
    pub config: std::sync::Arc<rustls::ServerConfig>,
}

impl Server {
    /// The TLS config of the listener on `addr`; None: plain HTTP.
    pub fn tls_for(&self, addr: SocketAddr) -> Option<&std::sync::Arc<rustls::ServerConfig>> {
        self.tls.iter().find(|t| t.addr == addr).map(|t| &t.config)
    }
}

pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub max_uri_bytes: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub pool_max_idle: usize,
    pub pool_idle_timeout: Duration,
}

pub struct Stage {
    pub name: String,
    pub variables: BTreeMap<String, String>,
    /// The same variables as a JSON object, for `$stageVariables` in templates.
    pub variables_json: serde_json::Value,
}

impl Stage {
    pub fn new(name: String, variables: BTreeMap<String, String>) -> Stage {
        let variables_json = serde_json::Value::Object(
            variables.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
        );
        Stage { name, variables, variables_json }
    }
}

pub struct Route {
    pub path: String,
    pub method: RouteMethod,
    pub params: Vec<String>,
    /// Callers must present an API key of a usage plan that covers the stage.
    pub api_key_required: bool,
    /// Request validation (required parameters, body model).
    pub validation: Option<Box<Validation>>,
}

/// A mock response: everything but `Date`, the request id and `Connection` is prebuilt.
pub struct Mock {
    pub status: u16,
    pub head: Box<[u8]>,
    pub body: Box<[u8]>,
}

/// Where a proxied request goes: one upstream, or a group's pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    One(u32),
    Group(u32),
}

pub struct Proxy {
    pub target: Target,
    pub path: Vec<Piece>,
    pub query: Vec<Piece>,
    pub timeout: Duration,
}

pub enum Integration {
    Mock(Mock),
    HttpProxy(Proxy),
    Function(FunctionCall),
    /// `type = "http"`, or a mock with templates: mappings and templates.
    Custom(Box<Custom>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    V1,
    V2,
}

/// An `aws_proxy` integration: which function, which event format, how long to wait.
pub struct FunctionCall {
    pub function: u32,
    pub payload: PayloadFormat,
    pub timeout: Duration,
}

/// A function's invoke endpoints. Each runs one invocation at a time: `busy` holds a flag
/// per endpoint, shared by every worker; `waiting` counts requests queued for one.
pub struct Function {
    pub name: String,
    /// Upstream index per endpoint.
    pub endpoints: Vec<u32>,
    pub invoke_path: Box<[u8]>,
    pub max_queue: usize,
    pub busy: Box<[AtomicBool]>,
    pub waiting: AtomicUsize,
    pub next: AtomicUsize,
}

/// `[api]`: identity used in function events, binary media types.
pub struct Api {
    pub id: String,
    pub account_id: String,
    pub binary_media_types: Vec<String>,
    /// Region in method ARNs.
    pub region: String,
    /// API keys come from the authorizer's `usageIdentifierKey`, not `x-api-key`.
    pub api_key_from_authorizer: bool,
}

/// An upstream server, shared by every route whose URI names the same host and port.
pub struct Upstream {
    pub name: String,
    pub addr: Addr,
    pub host_header: Box<[u8]>,
}

pub struct Plan {
    /// Where the config came from (a path, or "(embedded demo)").
    pub source: String,
    /// The config's text and its FNV-1a 64-bit checksum (hex), for `GET /config`.
    pub source_text: String,
    pub checksum: String,
    pub server: Server,
    pub limits: Limits,
    pub upstream: UpstreamSettings,
    /// False when the config has no `[stages]`: routes are served at the root.
    pub staged: bool,
    pub stages: Vec<Stage>,
    pub routes: Vec<Route>,
    pub trie: Trie,
    /// Indexed by `stage * routes.len() + route`.
    pub integrations: Vec<Integration>,
    /// Human-readable integration per slot, for `check` and logs.
    pub integration_text: Vec<String>,
    pub upstreams: Vec<Upstream>,
    /// `[upstreams.NAME]` groups; their targets are entries of `upstreams`.
    pub groups: Vec<Group>,
    pub gateway: Vec<Resolved>,
    /// Token bucket per (stage, route), same indexing as `integrations`.
    pub throttles: Vec<Option<Bucket>>,
    /// Box-wide bucket over every routed request.
    pub global_throttle: Option<Bucket>,
    pub api_keys: ApiKeys,
    pub cors_policies: Vec<Cors>,
    /// CORS policy index per (stage, route), NO_CORS when none.
    pub route_cors: Vec<u32>,
    /// CORS policy index per stage, for requests that match no route.
    pub stage_cors: Vec<u32>,
    pub cache: CacheSettings,
    pub api: Api,
    pub functions: Vec<Function>,
    /// Response caching per (stage, route), same indexing as `integrations`.
    pub cache_policies: Vec<Option<Box<CachePolicy>>>,
    pub metrics: MetricsSettings,
    pub access_log: Option<AccessLogSettings>,
    /// `[models]`, compiled; routes refer to them by index.
    pub models: Vec<Schema>,
    pub model_names: Vec<String>,
    /// Compiled authorizers; `route_authorizers` (same indexing as `integrations`) points
    /// into it, `authorizer::NONE` when a route has none.
    pub authorizers: Vec<crate::policy::authorizer::Authorizer>,
    pub route_authorizers: Vec<u32>,
}

/// `[metrics]`.
pub struct MetricsSettings {
    pub enabled: bool,
    /// Histogram bucket edges, seconds, ascending.
    pub buckets: Vec<f64>,
}

/// `[access_log]`: where each worker writes and in which format.
pub struct AccessLogSettings {
    pub target: crate::observe::access_log::Target,
    pub format: std::sync::Arc<crate::observe::access_log::Format>,
}

/// The box-wide cache store's bounds (`[cache]`).
pub struct CacheSettings {
    pub max_bytes: usize,
    pub max_entry_bytes: usize,
}

pub const NO_CORS: u32 = u32::MAX;

impl Plan {
    #[inline]
    pub fn integration(&self, stage: usize, route: u32) -> &Integration {
        &self.integrations[stage * self.routes.len() + route as usize]
    }

    #[inline]
    pub fn throttle(&self, stage: usize, route: u32) -> Option<&Bucket> {
        self.throttles[stage * self.routes.len() + route as usize].as_ref()
    }

    #[inline]
    pub fn cache_policy(&self, stage: usize, route: u32) -> Option<&CachePolicy> {
        self.cache_policies[stage * self.routes.len() + route as usize].as_deref()
    }

    /// The authorizer of (stage, route), if any.
    #[inline]
    pub fn authorizer(&self, stage: usize, route: u32) -> Option<u32> {
        let a = *self.route_authorizers.get(stage * self.routes.len() + route as usize)?;
        (a != crate::policy::authorizer::NONE).then_some(a)
    }

    #[inline]
    pub fn gateway_response(&self, kind: Kind) -> &Resolved {
        &self.gateway[kind as usize]
    }

    /// Finds the stage named by the first path segment; returns (stage index, rest of path).
    #[inline]
    pub fn stage_for<'p>(&self, path: &'p [u8]) -> Option<(usize, &'p [u8])> {
        if !self.staged {
            return Some((0, path));
        }
        let p = path.strip_prefix(b"/")?;
        let end = memchr::memchr(b'/', p).unwrap_or(p.len());
        let name = &p[..end];
        let idx = self.stages.iter().position(|s| s.name.as_bytes() == name)?;
        Some((idx, &p[end..]))
    }

    /// Route ids for metric labels and logs: `METHOD /path`, by route index.
    pub fn route_ids(&self) -> Vec<String> {
        self.routes.iter().map(|r| format!("{} {}", r.method.as_str(), r.path)).collect()
    }

    /// The compiled route table, one line per (stage, route).
    pub fn route_table(&self) -> String {
        let mut rows = vec![["STAGE".to_string(), "METHOD".into(), "PATH".into(), "INTEGRATION".into()]];
        for (si, stage) in self.stages.iter().enumerate() {
            for (ri, r) in self.routes.iter().enumerate() {
                let stage_name = if self.staged { stage.name.clone() } else { "-".into() };
                let slot = si * self.routes.len() + ri;
                let mut integration = self.integration_text[slot].clone();
                if r.api_key_required {
                    integration.push_str(" [api key]");
                }
                if let Some(b) = &self.throttles[slot] {
                    integration.push_str(&format!(" [throttle {}/s, burst {}]", b.rate, b.burst));
                }
                if let Some(&a) = self.route_authorizers.get(slot).filter(|&&a| a != crate::policy::authorizer::NONE) {
                    integration.push_str(match &self.authorizers[a as usize] {
                        crate::policy::authorizer::Authorizer::Jwt(_) => " [jwt]",
                        crate::policy::authorizer::Authorizer::Lambda(_) => " [authorizer]",
                    });
                }
                if let Some(c) = &self.cache_policies[slot] {
                    integration.push_str(&format!(" [cache {}s]", c.ttl_s));
                }
                if let Some(v) = &r.validation {
                    integration.push_str(&format!(" [validate {} params", v.required.len()));
                    if v.validates_body() {
                        integration.push_str(", body");
                    }
                    integration.push(']');
                }
                rows.push([stage_name, r.method.as_str().into(), r.path.clone(), integration]);
            }
        }
        let mut w = [0usize; 3];
        for row in &rows {
            for i in 0..3 {
                w[i] = w[i].max(row[i].len());
            }
        }
        let mut out = String::new();
        for row in &rows {
            out.push_str(&format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2]
            ));
        }
        out
    }
}
