//! Policies that run between routing and the integration: CORS, API keys with usage plans, and
//! throttling. Validation and the cache join here.

pub mod api_key;
pub mod cors;
pub mod quota;
pub mod throttle;
