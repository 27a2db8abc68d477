//! HTTP/1.1 codec: request heads, response heads, body framing, and the writers for
//! what ringway sends. Pure functions over byte buffers; no I/O here.

pub mod body;
pub mod gateway_response;
pub mod method;
pub mod percent;
pub mod request;
pub mod response;
pub mod write;
