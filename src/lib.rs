//! ringway: an edge API gateway with Amazon API Gateway's model, as one thread-per-core
//! daemon. A request flows listener -> connection -> HTTP/1.1 codec -> router ->
//! integration -> upstream pool -> response; each stage has its own module.

pub mod clock;
pub mod config;
pub mod http;
pub mod integration;
pub mod observe;
pub mod policy;
pub mod route;
pub mod server;
pub mod upstream;
