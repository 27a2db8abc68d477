//! Integrations: what a matched route does with the request.

pub mod cached;
pub mod mock;
pub mod proxy;
pub mod uri;
