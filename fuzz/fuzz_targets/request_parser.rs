#![no_main]
//! cargo-fuzz target; the harness is shared with tests/fuzz.rs.

#[path = "../../tests/fuzz/gen.rs"]
#[allow(dead_code)]
mod gen;
#[path = "../../tests/fuzz/request.rs"]
#[allow(dead_code)]
mod request;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    request::head(data);
    request::stream(data);
});
