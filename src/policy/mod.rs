//! Policies that run between routing and the integration. Throttling for now; API keys,
//! validation and the cache join here.

pub mod throttle;
