//! Policies that run between routing and the integration: API keys with usage plans, and
//! throttling. Validation and the cache join here.

pub mod api_key;
pub mod throttle;
