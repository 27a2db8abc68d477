//! Configuration: TOML in, immutable `Plan` out.

pub mod compile;
pub mod error;
pub mod openapi;
pub mod plan;
pub mod raw;

pub use error::ConfigError;
pub use plan::Plan;

/// The demo config served when no config file is given.
pub const DEMO: &str = include_str!("../../conf/ringway.toml");

/// Default config path for installed systems.
pub const SYSTEM_PATH: &str = "/etc/ringway/ringway.toml";

/// Reads and compiles a config file: native TOML, an OpenAPI / Swagger document, or an
/// overlay naming one (`[api] openapi = "api.yaml"`). What the document uses that ringway
/// does not support is logged to stderr, one line each.
pub fn load(path: &str) -> Result<Plan, ConfigError> {
    let (plan, warnings) = load_with_warnings(path)?;
    for w in warnings {
        eprintln!("ringway: {w}");
    }
    Ok(plan)
}

/// `load`, returning the warnings instead of logging them.
pub fn load_with_warnings(path: &str) -> Result<(Plan, Vec<openapi::Warning>), ConfigError> {
    let src = read(path)?;
    openapi::load(path, &src)
}

/// The text of a config file, or an error naming it.
pub fn read(path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_string(),
        line: 1,
        col: 1,
        message: format!("cannot read config: {e}"),
    })
}
