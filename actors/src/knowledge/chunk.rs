//! Splitting text into overlapping windows of tokens (cl100k, as OpenAI counts them).

use serde::{Deserialize, Serialize};

/// OpenAI's `static` chunking strategy and its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunking {
    pub max_chunk_size_tokens: usize,
    pub chunk_overlap_tokens: usize,
}

impl Default for Chunking {
    /// OpenAI's `auto`: 800 tokens with 400 of overlap.
    fn default() -> Self {
        Chunking {
            max_chunk_size_tokens: 800,
            chunk_overlap_tokens: 400,
        }
    }
}

impl Chunking {
    pub const MIN_SIZE: usize = 100;
    pub const MAX_SIZE: usize = 4096;

    /// A strategy within OpenAI's bounds: size 100 to 4096, overlap at most half the size.
    pub fn new(max_chunk_size_tokens: usize, chunk_overlap_tokens: usize) -> Result<Self, String> {
        if !(Self::MIN_SIZE..=Self::MAX_SIZE).contains(&max_chunk_size_tokens) {
            return Err(format!(
                "max_chunk_size_tokens must be between {} and {}",
                Self::MIN_SIZE,
                Self::MAX_SIZE
            ));
        }
        if chunk_overlap_tokens > max_chunk_size_tokens / 2 {
            return Err(
                "chunk_overlap_tokens must not exceed half of max_chunk_size_tokens".into(),
            );
        }
        Ok(Chunking {
            max_chunk_size_tokens,
            chunk_overlap_tokens,
        })
    }

    /// OpenAI's object: `{"type": "static", "static": {...}}`.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({ "type": "static", "static": self })
    }

    pub fn from_json(value: &serde_json::Value) -> Chunking {
        serde_json::from_value(value["static"].clone()).unwrap_or_default()
    }
}

/// A piece of text and its length in tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub text: String,
    pub tokens: usize,
}

/// Splits `text` into windows of at most `max_chunk_size_tokens` tokens, each starting
/// `max - overlap` tokens after the one before. A window that cuts a character in two keeps
/// what decodes (tokens are bytes).
pub fn split(text: &str, strategy: Chunking) -> Vec<Piece> {
    let bpe = tiktoken_rs::cl100k_base_singleton();
    let tokens = bpe.encode_ordinary(text);
    let size = strategy.max_chunk_size_tokens.max(1);
    let step = size.saturating_sub(strategy.chunk_overlap_tokens).max(1);
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        let end = (start + size).min(tokens.len());
        let window = &tokens[start..end];
        let bytes = bpe.decode_bytes(window).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        if !text.is_empty() {
            pieces.push(Piece {
                text,
                tokens: window.len(),
            });
        }
        if end == tokens.len() {
            break;
        }
        start += step;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_overlap_and_cover_the_text() {
        let text = (0..1000).map(|i| format!("word{i} ")).collect::<String>();
        let strategy = Chunking::new(100, 50).unwrap();
        let pieces = split(&text, strategy);
        assert!(pieces.len() > 2, "{}", pieces.len());
        assert!(pieces.iter().all(|p| p.tokens <= 100));
        assert!(pieces[0].text.starts_with("word0"));
        assert!(pieces.last().unwrap().text.ends_with("word999"));
        // Consecutive windows share their overlap.
        let tail: String = pieces[0].text.chars().rev().take(12).collect();
        let tail: String = tail.chars().rev().collect();
        assert!(pieces[1].text.contains(tail.trim()), "{tail:?}");
    }

    #[test]
    fn bounds_are_openais() {
        assert!(Chunking::new(99, 0).is_err());
        assert!(Chunking::new(4097, 0).is_err());
        assert!(Chunking::new(800, 401).is_err());
        assert!(Chunking::new(800, 400).is_ok());
        assert!(split("", Chunking::default()).is_empty());
    }
}
