//! Integrations: what a matched route does with the request.

pub mod cached;
pub mod custom;
pub mod function;
pub mod function_event;
pub mod function_result;
pub mod json;
pub mod mapping;
pub mod mock;
pub mod proxy;
pub mod template;
pub mod uri;
