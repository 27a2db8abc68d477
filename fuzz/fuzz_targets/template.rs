#![no_main]
//! cargo-fuzz target; the harness is shared with tests/fuzz.rs.

#[path = "../../tests/fuzz/gen.rs"]
#[allow(dead_code)]
mod gen;
#[path = "../../tests/fuzz/template.rs"]
#[allow(dead_code)]
mod template;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    template::template(data);
});
