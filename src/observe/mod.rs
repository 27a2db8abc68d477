//! Observability and operations off the data path: the admin listener, request metrics and
//! latency quantiles. Access logs join here.

pub mod access_log;
pub mod admin;
pub mod histogram;
pub mod metrics;
