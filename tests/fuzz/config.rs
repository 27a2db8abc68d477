//! The config loader on mutated real configs: never panics, and every error names a line
//! and column that exist in the source.

use crate::gen::{Rng, Source};
use ringway::config::{compile::compile, ConfigError};

pub const SEEDS: &[&str] = &[
    include_str!("../../conf/ringway.toml"),
    include_str!("../../conf/petstore.toml"),
    include_str!("../../conf/examples/cache.toml"),
    include_str!("../../conf/examples/function.toml"),
    include_str!("../../conf/examples/http-custom.toml"),
    include_str!("../../conf/examples/http-proxy.toml"),
    include_str!("../../conf/examples/mock.toml"),
    include_str!("../../conf/examples/private.toml"),
];

/// Tokens that make mutations land on meaningful config.
pub const DICT: &[&[u8]] = &[
    b"[[routes]]\n",
    b"[stages.x]\n",
    b"[server]\n",
    b"[limits]\n",
    b"path = \"/{a}/{a}\"\n",
    b"method = \"ANY\"\n",
    b"= ",
    b"\"",
    b"'",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"\n",
    b"0",
    b"-1",
    b"18446744073709551616",
    b"1e400",
    b"true",
    b"\"/{proxy+}/x\"",
    b"\"http://h:1/{x}\"",
    b"\"#if(\"",
    b"type = \"mock\"",
    b"uri = ",
    b"timeout_ms = ",
    b"\\u",
    b"\"\"\"",
    b"#",
    b"\t",
    b"\xc3\xa9",
    b"\r\n",
    b"inf",
    b"nan",
    b"1979-05-27",
];

/// Checks `e` against `src`: the line exists and the column is within it (or one past).
pub fn check_location(src: &str, e: &ConfigError) {
    assert!(!e.message.is_empty(), "empty message");
    assert_eq!(e.to_string(), format!("{}:{}:{}: {}", e.file, e.line, e.col, e.message));
    if e.file != "fuzz.toml" {
        return; // an error in a file the config names (keys file)
    }
    let lines: Vec<&str> = src.split('\n').collect();
    assert!(e.line >= 1 && e.line <= lines.len(), "line {} of {}: {e}", e.line, lines.len());
    let width = lines[e.line - 1].chars().count();
    assert!(e.col >= 1 && e.col <= width + 1, "column {} of {width}: {e}", e.col);
}

/// Picks a seed and mutates it line- and byte-wise from the input's choices.
pub fn mutated(data: &[u8]) -> String {
    let mut s = Source::new(data);
    let seed = s.pick(SEEDS);
    let mut rng = Rng(s.byte() as u64 | (s.byte() as u64) << 8);
    let mut lines: Vec<String> = seed.split('\n').map(str::to_string).collect();
    for _ in 0..1 + s.below(3) {
        let i = s.below(lines.len());
        match s.below(6) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(s.below(lines.len() + 1), l);
            }
            2 => {
                let j = s.below(lines.len());
                lines.swap(i, j);
            }
            3 => {
                // Replace a value with another line's value.
                let j = s.below(lines.len());
                if let (Some((k, _)), Some((_, v))) = (lines[i].split_once('='), lines[j].clone().split_once('=')) {
                    lines[i] = format!("{k}={v}");
                }
            }
            _ => {
                let b = rng.mutate(lines[i].as_bytes(), DICT);
                lines[i] = String::from_utf8_lossy(&b).into_owned();
            }
        }
        if lines.is_empty() {
            lines.push(String::new());
        }
    }
    let mut src = lines.join("\n");
    if s.one_in(8) {
        let cut = s.below(src.len() + 1);
        let cut = (0..=cut).rev().find(|&c| src.is_char_boundary(c)).unwrap_or(0);
        src.truncate(cut);
    }
    src
}

pub fn config(data: &[u8]) {
    let src =
        if data.first() == Some(&b'=') { String::from_utf8_lossy(&data[1..]).into_owned() } else { mutated(data) };
    if let Err(e) = compile("fuzz.toml", &src) {
        check_location(&src, &e);
    }
}
