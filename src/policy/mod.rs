//! Policies that run between routing and the integration: CORS, API keys with usage plans, and
//! throttling, the response cache. Validation joins here.

pub mod api_key;
pub mod authorizer;
pub mod cache;
pub mod cache_store;
pub mod cors;
pub mod json_schema;
pub mod quota;
pub mod throttle;
pub mod validate;
