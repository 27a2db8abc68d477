//! Observability and operations off the data path: the admin listener. Metrics and
//! access logs join here.

pub mod access_log;
pub mod admin;
