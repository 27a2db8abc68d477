//! Configuration: TOML in, immutable `Plan` out.

pub mod compile;
pub mod error;
pub mod plan;
pub mod raw;

pub use error::ConfigError;
pub use plan::Plan;

/// The demo config served when no config file is given.
pub const DEMO: &str = include_str!("../../conf/ringway.toml");

/// Default config path for installed systems.
pub const SYSTEM_PATH: &str = "/etc/ringway/ringway.toml";

/// Reads and compiles a config file.
pub fn load(path: &str) -> Result<Plan, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_string(),
        line: 1,
        col: 1,
        message: format!("cannot read config: {e}"),
    })?;
    compile::compile(path, &src)
}
