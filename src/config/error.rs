//! Config errors that point at the offending byte: `file:line:col: message`.
//! Pure data; knows nothing about the plan.

use std::fmt;

#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl ConfigError {
    /// An error at byte `offset` of `source` (1-based line and column, columns in characters).
    pub fn at(file: &str, source: &str, offset: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(source.len());
        let before = &source[..floor_char_boundary(source, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        ConfigError { file: file.to_string(), line, col, message: message.into() }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let src = "a = 1\nbb = 2\n";
        let e = ConfigError::at("f.toml", src, 6, "x");
        assert_eq!((e.line, e.col), (2, 1));
        let e = ConfigError::at("f.toml", src, 9, "x");
        assert_eq!((e.line, e.col), (2, 4));
        assert_eq!(e.to_string(), "f.toml:2:4: x");
    }
}
