//! Router: stage resolution and the (path, method) trie.

pub mod trie;

pub use trie::{Captures, Trie};
