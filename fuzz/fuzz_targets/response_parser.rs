#![no_main]
//! cargo-fuzz target; the harness is shared with tests/fuzz.rs.

#[path = "../../tests/fuzz/chunked.rs"]
#[allow(dead_code)]
mod chunked;
#[path = "../../tests/fuzz/gen.rs"]
#[allow(dead_code)]
mod gen;
#[path = "../../tests/fuzz/request.rs"]
#[allow(dead_code)]
mod request;
#[path = "../../tests/fuzz/response.rs"]
#[allow(dead_code)]
mod response;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    response::response(data);
});
