#![no_main]
//! cargo-fuzz target; the harness is shared with tests/fuzz.rs.

#[path = "../../tests/fuzz/config.rs"]
#[allow(dead_code)]
mod config;
#[path = "../../tests/fuzz/gen.rs"]
#[allow(dead_code)]
mod gen;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    config::config(data);
});
