//! A file's readable text, by its kind: plain text and Markdown as they are, HTML without its
//! markup, JSON and CSV as their text. Anything else is refused as `unsupported_file`.

/// Why a file gave no text: OpenAI's `last_error.code`s.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtractError {
    /// A kind this server does not read.
    Unsupported(String),
    /// A kind it reads, but this file is not valid.
    Invalid(String),
}

impl ExtractError {
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Unsupported(_) => "unsupported_file",
            ExtractError::Invalid(_) => "invalid_file",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ExtractError::Unsupported(m) | ExtractError::Invalid(m) => m,
        }
    }
}

/// The extension of `filename`, lowercased.
fn extension(filename: &str) -> String {
    filename
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default()
}

pub fn text_of(filename: &str, bytes: &[u8]) -> Result<String, ExtractError> {
    let utf8 = || {
        std::str::from_utf8(bytes)
            .map_err(|_| ExtractError::Invalid(format!("{filename} is not valid UTF-8 text")))
    };
    match extension(filename).as_str() {
        "txt" | "md" | "markdown" | "text" | "rst" | "log" | "csv" | "tsv" => {
            Ok(utf8()?.to_owned())
        }
        "json" => {
            let value: serde_json::Value = serde_json::from_str(utf8()?)
                .map_err(|e| ExtractError::Invalid(format!("{filename} is not valid JSON: {e}")))?;
            let mut out = String::new();
            json_text(&value, &mut out);
            Ok(out)
        }
        "html" | "htm" => Ok(html_text(utf8()?)),
        "" => Err(ExtractError::Unsupported(format!(
            "{filename} has no extension to tell its kind"
        ))),
        other => Err(ExtractError::Unsupported(format!(
            "files of kind .{other} are not supported (text, Markdown, HTML, JSON, CSV)"
        ))),
    }
}

/// A JSON document's strings and numbers, one per line, with their keys.
fn json_text(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if v.is_object() || v.is_array() {
                    out.push_str(key);
                    out.push_str(":\n");
                    json_text(v, out);
                } else {
                    out.push_str(key);
                    out.push_str(": ");
                    json_text(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_text(v, out)),
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Null => out.push('\n'),
        other => {
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

/// The text of an HTML page's body, scripts and styles left out.
fn html_text(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let mut out = String::new();
    for node in doc.root_element().descendants() {
        if let Some(text) = node.value().as_text() {
            let skipped = node.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|e| matches!(e.name(), "script" | "style" | "noscript" | "head"))
            });
            let text = text.trim();
            if !skipped && !text.is_empty() {
                out.push_str(text);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_read_or_refused() {
        assert_eq!(text_of("a.md", b"# Hi").unwrap(), "# Hi");
        let html = b"<html><head><title>T</title><style>p{}</style></head><body><p>Hello</p><script>x()</script><p>there</p></body></html>";
        assert_eq!(text_of("a.html", html).unwrap(), "Hello\nthere\n");
        assert_eq!(
            text_of("a.json", br#"{"name": "Ada", "tags": ["x", 1]}"#).unwrap(),
            "name: Ada\ntags:\nx\n1\n"
        );
        assert_eq!(
            text_of("a.exe", b"MZ").unwrap_err().code(),
            "unsupported_file"
        );
        assert_eq!(
            text_of("a.txt", &[0xff, 0xfe]).unwrap_err().code(),
            "invalid_file"
        );
        assert_eq!(text_of("a.json", b"{").unwrap_err().code(), "invalid_file");
    }
}
